"""The day as it happens: technician reports and illness, and what they do to the promises.

A report moves the job's status and lands on the customer's timeline. Running late pushes the
rest of the technician's day back (waiting time absorbs what it can); a customer not home, a
part missing on site or unfinished work creates a follow-up job (with the missing part to be
picked up on the way), so the history of the first visit is never rewritten. An illness takes
the technician's day out and re-plans it; every promise the new plan cannot keep is flagged
for the planner, never moved silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import optimizer
from fieldplan import durations, notices, plan_gate
from fieldplan.appointments import (
    Appointment,
    AppointmentStatus,
    flag_at_risk,
    live_appointment,
)
from fieldplan.booking import copy_stop, write_routes
from fieldplan.catalogue import JobKind, Part
from fieldplan.db import utcnow
from fieldplan.jobs import Job, JobPart, JobStatus, change_status, record_created
from fieldplan.optimisation import PlanOutdated, plan_region
from fieldplan.orders import Order
from fieldplan.planning import TechnicianDayKey, build_problem, horizon_for, stored_plan
from fieldplan.plans import Plan, Route, Stop, StopKind, latest_plan, lead_visits
from fieldplan.regions import Region, lock_region
from fieldplan.technicians import Absence, Technician
from fieldplan.timeline import EventKind, record_for_job
from fieldplan.travel import TravelTimes
from fieldplan.workdays import next_working_day, working_days_between
from optimizer.model import DAY_S, TimeWindow
from optimizer.slots import SlotIndex, Unbookable, without_job


class ReportKind(StrEnum):
    ON_THE_WAY = "on_the_way"
    STARTED = "started"
    DONE = "done"
    RUNNING_LATE = "running_late"
    NOT_HOME = "not_home"
    PART_MISSING = "part_missing"
    NEEDS_FOLLOW_UP = "needs_follow_up"


class ReportRefused(ValueError):
    """A report that does not fit the job's state; the message says why."""


class ReportTooEarly(ReportRefused):
    """Work reported before the day the job is planned or promised for: a mistake (the
    wrong job, a phone's clock), never a state to store."""


def _planned_from(session: Session, job: Job, today: date) -> date | None:
    """The first day the job's work is owed from, when that lies after today: the earliest
    of its planned days from today on, or else its promised window's day."""
    planned = [
        v.day for v in lead_visits(session, job.region_id, Plan.day >= today, job_ids=[job.id])
    ]
    if planned:
        first = min(planned)
        return first if first > today else None
    appointment = live_appointment(session, job.id)
    if appointment is None:
        return None
    region = session.get_one(Region, job.region_id)
    day = appointment.window_start.astimezone(ZoneInfo(region.timezone)).date()
    return day if day > today else None


@dataclass
class ReportOutcome:
    job: Job
    follow_up: Job | None = None
    at_risk: list[Appointment] = field(default_factory=list)  # promises now in danger


_STATUS = {
    ReportKind.ON_THE_WAY: (JobStatus.EN_ROUTE, EventKind.TECHNICIAN_EN_ROUTE),
    ReportKind.STARTED: (JobStatus.IN_PROGRESS, EventKind.JOB_STARTED),
    ReportKind.DONE: (JobStatus.DONE, EventKind.JOB_DONE),
    ReportKind.NOT_HOME: (JobStatus.FAILED, EventKind.JOB_FAILED),
    ReportKind.PART_MISSING: (JobStatus.FOLLOW_UP_NEEDED, EventKind.PART_MISSING),
    ReportKind.NEEDS_FOLLOW_UP: (JobStatus.FOLLOW_UP_NEEDED, EventKind.JOB_FAILED),
}


