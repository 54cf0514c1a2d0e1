"""Appointments: planners promise, move and cancel windows; the customer gets the invite."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Query, Request, Response
from icalendar import Calendar
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.offers import offering
from api.openapi import link
from api.routers.calendars import CalendarResponse, invite_for
from api.schemas import Incoming, Moment, Read, RegionFilter, RowId, WindowsRead, Words
from calendars.mail import Mailer, invite_email
from fieldplan import booking, booking_desk
from fieldplan.appointments import AgreedVia, Appointment, AppointmentStatus, ChangeKind
from fieldplan.booking import offer_windows
from fieldplan.db import reading
from fieldplan.jobs import Job

router = APIRouter(route_class=CommittedInThread, tags=["appointments"])
CUSTOMER_LINK_DAYS = 90


BOOKED = {"appointment_id": "$response.body#/id"}


class AppointmentIn(Incoming):
    start: Moment
    end: Moment
    via: AgreedVia = AgreedVia.PLANNER
    reason: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _ends_after_start(self) -> AppointmentIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AppointmentRead(Read):
    id: int
    job_id: int
    window_start: datetime
    window_end: datetime
    agreed_via: str
    status: str
    sequence: int


class CustomerLink(BaseModel):
    invite_url: str


def order_page_url(request: Request, order_id: int) -> str:
    """The signed, expiring link to the customer's page for the order."""
    state = request.app.state
    return f"{state.settings.base_url}/o/{state.order_links.issue(order_id)}"


def send_invite(
    request: Request, session: SessionDep, appointment: Appointment, tasks: BackgroundTasks
) -> None:
    """Queue the invite mail; it goes out after the request's transaction has committed."""
    job = session.get_one(Job, appointment.job_id)
    # The customer's own page (move, cancel, call back, everything ordered), in every mail.
    body = invite_for(session, appointment, manage_url=order_page_url(request, job.order_id))
    message = invite_email(
        Calendar.from_ical(body),
        sender=request.app.state.settings.mail_sender,
        recipient=job.customer.email,
    )
    mailer: Mailer = request.app.state.mailer
    tasks.add_task(mailer.send, message)


@router.get("/jobs/{job_id:int}/windows")
def windows(
    job_id: RowId, request: Request, session: SessionDep, planner: PlannerDep
) -> WindowsRead:
    """Windows the plan can keep for this job, cheapest marked; or why none, and when."""
    state = request.app.state
    job = scoped.job(session, planner, job_id)
    with offering():
        found = offer_windows(session, job, state.travel, today=state.today(), rules=state.rules)
    return WindowsRead.of(found)


@router.post(
    "/jobs/{job_id:int}/appointment",
    status_code=201,
    responses={
        201: {
            "links": {
                "move": link("PUT", "/appointments/{appointment_id}", **BOOKED),
                "cancel": link("DELETE", "/appointments/{appointment_id}", **BOOKED),
                "invite": link("GET", "/appointments/{appointment_id}/invite.ics", **BOOKED),
                "customer_link": link(
                    "GET", "/appointments/{appointment_id}/customer-link", **BOOKED
                ),
            }
        }
    },
)
def book(
    job_id: RowId,
    window: AppointmentIn,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    tasks: BackgroundTasks,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=80)] = None,
) -> AppointmentRead:
    """Promise a window the plan can keep; it is re-checked and written into the plan. A
    retried request with the same `Idempotency-Key` returns the first booking (marked with
    `Idempotent-Replayed: true`); the key with a different request is refused (422), and a
    key lasts 24 hours."""
    # The desk books in a transaction of its own: this one only reads (on SQLite, reading
    # the job in a writing transaction would take the write lock once more per booking).
    reading(session)
    state = request.app.state
    job = scoped.job(session, planner, job_id)
    idempotency = (
        booking.Idempotency.of(idempotency_key, job.id, window.model_dump(mode="json"))
        if idempotency_key
        else None
    )
    asked = booking.Asked(
        window.start,
        window.end,
        actor=f"planner:{planner.username}",
        via=window.via,
        idempotency=idempotency,
        reason=window.reason,
    )
    appointment, made = booking_desk.book(
        session, job, asked, travel=state.travel, today=state.today(), rules=state.rules
    )
    if made:
        send_invite(request, session, appointment, tasks)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return AppointmentRead.model_validate(appointment)


