"""Callback requests: a customer asks to be called; the request waits in the planners' queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.accounts import Scope
from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.locations import Location, OpeningHours
from fieldplan.orders import Order
from fieldplan.regions import Region
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


# A callback asked this long before the desk closes is made the same day; later, the next day
# the desk is open. It is what the customer is told, and the order the board lists them in.
SAME_DAY_BEFORE_CLOSING = timedelta(hours=2)
LOOK_AHEAD_DAYS = 14


def call_back_by(
    requested_at: datetime, hours: Sequence[OpeningHours], zone: ZoneInfo
) -> datetime | None:
    """When the service desk promises to have called: by its closing time today if asked
    early enough, else by closing time on the next day it is open (None: it never opens)."""
    asked = requested_at.astimezone(zone)
    closing = {h.weekday: h.closes for h in hours}
    for offset in range(LOOK_AHEAD_DAYS):
        day = asked.date() + timedelta(days=offset)
        closes = closing.get(day.weekday())
        if closes is None:
            continue
        by = datetime.combine(day, closes, zone)
        if offset > 0 or asked <= by - SAME_DAY_BEFORE_CLOSING:
            return by
    return None


def due(session: Session, callback: CallbackRequest) -> datetime | None:
    """`call_back_by` for a stored request, with its order's store as the desk."""
    order = session.get_one(Order, callback.order_id)
    store = session.get(Location, order.store_id) if order.store_id else None
    if store is None:
        return None
    region = session.get_one(Region, order.region_id)
    return call_back_by(callback.created_at, store.opening_hours, ZoneInfo(region.timezone))


def mark_done(callback: CallbackRequest, *, actor: str) -> None:
    callback.status = CallbackStatus.DONE
    callback.handled_by = actor


def waiting_for_order(session: Session, order_id: int) -> list[CallbackRequest]:
    return list(
        session.scalars(
            select(CallbackRequest)
            .where(
                CallbackRequest.order_id == order_id,
                CallbackRequest.status == CallbackStatus.WAITING,
            )
            .order_by(CallbackRequest.created_at)
        )
    )


def waiting(session: Session, scope: Scope, region_id: int | None = None) -> list[CallbackRequest]:
    """The callbacks still to make in the regions of `scope` (or of one of them)."""
    query = (
        select(CallbackRequest)
        .join(Order, Order.id == CallbackRequest.order_id)
        .where(CallbackRequest.status == CallbackStatus.WAITING, scope.where(Order.region_id))
    )
    if region_id is not None:
        query = query.where(Order.region_id == region_id)
    return list(session.scalars(query.order_by(CallbackRequest.created_at)))