def report(
    session: Session,
    job: Job,
    kind: ReportKind,
    *,
    actor: str,
    today: date,
    eta: datetime | None = None,
    part_sku: str | None = None,
    note: str = "",
    travel: TravelTimes | None = None,
    now: datetime | None = None,
) -> ReportOutcome:
    """Record a technician's report. With `travel` and `now`, running late re-plans the rest
    of the day to save the promises it would miss (see `_running_late`)."""
    lock_region(session, job.region_id)
    outcome = ReportOutcome(job)
    owed_from = _planned_from(session, job, today)
    if owed_from is not None:
        raise ReportTooEarly(
            f"job {job.id} is planned for {owed_from}: its work cannot be reported on {today}"
        )
    if kind is ReportKind.RUNNING_LATE:
        if eta is None:
            raise ReportRefused("running late needs the new ETA")
        outcome.at_risk = _running_late(session, job, eta, today, actor, travel, now)
        notices.moved_estimate(session, job, eta)
        record_for_job(
            session, job, EventKind.TECHNICIAN_EN_ROUTE, actor, f"running late, ETA {eta}"
        )
        plan_gate.judge_with(session, today=today)
        plan_gate.verify(session)
        return outcome
    if part_sku is not None and session.get(Part, part_sku) is None:
        raise ReportRefused(f"part_sku: no part {part_sku} in the catalogue")
    status, event = _STATUS[kind]
    if status is JobStatus.FOLLOW_UP_NEEDED and job.status == JobStatus.EN_ROUTE:
        change_status(session, job, JobStatus.IN_PROGRESS, actor=actor, reason="on site")
    try:
        change_status(session, job, status, actor=actor, reason=note or kind.value)
    except ValueError as illegal:
        raise ReportRefused(str(illegal)) from None
    text = kind.value.replace("_", " ") + (f": {note}" if note else "")
    record_for_job(session, job, event, actor, text)
    if kind is ReportKind.DONE:
        durations.record_done(session, job)
    if kind is ReportKind.ON_THE_WAY:
        notices.on_the_way(session, job, now=now or utcnow(), today=today, eta=eta)
    if kind in (ReportKind.NOT_HOME, ReportKind.PART_MISSING, ReportKind.NEEDS_FOLLOW_UP):
        outcome.follow_up = _follow_up(
            session, job, today, actor, part_sku if kind is ReportKind.PART_MISSING else None
        )
    return outcome


def _follow_up(session: Session, job: Job, today: date, actor: str, part_sku: str | None) -> Job:
    """The work still owed, as a new job of the same order: high priority, from tomorrow."""
    follow = Job(
        order_id=job.order_id,
        order_line_id=job.order_line_id,
        customer_id=job.customer_id,
        region_id=job.region_id,
        kind=job.kind,
        status=JobStatus.NEW,
        duration_min=job.duration_min,
        days=1,
        crew_size=job.crew_size,
        skills=list(job.skills),
        volume_m3=job.volume_m3,
        weight_kg=job.weight_kg,
        priority=max(job.priority, 4),
        earliest_date=next_working_day(today + timedelta(days=1)),
        description=job.description,  # the same work; the timeline says whose follow-up it is
    )
    for part in job.parts:
        follow.parts.append(
            JobPart(part_sku=part.part_sku, quantity=part.quantity, missing=part.missing)
        )
    if part_sku is not None:
        existing = next((p for p in follow.parts if p.part_sku == part_sku), None)
        if existing is not None:
            existing.missing = True
        else:
            follow.parts.append(JobPart(part_sku=part_sku, quantity=1, missing=True))
    record_created(follow, actor=actor)
    session.add(follow)
    session.flush()
    record_for_job(session, follow, EventKind.JOB_CREATED, actor, f"follow-up of job {job.id}")
    return follow


def _running_late(
    session: Session,
    job: Job,
    eta: datetime,
    today: date,
    actor: str,
    travel: TravelTimes | None,
    now: datetime | None,
) -> list[Appointment]:
    """Push the technician's remaining stops back by the delay, less the waiting they had.
    A promise the new times miss is handed to a colleague who can still keep it (the one
    whose day it costs least, starting no earlier than now), and the rest of the day is pushed
    again without it; only a promise nobody can keep is flagged at risk."""
    plan = latest_plan(session, job.region_id, today)
    route = None
    if plan is not None:
        route = next((r for r in plan.routes if any(s.job_id == job.id for s in r.stops)), None)
    if route is None or plan is None:
        raise ReportRefused(f"job {job.id} is not on today's plan")
    stops = list(route.stops)
    late = next(i for i, s in enumerate(stops) if s.job_id == job.id and s.kind == StopKind.JOB)
    delay = max(timedelta(0), eta - stops[late].arrival)
    handed: set[int] = set()
    tried: set[int] = set()
    while True:
        kept = [s for s in stops if s.job_id not in handed]
        times = _pushed(kept, kept.index(stops[late]), delay)
        saveable = [
            stop.job_id
            for stop, (_, starts, _) in zip(kept, times, strict=True)
            if stop.job_id not in tried | {job.id, None} and _misses(session, stop, starts)
        ]
        if travel is None or now is None or not saveable:
            break
        first = saveable[0]
        assert first is not None
        tried.add(first)
        if _hand_to_colleague(session, route, first, today, now, travel, actor):
            handed.add(first)
            for stop in [s for s in route.stops if s.job_id == first]:
                route.stops.remove(stop)  # off this route before the next one is placed
            session.flush()
    at_risk: list[Appointment] = []
    for stop, (arrival, starts, departure) in zip(kept, times, strict=True):
        stop.arrival, stop.departure = arrival, departure
        if stop.start is not None:
            stop.start = starts
        _check_promise(session, stop, starts, actor, at_risk)
    if handed:  # the route without them, its positions counted afresh
        route.stops.clear()
        session.flush()
        route.stops.extend(copy_stop(stop, position) for position, stop in enumerate(kept))
    session.flush()
    return at_risk


