"""The day as it happens: reports from technicians (through their own feed token) or from
planners on their behalf, and illness."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.openapi import link
from api.schemas import Day, Incoming, Moment, RowId
from fieldplan import notices
from fieldplan.day_events import (
    ReportKind,
    ReportOutcome,
    ReportRefused,
    ReportTooEarly,
    report,
    report_ill,
    urgent_repair,
)
from fieldplan.feeds import technician_for_token
from fieldplan.jobs import Job
from fieldplan.plans import Route, Stop
from fieldplan.technicians import Technician
from fieldplan.workdays import next_working_day

router = APIRouter(route_class=CommittedInThread, tags=["the day"])


class ReportIn(Incoming):
    kind: ReportKind
    eta: Moment | None = None
    part_sku: str | None = Field(None, max_length=40)
    note: str = Field("", max_length=1000)


class ReportRead(BaseModel):
    job_id: int
    status: str
    follow_up_job_id: int | None
    promises_at_risk: list[int]  # appointment ids, for the planner to renegotiate


class IllIn(Incoming):
    day: Day


def _read(outcome: ReportOutcome) -> ReportRead:
    return ReportRead(
        job_id=outcome.job.id,
        status=outcome.job.status,
        follow_up_job_id=outcome.follow_up.id if outcome.follow_up else None,
        promises_at_risk=[a.id for a in outcome.at_risk],
    )


def _report(
    request: Request,
    session: SessionDep,
    job: Job,
    body: ReportIn,
    actor: str,
) -> ReportRead:
    try:
        outcome = report(
            session,
            job,
            body.kind,
            actor=actor,
            today=request.app.state.today(),
            eta=body.eta,
            part_sku=body.part_sku,
            note=body.note,
            travel=request.app.state.travel,
            now=request.app.state.now(),
        )
    except ReportTooEarly as early:
        raise HTTPException(422, detail=[{"field": "kind", "reason": str(early)}]) from None
    except ReportRefused as refused:
        raise HTTPException(409, detail=str(refused)) from None
    return _read(outcome)


@router.post("/jobs/{job_id:int}/reports")
def planner_report(
    job_id: RowId,
    body: ReportIn,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
) -> ReportRead:
    """A report taken by a planner (the technician phoned in)."""
    job = scoped.job(session, planner, job_id)
    return _report(request, session, job, body, f"planner:{planner.username}")


@router.post("/feeds/technicians/{token}/jobs/{job_id:int}/reports")
def technician_report(
    token: str,
    job_id: RowId,
    body: ReportIn,
    request: Request,
    session: SessionDep,
) -> ReportRead:
    """A technician's own report, authorised by their feed token: only jobs on their routes;
    anything else answers 404 as an unknown token does."""
    technician = technician_for_token(session, token)
    job = session.get(Job, job_id)
    if technician is None or job is None or not _on_routes_of(session, technician, job):
        raise HTTPException(404, detail="not found")
    return _report(request, session, job, body, f"technician:{technician.code}")


def _on_routes_of(session: SessionDep, technician: Technician, job: Job) -> bool:
    found = session.scalar(
        select(Stop.id)
        .join(Route, Stop.route_id == Route.id)
        .where(Route.technician_id == technician.id, Stop.job_id == job.id)
        .limit(1)
    )
    return found is not None


@router.post("/technicians/{technician_id:int}/ill")
def technician_ill(
    technician_id: RowId, body: IllIn, request: Request, session: SessionDep, planner: PlannerDep
) -> list[int]:
    """Take the technician's day out and re-plan it; returns the appointments now at risk
    (flagged, listed at /appointments/at-risk with proposals)."""
    technician = scoped.technician(session, planner, technician_id)
    try:
        flagged = report_ill(
            session,
            technician,
            body.day,
            request.app.state.travel,
            actor=f"planner:{planner.username}",
            today=request.app.state.today(),
        )
    except ReportRefused as refused:
        raise HTTPException(409, detail=str(refused)) from None
    return [a.id for a in flagged]


class RepairIn(Incoming):
    description: str = Field(..., min_length=1, max_length=1000)
    duration_min: int = Field(60, ge=5, le=600)
    skills: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=10
    )


class RepairRead(BaseModel):
    job_id: int
    technician_day: str | None
    start: datetime | None
    reason: str | None


@router.post(
    "/orders/{order_id:int}/repairs",
    status_code=201,
    responses={
        201: {"links": {"job": link("GET", "/jobs/{job_id}", job_id="$response.body#/job_id")}}
    },
)
def urgent(
    order_id: RowId, body: RepairIn, request: Request, session: SessionDep, planner: PlannerDep
) -> RepairRead:
    """An urgent repair: fitted into today's routes if it can be without breaking a promise,
    else first in line for the next optimisation; the answer says which."""
    order = scoped.order(session, planner, order_id)
    state = request.app.state
    fitted = urgent_repair(
        session,
        order,
        description=body.description,
        duration_min=body.duration_min,
        skills=body.skills,
        travel=state.travel,
        now=state.now(),
        actor=f"planner:{planner.username}",
    )
    return RepairRead(
        job_id=fitted.job.id,
        technician_day=fitted.technician_day,
        start=fitted.start,
        reason=fitted.reason,
    )


class RemindersRead(BaseModel):
    day: date
    reminders: int = Field(description="customers reminded now (each is reminded once)")


@router.post("/regions/{region_id:int}/reminders")
def send_reminders(
    region_id: RowId,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    day: Annotated[Day | None, Query(description="default: the next working day")] = None,
) -> RemindersRead:
    """Remind every customer with a promise on `day` of their window, once each (run it the
    day before, from the nightly schedule or by hand)."""
    region = scoped.region(session, planner, region_id)
    when = day or next_working_day(request.app.state.today() + timedelta(days=1))
    made = notices.remind(session, region, when)
    return RemindersRead(day=when, reminders=len(made))
