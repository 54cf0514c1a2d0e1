"""From the database to the engine and back: the translation layer of the design card.

The engine works on one time axis of integer seconds over the horizon's *working* days (day d
starts at d * 86400, and times inside a day are wall-clock seconds after local midnight, so a
DST day needs no special case). This module builds that `Problem` from domain rows, and saves
the engine's `Plan` as versioned plans per region and day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

import optimizer
from fieldplan.appointments import Appointment, AppointmentStatus, flag_at_risk, live_appointment
from fieldplan.catalogue import JobKind, Part
from fieldplan.jobs import Job, JobPart, JobStatus, change_status
from fieldplan.locations import Location
from fieldplan.plans import Plan, Route, Stop, StopKind, UnassignedJob, next_version
from fieldplan.regions import Region, lock_region
from fieldplan.technicians import Technician
from fieldplan.travel import Coordinate, TravelTimes
from fieldplan.workdays import working_days_between
from optimizer.model import DAY_S

PLANNABLE = (JobStatus.NEW, JobStatus.OFFERED, JobStatus.BOOKED, JobStatus.PLANNED)
PICKUP_SERVICE_S = 600


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass
class Horizon:
    days: list[date]
    timezone: ZoneInfo

    def index(self, day: date) -> int | None:
        return self.days.index(day) if day in self.days else None

    def to_datetime(self, t: int) -> datetime:
        day, rest = divmod(t, DAY_S)
        midnight = datetime.combine(self.days[day], time(0), self.timezone)
        wall = midnight + timedelta(seconds=rest)
        # Wall-clock arithmetic: re-attach the zone so DST days keep their wall time.
        return wall.replace(tzinfo=None).replace(tzinfo=self.timezone)

    def to_seconds(self, moment: datetime) -> int | None:
        local = moment.astimezone(self.timezone)
        d = self.index(local.date())
        if d is None:
            return None
        return d * DAY_S + _seconds(local.time())


@dataclass
class Translation:
    problem: optimizer.Problem
    horizon: Horizon
    jobs: dict[str, Job]
    technicians: dict[str, Technician]
    vehicle_technician: dict[str, Technician]
    sites: dict[str, Location]
    left_out: dict[int, str] = field(default_factory=dict)  # job id -> why not in the problem
    # Jobs the newest plan of another day holds: not in this problem, and not unplanned either.
    planned_elsewhere: set[int] = field(default_factory=set)
    promised: set[int] = field(default_factory=set)  # jobs with a live appointment


def horizon_for(region: Region, first_day: date, working_days: int) -> Horizon:
    days = working_days_between(first_day, first_day + timedelta(days=working_days * 2 + 7))
    return Horizon(days[:working_days], ZoneInfo(region.timezone))


def build_problem(
    session: Session,
    region: Region,
    horizon: Horizon,
    travel: TravelTimes,
    weights: optimizer.Weights | None = None,
    *,
    unpromised: int | None = None,
) -> Translation:
    """The engine's problem for a region and horizon; `unpromised` names a job being placed
    anew: translated as if its promise and its place in other days' plans were not there."""
    technicians = list(
        session.scalars(
            select(Technician)
            .where(Technician.region_id == region.id)
            .order_by(Technician.code)
            .options(selectinload(Technician.shifts), selectinload(Technician.absences))
        )
    )
    locations = list(
        session.scalars(
            select(Location)
            .where(Location.region_id == region.id)
            .order_by(Location.code)
            .options(selectinload(Location.opening_hours), selectinload(Location.stock))
        )
    )
    jobs = list(
        session.scalars(
            select(Job)
            .where(Job.region_id == region.id, Job.status.in_(PLANNABLE))
            .order_by(Job.id)
            .options(
                selectinload(Job.customer), selectinload(Job.parts), selectinload(Job.depends_on)
            )
        )
    )
    promises = _promises(session, [j.id for j in jobs])
    previous = _previous_places(session, region, horizon)
    promises.pop(unpromised, None)  # type: ignore[arg-type]
    parts = {p.sku: p for p in session.scalars(select(Part))}

    points: list[Coordinate] = []
    place_of: dict[tuple[str, int], int] = {}

    def place(kind: str, key: int, coordinate: Coordinate) -> int:
        if (kind, key) not in place_of:
            place_of[(kind, key)] = len(points)
            points.append(coordinate)
        return place_of[(kind, key)]

    vehicles: list[optimizer.TechnicianDay] = []
    vehicle_technician: dict[str, Technician] = {}
    for technician in technicians:
        home = place("home", technician.id, (technician.home_latitude, technician.home_longitude))
        for d, day in enumerate(horizon.days):
            shift = technician.shift_on(day)
            if shift is None:
                continue
            base = d * DAY_S
            vehicle_id = f"{technician.code}@{day.isoformat()}"
            vehicles.append(
                optimizer.TechnicianDay(
                    id=vehicle_id,
                    technician=technician.code,
                    day=d,
                    skills=frozenset(technician.skills),
                    start_place=home,
                    end_place=home,
                    shift=optimizer.TimeWindow(
                        base + _seconds(shift.start), base + _seconds(shift.end)
                    ),
                    max_overtime_s=technician.max_overtime_min * 60,
                    lunch=optimizer.Break(
                        base + _seconds(technician.lunch_earliest),
                        base + _seconds(technician.lunch_latest),
                        technician.lunch_minutes * 60,
                    ),
                    volume_capacity_l=int(technician.van_volume_m3 * 1000),
                    weight_capacity_kg=int(technician.van_weight_kg),
                    cost_per_hour=technician.cost_per_hour_eur,
                )
            )
            vehicle_technician[vehicle_id] = technician

    technician_by_id = {t.id: t for t in technicians}
    sites: dict[str, Location] = {}
    elsewhere = {
        job_id: day
        for job_id, day in _planned_elsewhere(
            session, region, horizon, [j.id for j in jobs]
        ).items()
        if job_id != unpromised
    }
    left_out: dict[int, str] = {
        job_id: f"already planned on {day}" for job_id, day in elsewhere.items()
    }
    engine_jobs: list[optimizer.Job] = []
    in_problem = {j.id for j in jobs}
    last_day = horizon.days[-1]
    for job in jobs:
        if job.id in left_out:
            continue
        reason = _left_out_reason(job, horizon, in_problem, session)
        if reason is not None:
            left_out[job.id] = reason
            continue
        promise = promises.get(job.id)
        windows: tuple[optimizer.TimeWindow, ...]
        if promise is not None:
            start = horizon.to_seconds(promise.window_start)
            end = horizon.to_seconds(promise.window_end)
            if start is None or end is None:
                left_out[job.id] = "its appointment lies outside this horizon"
                continue
            windows = (optimizer.TimeWindow(start, end),)
        else:
            first = next(d for d, day in enumerate(horizon.days) if day >= job.earliest_date)
            due = job.latest_date or last_day
            # Overdue work (a repair past its due date) goes in as soon as possible; its
            # waiting days raise the price of leaving it out again.
            last_date = min(due, last_day) if due >= horizon.days[0] else last_day
            last = max(d for d, day in enumerate(horizon.days) if day <= last_date)
            last = min(last, len(horizon.days) - job.days)  # room for every day of the job
            if last < first:
                left_out[job.id] = f"its {job.days} days do not fit in this horizon"
                continue
            windows = (optimizer.TimeWindow(first * DAY_S, last * DAY_S + DAY_S - 1),)
        missing = job.missing_parts
        sources: tuple[optimizer.PickupSource, ...] = ()
        if missing:
            sources = tuple(
                src
                for location in locations
                if (
                    src := _pickup_source(
                        location,
                        missing,
                        horizon,
                        place("site", location.id, (location.latitude, location.longitude)),
                    )
                )
                is not None
            )
            sites.update({location.code: location for location in locations})
        pin: optimizer.Pin | None = None
        if job.pinned_technician_id is not None and job.pinned_day is not None:
            pinned_to = technician_by_id.get(job.pinned_technician_id)
            if job.pinned_day not in horizon.days or pinned_to is None:
                left_out[job.id] = f"pinned to {job.pinned_day}, outside this horizon"
                continue
            d = horizon.days.index(job.pinned_day)
            pin = optimizer.Pin(
                f"{pinned_to.code}@{job.pinned_day.isoformat()}",
                d * DAY_S + _seconds(job.pinned_start) if job.pinned_start else None,
                job.pinned_position,
            )
        customer = job.customer
        engine_jobs.append(
            optimizer.Job(
                id=str(job.id),
                place=place("customer", customer.id, (customer.latitude, customer.longitude)),
                duration_s=job.duration_min * 60,
                skills=frozenset(job.skills),
                windows=windows,
                promised=promise is not None,
                volume_l=int(job.volume_m3 * 1000),
                weight_kg=int(job.weight_kg),
                part_volume_l=int(
                    sum(parts[p.part_sku].volume_m3 * p.quantity for p in missing) * 1000
                ),
                part_weight_kg=int(sum(parts[p.part_sku].weight_kg * p.quantity for p in missing)),
                needs_pickup=bool(missing),
                pickup_sources=sources,
                priority=job.priority,
                waiting_days=max(0, (horizon.days[0] - job.earliest_date).days),
                crew_size=job.crew_size,
                days=job.days,
                is_repair=job.kind == JobKind.REPAIR,
                pin=pin,
                previous_technician_day=previous.get(job.id),
                after=tuple(
                    optimizer.model.Dependency(
                        str(dep.prerequisite_id),
                        max(dep.lag_working_days, 0 if dep.same_day_allowed else 1),
                    )
                    for dep in job.depends_on
                    if dep.prerequisite_id in in_problem
                ),
            )
        )
    matrices = travel.matrices(points)
    problem = optimizer.Problem(
        jobs=engine_jobs,
        technician_days=vehicles,
        duration_s=np.asarray(matrices.duration_s),
        distance_m=np.asarray(matrices.distance_m),
        weights=weights or optimizer.Weights(),
        horizon_days=len(horizon.days) + 1,
    )
    return Translation(
        problem=problem,
        horizon=horizon,
        jobs={str(j.id): j for j in jobs if j.id not in left_out},
        technicians={t.code: t for t in technicians},
        vehicle_technician=vehicle_technician,
        sites=sites,
        left_out=left_out,
        planned_elsewhere=set(elsewhere),
        promised=set(promises),
    )