def _pushed(
    stops: list[Stop], late: int, delay: timedelta
) -> list[tuple[datetime, datetime, datetime]]:
    """(arrival, start, departure) of each stop with the one at `late` reached `delay` later:
    the drives (and gaps) stay as planned and waiting for a window absorbs what it can."""
    times = [(s.arrival, s.start or s.arrival, s.departure) for s in stops]
    first = stops[late]
    new_departure = first.departure + delay
    times[late] = (first.arrival + delay, (first.start or first.arrival) + delay, new_departure)
    old_departure = first.departure
    for k in range(late + 1, len(stops)):
        stop = stops[k]
        drive = stop.arrival - old_departure
        arrival = max(stop.arrival, new_departure + drive)
        begins = stop.start or stop.arrival
        starts = max(begins, arrival)
        old_departure = stop.departure
        new_departure = stop.departure + (starts - begins)
        times[k] = (arrival, starts, new_departure)
    return times


def _misses(session: Session, stop: Stop, starts: datetime) -> bool:
    if stop.kind != StopKind.JOB or stop.job_id is None or stop.second_person:
        return False
    appointment = live_appointment(session, stop.job_id)
    return appointment is not None and starts > appointment.window_end


def _hand_to_colleague(
    session: Session,
    route: Route,
    job_id: int,
    today: date,
    now: datetime,
    travel: TravelTimes,
    actor: str,
) -> bool:
    """Give a promised job of a late route to the colleague whose day takes it at least
    cost inside its window, no earlier than now. False when nobody can."""
    job = session.get_one(Job, job_id)
    if job.crew_size > 1 or job.days > 1 or job.missing_parts:
        return False  # their other stops are the engine's to re-plan
    appointment = live_appointment(session, job_id)
    region = session.get_one(Region, job.region_id)
    translation = build_problem(
        session, region, horizon_for(region, today, 1), travel, placing={job_id}, today=today
    )
    if translation.horizon.days[0] != today or appointment is None:
        return False
    late = session.get_one(Technician, route.technician_id)
    late_vehicle = str(TechnicianDayKey(late.code, today))
    key = str(job_id)
    stored, _ = without_job(stored_plan(session, region, translation), key)
    problem = replace(
        translation.problem,
        technician_days=[v for v in translation.problem.technician_days if v.id != late_vehicle],
    )
    others = replace(
        stored, routes=tuple(r for r in stored.routes if r.technician_day != late_vehicle)
    )
    engine_job = next((j for j in problem.jobs if j.id == key), None)
    opens = translation.horizon.to_seconds(max(appointment.window_start, now))
    closes = translation.horizon.to_seconds(appointment.window_end)
    if engine_job is None or opens is None or closes is None or opens > closes:
        return False
    index = SlotIndex(problem, others)
    try:
        option = index.book(replace(engine_job, promised=False), TimeWindow(opens, closes))
    except Unbookable:
        return False
    handed = replace(translation, problem=problem)
    write_routes(session, region, handed, index, index.changed)
    colleague = translation.vehicle_technician[option.technician_day or ""]
    record_for_job(
        session,
        job,
        EventKind.APPOINTMENT_MOVED,
        actor,
        f"handed to {colleague.code} to keep the window: {late.code} runs late",
    )
    return True


def _check_promise(
    session: Session, stop: Stop, starts: datetime, actor: str, at_risk: list[Appointment]
) -> None:
    if stop.kind != StopKind.JOB or stop.job_id is None or stop.second_person:
        return
    appointment = live_appointment(session, stop.job_id)
    if appointment is not None and starts > appointment.window_end:
        flag_at_risk(
            session,
            appointment,
            actor=actor,
            reason=f"technician running late: new start {starts:%H:%M} UTC",
        )
        at_risk.append(appointment)


def report_ill(
    session: Session,
    technician: Technician,
    day: date,
    travel: TravelTimes,
    *,
    actor: str,
    today: date,
    time_limit_s: float = 5.0,
) -> list[Appointment]:
    """Take the technician's day out and re-plan it; returns the promises now at risk."""
    return report_absent(
        session,
        technician,
        day,
        day,
        travel,
        reason="ill",
        actor=actor,
        today=today,
        time_limit_s=time_limit_s,
    )


