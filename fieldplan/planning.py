"""From the database to the engine and back: the translation layer of the design card.

The engine works on one time axis of integer seconds over the horizon's *working* days (day d
starts at d * 86400, and times inside a day are wall-clock seconds after local midnight, so a
DST day needs no special case). This module builds that `Problem` from domain rows, and saves
the engine's `Plan` as versioned plans per region and day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

import optimizer
from fieldplan import durations
from fieldplan.appointments import (
    LIVE_APPOINTMENTS,
    Appointment,
    live_appointment,
)
from fieldplan.catalogue import JobKind, Part, Product
from fieldplan.jobs import Job, JobDependency, JobPart, JobStatus
from fieldplan.locations import Location
from fieldplan.orders import OrderLine
from fieldplan.plans import LeadVisit, Plan, Route, Stop, StopKind, lead_visits, newest_plans
from fieldplan.reasons import PlanningReason
from fieldplan.regions import Region
from fieldplan.technicians import Technician
from fieldplan.travel import Coordinate, TravelTimes
from fieldplan.workdays import add_working_days, working_days_before, working_days_between
from optimizer.model import DAY_S
from optimizer.reasons import Why

PLANNABLE = (JobStatus.NEW, JobStatus.OFFERED, JobStatus.BOOKED, JobStatus.PLANNED)
PICKUP_SERVICE_S = 600


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass(frozen=True, order=True)
class TechnicianDayKey:
    """One technician's day: the engine's vehicle id is its text form, `T03@2026-12-02`."""

    technician: str  # the technician's code
    day: date

    def __str__(self) -> str:
        return f"{self.technician}@{self.day.isoformat()}"

    @classmethod
    def parse(cls, vehicle_id: str) -> TechnicianDayKey:
        code, _, day = vehicle_id.rpartition("@")
        return cls(code, date.fromisoformat(day))


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
    left_out: dict[int, Why] = field(default_factory=dict)  # job id -> why not in the problem
    # Jobs the newest plan of another day holds: not in this problem, and not unplanned either.
    planned_elsewhere: set[int] = field(default_factory=set)
    promised: set[int] = field(default_factory=set)  # jobs with a live appointment
    # Jobs on a stored route that the engine may not move (on the way, done, left out for a
    # reason of this horizon): pinned where they are, their status left alone.
    held: set[int] = field(default_factory=set)
    # The job being placed anew: its stops are the writer's to take out, not part of the plan.
    unpromised: int | None = None


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
    placing: Iterable[int] | None = None,
    today: date,
) -> Translation:
    """The engine's problem for a region and horizon; `unpromised` names a job being placed
    anew: translated as if its promise and its place in other days' plans were not there.

    Without `placing` the problem holds every plannable job of the region (an optimisation
    chooses among them). With it, only the jobs on the horizon's stored routes and the ones
    named: all that placing those into the plan as it stands (a booking, a move, a repair) or
    judging the stored routes can touch, at a fraction of the reading. A prerequisite or a
    dependant left out that way is a bound on the days, as for any job outside the problem.

    Every job on a stored route of a horizon day is in the problem: the ones the engine may
    plan as usual, the others (on the way, done, or left out for any reason below) *held*,
    pinned to where and when the stored plan has them. A route the engine rewrites therefore
    always carries what it carried before; nothing on it can drop out unseen. Plans of days
    before `today` are history and hold no job.
    """
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
    on_routes = _stored_visits(session, region, horizon, {t.id: t.code for t in technicians})
    pickups = {
        v.job_id: v
        for v in lead_visits(session, region.id, Plan.day.in_(horizon.days), kind=StopKind.PICKUP)
    }
    on_routes.pop(unpromised, None)  # type: ignore[arg-type]
    candidates = (
        Job.status.in_(PLANNABLE)
        if placing is None
        else and_(Job.status.in_(PLANNABLE), Job.id.in_(sorted(set(placing))))
    )
    wanted = or_(candidates, Job.id.in_(list(on_routes)))
    jobs = list(
        session.scalars(
            select(Job)
            .where(Job.region_id == region.id, wanted)
            .order_by(Job.id)
            .options(
                selectinload(Job.customer), selectinload(Job.parts), selectinload(Job.depends_on)
            )
        )
    )
    promises = _promises(session, [j.id for j in jobs])
    spread = _spreads(session, jobs)
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
            vehicle_id = str(TechnicianDayKey(technician.code, day))
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
    locations_by_id = {location.id: location for location in locations}
    ids = [j.id for j in jobs]
    waiting = _waiting_for(session, ids)
    # Where the jobs at the other end of a dependency are planned bounds these jobs' days,
    # whether or not those jobs are in the problem.
    linked = {d.job_id for deps in waiting.values() for d in deps}
    linked |= {d.prerequisite_id for j in jobs for d in j.depends_on}
    elsewhere = {
        job_id: day
        for job_id, day in _planned_elsewhere(
            session, region, horizon, sorted({*ids, *linked}), today
        ).items()
        if job_id != unpromised and job_id not in on_routes
    }
    left_out: dict[int, Why] = {
        job_id: Why.of(PlanningReason.ALREADY_PLANNED, day=day.isoformat())
        for job_id, day in elsewhere.items()
        if job_id in ids
    }
    # Which jobs the engine sees: to a fixed point, as leaving one out can leave out the jobs
    # that wait for it. A job on a stored route is never left out: it is held instead.
    in_problem = {j.id for j in jobs if j.id not in left_out}
    around = _Around(session, horizon, in_problem, elsewhere, waiting, promises, technician_by_id)
    held = {j.id for j in jobs if j.id in on_routes and j.status not in PLANNABLE}
    changed = True
    while changed:
        changed = False
        for job in jobs:
            if job.id not in in_problem or job.id in held:
                continue
            reason = around.left_out_reason(job)
            if reason is None:
                continue
            changed = True
            if job.id in on_routes:
                held.add(job.id)
            else:
                left_out[job.id] = reason
                in_problem.discard(job.id)
    engine_jobs: list[optimizer.Job] = []
    for job in jobs:
        if job.id not in in_problem:
            continue
        customer_place = place(
            "customer", job.customer.id, (job.customer.latitude, job.customer.longitude)
        )
        if job.id in held:
            pickup = None
            fetched = pickups.get(job.id)
            location = locations_by_id.get(fetched.location_id or 0) if fetched else None
            if fetched is not None and location is not None:
                site = place("site", location.id, (location.latitude, location.longitude))
                pickup = _held_pickup(fetched, location, site, horizon)
                sites[location.code] = location
            held_job = _held_job(job, on_routes[job.id], customer_place, horizon, pickup, parts)
            engine_jobs.append(replace(held_job, duration_log_sd=spread[job.id]))
            continue
        promise = promises.get(job.id)
        windows: tuple[optimizer.TimeWindow, ...]
        if promise is not None:
            start = horizon.to_seconds(promise.window_start)
            end = horizon.to_seconds(promise.window_end)
            assert start is not None  # else left out above
            assert end is not None
            windows = (optimizer.TimeWindow(start, end),)
        else:
            earliest = around.earliest_start(job)
            assert not isinstance(earliest, Why)  # else left out above
            first = next(d for d, day in enumerate(horizon.days) if day >= earliest)
            last = _last_start_day(job, horizon, around.latest_end(job))
            assert last is not None  # else left out above
            assert last >= first
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
            pinned_to = technician_by_id[job.pinned_technician_id]  # else left out above
            d = horizon.days.index(job.pinned_day)
            pin = optimizer.Pin(
                str(TechnicianDayKey(pinned_to.code, job.pinned_day)),
                d * DAY_S + _seconds(job.pinned_start) if job.pinned_start else None,
                job.pinned_position,
            )
        engine_jobs.append(
            optimizer.Job(
                id=str(job.id),
                place=customer_place,
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
                duration_log_sd=spread[job.id],
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
        protection=durations.protection(),
    )
    return Translation(
        problem=problem,
        horizon=horizon,
        jobs={str(j.id): j for j in jobs if j.id not in left_out},
        held=held,
        unpromised=unpromised,
        technicians={t.code: t for t in technicians},
        vehicle_technician=vehicle_technician,
        sites=sites,
        left_out=left_out,
        planned_elsewhere=set(elsewhere) & set(ids),
        promised=set(promises),
    )


def _spreads(session: Session, jobs: list[Job]) -> dict[int, float]:
    """Each job's duration spread: its kind's and product's as learnt, else the prior."""
    lines = [j.order_line_id for j in jobs if j.order_line_id is not None]
    category: dict[int, str] = {
        line_id: name
        for line_id, name in session.execute(
            select(OrderLine.id, Product.category)
            .join(Product, Product.sku == OrderLine.product_sku)
            .where(OrderLine.id.in_(sorted(set(lines))))
        )
    }
    known = durations.spreads(session)
    return {
        j.id: durations.spread_for(
            known, JobKind(j.kind), category.get(j.order_line_id or 0, "")
        ).log_sd
        for j in jobs
    }


