"""Webhooks: other systems told of plans, promises and jobs as they change.

A retailer's shop, CRM or customer-service desk subscribes a URL and gets an event for every
saved plan (`plan.saved`), every promise made, moved, flagged or cancelled
(`appointment.changed`) and every job's change of status (`job.status`). Events are taken
from what a transaction flushes, whoever the writer (a booking, a planner's move, a report, a
worker's optimisation), and written as delivery rows in that same transaction: a change that
rolls back tells nobody, and one that commits is delivered even if its process stops first.
Senders take the due rows after the commit and POST each body signed with HMAC-SHA256 over
the timestamp and the body (`Fieldplan-Signature: t=<unix seconds>,v1=<hex>`), so a receiver
can check who sent it and refuse a replay. A receiver that does not answer 2xx is tried again
with back-off, up to `MAX_ATTEMPTS` times; every attempt's outcome is in the delivery log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, event, inspect, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column, sessionmaker

from fieldplan.appointments import Appointment
from fieldplan.db import Base, UTCDateTime, unit_of_work, utcnow
from fieldplan.jobs import Job
from fieldplan.plans import Plan

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)  # doubled after every failed attempt
LONGEST_WAIT = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # a sender's claim on a delivery it is posting
TIMEOUT_S = 10.0
BATCH = 50
WRITTEN = "fieldplan.webhooks.written"  # in a session's info: it wrote deliveries to send


class EventKind(StrEnum):
    PLAN_SAVED = "plan.saved"
    APPOINTMENT_CHANGED = "appointment.changed"
    JOB_STATUS = "job.status"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after MAX_ATTEMPTS


class WebhookSubscriber(Base):
    __tablename__ = "webhook_subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(64))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # EventKind values
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscribers.id"), index=True)
    event: Mapped[EventKind] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the JSON posted, as signed
    status: Mapped[DeliveryStatus] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def subscribe(session: Session, url: str, events: Iterable[EventKind]) -> WebhookSubscriber:
    """A new subscriber with a secret of its own (shown to the caller once)."""
    kinds = sorted({EventKind(e) for e in events} or set(EventKind))
    subscriber = WebhookSubscriber(
        url=url, secret=secrets.token_hex(32), events=[str(k) for k in kinds], active=True
    )
    session.add(subscriber)
    session.flush()
    return subscriber


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """What `Fieldplan-Signature` carries: a receiver computes the same and compares."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# Events, from what a transaction flushes ---------------------------------------------------

_EVENTS = "fieldplan.webhooks.events"
_SUBSCRIBERS = "fieldplan.webhooks.subscribers"


@dataclass(frozen=True)
class _Event:
    kind: EventKind
    data: dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _changed(instance: object, *names: str) -> bool:
    attrs = inspect(instance).attrs
    return any(attrs[name].history.has_changes() for name in names)


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: object) -> None:
    """Events of what was just flushed (ids are known, and so is what changed)."""
    found: list[_Event] = session.info.setdefault(_EVENTS, [])
    for instance in session.new:
        if isinstance(instance, Plan):
            found.append(_plan(instance))
        elif isinstance(instance, Appointment):
            found.append(_appointment(instance))
    for instance in session.dirty:
        if isinstance(instance, Appointment) and _changed(
            instance, "status", "window_start", "window_end"
        ):
            found.append(_appointment(instance))
        elif isinstance(instance, Job) and _changed(instance, "status"):
            before = inspect(instance).attrs.status.history.deleted
            found.append(
                _Event(
                    EventKind.JOB_STATUS,
                    {
                        "job_id": instance.id,
                        "order_id": instance.order_id,
                        "status": str(instance.status),
                        "previous_status": str(before[0]) if before else None,
                    },
                )
            )


def _plan(plan: Plan) -> _Event:
    return _Event(
        EventKind.PLAN_SAVED,
        {
            "plan_id": plan.id,
            "region_id": plan.region_id,
            "day": plan.day.isoformat(),
            "version": plan.version,
            "planner": plan.planner,
        },
    )


def _appointment(appointment: Appointment) -> _Event:
    return _Event(
        EventKind.APPOINTMENT_CHANGED,
        {
            "appointment_id": appointment.id,
            "job_id": appointment.job_id,
            "status": str(appointment.status),
            "window_start": _iso(appointment.window_start),
            "window_end": _iso(appointment.window_end),
        },
    )


