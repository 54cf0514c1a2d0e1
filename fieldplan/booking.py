"""Customers pick windows the plan can keep: offering, booking, moving and cancelling them.

Every change runs in one transaction that first locks the region's row (PostgreSQL's row
lock, SQLite's write lock), then re-reads the plan and re-checks the window against it with the
engine's insertion index. The plan rows it writes carry a revision counter, so even a writer
that skipped the lock could not overwrite a booking it did not see: its flush fails and the
API answers 409. An idempotency key makes a retried request return the first booking instead
of making a second; the key is bound to what was asked (the job and the request as sent), so the
same key with another request is refused rather than answered with the first booking, and it
lasts `IDEMPOTENCY_KEY_HOURS`, after which it may be used afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, selectinload

import optimizer
from fieldplan import live_plans, plan_gate
from fieldplan.appointments import (
    AgreedVia,
    Appointment,
    AppointmentError,
    AppointmentStatus,
    cancel,
    check_window,
    flag_at_risk,
    live_appointment,
    promise,
    reschedule,
)
from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.jobs import Job, JobStatus, change_status
from fieldplan.planning import (
    PLANNABLE,
    Horizon,
    TechnicianDayKey,
    Translation,
    build_problem,
    fill_route,
    horizon_for,
    stored_plan,
)
from fieldplan.plans import Plan, Route, Stop, StopKind, latest_plan, next_version
from fieldplan.reasons import PlanningReason
from fieldplan.regions import Region, lock_region
from fieldplan.technicians import Technician
from fieldplan.travel import TravelTimes
from fieldplan.workdays import next_working_day
from optimizer.model import DAY_S
from optimizer.reasons import Why
from optimizer.slots import SlotIndex, Unbookable, day_grid, without_job

MAX_DAYS_AHEAD = 180  # a booking further out is refused (and would plan a huge horizon)
IDEMPOTENCY_KEY_HOURS = 24  # as the well-known payment APIs keep theirs


@dataclass(frozen=True)
class BookingRules:
    """How windows are cut and how late a customer may still change them."""

    window_minutes: int = 120
    step_minutes: int = 60
    offer_days: int = 10
    customer_cutoff_hours: int = 24
    # How many later periods are searched for first possible dates when none is free.
    look_ahead_periods: int = 3


@dataclass(frozen=True)
class WindowChoice:
    start: datetime
    end: datetime
    recommended: bool
    added_travel_min: int


@dataclass(frozen=True)
class Windows:
    job_id: int
    choices: list[WindowChoice]
    reason: Why | None = None  # why none is offered
    first_dates: list[date] = field(default_factory=list)  # when none: first dates that would be


class SlotTaken(AppointmentError):
    """The window cannot be kept (any more). What can be booked instead is worked out by
    `offer_again` once the refused transaction has ended: computing it inside would hold the
    region's lock for a whole offer while every other booking waits."""

    def __init__(
        self, why: Why, *, job_id: int | None = None, not_before: datetime | None = None
    ) -> None:
        super().__init__(why)
        self.job_id = job_id  # None: no other window would do either
        self.not_before = not_before


def offer_again(
    session: Session,
    taken: SlotTaken,
    travel: TravelTimes,
    *,
    today: date,
    rules: BookingRules,
) -> Windows | None:
    """The windows free now for the job a refused booking was for (None when no window
    could be: the reason alone says it). Call it outside the refused transaction."""
    if taken.job_id is None:
        return None
    job = session.get_one(Job, taken.job_id)
    return offer_windows(
        session, job, travel, today=today, rules=rules, not_before=taken.not_before
    )


class BookingRequest(Base):
    """An idempotency key and the booking it made: a retried request books once."""

    __tablename__ = "booking_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What was asked with the key (`Idempotency.of`); empty for keys stored before.
    fingerprint: Mapped[str] = mapped_column(String(64), default="", server_default="")