def _planned_elsewhere(
    session: Session, region: Region, horizon: Horizon, job_ids: list[int]
) -> dict[int, date]:
    """Jobs the newest plan of a day outside this horizon holds: replanning this horizon
    leaves them where they are."""
    newest = (
        select(Plan.day, func.max(Plan.version).label("version"))
        .where(Plan.region_id == region.id, Plan.day.not_in(horizon.days))
        .group_by(Plan.day)
        .subquery()
    )
    rows = session.execute(
        select(Stop.job_id, Plan.day)
        .join(Route, Stop.route_id == Route.id)
        .join(Plan, Route.plan_id == Plan.id)
        .join(newest, (Plan.day == newest.c.day) & (Plan.version == newest.c.version))
        .where(Plan.region_id == region.id, Stop.job_id.in_(job_ids))
    )
    return {job_id: day for job_id, day in rows if job_id is not None}


def _previous_places(session: Session, region: Region, horizon: Horizon) -> dict[int, str]:
    """Where the newest plan of each horizon day has each job (technician-day id): moving a
    job away from there costs `Weights.moved_from_previous`, so a re-plan changes little."""
    newest = (
        select(Plan.day, func.max(Plan.version).label("version"))
        .where(Plan.region_id == region.id, Plan.day.in_(horizon.days))
        .group_by(Plan.day)
        .subquery()
    )
    rows = session.execute(
        select(Stop.job_id, Technician.code, Plan.day)
        .join(Route, Stop.route_id == Route.id)
        .join(Plan, Route.plan_id == Plan.id)
        .join(Technician, Technician.id == Route.technician_id)
        .join(newest, (Plan.day == newest.c.day) & (Plan.version == newest.c.version))
        .where(
            Plan.region_id == region.id,
            Stop.kind == StopKind.JOB,
            Stop.second_person.is_(False),
            Stop.job_id.is_not(None),
        )
        .order_by(Plan.day)
    )
    found: dict[int, str] = {}
    for job_id, code, day in rows:
        if job_id is not None:
            found.setdefault(job_id, f"{code}@{day.isoformat()}")
    return found