def _planned_elsewhere(
    session: Session, region: Region, horizon: Horizon, job_ids: list[int], today: date
) -> dict[int, date]:
    """Jobs the newest plan of a day outside this horizon holds, from `today` on: replanning
    this horizon leaves them where they are. Earlier days' plans are history."""
    outside = (Plan.day.not_in(horizon.days), Plan.day >= today)
    return {v.job_id: v.day for v in lead_visits(session, region.id, *outside, job_ids=job_ids)}


@dataclass(frozen=True)
class StoredVisit:
    """Where the newest plan of a horizon day has a job (its lead visit, not a helper's)."""

    technician_day: TechnicianDayKey
    start: datetime


def _stored_visits(
    session: Session, region: Region, horizon: Horizon, codes: dict[int, str]
) -> dict[int, list[StoredVisit]]:
    found: dict[int, list[StoredVisit]] = {}
    for visit in lead_visits(session, region.id, Plan.day.in_(horizon.days)):
        key = TechnicianDayKey(codes[visit.technician_id], visit.day)
        found.setdefault(visit.job_id, []).append(StoredVisit(key, visit.begins))
    return found


def _held_pickup(
    fetched: LeadVisit, location: Location, place: int, horizon: Horizon
) -> optimizer.PickupSource:
    """A held job's pickup, kept where and when the stored plan has it."""
    start_s = horizon.to_seconds(fetched.begins)
    end_s = horizon.to_seconds(fetched.departure)
    assert start_s is not None  # stored visits come from horizon days
    assert end_s is not None
    return optimizer.PickupSource(
        location.code, place, (optimizer.TimeWindow(start_s, end_s),), end_s - start_s
    )


