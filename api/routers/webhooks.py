"""Webhook subscribers, managed by administrators, and what was delivered to them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response
from pydantic import AnyHttpUrl, Field
from sqlalchemy import select

from api.deps import AdminDep, CommittedInThread, SessionDep
from api.schemas import Incoming, Read, RowId
from fieldplan.webhooks import (
    DeliveryStatus,
    EventKind,
    WebhookDelivery,
    WebhookSubscriber,
    subscribe,
)

router = APIRouter(route_class=CommittedInThread, tags=["webhooks"])

SHOWN_DELIVERIES = 200


class SubscriberIn(Incoming):
    url: AnyHttpUrl = Field(description="Where events are POSTed (http or https).")
    events: list[EventKind] = Field(
        default_factory=list, max_length=len(EventKind), description="Empty: every event."
    )


class SubscriberRead(Read):
    id: int
    url: str
    events: list[EventKind]
    active: bool
    created_at: datetime


class SubscriberMade(SubscriberRead):
    secret: str = Field(
        description="Shown this once. Each POST carries `Fieldplan-Signature: t=<unix seconds>,"
        "v1=<hex>`, the HMAC-SHA256 with this secret of `<t>.` followed by the body."
    )


class DeliveryRead(Read):
    id: int
    event: EventKind
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


def _subscriber(session: SessionDep, subscriber_id: int) -> WebhookSubscriber:
    found = session.get(WebhookSubscriber, subscriber_id)
    if found is None or not found.active:
        raise HTTPException(404, detail=f"no webhook subscriber {subscriber_id}")
    return found


@router.post("/webhooks", status_code=201)
def make_subscriber(body: SubscriberIn, session: SessionDep, _: AdminDep) -> SubscriberMade:
    """Subscribe a URL to plan, appointment and job-status events; the answer carries the
    secret its deliveries are signed with, once."""
    made = subscribe(session, str(body.url), body.events)
    return SubscriberMade(**SubscriberRead.model_validate(made).model_dump(), secret=made.secret)


@router.get("/webhooks")
def list_subscribers(session: SessionDep, _: AdminDep) -> list[SubscriberRead]:
    found = session.scalars(
        select(WebhookSubscriber).where(WebhookSubscriber.active).order_by(WebhookSubscriber.id)
    )
    return [SubscriberRead.model_validate(s) for s in found]


@router.delete("/webhooks/{subscriber_id:int}", status_code=204)
def end_subscriber(subscriber_id: RowId, session: SessionDep, _: AdminDep) -> Response:
    """No more events for it; what was delivered stays in the log, what was still pending is
    not sent."""
    subscriber = _subscriber(session, subscriber_id)
    subscriber.active = False
    for pending in session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.subscriber_id == subscriber.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
    ):
        pending.status = DeliveryStatus.FAILED
        pending.last_error = "the subscription ended"
    session.flush()
    return Response(status_code=204)


@router.get("/webhooks/{subscriber_id:int}/deliveries")
def deliveries(subscriber_id: RowId, session: SessionDep, _: AdminDep) -> list[DeliveryRead]:
    """The newest deliveries first: each attempt's outcome and when the next one is due."""
    subscriber = _subscriber(session, subscriber_id)
    found = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.subscriber_id == subscriber.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(SHOWN_DELIVERIES)
    )
    return [DeliveryRead.model_validate(d) for d in found]