@event.listens_for(Session, "after_flush_postexec")
def _write_deliveries(session: Session, _context: object) -> None:
    """A delivery row per event and subscriber, in the transaction that made the change
    (the commit's next flush writes them)."""
    found: list[_Event] = session.info.pop(_EVENTS, [])
    if not found:
        return
    subscribers: list[WebhookSubscriber] | None = session.info.get(_SUBSCRIBERS)
    if subscribers is None:  # read once per transaction: a booking flushes several times
        with session.no_autoflush:
            subscribers = session.info[_SUBSCRIBERS] = list(
                session.scalars(select(WebhookSubscriber).where(WebhookSubscriber.active))
            )
    if not subscribers:
        return
    now = utcnow()
    for change in found:
        body = json.dumps(
            {"event": str(change.kind), "occurred_at": now.isoformat(), "data": change.data},
            sort_keys=True,
        )
        for subscriber in subscribers:
            if str(change.kind) in subscriber.events:
                session.add(
                    WebhookDelivery(
                        subscriber_id=subscriber.id,
                        event=change.kind,
                        body=body,
                        status=DeliveryStatus.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
                session.info[WRITTEN] = True


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    session.info.pop(_EVENTS, None)
    if transaction.parent is None:
        session.info.pop(_SUBSCRIBERS, None)


# Sending ------------------------------------------------------------------------------------

Post = Callable[[str, bytes, dict[str, str]], int]  # url, body, headers -> HTTP status


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    return httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_S).status_code


@dataclass(frozen=True)
class Sent:
    delivered: int
    failed: int  # attempts that failed (tried again later, or given up)
    next_due: datetime | None  # when the earliest delivery still pending is due


def deliver_due(
    sessions: sessionmaker[Session], *, now: datetime | None = None, post: Post = _post
) -> Sent:
    """Post every delivery that is due. Each is claimed for `LEASE` in a short transaction
    first (another sender skips it), posted with no transaction open, and its outcome
    written after: delivered on a 2xx, else tried again after a wait that doubles, up to
    `MAX_ATTEMPTS`."""
    now = now or utcnow()
    with unit_of_work(sessions) as session:
        due = list(
            session.scalars(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        secrets_by = {
            s.id: (s.url, s.secret)
            for s in session.scalars(
                select(WebhookSubscriber).where(
                    WebhookSubscriber.id.in_({d.subscriber_id for d in due})
                )
            )
        }
        work = [(d.id, d.event, d.body, *secrets_by[d.subscriber_id]) for d in due]
        for delivery in due:
            delivery.next_attempt_at = now + LEASE
    delivered = failed = 0
    for delivery_id, kind, body, url, secret in work:
        encoded = body.encode()
        headers = {
            "Content-Type": "application/json",
            "Fieldplan-Event": str(kind),
            "Fieldplan-Delivery": str(delivery_id),
            "Fieldplan-Signature": signature(secret, int(now.timestamp()), encoded),
        }
        code: int | None = None
        error: str | None = None
        try:
            code = post(url, encoded, headers)
        except httpx.HTTPError as unreachable:
            error = f"{type(unreachable).__name__}: {unreachable}"
        ok = code is not None and 200 <= code < 300
        delivered += ok
        failed += not ok
        _record(sessions, delivery_id, now, code, error)
    with unit_of_work(sessions) as session:
        next_due = session.scalar(
            select(WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(1)
        )
    return Sent(delivered, failed, next_due)


def _record(
    sessions: sessionmaker[Session],
    delivery_id: int,
    now: datetime,
    code: int | None,
    error: str | None,
) -> None:
    with unit_of_work(sessions) as session:
        delivery = session.get_one(WebhookDelivery, delivery_id)
        delivery.attempts += 1
        delivery.last_status_code = code
        delivery.last_error = error if error is not None else _said(code)
        if code is not None and 200 <= code < 300:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.last_error = None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
        else:
            wait = min(FIRST_RETRY * 2 ** (delivery.attempts - 1), LONGEST_WAIT)
            delivery.next_attempt_at = now + wait


def _said(code: int | None) -> str | None:
    return f"the receiver answered {code}" if code is not None else None