class AtRiskRead(BaseModel):
    appointment: AppointmentRead
    reason: str
    proposals: WindowsRead


@router.get("/appointments/at-risk")
def at_risk(
    request: Request, session: SessionDep, planner: PlannerDep, region_id: RegionFilter = None
) -> list[AtRiskRead]:
    """Promises the plan can no longer keep, each with why and the windows it could move to:
    to be agreed with the customer, never moved silently."""
    state = request.app.state
    scoped.optional_region(session, planner, region_id)
    query = (
        select(Appointment)
        .join(Job, Job.id == Appointment.job_id)
        .where(Appointment.status == AppointmentStatus.AT_RISK, planner.scope.where(Job.region_id))
    )
    if region_id is not None:
        query = query.where(Job.region_id == region_id)
    found = []
    for appointment in session.scalars(query.order_by(Appointment.window_start)):
        job = session.get_one(Job, appointment.job_id)
        reason = next(
            (c.reason for c in reversed(appointment.changes) if c.kind == ChangeKind.AT_RISK),
            "at risk",
        )
        with offering():
            proposals = offer_windows(
                session, job, state.travel, today=state.today(), rules=state.rules
            )
        found.append(
            AtRiskRead(
                appointment=AppointmentRead.model_validate(appointment),
                reason=reason,
                proposals=WindowsRead.of(proposals),
            )
        )
    return found


# Ids in paths are digits (`:int`, on every route): `/appointments/at-risk` is no appointment,
# so a PUT there is 405 with the right Allow, not a 422 about the id.
@router.put("/appointments/{appointment_id:int}")
def move(
    appointment_id: RowId,
    window: AppointmentIn,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    tasks: BackgroundTasks,
) -> AppointmentRead:
    state = request.app.state
    appointment = booking.move(
        session,
        scoped.appointment(session, planner, appointment_id),
        window.start,
        window.end,
        travel=state.travel,
        now=state.now(),
        today=state.today(),
        rules=state.rules,
        actor=f"planner:{planner.username}",
        reason=window.reason or "rescheduled",
        by_customer=False,
    )
    send_invite(request, session, appointment, tasks)
    return AppointmentRead.model_validate(appointment)


@router.delete("/appointments/{appointment_id:int}")
def call_off(
    appointment_id: RowId,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    tasks: BackgroundTasks,
    reason: Annotated[Words, Query(max_length=500)] = "cancelled",
) -> AppointmentRead:
    state = request.app.state
    appointment = booking.call_off(
        session,
        scoped.appointment(session, planner, appointment_id),
        now=state.now(),
        today=state.today(),
        rules=state.rules,
        actor=f"planner:{planner.username}",
        reason=reason,
        by_customer=False,
    )
    send_invite(request, session, appointment, tasks)
    return AppointmentRead.model_validate(appointment)


@router.get("/appointments/{appointment_id:int}/customer-link")
def customer_link(
    appointment_id: RowId, request: Request, session: SessionDep, planner: PlannerDep
) -> CustomerLink:
    """A signed, expiring link through which the customer downloads the invite."""
    appointment = scoped.appointment(session, planner, appointment_id)
    token = request.app.state.customer_links.issue(appointment.id)
    base = request.app.state.settings.base_url
    return CustomerLink(invite_url=f"{base}/c/invites/{token}.ics")


@router.get("/c/invites/{token}.ics", response_class=CalendarResponse)
def customer_invite(token: str, request: Request, session: SessionDep) -> Response:
    appointment_id = request.app.state.customer_links.verify(token)
    appointment = session.get(Appointment, appointment_id) if appointment_id else None
    if appointment is None:
        raise HTTPException(404, detail="link not found or expired")
    return CalendarResponse(
        invite_for(session, appointment),
        headers={"Content-Disposition": "attachment; filename=afspraak.ics"},
    )
