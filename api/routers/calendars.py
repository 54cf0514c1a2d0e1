"""Technician feeds (secret links, HTTP caching) and appointment invites."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.schemas import RowId
from calendars.feeds import FeedContext, plan_day_feed, technician_feed
from calendars.invites import ServiceDesk, invite
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.catalogue import Part
from fieldplan.feeds import (
    feed_changed_at,
    issue_feed,
    revoke_feeds,
    technician_for_token,
    upcoming_routes,
)
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.orders import Order
from fieldplan.plans import Route
from fieldplan.regions import Region
from fieldplan.technicians import Technician

router = APIRouter(route_class=CommittedInThread, tags=["calendars"])


class CalendarResponse(Response):
    """An iCalendar body (Starlette adds `; charset=utf-8` to every text type)."""

    media_type = "text/calendar"


NOT_FOUND = "feed not found"


class FeedLinks(BaseModel):
    url: str
    webcal_url: str


FEED = "/feeds/technicians/{token}.ics"
UNCHANGED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Unchanged since the ETag or Last-Modified sent."}
}


@router.get(FEED, response_class=CalendarResponse, responses=UNCHANGED)
@router.head(FEED, response_class=CalendarResponse, responses=UNCHANGED)
def technician_feed_ics(token: str, request: Request, session: SessionDep) -> Response:
    """The technician's coming stops. Unknown and revoked links get the same 404. HEAD
    answers the headers alone, for clients that look before they fetch."""
    technician = technician_for_token(session, token)
    if technician is None:
        raise HTTPException(404, detail=NOT_FOUND)
    settings = request.app.state.settings
    today = request.app.state.today()
    routes = upcoming_routes(session, technician, today, settings.feed_days)
    context = feed_context(session, [route for _, route in routes])
    region = session.get_one(Region, technician.region_id)
    body = technician_feed(
        technician, routes, context, timezone=region.timezone, language=settings.crew_language
    ).to_ical()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    changed = feed_changed_at(session, technician, today, settings.feed_days)
    modified = (changed or datetime(2000, 1, 1, tzinfo=UTC)).replace(microsecond=0)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": "private, max-age=900",
    }
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    return CalendarResponse(body, headers=headers)


def feed_context(session: SessionDep, routes: list[Route]) -> FeedContext:
    """Everything the stops of these routes refer to, fetched once."""
    job_ids = {s.job_id for r in routes for s in r.stops if s.job_id is not None}
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    locations = {loc.id: loc for loc in session.scalars(select(Location))}
    orders = list(
        session.scalars(select(Order).where(Order.id.in_({j.order_id for j in jobs.values()})))
    )
    promised = session.scalars(
        select(Appointment).where(
            Appointment.job_id.in_(job_ids), Appointment.status != AppointmentStatus.CANCELLED
        )
    )
    return FeedContext(
        jobs=jobs,
        locations=locations,
        parts={p.sku: p for p in session.scalars(select(Part))},
        order_numbers={order.id: order.number for order in orders},
        promises={a.job_id: (a.window_start, a.window_end) for a in promised},
        desks={
            order.id: ServiceDesk.of_store(locations[order.store_id])
            for order in orders
            if order.store_id in locations
        },
    )


@router.get("/plans/{plan_id:int}/calendar.ics", response_class=CalendarResponse)
def plan_day_calendar(
    plan_id: RowId, request: Request, session: SessionDep, planner: PlannerDep
) -> Response:
    """One plan version's day as a calendar: every technician's stops, for planners."""
    plan = scoped.plan(session, planner, plan_id)
    routes = [(session.get_one(Technician, r.technician_id), r) for r in plan.routes]
    calendar = plan_day_feed(
        plan,
        routes,
        feed_context(session, list(plan.routes)),
        timezone=plan.region.timezone,
        language=request.app.state.settings.crew_language,
    )
    return CalendarResponse(calendar.to_ical())


def _not_modified(request: Request, etag: str, modified: datetime) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        # RFC 9110's weak comparison: W/"x" matches "x" (proxies weaken tags they re-encode).
        sent = {m.strip().removeprefix("W/") for m in match.split(",")}
        return etag in sent or "*" in sent
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return modified <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


@router.post("/technicians/{technician_id:int}/feed", status_code=201)
def rotate_feed(
    technician_id: RowId, request: Request, session: SessionDep, planner: PlannerDep
) -> FeedLinks:
    """A new secret feed link for the technician; the previous one stops working."""
    technician = scoped.technician(session, planner, technician_id)
    token = issue_feed(session, technician)
    url = f"{request.app.state.settings.base_url}/feeds/technicians/{token}.ics"
    return FeedLinks(url=url, webcal_url="webcal://" + url.split("://", 1)[1])


@router.delete("/technicians/{technician_id:int}/feed", status_code=204)
def revoke_feed(technician_id: RowId, session: SessionDep, planner: PlannerDep) -> Response:
    technician = scoped.technician(session, planner, technician_id)
    revoke_feeds(session, technician)
    return Response(status_code=204)


@router.get("/appointments/{appointment_id:int}/invite.ics", response_class=CalendarResponse)
def appointment_invite(
    appointment_id: RowId, request: Request, session: SessionDep, planner: PlannerDep
) -> Response:
    appointment = scoped.appointment(session, planner, appointment_id)
    calendar = invite_for(session, appointment)
    return CalendarResponse(calendar)


def invite_for(
    session: SessionDep, appointment: Appointment, *, manage_url: str | None = None
) -> bytes:
    job = session.get_one(Job, appointment.job_id)
    order = session.get_one(Order, job.order_id)
    store = session.get(Location, order.store_id) if order.store_id else None
    if store is None:
        raise HTTPException(409, detail="the order has no store to name as service desk")
    region = session.get_one(Region, job.region_id)
    calendar = invite(
        appointment,
        job,
        job.customer,
        order.number,
        ServiceDesk.of_store(store),
        timezone=region.timezone,
        manage_url=manage_url,
    )
    body: bytes = calendar.to_ical()
    return body
