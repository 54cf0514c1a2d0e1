"""Planners steer the plan: background optimisations, pins, moves, unassignments, KPIs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Request
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import func, select

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.openapi import link
from api.routers.appointments import AppointmentRead, send_invite
from api.schemas import ClockTime, Day, Id, Incoming, PlanDay, RegionFilter, RowId
from fieldplan import plan_gate, runs, steering
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.callbacks import CallbackRequest, CallbackStatus
from fieldplan.jobs import Job, JobStatus
from fieldplan.orders import Order
from fieldplan.plans import Plan, latest_plan
from fieldplan.regions import Region
from fieldplan.runs import OptimisationRun
from fieldplan.technicians import Technician

router = APIRouter(route_class=CommittedInThread, tags=["steering"])
UNRECORDED = "unrecorded"  # the reason of a plan saved before reasons had codes


STARTED = {"run_id": "$response.body#/id"}


class OptimisationIn(Incoming):
    region_id: Id
    first_day: Day
    days: int = Field(1, ge=1, le=20)
    time_limit_s: float = Field(10.0, gt=0, le=600)


class CostAt(BaseModel):
    at_s: float  # seconds since the run started
    cost: int


class OptimisationRead(BaseModel):
    id: str
    region_id: int
    status: str
    progress: float
    elapsed_s: float
    best_cost: int | None
    improvements: int
    costs: list[CostAt]  # how the best cost fell
    plan_ids: list[int]
    unplanned: int
    started_by: str
    revision: int | None  # of the region, as the run read it
    error: str | None

    @classmethod
    def of(cls, run: OptimisationRun) -> OptimisationRead:
        status, error = run.outcome
        return cls(
            id=run.id,
            region_id=run.region_id,
            status=status,
            progress=round(run.progress, 3),
            elapsed_s=round(run.elapsed_s, 2),
            best_cost=run.best_cost,
            improvements=len(run.best_costs),
            costs=[CostAt(at_s=float(at), cost=int(cost)) for at, cost in run.best_costs],
            plan_ids=[int(i) for i in run.plan_ids],
            unplanned=run.unplanned,
            started_by=run.started_by,
            revision=run.revision,
            error=error,
        )


RunId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="as started")]


@router.post(
    "/plans/optimisations",
    status_code=202,
    responses={
        202: {
            "links": {
                "progress": link("GET", "/plans/optimisations/{run_id}", **STARTED),
                "cancel": link("DELETE", "/plans/optimisations/{run_id}", **STARTED),
            }
        }
    },
)
def start_optimisation(
    body: OptimisationIn,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    tasks: BackgroundTasks,
) -> OptimisationRead:
    """Plan a region's days in the background; poll for progress (from any API process),
    DELETE to cancel."""
    region = scoped.region(session, planner, body.region_id)
    run = runs.start(
        session,
        region,
        body.first_day,
        body.days,
        body.time_limit_s,
        today=request.app.state.today(),
        started_by=f"planner:{planner.username}",
    )
    # Handed over once this request has committed the run's row.
    tasks.add_task(request.app.state.executor.submit, run.id)
    return OptimisationRead.of(run)


def _run(session: SessionDep, planner: PlannerDep, run_id: str) -> OptimisationRun:
    run = session.get(OptimisationRun, run_id)
    if run is None or not planner.scope.allows(run.region_id):
        raise HTTPException(404, detail="no such optimisation")
    return run


@router.get("/plans/optimisations/{run_id}")
def read_optimisation(run_id: RunId, session: SessionDep, planner: PlannerDep) -> OptimisationRead:
    return OptimisationRead.of(_run(session, planner, run_id))


@router.delete("/plans/optimisations/{run_id}")
def cancel_optimisation(
    run_id: RunId, session: SessionDep, planner: PlannerDep
) -> OptimisationRead:
    """Stop a run; nothing of a cancelled run is saved."""
    run = _run(session, planner, run_id)
    runs.request_cancel(session, run)
    return OptimisationRead.of(run)


class PinIn(Incoming):
    technician_id: Id
    day: Day
    start: ClockTime | None = None
    # 0: the technician's first job of that day; pickups and lunch do not count.
    position: int | None = Field(None, ge=0, le=200)


class MoveIn(Incoming):
    technician_id: Id
    day: Day
    position: int | None = Field(None, ge=0, le=200)
    renegotiate: StrictBool = False


class UnassignIn(Incoming):
    renegotiate: StrictBool = False


class JobRead(BaseModel):
    id: int
    status: str
    pinned_technician_id: int | None
    pinned_day: date | None
    pinned_start: ClockTime | None
    pinned_position: int | None


class MovedRead(BaseModel):
    job: JobRead
    appointment: AppointmentRead | None
    renegotiated: bool


def _job_read(job: Job) -> JobRead:
    return JobRead(
        id=job.id,
        status=job.status,
        pinned_technician_id=job.pinned_technician_id,
        pinned_day=job.pinned_day,
        pinned_start=job.pinned_start,
        pinned_position=job.pinned_position,
    )


@router.put("/jobs/{job_id:int}/pin")
def pin_job(job_id: RowId, body: PinIn, session: SessionDep, planner: PlannerDep) -> JobRead:
    """Fix the job to a technician and day (and a start time or a position in the route); the
    next optimisation keeps it there."""
    job = scoped.job(session, planner, job_id)
    steering.pin(
        session,
        job,
        scoped.technician(session, planner, body.technician_id),
        body.day,
        body.start,
        actor=f"planner:{planner.username}",
        position=body.position,
    )
    return _job_read(job)


@router.delete("/jobs/{job_id:int}/pin")
def unpin_job(job_id: RowId, session: SessionDep, planner: PlannerDep) -> JobRead:
    job = scoped.job(session, planner, job_id)
    steering.unpin(session, job)
    return _job_read(job)


@router.post("/jobs/{job_id:int}/move")
def move_job(
    job_id: RowId,
    body: MoveIn,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    tasks: BackgroundTasks,
) -> MovedRead:
    """Put the job on a technician's day, re-checked by the engine's rules; a move that breaks
    a promise is refused unless `renegotiate` (then the customer gets an updated invite)."""
    state = request.app.state
    moved = steering.move(
        session,
        scoped.job(session, planner, job_id),
        scoped.technician(session, planner, body.technician_id),
        body.day,
        body.position,
        travel=state.travel,
        rules=state.rules,
        today=state.today(),
        actor=f"planner:{planner.username}",
        renegotiate=body.renegotiate,
    )
    if moved.renegotiated and moved.appointment is not None:
        send_invite(request, session, moved.appointment, tasks)
    return MovedRead(
        job=_job_read(moved.job),
        appointment=AppointmentRead.model_validate(moved.appointment)
        if moved.appointment
        else None,
        renegotiated=moved.renegotiated,
    )


@router.post("/jobs/{job_id:int}/unassign")
def unassign_job(
    job_id: RowId, body: UnassignIn, request: Request, session: SessionDep, planner: PlannerDep
) -> JobRead:
    job = scoped.job(session, planner, job_id)
    steering.unassign(
        session,
        job,
        actor=f"planner:{planner.username}",
        renegotiate=body.renegotiate,
        today=request.app.state.today(),
    )
    return _job_read(job)


class KpisRead(BaseModel):
    region_id: int
    day: date
    jobs_planned: int
    travel_h: float
    travel_min_per_job: float | None
    technician_days_used: int
    utilisation_pct: float | None  # route time over the shift time of everyone working
    promises: int
    promises_kept_pct: float | None
    promises_at_risk: int
    first_time_fix_pct: float | None
    unplanned: dict[str, int]  # by reason code (optimizer.Reason, PlanningReason)
    callbacks_waiting: int
    # What `fieldplan check-plans` finds wrong with this day's stored plan (empty: nothing).
    plan_defects: list[str]


@router.get("/kpis")
def kpis(
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    day: PlanDay,
    region_id: RegionFilter = None,
) -> list[KpisRead]:
    """The day's figures per region the planner plans: promises planned inside their window,
    first-time fixes, travel per job, unplanned jobs by reason, callbacks waiting."""
    regions = (
        [scoped.region(session, planner, region_id)]
        if region_id is not None
        else list(
            session.scalars(
                select(Region).where(planner.scope.where(Region.id)).order_by(Region.id)
            )
        )
    )
    found = []
    for region in regions:
        plan = latest_plan(session, region.id, day)
        defects = plan_gate.defects(
            session,
            region,
            [day],
            today=request.app.state.today(),
            travel=request.app.state.travel,
        )
        found.append(_kpis(session, region, day, plan, [str(d) for d in defects]))
    return found


def _kpis(
    session: SessionDep, region: Region, day: date, plan: Plan | None, defects: list[str]
) -> KpisRead:
    stops = [s for r in (plan.routes if plan else []) for s in r.stops]
    job_stops = {s.job_id: s for s in stops if s.kind == "job" and s.job_id and not s.second_person}
    travel_s = sum(r.travel_s for r in (plan.routes if plan else []))
    appointments = list(
        session.scalars(
            select(Appointment)
            .join(Job, Job.id == Appointment.job_id)
            .where(
                Job.region_id == region.id,
                Appointment.status.in_([AppointmentStatus.PROMISED, AppointmentStatus.AT_RISK]),
            )
        )
    )
    zone = ZoneInfo(region.timezone)
    on_day = [a for a in appointments if a.window_start.astimezone(zone).date() == day]
    kept = 0
    for appointment in on_day:
        stop = job_stops.get(appointment.job_id)
        job = session.get_one(Job, appointment.job_id)
        if stop is not None:
            start = stop.start or stop.departure - timedelta(minutes=job.duration_min)
            kept += appointment.window_start <= start <= appointment.window_end
    finished = session.scalar(
        select(func.count()).where(
            Job.region_id == region.id, Job.status.in_([JobStatus.DONE, JobStatus.FAILED])
        )
    )
    fixed = session.scalar(
        select(func.count()).where(Job.region_id == region.id, Job.status == JobStatus.DONE)
    )
    unplanned: dict[str, int] = {}
    for row in plan.unassigned if plan else []:
        key = row.reason_code or UNRECORDED
        unplanned[key] = unplanned.get(key, 0) + 1
    waiting = session.scalar(
        select(func.count())
        .select_from(CallbackRequest)
        .join(Order, Order.id == CallbackRequest.order_id)
        .where(CallbackRequest.status == CallbackStatus.WAITING, Order.region_id == region.id)
    )
    shifts = [
        t.shift_on(day)
        for t in session.scalars(select(Technician).where(Technician.region_id == region.id))
    ]
    available_s = sum(
        (s.end.hour * 60 + s.end.minute - s.start.hour * 60 - s.start.minute) * 60
        for s in shifts
        if s is not None
    )
    worked_s = sum((r.end_at - r.start_at).total_seconds() for r in (plan.routes if plan else []))
    return KpisRead(
        region_id=region.id,
        day=day,
        jobs_planned=len(job_stops),
        travel_h=round(travel_s / 3600, 2),
        travel_min_per_job=round(travel_s / 60 / len(job_stops), 1) if job_stops else None,
        technician_days_used=len(plan.routes) if plan else 0,
        utilisation_pct=round(100 * worked_s / available_s, 1) if available_s else None,
        promises=len(on_day),
        promises_kept_pct=round(100 * kept / len(on_day), 1) if on_day else None,
        promises_at_risk=sum(1 for a in on_day if a.status == AppointmentStatus.AT_RISK),
        first_time_fix_pct=round(100 * (fixed or 0) / finished, 1) if finished else None,
        unplanned=unplanned,
        callbacks_waiting=waiting or 0,
        plan_defects=defects,
    )