def _promises(session: Session, job_ids: list[int]) -> dict[int, Appointment]:
    rows = session.scalars(
        select(Appointment).where(
            Appointment.job_id.in_(job_ids),
            Appointment.status.in_([AppointmentStatus.PROMISED, AppointmentStatus.AT_RISK]),
        )
    )
    return {a.job_id: a for a in rows}


def _left_out_reason(
    job: Job, horizon: Horizon, in_problem: set[int], session: Session
) -> str | None:
    if job.days > len(horizon.days):
        return f"a {job.days}-day installation does not fit in a {len(horizon.days)}-day horizon"
    if job.earliest_date > horizon.days[-1]:
        return f"cannot start before {job.earliest_date}, after this horizon"
    for dep in job.depends_on:
        if dep.prerequisite_id in in_problem:
            continue
        prerequisite = session.get_one(Job, dep.prerequisite_id)
        if prerequisite.status not in (JobStatus.DONE, JobStatus.CANCELLED):
            return f"waits for job {prerequisite.id} ({prerequisite.kind}), not plannable yet"
    return None


def _pickup_source(
    location: Location, wanted: Sequence[JobPart], horizon: Horizon, place: int
) -> optimizer.PickupSource | None:
    """This location as a pickup site for all `wanted` parts, on the days it has them all."""
    first_day: date | None = None
    for part in wanted:
        ready = [
            item.available_from or date.min
            for item in location.stock
            if item.part_sku == part.part_sku and item.quantity >= part.quantity
        ]
        if not ready:
            return None
        first_day = max(first_day or date.min, min(ready))
    hours = {h.weekday: h for h in location.opening_hours}
    windows = []
    for d, day in enumerate(horizon.days):
        h = hours.get(day.weekday())
        if h is None or (first_day is not None and day < first_day):
            continue
        windows.append(
            optimizer.TimeWindow(d * DAY_S + _seconds(h.opens), d * DAY_S + _seconds(h.closes))
        )
    if not windows:
        return None
    return optimizer.PickupSource(location.code, place, tuple(windows), PICKUP_SERVICE_S)