REPLAN_ATTEMPTS = 3  # a re-plan that finds the region changed meanwhile starts again


def report_absent(
    session: Session,
    technician: Technician,
    first_day: date,
    last_day: date,
    travel: TravelTimes,
    *,
    reason: str,
    actor: str,
    today: date,
    time_limit_s: float = 5.0,
) -> list[Appointment]:
    """Take the technician's days out. Every day from today on that already has a plan is
    re-planned around the absence with every promise hard; a promise that cannot be kept is
    flagged at risk (listed with proposals at /appointments/at-risk), never dropped. Returns
    the promises now at risk."""
    if any(a.first_day <= last_day and first_day <= a.last_day for a in technician.absences):
        raise ReportRefused(f"{technician.code} is already off on some of these days")
    technician.absences.append(Absence(first_day=first_day, last_day=last_day, reason=reason))
    session.flush()
    region = session.get_one(Region, technician.region_id)
    planned = sorted(
        set(
            session.scalars(
                select(Plan.day).where(
                    Plan.region_id == region.id,
                    Plan.day >= max(first_day, today),
                    Plan.day <= last_day,
                )
            )
        )
    )
    if not planned:
        return []
    days = len(working_days_between(planned[0], planned[-1]))
    for attempt in range(REPLAN_ATTEMPTS):
        try:
            saved = plan_region(
                session,
                region,
                planned[0],
                days,
                travel,
                optimizer.Limits(time_limit_s=time_limit_s),
                actor=actor,
                today=today,
            )
            break
        except PlanOutdated:
            if attempt == REPLAN_ATTEMPTS - 1:
                raise
    return list(
        session.scalars(
            select(Appointment).where(
                Appointment.job_id.in_(list(saved.unplanned)),
                Appointment.status == AppointmentStatus.AT_RISK,
            )
        )
    )


@dataclass
class UrgentRepair:
    job: Job
    technician_day: str | None  # where it was fitted in today, if anywhere
    start: datetime | None
    reason: str | None  # why not today, when not


def urgent_repair(
    session: Session,
    order: Order,
    *,
    description: str,
    duration_min: int,
    skills: list[str],
    travel: TravelTimes,
    now: datetime,
    actor: str,
) -> UrgentRepair:
    """A repair that cannot wait: fitted into today's routes from half an hour from now on,
    where it costs least and every promise still holds; otherwise first in line for the next
    optimisation (highest priority, due today)."""
    region = session.get_one(Region, order.region_id)
    zone = ZoneInfo(region.timezone)
    today = now.astimezone(zone).date()
    job = Job(
        order_id=order.id,
        customer_id=order.customer_id,
        region_id=order.region_id,
        kind=JobKind.REPAIR,
        status=JobStatus.NEW,
        duration_min=duration_min,
        skills=list(skills),
        priority=5,
        earliest_date=today,
        latest_date=today,
        description=description,
    )
    record_created(job, actor=actor)
    session.add(job)
    session.flush()
    record_for_job(session, job, EventKind.JOB_CREATED, actor, f"urgent repair: {description}")
    lock_region(session, region.id)
    translation = build_problem(
        session, region, horizon_for(region, today, 1), travel, placing={job.id}, today=today
    )
    if translation.horizon.days[0] != today:
        return UrgentRepair(job, None, None, "nobody works today")
    engine_job = next((j for j in translation.problem.jobs if j.id == str(job.id)), None)
    if engine_job is None:
        left_out = translation.left_out.get(job.id)
        return UrgentRepair(job, None, None, str(left_out) if left_out else "not plannable")
    index = SlotIndex(translation.problem, stored_plan(session, region, translation))
    soon = translation.horizon.to_seconds(now + timedelta(minutes=30))
    if soon is None:
        return UrgentRepair(job, None, None, "too late in the day")
    window = TimeWindow(soon, DAY_S - 1)
    offer = index.offer(engine_job, [window])
    if not offer.feasible():
        full = str(offer.reason) if offer.reason else "no room left today"
        return UrgentRepair(job, None, None, f"{full}; first in line for the next plan")
    try:
        option = index.book(engine_job, window)
    except Unbookable as refused:
        return UrgentRepair(job, None, None, f"{refused}; first in line for the next plan")
    write_routes(session, region, translation, index, index.changed)
    change_status(session, job, JobStatus.PLANNED, actor=actor, reason="urgent repair fitted in")
    plan_gate.judge_with(session, today=today, travel=travel, translation=translation)
    plan_gate.verify(session)
    assert option.start_s is not None
    return UrgentRepair(
        job, option.technician_day, translation.horizon.to_datetime(option.start_s), None
    )
