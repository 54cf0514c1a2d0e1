"""A region's plan prepared for the engine, kept between the requests of one process.

Offering windows and booking one both need the region's problem and its stored routes ready
for insertion (a `SlotIndex`). Reading them from the database is most of what a booking
costs, and a booking does it while it holds the region's lock, so every other booking of the
region waits for that reading. The region's revision moves with every write of its plans
(`lock_region`), so what was read at a revision *is* the plan for as long as the revision
stands:

- an offer checks the revision and answers from the prepared plan, holding no lock;
- a booking holding the lock books into a fork of it, and once its transaction has committed
  the fork is the prepared plan of the revision that booking wrote, so the next booking of
  this process reads nothing again;
- a revision that was one such booking and nothing else is recorded (`PlanBooking`), so
  another process catches up on it by reading the stored routes and that job's promise
  again, a few queries, instead of the whole region;
- any other write (a move, a re-plan, a report) leaves a revision nobody recorded, and the
  next request reads the region afresh.

Only jobs new to the plan go this way: a job on a stored route, planned on another day or
promised already is placed by the slower path that takes it out first. And what a booking
writes is judged by the plan gate against the database like every other write: a prepared
plan can make a booking fast, never let it break a promise.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Engine, ForeignKey, Integer, delete, event, func, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

import optimizer
from fieldplan import durations
from fieldplan.appointments import LIVE_APPOINTMENTS, Appointment
from fieldplan.db import Base
from fieldplan.jobs import Job
from fieldplan.planning import PLANNABLE, Translation, build_problem, horizon_for, stored_plan
from fieldplan.plans import Plan, Route, Stop
from fieldplan.reasons import PlanningReason
from fieldplan.regions import Region, locked_again, locked_revision
from fieldplan.travel import TravelTimes
from optimizer.reasons import Why
from optimizer.slots import SlotIndex

# Prepared plans per database: a region's offer horizon from today, now and then another
# period's or a longer horizon's. Kept few: each holds the region's whole problem.
KEPT_PER_DATABASE = 4
# A prepared plan holds every plannable job of the region and its travel matrices (two
# places-squared arrays of 8-byte numbers: 19 MB at this many jobs). Beyond it, offers and
# bookings read the problem of the job at hand, as they did before prepared plans: reading
# the whole region again after every write would cost more than it saves.
MAX_PREPARED_JOBS = 1000
# How many recorded bookings a region keeps: a prepared plan further behind is read afresh.
KEPT_BOOKINGS = 500


class PlanBooking(Base):
    """A revision of a region that was one booking of a job new to the plan, and nothing
    else: what changed is that job's promise and the routes it went into."""

    __tablename__ = "plan_bookings"

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))


@dataclass(frozen=True)
class _Key:
    region_id: int
    first_day: date
    days: int
    today: date
    travel: int  # id() of the travel times (an entry holds them, so the id stays theirs)
    promise_target: float


@dataclass(frozen=True)
class Prepared:
    """The plan of a region at `revision`, as the engine sees it."""

    region_id: int
    revision: int
    translation: Translation
    index: SlotIndex
    travel: TravelTimes

    def holds_new(self, job_id: int) -> bool:
        """Whether the job is in this problem and new to the plan: on no route (of these days
        or another's from today on) and promised nowhere."""
        key = str(job_id)
        return (
            key in self.translation.jobs
            and not self.index.is_placed(key)
            and not self._planned_or_promised(job_id)
        )

    def _planned_or_promised(self, job_id: int) -> bool:
        """On a route of other days from today on, promised, or held where a route has it."""
        translation = self.translation
        return (
            job_id in translation.planned_elsewhere
            or job_id in translation.promised
            or job_id in translation.held
        )

    def places(self, job_id: int) -> bool:
        """Whether offering and booking the job from this plan is what reading its own
        problem would give: it is new to the plan and everything it waits for is planned
        (a prerequisite still open is outside a job's own problem, and says so)."""
        if not self.holds_new(job_id):
            return False
        job = self.translation.problem.job(str(job_id))
        return all(self.index.is_placed(d.job_id) for d in job.after)

    def left_out(self, job_id: int) -> Why | None:
        """Why this problem leaves out a job new to the plan, as its own problem would."""
        if self._planned_or_promised(job_id):
            return None
        return self.translation.left_out.get(job_id)


_plans: weakref.WeakKeyDictionary[Engine, OrderedDict[_Key, Prepared]] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def _engine(session: Session) -> Engine | None:
    """The database whose committed plans the session reads; None for a session bound to a
    connection whose transaction someone else holds open (its rows are not committed, and
    its revisions may come again after that transaction rolls back)."""
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else None


def _key(region_id: int, first_day: date, days: int, today: date, travel: TravelTimes) -> _Key:
    protection = durations.protection()
    target = protection.target if protection is not None else 0.0
    return _Key(region_id, first_day, days, today, id(travel), target)