def _held_job(
    job: Job,
    stored: list[StoredVisit],
    place: int,
    horizon: Horizon,
    pickup: optimizer.PickupSource | None,
    parts: dict[str, Part],
) -> optimizer.Job:
    """A job the engine keeps exactly where the stored plan has it: its first visit pinned to
    its technician-day and start, its pickup (if it has one there) where it was made, a
    promise in weight (never left out)."""
    first = stored[0]
    start_s = horizon.to_seconds(first.start)
    assert start_s is not None  # stored visits come from horizon days
    missing = job.missing_parts if pickup is not None else []
    return optimizer.Job(
        id=str(job.id),
        place=place,
        duration_s=job.duration_min * 60,
        windows=(optimizer.TimeWindow(start_s, start_s),),
        promised=True,
        volume_l=int(job.volume_m3 * 1000),
        weight_kg=int(job.weight_kg),
        part_volume_l=int(sum(parts[p.part_sku].volume_m3 * p.quantity for p in missing) * 1000),
        part_weight_kg=int(sum(parts[p.part_sku].weight_kg * p.quantity for p in missing)),
        needs_pickup=pickup is not None,
        pickup_sources=(pickup,) if pickup is not None else (),
        crew_size=job.crew_size,
        days=len(stored),
        is_repair=job.kind == JobKind.REPAIR,
        pin=optimizer.Pin(str(first.technician_day), start_s),
    )


def _previous_places(session: Session, region: Region, horizon: Horizon) -> dict[int, str]:
    """Where the newest plan of each horizon day has each job (technician-day id): moving a
    job away from there costs `Weights.moved_from_previous`, so a re-plan changes little."""
    codes = dict(session.execute(select(Technician.id, Technician.code)).all())
    found: dict[int, str] = {}
    for visit in lead_visits(session, region.id, Plan.day.in_(horizon.days)):
        found.setdefault(visit.job_id, str(TechnicianDayKey(codes[visit.technician_id], visit.day)))
    return found


