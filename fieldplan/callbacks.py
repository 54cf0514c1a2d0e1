"""Callback requests: a customer asks to be called; the request waits in the planners' queue."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.orders import Order
from fieldplan.timeline import EventKind, record


class CallbackStatus(StrEnum):
    WAITING = "waiting"
    DONE = "done"


class CallbackRequest(Base):
    __tablename__ = "callback_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    phone: Mapped[str] = mapped_column(String(32))
    preferred_time: Mapped[str] = mapped_column(String(80), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CallbackStatus] = mapped_column(String(10), default=CallbackStatus.WAITING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    handled_by: Mapped[str | None] = mapped_column(String(80), nullable=True)


def request_callback(
    session: Session, order: Order, *, phone: str, preferred_time: str, note: str, actor: str
) -> CallbackRequest:
    callback = CallbackRequest(
        customer_id=order.customer_id,
        order_id=order.id,
        phone=phone,
        preferred_time=preferred_time,
        note=note,
    )
    session.add(callback)
    session.flush()
    record(
        session,
        customer_id=order.customer_id,
        order_id=order.id,
        kind=EventKind.CALLBACK_REQUESTED,
        actor=actor,
        text=f"call {phone}"
        + (f" ({preferred_time})" if preferred_time else "")
        + (f": {note}" if note else ""),
        data={"callback_id": callback.id},
    )
    return callback


def waiting(session: Session, region_id: int | None = None) -> list[CallbackRequest]:
    query = select(CallbackRequest).where(CallbackRequest.status == CallbackStatus.WAITING)
    if region_id is not None:
        query = query.join(Order, Order.id == CallbackRequest.order_id).where(
            Order.region_id == region_id
        )
    return list(session.scalars(query.order_by(CallbackRequest.created_at)))