def prepared(
    session: Session,
    region: Region,
    first_day: date,
    days: int,
    travel: TravelTimes,
    today: date,
    *,
    read: bool = True,
) -> Prepared | None:
    """The region's plan over `days` working days from `first_day` as this session sees it,
    prepared. None when this transaction has already written plans, promises or jobs (its
    own changes are in no prepared plan, and must not be kept as if committed), and without
    `read` when none is prepared at its revision (the whole region's problem costs more to
    read than one job's: a booking holding the lock reads the smaller one, and the offers
    after it prepare the plan again)."""
    engine = _engine(session)
    if engine is None or session.info.get(_WROTE) or locked_again(session, region.id):
        return None  # the transaction reads its own writes, which no revision holds
    locked = locked_revision(session, region.id)
    if locked is not None:
        wanted = locked - 1  # the lock moved it; what this transaction reads is the one before
    else:
        current = session.scalar(select(Region.revision).where(Region.id == region.id))
        if current is None:
            return None
        wanted = int(current)
    key = _key(region.id, first_day, days, today, travel)
    with _guard:
        found = _plans.get(engine, OrderedDict()).get(key)
    if found is not None and found.revision == wanted:
        return found
    if found is not None and found.revision < wanted:
        caught_up = _catch_up(session, found, wanted)
        if caught_up is not None:
            _keep(engine, key, caught_up)
            return caught_up
    if not read or _plannable_jobs(session, region.id) > MAX_PREPARED_JOBS:
        return None
    fresh = _read(session, wanted, region.id, first_day, days, travel, today)
    _keep(engine, key, fresh)
    return fresh


def _plannable_jobs(session: Session, region_id: int) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.region_id == region_id, Job.status.in_(PLANNABLE))
    )
    return int(count or 0)


def _reader(session: Session) -> Session:
    return Session(bind=session.connection(), expire_on_commit=False, autoflush=False)


def _read(
    session: Session,
    revision: int,
    region_id: int,
    first_day: date,
    days: int,
    travel: TravelTimes,
    today: date,
) -> Prepared:
    """Read the region's plan in the session's own transaction (a booking holding the lock
    reads what it will write over; a second connection would wait for the pool that the
    bookings queueing for the lock hold), through a session of its own: its rows are
    nobody's to change or expire, and closing it leaves them readable."""
    with _reader(session) as reader:
        region = reader.get_one(Region, region_id)
        translation = build_problem(
            reader, region, horizon_for(region, first_day, days), travel, today=today
        )
        index = SlotIndex(translation.problem, stored_plan(reader, region, translation))
    return Prepared(region_id, revision, translation, index, travel)


def _catch_up(session: Session, behind: Prepared, wanted: int) -> Prepared | None:
    """`behind` brought to revision `wanted` when every revision between was a recorded
    booking of a job it holds as new (None otherwise). A job booked into these days takes its
    promise; one booked into other days leaves the problem, planned elsewhere, as a fresh read
    would leave it (when nothing depends on it either way and it lasts one day). The stored
    routes are read again: the same problem as a fresh read builds, without reading the
    region's jobs, technicians and places again."""
    booked = session.execute(
        select(PlanBooking.revision, PlanBooking.job_id)
        .where(
            PlanBooking.region_id == behind.region_id,
            PlanBooking.revision > behind.revision,
            PlanBooking.revision <= wanted,
        )
        .order_by(PlanBooking.revision)
    ).all()
    if [revision for revision, _ in booked] != list(range(behind.revision + 1, wanted + 1)):
        return None
    jobs = {job_id for _, job_id in booked}
    if len(jobs) != len(booked) or not all(behind.holds_new(j) for j in jobs):
        return None
    promises = session.execute(
        select(Appointment.job_id, Appointment.window_start, Appointment.window_end).where(
            Appointment.job_id.in_(sorted(jobs)), Appointment.status.in_(LIVE_APPOINTMENTS)
        )
    ).all()
    if len(promises) != len(jobs):
        return None
    translation = behind.translation
    horizon = translation.horizon
    problem = translation.problem
    windows: dict[str, optimizer.TimeWindow] = {}
    elsewhere: dict[int, date] = {}
    for job_id, start, end in promises:
        start_s, end_s = horizon.to_seconds(start), horizon.to_seconds(end)
        if start_s is not None and end_s is not None:
            windows[str(job_id)] = optimizer.TimeWindow(start_s, end_s)
        elif not _stands_alone(problem, str(job_id)):
            return None
        else:
            elsewhere[job_id] = start.astimezone(horizon.timezone).date()
    with _reader(session) as reader:
        region = reader.get_one(Region, behind.region_id)
        stored = stored_plan(reader, region, translation)
    where = {
        visit.job_id: route.technician_day
        for route in stored.routes
        for visit in route.visits
        if visit.job_id in windows and not visit.second_person
    }
    caught_up = _promised(translation, windows, where, elsewhere)
    return Prepared(
        behind.region_id,
        wanted,
        caught_up,
        SlotIndex(caught_up.problem, stored),
        behind.travel,
    )


