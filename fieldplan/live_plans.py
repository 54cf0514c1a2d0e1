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
- bookings taken together in one transaction (`fieldplan.booking_desk`) book one after the
  other into the same fork;
- a revision that was such bookings and nothing else is recorded (`PlanBooking`), so
  another process catches up on it by reading the stored routes and those jobs' promises
  again, a few queries, instead of the whole region;
- any other write (a move, a re-plan, a report) leaves a revision nobody recorded, and the
  next request reads the region afresh.

Jobs new to the plan go this way, and so do jobs a plan put on one of these days' routes
without a promise (taken off that route in a fork first). A job planned on another day,
promised already or tied to another job is placed by the slower path that reads its own
problem. And what a booking writes is judged by the plan gate against the database like
every other write: a prepared plan can make a booking fast, never let it break a promise.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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
    """A job's first promise that a revision of its region booked, the job new to the plan
    or taken off a route of the same days. A revision recorded here was those bookings and
    nothing else: what changed is their promises and the routes they left and went into."""

    __tablename__ = "plan_bookings"

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)


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

    def moves(self, job_id: int) -> bool:
        """Whether the job is on a route of these days as a plan put it there, promised
        nowhere and tied to no other job: booking it takes it off that route first (`index`'s
        `without`), as reading its own problem would. Most jobs a customer books are such:
        planning the region puts them on routes before anyone has picked a window."""
        key = str(job_id)
        return (
            key in self.translation.jobs
            and self.index.is_placed(key)
            and not self._planned_or_promised(job_id)
            and _stands_alone(self.translation.problem, key)
        )

    def places(self, job_id: int) -> bool:
        """Whether offering and booking the job from this plan is what reading its own
        problem would give: it is new to the plan and everything it waits for is planned
        (a prerequisite still open is outside a job's own problem, and says so), or it is
        on a route only as a plan put it there (`moves`)."""
        if self.moves(job_id):
            return True
        if not self.holds_new(job_id):
            return False
        job = self.translation.problem.job(str(job_id))
        return all(self.index.is_placed(d.job_id) for d in job.after)

    def index_for(self, job_id: int, *, booking: bool) -> SlotIndex | None:
        """The index that offers and books the job (`places`): a job on a route is taken
        off it in a fork; a booking always gets a fork, the offers meanwhile keep this one.
        None when taking the job off leaves a route that only a fresh read can judge."""
        if self.index.is_placed(str(job_id)):
            return self.index.without(str(job_id))
        return self.index.fork() if booking else self.index

    def waits(self, job_id: int) -> Why | None:
        """Why a job new to the plan must wait, as its own problem says it: the first of its
        prerequisites on no route of this plan is new to the plan too (planned and promised
        nowhere). A job's own problem holds only the jobs on routes, so that prerequisite is
        outside it with no day to wait for. None when the job does not wait so."""
        if not self.holds_new(job_id):
            return None
        for dependency in self.translation.problem.job(str(job_id)).after:
            if self.index.is_placed(dependency.job_id):
                continue
            if not self.holds_new(int(dependency.job_id)):
                return None
            prerequisite = self.translation.jobs[dependency.job_id]
            return Why.of(
                PlanningReason.WAITS_FOR_PREREQUISITE,
                job=prerequisite.id,
                kind=str(prerequisite.kind),
            )
        return None

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
    prepared. A transaction that has booked into a fork gets that fork, with its bookings;
    None when it has written plans, promises or jobs otherwise (its own changes are in no
    prepared plan, and must not be kept as if committed), and without `read` when none is
    prepared at its revision (the whole region's problem costs more to read than one job's:
    a booking holding the lock reads the smaller one, and the offers after it prepare the
    plan again)."""
    engine = _engine(session)
    wrote = session.info.get(_WROTE) or session.info.get(_UNFORKED)
    if engine is None or wrote or locked_again(session, region.id):
        return None  # the transaction reads its own writes, which no revision holds
    key = _key(region.id, first_day, days, today, travel)
    own: _Pending | None = session.info.get(_PENDING)
    if own is not None:  # the transaction's bookings are in this fork and in no other plan
        return own.plan if own.key == key else None
    locked = locked_revision(session, region.id)
    if locked is not None:
        wanted = locked - 1  # the lock moved it; what this transaction reads is the one before
    else:
        current = session.scalar(select(Region.revision).where(Region.id == region.id))
        if current is None:
            return None
        wanted = int(current)
    with _guard:
        found = _plans.get(engine, OrderedDict()).get(key)
    if found is not None and (
        found.revision == wanted or (locked is None and found.revision > wanted)
    ):
        return found
    if found is not None and found.revision < wanted:
        caught_up = _catch_up(session, found, wanted)
        if caught_up is not None:
            _keep_if_still(session, engine, key, caught_up, locked)
            return caught_up
    if not read or _plannable_jobs(session, region.id) > MAX_PREPARED_JOBS:
        return None
    fresh = _read(session, wanted, region.id, first_day, days, travel, today)
    _keep_if_still(session, engine, key, fresh, locked)
    return fresh


def _keep_if_still(
    session: Session, engine: Engine, key: _Key, plan: Prepared, locked: int | None
) -> None:
    """Keep a plan just read as the plan of its revision if that is what it holds. Without
    the lock, PostgreSQL's statements each read what is committed when they run: a booking
    committed while the plan was read is in it although the revision read first was older.
    Such a plan answers the offer that read it, but kept, it would be taken for the older
    revision (and catching up from it would find the booking's job already planned)."""
    if locked is None:
        now = session.scalar(select(Region.revision).where(Region.id == plan.region_id))
        if now != plan.revision:
            return
    _keep(engine, key, plan)


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
    booking of a job it holds as new or as on a route without a promise (`moves`; None
    otherwise). A job booked into these days takes its
    promise; one booked into other days leaves the problem, planned elsewhere, as a fresh read
    would leave it (when nothing depends on it either way and it lasts one day). The stored
    routes are read again: the same problem as a fresh read builds, without reading the
    region's jobs, technicians and places again."""
    booked = session.execute(
        select(PlanBooking.revision, PlanBooking.job_id).where(
            PlanBooking.region_id == behind.region_id,
            PlanBooking.revision > behind.revision,
            PlanBooking.revision <= wanted,
        )
    ).all()
    if {revision for revision, _ in booked} != set(range(behind.revision + 1, wanted + 1)):
        return None
    jobs = {job_id for _, job_id in booked}
    if len(jobs) != len(booked) or not all(behind.holds_new(j) or behind.moves(j) for j in jobs):
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


# Bookings into a fork make the transaction's plan; it is kept once they have committed --------

_PENDING = "fieldplan.live_plans.pending"  # the transaction's fork, with its bookings
_UNFORKED = "fieldplan.live_plans.unforked"  # a booking of it was written otherwise
_BOOKED = "fieldplan.live_plans.booked"  # (region, job) of its bookings of jobs new to the plan
_WROTE = "fieldplan.live_plans.wrote"  # it wrote plan rows other than such bookings
_BOOKING = "fieldplan.live_plans.booking"  # inside `one_booking`: what that booking wrote
_PLAN_ROWS = (Plan, Route, Stop, Appointment, Job)


@dataclass(frozen=True)
class _Pending:
    engine: Engine
    key: _Key
    plan: Prepared


@dataclass
class _Writes:
    any: bool = False  # plan rows
    forked: bool = False  # into the transaction's fork (`booked_into`)
    new_jobs: list[tuple[int, int]] = field(default_factory=list)  # `record_booking`


@contextmanager
def one_booking(session: Session) -> Iterator[None]:
    """What the block writes is one booking. Booked into the transaction's fork
    (`booked_into`), it is in the plan the transaction will commit; written otherwise (its
    job read its own problem) no prepared plan holds the transaction's writes. A booking
    that fails leaves everything as it was (its rows go with its savepoint or transaction)."""
    before: _Pending | None = session.info.get(_PENDING)
    writes = session.info[_BOOKING] = _Writes()
    try:
        yield
        session.flush()
    except BaseException:
        _set_pending(session, before)
        raise
    finally:
        session.info.pop(_BOOKING, None)
    if not writes.any:
        return  # a replayed request
    if not writes.forked:
        _set_pending(session, None)
        session.info[_UNFORKED] = True
    if writes.new_jobs:
        session.info.setdefault(_BOOKED, []).extend(writes.new_jobs)
    else:
        session.info[_WROTE] = True


def _set_pending(session: Session, pending: _Pending | None) -> None:
    if pending is None:
        session.info.pop(_PENDING, None)
    else:
        session.info[_PENDING] = pending


def booked_into(
    session: Session,
    region: Region,
    first_day: date,
    days: int,
    today: date,
    base: Prepared,
    index: SlotIndex,
) -> None:
    """Say that this session's booking went into `index`, a fork of `base` (the committed
    plan before its lock, or its own fork with the bookings before): when the transaction
    commits at the revision its lock gave it, with nothing else written, that is the plan."""
    revision = locked_revision(session, region.id)
    engine = _engine(session)
    writes: _Writes | None = session.info.get(_BOOKING)
    own: _Pending | None = session.info.get(_PENDING)
    follows = own.plan is base if own is not None else base.revision + 1 == revision
    if engine is None or revision is None or writes is None or not follows:
        return  # `one_booking` finds it was not booked into a fork: no plan is kept
    key = _key(region.id, first_day, days, today, base.travel)
    # The fork's stops hold the promise; its problem must too, for the plan that catching
    # up on later bookings builds from it.
    where = {
        job: index.builder.routes[placed[0]].vehicle.id
        for job, placed in index.builder.placed.items()
        if job in index.promises
    }
    translation = _promised(base.translation, dict(index.promises), where, {})
    plan = Prepared(region.id, revision, translation, index, base.travel)
    session.info[_PENDING] = _Pending(engine, key, plan)
    writes.forked = True


def record_booking(session: Session, region_id: int, job_id: int) -> None:
    """Say that the booking `one_booking` is writing is a job's first promise, the job new
    to the plan (on no route from today on) or taken off a route of the booked days. A
    transaction whose writes were all such bookings is recorded as the revision its lock
    gave the region."""
    writes: _Writes | None = session.info.get(_BOOKING)
    if writes is not None:
        writes.new_jobs.append((region_id, job_id))


@event.listens_for(Session, "before_commit")
def _record(session: Session) -> None:
    """Record the transaction's bookings as the revision its lock gave the region, for other
    processes to catch up on, and keep its fork, when it wrote those bookings and nothing
    else. (A savepoint's release is no commit of the transaction.)"""
    if session.in_nested_transaction():
        return
    booked: list[tuple[int, int]] = session.info.get(_BOOKED, [])
    regions = {region_id for region_id, _ in booked}
    if session.info.get(_WROTE) or any(locked_again(session, r) for r in regions):
        session.info.pop(_PENDING, None)
        return
    for region_id in sorted(regions):
        revision = locked_revision(session, region_id)
        if revision is None:
            continue
        session.execute(
            delete(PlanBooking).where(
                PlanBooking.region_id == region_id,
                PlanBooking.revision <= revision - KEPT_BOOKINGS,
            )
        )
        session.add_all(
            PlanBooking(region_id=region_id, revision=revision, job_id=job)
            for r, job in booked
            if r == region_id
        )


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """The transaction's fork is the plan of the revision it committed (a savepoint's
    release commits nothing yet)."""
    if session.in_nested_transaction():
        return
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if pending is not None:
        _keep(pending.engine, pending.key, pending.plan)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    """Whatever was not committed (a rollback, a session closed mid-transaction) is gone."""
    if transaction.parent is None:
        for key in (_PENDING, _UNFORKED, _BOOKED, _WROTE):
            session.info.pop(key, None)


@event.listens_for(Session, "before_flush")
def _writing(session: Session, *_: object) -> None:
    """Remember, until the transaction ends, that it wrote what a prepared plan is read
    from (the gate forgets what it judged once it has judged it); inside `one_booking`, the
    booking says what its writes were."""
    if any(
        isinstance(instance, _PLAN_ROWS)
        for instance in (*session.new, *session.dirty, *session.deleted)
    ):
        writes: _Writes | None = session.info.get(_BOOKING)
        if writes is not None:
            writes.any = True
        else:
            session.info[_WROTE] = True