class KeyReused(ValueError):
    """An idempotency key sent again with a different request: refused, never answered with
    what the first request made."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} {why}: use a new key for a new request")
        self.key = key


@dataclass(frozen=True)
class Idempotency:
    """A client's idempotency key and a fingerprint of the request it came with."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, *asked: object) -> Idempotency:
        """`asked`: what the request asks, as the caller received it (ids, window, fields)."""
        canonical = json.dumps(asked, default=str, sort_keys=True)
        return cls(key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass
class _Context:
    region: Region
    translation: Translation
    index: SlotIndex
    touched: set[str]  # technician-days whose stored route must be rewritten
    engine_job: optimizer.Job | None
    why_not: Why | None  # why the job is not in the problem, when it is not
    # The prepared plan the index was forked from (a job new to the plan): the job is on no
    # stored route, and once committed the index is the plan of the next revision.
    live: live_plans.Prepared | None = None


def first_offer_day(today: date) -> date:
    """Windows start on the next working day: today's routes are already out."""
    return next_working_day(today + timedelta(days=1))


def _context(
    session: Session,
    job: Job,
    first_day: date,
    days: int,
    travel: TravelTimes,
    today: date,
    *,
    booking: bool = False,
    prepare: bool = False,
) -> _Context:
    """What placing the job over these days works with: for a job new to the plan the
    region's prepared plan (a fork of it when `booking`), else a problem read for this job,
    with its stops taken out of the stored plan. Only with `prepare` is the whole region
    read to prepare it (offers do); a booking holding the lock reads the smaller problem of
    its job instead."""
    region = session.get_one(Region, job.region_id)
    live = live_plans.prepared(session, region, first_day, days, travel, today, read=prepare)
    # The job's own row as this transaction reads it has the last word on whether it is
    # plannable at all (a change of status that took no lock would not move the revision).
    if live is not None and job.status in PLANNABLE:
        why_not = live.left_out(job.id) or live.waits(job.id)
        if why_not is not None:
            return _Context(region, live.translation, live.index, set(), None, why_not)
        index = live.index_for(job.id, booking=booking) if live.places(job.id) else None
        if index is not None:
            found = live.translation.problem.job(str(job.id))
            return _Context(
                region, live.translation, index, set(), replace(found, promised=False), None, live
            )
    horizon = horizon_for(region, first_day, days)
    translation = build_problem(
        session, region, horizon, travel, unpromised=job.id, placing={job.id}, today=today
    )
    stored = stored_plan(session, region, translation)
    key = str(job.id)
    stored, touched = without_job(stored, key)
    engine_job = next((j for j in translation.problem.jobs if j.id == key), None)
    if engine_job is not None:  # the promise being replaced is no constraint
        engine_job = replace(engine_job, promised=False)
    index = SlotIndex(translation.problem, stored)
    return _Context(
        region, translation, index, touched, engine_job, translation.left_out.get(job.id)
    )


def _grid(translation: Translation, rules: BookingRules) -> list[optimizer.TimeWindow]:
    vehicles = translation.problem.technician_days
    if not vehicles:
        return []
    opens = min(v.shift.start_s % DAY_S for v in vehicles)
    closes = max(v.shift.end_s % DAY_S for v in vehicles)
    return day_grid(
        range(len(translation.horizon.days)),
        opens,
        closes,
        rules.window_minutes * 60,
        rules.step_minutes * 60,
    )


def _choices(horizon: Horizon, offer: optimizer.slots.Offer) -> list[WindowChoice]:
    return [
        WindowChoice(
            horizon.to_datetime(o.window.start_s),
            horizon.to_datetime(o.window.end_s),
            o.recommended,
            round(o.added_travel_s / 60),
        )
        for o in offer.options
        if o.feasible
    ]


def customer_cutoff(now: datetime, rules: BookingRules) -> datetime:
    """Customers book only windows they could still move or cancel themselves afterwards."""
    return now + timedelta(hours=rules.customer_cutoff_hours)


def offer_windows(
    session: Session,
    job: Job,
    travel: TravelTimes,
    *,
    today: date,
    rules: BookingRules,
    not_before: datetime | None = None,
) -> Windows:
    """Windows over the next working days in which the plan can take the job, cheapest
    marked; when there are none, why, and the first dates further on that would do. With
    `not_before` (a customer's cut-off), no window starts earlier."""
    found = _offer_windows(session, job, travel, today=today, rules=rules)
    if not_before is None or not found.choices:
        return found
    kept = [c for c in found.choices if c.start >= not_before]
    if kept:
        return replace(found, choices=kept)
    return replace(
        found,
        choices=[],
        reason=Why.of(PlanningReason.FREE_WINDOWS_IN_CUTOFF, hours=rules.customer_cutoff_hours),
    )


def _offer_windows(
    session: Session, job: Job, travel: TravelTimes, *, today: date, rules: BookingRules
) -> Windows:
    if job.status not in (JobStatus.NEW, JobStatus.OFFERED, JobStatus.BOOKED, JobStatus.PLANNED):
        return Windows(job.id, [], reason=Why.of(PlanningReason.JOB_STATUS, status=job.status))
    first = first_offer_day(today)
    context = _context(session, job, first, rules.offer_days, travel, today, prepare=True)
    if context.engine_job is None:
        return Windows(job.id, [], reason=context.why_not or Why.of(PlanningReason.NOT_PLANNABLE))
    offer = context.index.offer(context.engine_job, _grid(context.translation, rules))
    choices = _choices(context.translation.horizon, offer)
    if choices:
        return Windows(job.id, choices)
    later: list[date] = []
    for _ in range(rules.look_ahead_periods):
        start = next_working_day(context.translation.horizon.days[-1] + timedelta(days=1))
        context = _context(session, job, start, rules.offer_days, travel, today, prepare=True)
        if context.engine_job is None:
            continue
        found = _choices(
            context.translation.horizon,
            context.index.offer(context.engine_job, _grid(context.translation, rules)),
        )
        later = sorted({c.start.date() for c in found})[:3]
        if later:
            break
    return Windows(job.id, [], reason=offer.reason, first_dates=later)


def _window(
    translation: Translation, start: datetime, end: datetime
) -> optimizer.TimeWindow | None:
    s, e = translation.horizon.to_seconds(start), translation.horizon.to_seconds(end)
    if s is None or e is None:
        return None
    return optimizer.TimeWindow(s, e)


def _insert(
    session: Session,
    job: Job,
    start: datetime,
    end: datetime,
    travel: TravelTimes,
    today: date,
    rules: BookingRules,
    *,
    first_promise: bool,
) -> _Context:
    """Re-check the window against the plan as it is now and write the job into it
    (`first_promise`: the job has no promise yet, a booking rather than a move)."""
    check_window(start, end)
    first = first_offer_day(today)
    region = session.get_one(Region, job.region_id)
    local = start.astimezone(ZoneInfo(region.timezone)).date()
    if local < first:
        raise SlotTaken(Why.of(PlanningReason.BEFORE_FIRST_DAY), job_id=job.id)
    if local > first + timedelta(days=MAX_DAYS_AHEAD):
        raise SlotTaken(Why.of(PlanningReason.TOO_FAR_AHEAD, days=MAX_DAYS_AHEAD))
    # The days from the first offered one to the last the job takes (it starts on `local`).
    days = max(rules.offer_days, len(_working_days_until(first, local)) + job.days - 1)
    context = _context(session, job, first, days, travel, today, booking=True)
    window = _window(context.translation, start, end)
    if context.engine_job is None or window is None:
        why = context.why_not or Why.of(PlanningReason.NOT_A_WORKING_DAY)
        raise SlotTaken(why, job_id=job.id)
    plan_gate.judge_with(session, today=today, travel=travel, translation=context.translation)
    try:
        context.index.book(context.engine_job, window)
    except Unbookable as refused:
        raise SlotTaken(refused.why, job_id=job.id) from None
    if context.live is None:
        drop_from_plans(session, job, today)  # from any other day it was planned on
    else:
        live_plans.booked_into(
            session, context.region, first, days, today, context.live, context.index
        )
    # Its own promise and routes of these days are all such a booking changed: other
    # processes catch up on it (`live_plans`).
    these_days_only = not context.touched and job.id not in context.translation.planned_elsewhere
    if first_promise and these_days_only:
        live_plans.record_booking(session, context.region.id, job.id)
    write_routes(
        session,
        context.region,
        context.translation,
        context.index,
        context.touched | context.index.changed,
    )
    return context


def _working_days_until(first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        days.append(day)
        day = next_working_day(day + timedelta(days=1))
    return days


def write_routes(
    session: Session,
    region: Region,
    translation: Translation,
    index: SlotIndex,
    technician_days: set[str],
) -> None:
    """Rewrite the stored routes of the changed technician-days in each day's newest plan."""
    by_day: dict[date, list[str]] = {}
    for vehicle_id in technician_days:
        by_day.setdefault(TechnicianDayKey.parse(vehicle_id).day, []).append(vehicle_id)
    for day, vehicle_ids in sorted(by_day.items()):
        plan = latest_plan(session, region.id, day)
        if plan is None:
            plan = Plan(
                region_id=region.id,
                day=day,
                version=next_version(session, region.id, day),
                planner="booking",
                kpis={},
            )
            session.add(plan)
            session.flush()
        rows = {r.technician_id: r for r in plan.routes}
        for vehicle_id in sorted(vehicle_ids):
            technician: Technician = translation.vehicle_technician[vehicle_id]
            route = index.route(vehicle_id)
            row = rows.get(technician.id)
            if row is not None:
                row.stops.clear()
                session.flush()  # old positions go before new ones take their numbers
            if not route.visits:
                if row is not None:
                    plan.routes.remove(row)
                continue
            if row is None:
                row = Route(technician_id=technician.id)
                plan.routes.append(row)
            fill_route(row, translation, route)
        # Counted by the database: the plan's other routes need not be loaded for it.
        planned = session.scalar(
            select(func.count())
            .select_from(Stop)
            .join(Route, Stop.route_id == Route.id)
            .where(Route.plan_id == plan.id, Stop.kind == StopKind.JOB, ~Stop.second_person)
        )
        plan.kpis = {**plan.kpis, "jobs_planned": int(planned or 0)}  # bumps its revision
        session.flush()


@dataclass(frozen=True)
class Asked:
    """A booking as asked: the window, who asks, and how it was agreed."""

    start: datetime
    end: datetime
    actor: str
    via: AgreedVia
    idempotency: Idempotency | None = None
    reason: str = ""
    not_before: datetime | None = None  # a customer's cut-off: no earlier window


def book(
    session: Session,
    job: Job,
    asked: Asked,
    *,
    travel: TravelTimes,
    today: date,
    rules: BookingRules,
) -> tuple[Appointment, bool]:
    """Book a window for a job, once: the window is re-checked against the plan of now.
    Returns the appointment and whether this call made it (False: a retried request)."""
    lock_region(session, job.region_id)
    booked = book_locked(session, job, asked, travel=travel, today=today, rules=rules)
    plan_gate.verify(session)
    return booked


def book_locked(
    session: Session,
    job: Job,
    asked: Asked,
    *,
    travel: TravelTimes,
    today: date,
    rules: BookingRules,
) -> tuple[Appointment, bool]:
    """`book` in a transaction that holds the job's region's lock already; the gate judges
    what it wrote when the caller says (`plan_gate.verify`), at the latest at the commit."""
    with live_plans.one_booking(session):
        if asked.idempotency is not None:
            earlier = replayed(session, asked.idempotency, job)
            if earlier is not None:
                return earlier, False
        session.refresh(job)
        if live_appointment(session, job.id) is not None:
            raise AppointmentError(
                f"job {job.id} already has an appointment: reschedule it instead"
            )
        start, end = asked.start, asked.end
        _refuse_inside_cutoff(session, job, start, asked.not_before, travel, today, rules)
        _insert(session, job, start, end, travel, today, rules, first_promise=True)
        appointment = promise(
            session, job, start, end, via=asked.via, actor=asked.actor, reason=asked.reason
        )
        if job.status == JobStatus.BOOKED:
            change_status(
                session, job, JobStatus.PLANNED, actor=asked.actor, reason="booked into the plan"
            )
        if asked.idempotency is not None:
            remember(session, asked.idempotency, job, appointment)
    return appointment, True


def remember(
    session: Session, idempotency: Idempotency, job: Job, appointment: Appointment
) -> None:
    session.add(
        BookingRequest(
            key=idempotency.key,
            job_id=job.id,
            appointment_id=appointment.id,
            fingerprint=idempotency.fingerprint,
        )
    )


def replayed(session: Session, idempotency: Idempotency, job: Job) -> Appointment | None:
    """The appointment an earlier request with this key made, when this is that request
    again; None when the key is new (or expired: then it is free again). Raises `KeyReused`
    for a key that asked something else, and AppointmentError when what it made was
    cancelled since (a replay must not answer with a booking that no longer holds)."""
    key = idempotency.key
    earlier = session.scalar(select(BookingRequest).where(BookingRequest.key == key))
    if earlier is None:
        return None
    if earlier.created_at < utcnow() - timedelta(hours=IDEMPOTENCY_KEY_HOURS):
        session.delete(earlier)
        session.flush()
        return None
    if earlier.job_id != job.id:
        raise KeyReused(key, f"was used for job {earlier.job_id}")
    if earlier.fingerprint and earlier.fingerprint != idempotency.fingerprint:
        raise KeyReused(key, "was used for another window or request for this job")
    appointment = session.get_one(Appointment, earlier.appointment_id)
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentError(
            f"the booking made with Idempotency-Key {key!r} was cancelled since: "
            "book anew with a new key"
        )
    return appointment


def _refuse_inside_cutoff(
    session: Session,
    job: Job,
    start: datetime,
    not_before: datetime | None,
    travel: TravelTimes,
    today: date,
    rules: BookingRules,
) -> None:
    if not_before is not None and start < not_before:
        raise SlotTaken(
            Why.of(PlanningReason.WINDOW_IN_CUTOFF, hours=rules.customer_cutoff_hours),
            job_id=job.id,
            not_before=not_before,
        )


def _check_cutoff(appointment: Appointment, now: datetime, rules: BookingRules) -> None:
    if appointment.window_start < customer_cutoff(now, rules):
        raise AppointmentError(
            Why.of(PlanningReason.CHANGE_IN_CUTOFF, hours=rules.customer_cutoff_hours)
        )


def move(
    session: Session,
    appointment: Appointment,
    start: datetime,
    end: datetime,
    *,
    travel: TravelTimes,
    now: datetime,
    today: date,
    rules: BookingRules,
    actor: str,
    reason: str,
    by_customer: bool,
    idempotency: Idempotency | None = None,
) -> Appointment:
    """Move a promise to another window the plan can keep; the old one holds until then."""
    job = session.get_one(Job, appointment.job_id)
    lock_region(session, job.region_id)
    session.refresh(appointment)
    if by_customer:
        _check_cutoff(appointment, now, rules)
        _refuse_inside_cutoff(
            session, job, start, customer_cutoff(now, rules), travel, today, rules
        )
    _insert(session, job, start, end, travel, today, rules, first_promise=False)
    reschedule(session, appointment, start, end, actor=actor, reason=reason)
    release_dependants(
        session, session.get_one(Region, job.region_id), {job.id}, today=today, actor=actor
    )
    if job.status == JobStatus.BOOKED:
        change_status(session, job, JobStatus.PLANNED, actor=actor, reason="moved in the plan")
    if idempotency is not None:
        remember(session, idempotency, job, appointment)
    plan_gate.verify(session)
    return appointment


def call_off(
    session: Session,
    appointment: Appointment,
    *,
    now: datetime,
    today: date,
    rules: BookingRules,
    actor: str,
    reason: str,
    by_customer: bool,
) -> Appointment:
    """Cancel the promise and free its place in the plan."""
    job = session.get_one(Job, appointment.job_id)
    lock_region(session, job.region_id)
    session.refresh(appointment)
    if by_customer:
        _check_cutoff(appointment, now, rules)
    cancel(session, appointment, actor=actor, reason=reason)
    drop_from_plans(session, job, today)
    release_dependants(
        session, session.get_one(Region, job.region_id), {job.id}, today=today, actor=actor
    )
    plan_gate.judge_with(session, today=today)
    plan_gate.verify(session)
    return appointment


def drop_from_plans(session: Session, job: Job, today: date) -> None:
    """Take the job's stops out of the newest plan of each day; the rest keep their times."""
    days = session.scalars(
        select(Plan.day).where(Plan.region_id == job.region_id, Plan.day >= today).distinct()
    )
    for day in sorted(set(days)):
        plan = latest_plan(session, job.region_id, day)
        if plan is None:
            continue
        changed = False
        for route in plan.routes:
            kept = [s for s in route.stops if s.job_id != job.id]
            if len(kept) == len(route.stops):
                continue
            changed = True
            route.stops.clear()
            session.flush()
            for position, stop in enumerate(kept):
                route.stops.append(copy_stop(stop, position))
        if changed:
            plan.kpis = {**plan.kpis, "jobs_planned": max(0, plan.kpis.get("jobs_planned", 1) - 1)}
            session.flush()


def release_dependants(
    session: Session, region: Region, jobs: set[int], *, today: date, actor: str
) -> list[Job]:
    """The jobs waiting for these that cannot keep their place now these moved later or left
    the plan (and, in turn, the jobs waiting for those): taken off the plans, their promise
    flagged at risk for a planner to agree anew, never left planned before what they wait
    for."""
    released: list[Job] = []
    changed = set(jobs)
    while changed:
        broken = [
            b
            for b in plan_gate.broken_links(session, region, changed, since=today)
            if b.link.prerequisite_id in changed
        ]
        changed = set()
        for waiting_id in sorted({b.link.job_id for b in broken}):
            waiting = session.get_one(Job, waiting_id)
            prerequisite = next(
                b.link.prerequisite_id for b in broken if b.link.job_id == waiting_id
            )
            why = f"waits for job {prerequisite}, which moved or left the plan"
            drop_from_plans(session, waiting, today)
            appointment = live_appointment(session, waiting.id)
            if appointment is not None:
                flag_at_risk(session, appointment, actor=actor, reason=why)
            if waiting.status == JobStatus.PLANNED:
                back = JobStatus.BOOKED if appointment is not None else JobStatus.NEW
                change_status(session, waiting, back, actor=actor, reason=why)
            released.append(waiting)
            changed.add(waiting.id)
    return released


def copy_stop(stop: Stop, position: int) -> Stop:
    return Stop(
        position=position,
        kind=stop.kind,
        job_id=stop.job_id,
        location_id=stop.location_id,
        part_sku=stop.part_sku,
        second_person=stop.second_person,
        arrival=stop.arrival,
        start=stop.start,
        departure=stop.departure,
    )


def order_jobs(session: Session, order_id: int) -> list[Job]:
    return list(
        session.scalars(
            select(Job)
            .where(Job.order_id == order_id)
            .order_by(Job.id)
            .options(selectinload(Job.parts))
        )
    )