def _promised(
    translation: Translation,
    windows: dict[str, optimizer.TimeWindow],
    where: dict[str, str],
    elsewhere: dict[int, date],
) -> Translation:
    """The translation once jobs new to it were booked, as a fresh read would give it: those
    booked into its days hold their promise and where they went (`where`, technician-day),
    those booked on other days are planned there."""
    gone = {str(j) for j in elsewhere}
    problem = replace(
        translation.problem,
        jobs=[
            replace(
                job,
                windows=(windows[job.id],),
                promised=True,
                previous_technician_day=where.get(job.id),
            )
            if job.id in windows
            else job
            for job in translation.problem.jobs
            if job.id not in gone
        ],
    )
    return replace(
        translation,
        problem=problem,
        jobs={k: v for k, v in translation.jobs.items() if k not in gone},
        promised=translation.promised | {int(j) for j in windows},
        planned_elsewhere=translation.planned_elsewhere | set(elsewhere),
        left_out={
            **translation.left_out,
            **{
                j: Why.of(PlanningReason.ALREADY_PLANNED, day=day.isoformat())
                for j, day in elsewhere.items()
            },
        },
    )


def _stands_alone(problem: optimizer.Problem, job_id: str) -> bool:
    """A one-day job no job of the problem depends on and that depends on none: leaving it
    out changes nothing else of the problem."""
    job = problem.job(job_id)
    return (
        job.days == 1
        and not job.after
        and not any(d.job_id == job_id for other in problem.jobs for d in other.after)
    )


def _keep(engine: Engine, key: _Key, plan: Prepared) -> None:
    with _guard:
        kept = _plans.setdefault(engine, OrderedDict())
        known = kept.get(key)
        if known is not None and known.revision > plan.revision:
            return  # a later revision was kept meanwhile
        kept[key] = plan
        kept.move_to_end(key)
        while len(kept) > KEPT_PER_DATABASE:
            kept.popitem(last=False)


# A booking's fork becomes the prepared plan once its transaction has committed -------------

_PENDING = "fieldplan.live_plans.pending"


@dataclass(frozen=True)
class _Pending:
    engine: Engine
    key: _Key
    plan: Prepared


def booked_into(
    session: Session,
    region: Region,
    first_day: date,
    days: int,
    today: date,
    base: Prepared,
    index: SlotIndex,
) -> None:
    """Say that this session booked into `index`, a fork of `base`: when the transaction
    commits at the revision its lock gave it, with nothing else written, that is the plan."""
    revision = locked_revision(session, region.id)
    engine = _engine(session)
    if engine is None or revision is None or revision != base.revision + 1:
        return
    key = _key(region.id, first_day, days, today, base.travel)
    # The fork's stops hold the promise; its problem must too, for the plan that catching
    # up on later bookings builds from it.
    where = {
        job_id: index.builder.routes[placed[0]].vehicle.id
        for job_id, placed in index.builder.placed.items()
        if job_id in index.promises
    }
    translation = _promised(base.translation, dict(index.promises), where, {})
    plan = Prepared(region.id, revision, translation, index, base.travel)
    session.info.setdefault(_PENDING, []).append(_Pending(engine, key, plan))


def record_booking(session: Session, region_id: int, job_id: int) -> None:
    """Record that the revision this transaction's lock gave the region is the booking of
    a job that was new to the plan: on no route from today on and promised nowhere. The
    caller writes nothing else in it (a second lock leaves the next revision unrecorded)."""
    revision = locked_revision(session, region_id)
    if revision is None:
        return
    session.execute(
        delete(PlanBooking).where(
            PlanBooking.region_id == region_id, PlanBooking.revision <= revision - KEPT_BOOKINGS
        )
    )
    session.add(PlanBooking(region_id=region_id, revision=revision, job_id=job_id))


@event.listens_for(Session, "before_commit")
def _still_the_plan(session: Session) -> None:
    """A transaction that went on to lock the region again wrote more than its booking:
    what it commits is not the fork. (A second booking into a fork in the same transaction
    cannot happen: once it has written, `prepared` gives it none.)"""
    pending: list[_Pending] = session.info.get(_PENDING, [])
    session.info[_PENDING] = [p for p in pending if not locked_again(session, p.key.region_id)]


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for pending in session.info.pop(_PENDING, []):
        _keep(pending.engine, pending.key, pending.plan)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    """Whatever was not committed (a rollback, a session closed mid-transaction) is gone."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_WROTE, None)


_WROTE = "fieldplan.live_plans.wrote"
_PLAN_ROWS = (Plan, Route, Stop, Appointment, Job)


@event.listens_for(Session, "before_flush")
def _writing(session: Session, *_: object) -> None:
    """Remember, until the transaction ends, that it wrote what a prepared plan is read
    from (the gate forgets what it judged once it has judged it)."""
    if any(
        isinstance(instance, _PLAN_ROWS)
        for instance in (*session.new, *session.dirty, *session.deleted)
    ):
        session.info[_WROTE] = True