def _promises(session: Session, job_ids: list[int]) -> dict[int, Appointment]:
    rows = session.scalars(
        select(Appointment).where(
            Appointment.job_id.in_(job_ids),
            Appointment.status.in_(LIVE_APPOINTMENTS),
        )
    )
    return {a.job_id: a for a in rows}


@dataclass
class _Around:
    """What lies around a horizon's problem: the jobs in it, the days other plans and
    promises hold the rest on, and who waits for whom. Dependencies between two jobs of the
    problem are the engine's; one whose other end lies outside becomes a bound on the days."""

    session: Session
    horizon: Horizon
    in_problem: set[int]
    elsewhere: dict[int, date]  # planned on a day outside the horizon, from today on
    waiting: dict[int, list[JobDependency]]  # prerequisite -> dependencies waiting for it
    promises: dict[int, Appointment]
    technicians: dict[int, Technician]

    def left_out_reason(self, job: Job) -> Why | None:
        """Why this horizon's problem cannot hold the job, or None when it can."""
        horizon = self.horizon
        if job.days > len(horizon.days):
            return Why.of(PlanningReason.TOO_MANY_DAYS, days=job.days, horizon=len(horizon.days))
        promise = self.promises.get(job.id)
        if promise is not None and (
            horizon.to_seconds(promise.window_start) is None
            or horizon.to_seconds(promise.window_end) is None
        ):
            return Why.of(PlanningReason.PROMISE_OUTSIDE)
        pinned = job.pinned_technician_id is not None and job.pinned_day is not None
        if pinned and (
            job.pinned_day not in horizon.days or job.pinned_technician_id not in self.technicians
        ):
            return Why.of(PlanningReason.PINNED_OUTSIDE, day=str(job.pinned_day))
        earliest = self.earliest_start(job)
        if isinstance(earliest, Why):
            return earliest
        if earliest > horizon.days[-1]:
            return Why.of(PlanningReason.STARTS_AFTER, day=earliest.isoformat())
        if promise is None:
            before = self.latest_end(job)
            last = _last_start_day(job, horizon, before)
            if before is not None and (last is None or horizon.days[last] < earliest):
                return Why.of(PlanningReason.DUE_BEFORE_DEPENDANT, day=before.isoformat())
            if last is None or horizon.days[last] < earliest:
                return Why.of(PlanningReason.DAYS_DO_NOT_FIT, days=job.days)
        return None

    def _day_outside(self, job_id: int) -> date | None:
        day = self.elsewhere.get(job_id)
        if day is None:
            appointment = live_appointment(self.session, job_id)
            if appointment is not None:
                day = appointment.window_start.astimezone(self.horizon.timezone).date()
        return day

    def earliest_start(self, job: Job) -> date | Why:
        """The first day the job may start, with prerequisites outside this problem held
        where they are planned, promised or were done; or why the job must wait. Lag 0
        outside the problem counts as the next working day: the engine could not see that
        the prerequisite ends first."""
        earliest = job.earliest_date
        for dep in job.depends_on:
            if dep.prerequisite_id in self.in_problem:
                continue
            prerequisite = self.session.get_one(Job, dep.prerequisite_id)
            if prerequisite.status == JobStatus.CANCELLED:
                continue
            day: date | None = None
            if prerequisite.status == JobStatus.DONE:
                done = [c.at for c in prerequisite.history if c.to_status == JobStatus.DONE]
                day = max(done).astimezone(self.horizon.timezone).date() if done else None
            day = day or self._day_outside(prerequisite.id)
            if day is None:
                return Why.of(
                    PlanningReason.WAITS_FOR_PREREQUISITE,
                    job=prerequisite.id,
                    kind=str(prerequisite.kind),
                )
            earliest = max(earliest, add_working_days(day, max(dep.lag_working_days, 1)))
        return earliest

    def latest_end(self, job: Job) -> date | None:
        """The last day the job may end on, so that the jobs waiting for it outside this
        problem (planned or promised elsewhere) keep their lead time."""
        latest: date | None = None
        for dep in self.waiting.get(job.id, []):
            if dep.job_id in self.in_problem:
                continue
            day = self._day_outside(dep.job_id)
            if day is None:
                continue
            must_end = working_days_before(day, max(dep.lag_working_days, 1))
            latest = must_end if latest is None else min(latest, must_end)
        return latest


