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
- any other write (another process's, a move, a re-plan, a report) leaves a revision this
  process did not prepare, and the next request reads the region afresh.

Only jobs new to the plan go this way: a job on a stored route, planned on another day or
promised already is placed by the slower path that takes it out first. And what a booking
writes is judged by the plan gate against the database like every other write: a prepared
plan can make a booking fast, never let it break a promise.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from fieldplan import durations, plan_gate
from fieldplan.jobs import Job
from fieldplan.planning import PLANNABLE, Translation, build_problem, horizon_for, stored_plan
from fieldplan.regions import Region, locked_revision
from fieldplan.travel import TravelTimes
from optimizer.slots import SlotIndex

# Prepared plans per database: a region's offer horizon from today, now and then another
# period's or a longer horizon's. Kept few: each holds the region's whole problem.
KEPT_PER_DATABASE = 4
# A prepared plan holds every plannable job of the region and its travel matrices (two
# places-squared arrays of 8-byte numbers: 19 MB at this many jobs). Beyond it, offers and
# bookings read the problem of the job at hand, as they did before prepared plans: reading
# the whole region again after every write would cost more than it saves.
MAX_PREPARED_JOBS = 1000


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

    revision: int
    translation: Translation
    index: SlotIndex
    travel: TravelTimes

    def holds_new(self, job_id: int) -> bool:
        """Whether the job is in this problem and new to the plan: on no route (of these days
        or another's from today on) and promised nowhere."""
        key = str(job_id)
        translation = self.translation
        return (
            key in translation.jobs
            and not self.index.is_placed(key)
            and job_id not in translation.planned_elsewhere
            and job_id not in translation.promised
            and job_id not in translation.held
        )


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
    prepared; None when this session has already written plans or promises (its own changes
    are not in any prepared plan), and without `read` when none is prepared at its revision
    (the whole region's problem costs more to read than one job's: a booking holding the lock
    reads the smaller one, and the offers after it prepare the plan again)."""
    engine = _engine(session)
    if engine is None or any(plan_gate.context(session).touched.values()):
        return None
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
    with Session(bind=session.connection(), expire_on_commit=False, autoflush=False) as reader:
        region = reader.get_one(Region, region_id)
        translation = build_problem(
            reader, region, horizon_for(region, first_day, days), travel, today=today
        )
        index = SlotIndex(translation.problem, stored_plan(reader, region, translation))
    return Prepared(revision, translation, index, travel)


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


def forget(engine: Engine) -> None:
    """Drop what is prepared for a database (tests that rewrite it behind the revision)."""
    with _guard:
        _plans.pop(engine, None)


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
    plan = Prepared(revision, base.translation, index, base.travel)
    session.info.setdefault(_PENDING, []).append(_Pending(engine, key, plan))


@event.listens_for(Session, "before_commit")
def _still_the_plan(session: Session) -> None:
    """A transaction that went on to lock the region again wrote more than its booking:
    what it commits is not the fork."""
    pending: list[_Pending] = session.info.get(_PENDING, [])
    session.info[_PENDING] = [
        p
        for p in pending
        if locked_revision(session, p.key.region_id) == p.plan.revision
        and sum(1 for q in pending if q.key.region_id == p.key.region_id) == 1
    ]


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for pending in session.info.pop(_PENDING, []):
        _keep(pending.engine, pending.key, pending.plan)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)
