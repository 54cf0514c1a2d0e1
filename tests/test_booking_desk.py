"""Bookings taken together (fieldplan.booking_desk): those that wait for the region's lock in
one process are booked in one transaction, each as it would have been alone."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fieldplan import booking, booking_desk, plan_gate
from fieldplan.appointments import AgreedVia, Appointment, AppointmentStatus
from fieldplan.booking import AppointmentError
from fieldplan.db import reading, session_factory, unit_of_work
from fieldplan.jobs import Job
from fieldplan.live_plans import PlanBooking
from fieldplan.plan_gate import PlanRefused
from fieldplan.regions import Region, lock_region
from tests import test_live_plans as live
from tests.test_booking import MONDAY, RULES, SUNDAY, TRAVEL, at, violations
from tests.test_live_plans import Changed, _fresh_index, _prepared, _routes, _tiny

# The fixtures of the prepared plans' tests: a database of its own, the plans read.
engine = live.engine
reads = live.reads

Outcome = int | Exception  # the appointment booked, or why not


def _asked(hour: int) -> booking.Asked:
    start = at(MONDAY, hour)
    return booking.Asked(start, start + timedelta(hours=2), "customer:test", AgreedVia.SELF_SERVICE)


def _revision(engine: Engine, region_id: int) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(Region.revision).where(Region.id == region_id)) or 0)


def _book_at_once(engine: Engine, region_id: int, asks: list[tuple[int, int]]) -> list[Outcome]:
    """Book (job, hour on Monday) from a thread each, as the API's requests do, while another
    transaction holds the region's lock until every one of them waits at the desk."""
    sessions = session_factory(engine)
    outcomes: list[Outcome] = [RuntimeError("not answered")] * len(asks)

    def client(k: int, job_id: int, hour: int) -> None:
        with unit_of_work(sessions) as session:
            reading(session)
            job = session.get_one(Job, job_id)
            try:
                appointment, _ = booking_desk.book(
                    session, job, _asked(hour), travel=TRAVEL, today=SUNDAY, rules=RULES
                )
                outcomes[k] = appointment.id
            except Exception as refused:
                outcomes[k] = refused

    holder = sessions()
    lock_region(holder, region_id)
    desk = booking_desk._desk(engine, region_id)
    threads = [
        threading.Thread(target=client, args=(k, job_id, hour))
        for k, (job_id, hour) in enumerate(asks)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(desk.waiting) < len(asks) and time.monotonic() < deadline:
        time.sleep(0.01)
    waited = len(desk.waiting)
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(60)
    assert waited == len(asks)  # all of them came while the lock was held
    return outcomes


def test_bookings_that_wait_together_are_booked_in_one_transaction(
    engine: Engine, reads: list[int]
) -> None:
    region_id, jobs = _tiny(engine)
    with unit_of_work(session_factory(engine)) as session:
        before = _prepared(session, region_id)
    outcomes = _book_at_once(engine, region_id, [(jobs[k], 9 + 2 * k) for k in range(4)])
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert _revision(engine, region_id) == before.revision + 1  # one lock, one commit
    with unit_of_work(session_factory(engine)) as session:
        promised = {
            a.job_id: a.window_start.astimezone(at(MONDAY, 9).tzinfo).hour
            for a in session.scalars(select(Appointment).where(Appointment.id.in_(outcomes)))
            if a.status == AppointmentStatus.PROMISED
        }
        recorded = set(
            session.scalars(
                select(PlanBooking.job_id).where(PlanBooking.revision == before.revision + 1)
            )
        )
        after = _prepared(session, region_id)
        afresh = _fresh_index(session, region_id)
        region = session.get_one(Region, region_id)
        assert violations(session, region) == []
    assert promised == {jobs[k]: 9 + 2 * k for k in range(4)}
    assert recorded == set(jobs[:4])  # another process catches up on all four
    # Each booked into the plan the ones before it left, and that plan is kept: nothing read.
    assert reads == [before.revision]
    assert after.revision == before.revision + 1
    assert _routes(after.index) == _routes(afresh)


def test_a_refused_booking_of_a_batch_is_refused_alone(engine: Engine) -> None:
    region_id, jobs = _tiny(engine)
    revision = _revision(engine, region_id)
    outcomes = _book_at_once(engine, region_id, [(jobs[0], 9), (jobs[0], 11), (jobs[1], 13)])
    first, second, other = outcomes
    assert isinstance(other, int)
    # The same job twice: whichever was taken first is booked, the other refused.
    assert sorted(type(o).__name__ for o in (first, second)) == ["AppointmentError", "int"]
    assert any(isinstance(o, AppointmentError) and "already" in str(o) for o in (first, second))
    assert _revision(engine, region_id) == revision + 1
    with unit_of_work(session_factory(engine)) as session:
        live = session.scalars(
            select(Appointment.job_id).where(Appointment.status == AppointmentStatus.PROMISED)
        ).all()
    assert sorted(live) == sorted([jobs[0], jobs[1]])


def test_a_batch_the_gate_refuses_is_booked_again_one_by_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One booking's fault must be its own 409: the batch is tried again a booking at a time
    (here the gate refuses the first check it makes, the batch's)."""
    region_id, jobs = _tiny(engine)
    revision = _revision(engine, region_id)
    verify = plan_gate.verify
    checks: list[int] = []

    def refuse_first(session: Session) -> None:
        checks.append(len(checks))
        if len(checks) == 1:
            raise PlanRefused([])
        verify(session)

    monkeypatch.setattr(plan_gate, "verify", refuse_first)
    outcomes = _book_at_once(engine, region_id, [(jobs[k], 9 + 2 * k) for k in range(3)])
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert len(checks) == 1 + 3
    assert _revision(engine, region_id) == revision + 3  # one transaction each


def test_a_fork_is_kept_only_when_its_transaction_commits(engine: Engine) -> None:
    """Bookings in savepoints (as a batch makes them): a savepoint's release is no commit,
    so a transaction that then rolls back leaves the prepared plan as it was."""
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        before = _prepared(session, region_id)
    with pytest.raises(Changed), unit_of_work(sessions) as session:  # noqa: PT012
        lock_region(session, region_id)
        for job_id, hour in ((jobs[0], 9), (jobs[1], 11)):
            with session.begin_nested():
                job = session.get_one(Job, job_id)
                booking.book_locked(
                    session, job, _asked(hour), travel=TRAVEL, today=SUNDAY, rules=RULES
                )
        raise Changed
    with unit_of_work(sessions) as session:
        now = _prepared(session, region_id)
        assert session.scalars(select(PlanBooking)).all() == []
    assert now is before
    assert not now.index.is_placed(str(jobs[0]))


def test_the_request_reads_its_booking_without_waiting_for_the_write_lock_again(
    engine: Engine,
) -> None:
    """Once the desk has committed the booking, the request's session only reads: another
    writer takes the region's lock meanwhile without waiting (on SQLite a second turn at the
    write lock would queue every booking behind all the others once more)."""
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    locked = threading.Event()

    def writer() -> None:
        with unit_of_work(sessions) as other:
            lock_region(other, region_id)
            locked.set()

    with unit_of_work(sessions) as session:
        reading(session)
        job = session.get_one(Job, jobs[0])
        appointment, made = booking_desk.book(
            session, job, _asked(9), travel=TRAVEL, today=SUNDAY, rules=RULES
        )
        assert made
        assert appointment.status == AppointmentStatus.PROMISED
        thread = threading.Thread(target=writer)
        thread.start()
        took_it = locked.wait(10)
    thread.join(60)
    assert took_it