def _last_start_day(job: Job, horizon: Horizon, before: date | None = None) -> int | None:
    """The last horizon day the job may start on: by its due date (overdue work as soon as
    possible, its waiting days raising the price of leaving it out again) and the last day
    it must be done by for the jobs that wait for it (`before`), with room for every day of
    the job."""
    last_day = horizon.days[-1]
    due = job.latest_date or last_day
    last_date = min(due, last_day) if due >= horizon.days[0] else last_day
    candidates = [d for d, day in enumerate(horizon.days) if day <= last_date]
    last = min(max(candidates), len(horizon.days) - job.days)
    if before is not None:
        ends_by = [d for d, day in enumerate(horizon.days) if day <= before]
        if not ends_by:
            return None
        last = min(last, max(ends_by) - (job.days - 1))
    return last if last >= 0 else None


def _waiting_for(session: Session, job_ids: list[int]) -> dict[int, list[JobDependency]]:
    """prerequisite -> the dependencies of the jobs that wait for it."""
    found: dict[int, list[JobDependency]] = {}
    for dep in session.scalars(
        select(JobDependency).where(JobDependency.prerequisite_id.in_(job_ids))
    ):
        found.setdefault(dep.prerequisite_id, []).append(dep)
    return found


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


def stored_plan(session: Session, region: Region, translation: Translation) -> optimizer.Plan:
    """The newest stored version of each day of the horizon, as engine routes. A job stop the
    translation does not know raises: a writer that went on would silently drop it."""
    horizon = translation.horizon
    codes = {t.id: t.code for t in translation.technicians.values()}
    sites = {loc.id: loc.code for loc in translation.sites.values()}
    engine_jobs = {j.id: j for j in translation.problem.jobs}
    routes = []
    for day, plan in sorted(newest_plans(session, region.id, horizon.days).items()):
        for route in plan.routes:
            visits = []
            for stop in route.stops:
                arrival = horizon.to_seconds(stop.arrival)
                end = horizon.to_seconds(stop.departure)
                if arrival is None or end is None:
                    continue
                if stop.kind == StopKind.BREAK:
                    visits.append(optimizer.Visit(optimizer.VisitKind.BREAK, arrival, arrival, end))
                    continue
                key = str(stop.job_id)
                engine_job = engine_jobs.get(key)
                if engine_job is None and stop.job_id == translation.unpromised:
                    continue
                if engine_job is None:
                    raise UnreadablePlan(
                        f"the plan of {day} has job {stop.job_id} on a route, but the job "
                        "cannot be translated for the engine: nothing is written over it"
                    )
                site = sites.get(stop.location_id) if stop.location_id else None
                if stop.kind == StopKind.PICKUP:
                    source = next((p for p in engine_job.pickup_sources if p.site == site), None)
                    if source is None:
                        continue  # the part is no longer to be fetched there
                    service, place = source.service_s, source.place
                else:
                    service, place = engine_job.duration_s, engine_job.place
                begins = horizon.to_seconds(stop.start) if stop.start is not None else None
                visits.append(
                    optimizer.Visit(
                        optimizer.VisitKind(str(stop.kind)),
                        arrival,
                        begins if begins is not None else end - service,
                        end,
                        key,
                        site,
                        place,
                        stop.second_person,
                    )
                )
            vehicle = str(TechnicianDayKey(codes[route.technician_id], day))
            start_s = horizon.to_seconds(route.start_at) or 0
            end_s = horizon.to_seconds(route.end_at) or 0
            routes.append(
                optimizer.Route(
                    vehicle, tuple(visits), start_s, end_s, route.travel_s, route.distance_m
                )
            )
    return optimizer.Plan(tuple(routes), (), 0)


def stored_plan_to_judge(
    session: Session, region: Region, translation: Translation
) -> optimizer.Plan:
    """The stored plan with every other job of the problem listed as not planned, as the
    validator wants a whole plan: what it then says about promises and rules is the stored
    plan's own."""
    plan = stored_plan(session, region, translation)
    planned = set(plan.job_visits())
    open_jobs = tuple(
        optimizer.Unplanned(j.id, optimizer.Why.of(optimizer.Reason.NOT_IN_STORED_PLAN))
        for j in translation.problem.jobs
        if j.id not in planned
    )
    return optimizer.Plan(plan.routes, open_jobs, 0)


class UnreadablePlan(RuntimeError):
    """A stored route holds a stop the engine's problem cannot represent."""
