"""One customer's story in one place, so nobody asks them to repeat it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import JSON, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.accounts import Scope
from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.orders import Order


class EventKind(StrEnum):
    ORDER_PLACED = "order_placed"
    JOB_CREATED = "job_created"
    SLOT_OFFERED = "slot_offered"
    SLOT_BOOKED = "slot_booked"
    APPOINTMENT_MOVED = "appointment_moved"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    PROMISE_AT_RISK = "promise_at_risk"
    PART_MISSING = "part_missing"
    TECHNICIAN_EN_ROUTE = "technician_en_route"
    JOB_STARTED = "job_started"
    JOB_DONE = "job_done"
    JOB_FAILED = "job_failed"
    CALLBACK_REQUESTED = "callback_requested"
    MESSAGE_SENT = "message_sent"
    COMPLAINT = "complaint"


class TimelineEvent(Base):
    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    kind: Mapped[EventKind] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record(
    session: Session,
    *,
    customer_id: int,
    kind: EventKind,
    actor: str,
    text: str = "",
    order_id: int | None = None,
    job_id: int | None = None,
    at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    event = TimelineEvent(
        customer_id=customer_id,
        order_id=order_id,
        job_id=job_id,
        kind=kind,
        actor=actor,
        text=text,
        at=at or utcnow(),
        data=data or {},
    )
    session.add(event)
    return event


class _OfAJob(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def customer_id(self) -> int: ...
    @property
    def order_id(self) -> int: ...


def record_for_job(
    session: Session, job: _OfAJob, kind: EventKind, actor: str, text: str
) -> TimelineEvent:
    """An event about one job, on its customer's timeline and its order's."""
    return record(
        session,
        customer_id=job.customer_id,
        order_id=job.order_id,
        job_id=job.id,
        kind=kind,
        actor=actor,
        text=text,
    )


def for_customer(
    session: Session, customer_id: int, scope: Scope | None = None
) -> list[TimelineEvent]:
    """The customer's events, oldest first; with a planner's `scope`, only those of orders in
    its regions (and the customer's own, of no order)."""
    query = select(TimelineEvent).where(TimelineEvent.customer_id == customer_id)
    if scope is not None:
        in_scope = select(Order.id).where(scope.where(Order.region_id))
        query = query.where(TimelineEvent.order_id.is_(None) | TimelineEvent.order_id.in_(in_scope))
    return list(session.scalars(query.order_by(TimelineEvent.at, TimelineEvent.id)))