def fill_route(route_row: Route, translation: Translation, engine_route: optimizer.Route) -> None:
    """Write an engine route into a (new or emptied) route row."""
    horizon = translation.horizon
    route_row.start_at = horizon.to_datetime(engine_route.start_s)
    route_row.end_at = horizon.to_datetime(engine_route.end_s)
    route_row.travel_s = engine_route.travel_s
    route_row.distance_m = engine_route.distance_m
    for position, visit in enumerate(engine_route.visits):
        job = translation.jobs.get(visit.job_id) if visit.job_id else None
        site = translation.sites.get(visit.site) if visit.site else None
        route_row.stops.append(
            Stop(
                position=position,
                kind=StopKind(visit.kind.value),
                job_id=job.id if job else None,
                location_id=site.id if site else None,
                part_sku=job.missing_parts[0].part_sku
                if job and visit.kind is optimizer.VisitKind.PICKUP and job.missing_parts
                else None,
                second_person=visit.second_person,
                arrival=horizon.to_datetime(visit.arrival_s),
                start=horizon.to_datetime(visit.start_s),
                departure=horizon.to_datetime(visit.end_s),
            )
        )


@dataclass
class SavedPlans:
    plans: list[Plan]
    engine_plan: optimizer.Plan
    unplanned: dict[int, str]


def save_plan(
    session: Session,
    region: Region,
    translation: Translation,
    engine_plan: optimizer.Plan,
    *,
    planner: str,
    actor: str,
) -> SavedPlans:
    """Store the engine's plan as a new version of each day's plan; move job statuses."""
    horizon = translation.horizon
    by_day: dict[int, list[optimizer.Route]] = {}
    for route in engine_plan.routes:
        vehicle = translation.problem.technician_day(route.technician_day)
        by_day.setdefault(vehicle.day, []).append(route)
    kpis = engine_plan.kpis(translation.problem)
    plans = []
    for d, day in enumerate(horizon.days):
        plan = Plan(
            region_id=region.id,
            day=day,
            version=next_version(session, region.id, day),
            planner=planner,
            kpis={},
        )
        session.add(plan)
        travel_s = 0
        for engine_route in by_day.get(d, []):
            technician = translation.vehicle_technician[engine_route.technician_day]
            route_row = Route(technician_id=technician.id)
            fill_route(route_row, translation, engine_route)
            travel_s += engine_route.travel_s
            plan.routes.append(route_row)
        plan.kpis = {
            "technician_days_used": len(by_day.get(d, [])),
            "travel_h": round(travel_s / 3600, 2),
            "jobs_planned": sum(
                1
                for r in by_day.get(d, [])
                for v in r.visits
                if v.kind is optimizer.VisitKind.JOB and not v.second_person
            ),
        }
        plans.append(plan)
    unplanned = {int(u.job_id): u.reason for u in engine_plan.unplanned}
    for job_id, reason in unplanned.items():
        if job_id in translation.promised:
            appointment = live_appointment(session, job_id)
            if appointment is not None:
                flag_at_risk(session, appointment, actor=actor, reason=reason)
    unplanned.update(
        (job_id, reason)
        for job_id, reason in translation.left_out.items()
        if job_id not in translation.planned_elsewhere
    )
    if plans:
        plans[0].kpis = {**plans[0].kpis, "horizon": kpis}
        for job_id, reason in sorted(unplanned.items()):
            plans[0].unassigned.append(UnassignedJob(job_id=job_id, reason=reason))
    session.flush()
    planned_now = set(engine_plan.job_visits())
    for engine_id, job in translation.jobs.items():
        if engine_id not in planned_now and job.status == JobStatus.PLANNED:
            # It was in this horizon's previous version and is not any more.
            back = JobStatus.BOOKED if job.id in translation.promised else JobStatus.NEW
            change_status(
                session, job, back, actor=actor, reason=f"not in the new plan by {planner}"
            )
    for engine_job_id in planned_now:
        job = translation.jobs[engine_job_id]
        if job.status != JobStatus.PLANNED:
            change_status(
                session, job, JobStatus.PLANNED, actor=actor, reason=f"planned by {planner}"
            )
    return SavedPlans(plans, engine_plan, unplanned)


def plan_region(
    session: Session,
    region: Region,
    first_day: date,
    working_days: int,
    travel: TravelTimes,
    limits: optimizer.Limits,
    *,
    actor: str = "planner:engine",
    on_progress: Callable[[optimizer.Progress], None] | None = None,
) -> SavedPlans:
    horizon = horizon_for(region, first_day, working_days)
    started_at = session.scalar(select(Region.revision).where(Region.id == region.id))
    translation = build_problem(session, region, horizon, travel)
    engine_plan = optimizer.solve(translation.problem, limits, on_progress=on_progress)
    if lock_region(session, region.id) != (started_at or 0) + 1:
        raise PlanOutdated(
            "bookings or planners changed the plan while it was optimised: run it again"
        )
    return save_plan(session, region, translation, engine_plan, planner="ortools", actor=actor)


class PlanOutdated(RuntimeError):
    """The region changed during a long optimisation; saving would overwrite those changes."""
