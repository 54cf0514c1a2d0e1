"""The region's prepared plan (fieldplan.live_plans): offers and bookings of jobs new to the
plan answer from it, and it is never the plan of a revision it does not hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import optimizer
from fieldplan import live_plans
from fieldplan.appointments import Appointment
from fieldplan.booking import SlotTaken, first_offer_day, offer_windows
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.jobs import Job, JobDependency, JobStatus
from fieldplan.migrate import upgrade
from fieldplan.optimisation import plan_region
from fieldplan.plan_gate import PlanRefused
from fieldplan.planning import build_problem, horizon_for, stored_plan
from fieldplan.regions import Region, lock_region, while_unlocked
from optimizer.slots import SlotIndex
from tests.conftest import BACKENDS, empty_database
from tests.test_booking import MONDAY, RULES, SUNDAY, TRAVEL, at, book, cancel, tiny_region

FIRST = first_offer_day(SUNDAY)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own whose sessions commit, as the API's do."""
    with empty_database(request.param, tmp_path) as url:
        made = make_engine(url)
        upgrade(made)
        try:
            yield made
        finally:
            made.dispose()


class Changed(RuntimeError):
    """Anything after a booking that ends its transaction in a rollback."""


def _book_and_roll_back(engine: Engine, *bookings: tuple[int, int]) -> None:
    """Book (job, hour on Monday) each in one transaction, then let it roll back."""
    with pytest.raises(Changed), unit_of_work(session_factory(engine)) as session:  # noqa: PT012
        for job_id, hour in bookings:
            book(session, session.get_one(Job, job_id), at(MONDAY, hour))
        raise Changed


@pytest.fixture
def other(engine: Engine) -> Iterator[Engine]:
    """Another API process on the same database: prepared plans of its own."""
    made = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        yield made
    finally:
        made.dispose()


def _tiny(engine: Engine, jobs: int = 6) -> tuple[int, list[int]]:
    with unit_of_work(session_factory(engine)) as session:
        region, made = tiny_region(session, jobs)
        return region.id, [j.id for j in made]


def _prepared(session: Session, region_id: int) -> live_plans.Prepared:
    region = session.get_one(Region, region_id)
    found = live_plans.prepared(session, region, FIRST, RULES.offer_days, TRAVEL, SUNDAY)
    assert found is not None
    return found


def _routes(index: SlotIndex) -> list[tuple[str, list[tuple[str | None, int]]]]:
    """Each route as (technician-day, [(job, start)]): what a plan promises and when."""
    return sorted(
        (r.technician_day, [(v.job_id, v.start_s) for v in r.visits])
        for r in index.plan().routes
        if r.visits
    )


def _fresh_index(session: Session, region_id: int) -> SlotIndex:
    region = session.get_one(Region, region_id)
    translation = build_problem(
        session, region, horizon_for(region, FIRST, RULES.offer_days), TRAVEL, today=SUNDAY
    )
    return SlotIndex(translation.problem, stored_plan(session, region, translation))


def test_offers_from_the_prepared_plan_are_those_of_a_plan_read_afresh(engine: Engine) -> None:
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    for k, job_id in enumerate(jobs[:3]):
        with unit_of_work(sessions) as session:
            book(session, session.get_one(Job, job_id), at(MONDAY, 8 + 2 * k))
    with unit_of_work(sessions) as session:
        prepared = _prepared(session, region_id)
        offered = offer_windows(
            session, session.get_one(Job, jobs[3]), TRAVEL, today=SUNDAY, rules=RULES
        )
    # A session inside a transaction someone else holds never uses prepared plans: it reads.
    with engine.connect() as connection, connection.begin():
        outside = Session(bind=connection)
        assert (
            live_plans.prepared(
                outside, outside.get_one(Region, region_id), FIRST, 5, TRAVEL, SUNDAY
            )
            is None
        )
        afresh = offer_windows(
            outside, outside.get_one(Job, jobs[3]), TRAVEL, today=SUNDAY, rules=RULES
        )
        outside.close()
    assert offered.choices
    assert offered == afresh
    assert sum(1 for _, visits in _routes(prepared.index) for job, _ in visits if job) == 3


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The revisions at which plans were read from the database."""
    done: list[int] = []
    read = live_plans._read

    def counted(session: Session, revision: int, *args: object) -> live_plans.Prepared:
        done.append(revision)
        return read(session, revision, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(live_plans, "_read", counted)
    return done


def test_a_booking_leaves_the_plan_of_the_revision_it_wrote_prepared(
    engine: Engine, reads: list[int]
) -> None:
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        before = _prepared(session, region_id)
    with unit_of_work(sessions) as session:
        book(session, session.get_one(Job, jobs[0]), at(MONDAY, 10))
    with unit_of_work(sessions) as session:
        after = _prepared(session, region_id)
    assert reads == [before.revision]  # the booking and the next request read nothing
    with unit_of_work(sessions) as session:
        revision = session.scalar(select(Region.revision).where(Region.id == region_id))
        afresh = _fresh_index(session, region_id)
    assert after.revision == before.revision + 1 == revision
    assert after.index is not before.index  # the booking's fork, not read again
    assert _routes(after.index) == _routes(afresh)
    assert after.index.is_placed(str(jobs[0]))
    assert not before.index.is_placed(str(jobs[0]))  # offers meanwhile saw the plan as it was


def _offers(session: Session, job_id: int) -> list[tuple[str, int]]:
    found = offer_windows(session, session.get_one(Job, job_id), TRAVEL, today=SUNDAY, rules=RULES)
    return [(c.start.isoformat(), c.added_travel_min) for c in found.choices]


def _offers_afresh(engine: Engine, job_id: int) -> list[tuple[str, int]]:
    """The offers of a plan read for the job alone (a session inside an outside transaction
    never uses prepared plans)."""
    with engine.connect() as connection, connection.begin():
        outside = Session(bind=connection)
        try:
            return _offers(outside, job_id)
        finally:
            outside.close()


def test_another_process_booking_is_caught_up_on_without_reading_the_region(
    engine: Engine, other: Engine, reads: list[int]
) -> None:
    region_id, jobs = _tiny(engine)
    with unit_of_work(session_factory(engine)) as session:
        mine = _prepared(session, region_id)
    for k, job_id in enumerate(jobs[:2]):
        with unit_of_work(session_factory(other)) as session:
            book(session, session.get_one(Job, job_id), at(MONDAY, 9 + 3 * k))
    with unit_of_work(session_factory(engine)) as session:
        again = _prepared(session, region_id)
        offered = _offers(session, jobs[2])
        afresh = _fresh_index(session, region_id)
    assert again.revision == mine.revision + 2
    assert reads == [mine.revision]  # two recorded bookings: caught up on, not read
    assert _routes(again.index) == _routes(afresh)
    assert offered == _offers_afresh(engine, jobs[2])
    assert {int(j) for j in map(str, jobs[:2])} <= again.translation.promised
    with unit_of_work(session_factory(engine)) as session:
        # This process's next booking starts from what the other one wrote.
        book(session, session.get_one(Job, jobs[2]), at(MONDAY, 9))
    with unit_of_work(session_factory(engine)) as session:
        placed = {
            job for _, visits in _routes(_fresh_index(session, region_id)) for job, _ in visits
        }
    assert {str(j) for j in jobs[:3]} <= placed


def test_a_write_that_is_not_a_recorded_booking_has_the_region_read_afresh(
    engine: Engine, other: Engine, reads: list[int]
) -> None:
    region_id, jobs = _tiny(engine)
    with unit_of_work(session_factory(other)) as session:
        booked = book(session, session.get_one(Job, jobs[0]), at(MONDAY, 9))
    with unit_of_work(session_factory(engine)) as session:
        mine = _prepared(session, region_id)
        assert mine.index.is_placed(str(jobs[0]))
    with unit_of_work(session_factory(other)) as session:
        cancel(session, session.get_one(Appointment, booked.id))
    with unit_of_work(session_factory(engine)) as session:
        again = _prepared(session, region_id)
    assert reads == [mine.revision, again.revision]
    assert not again.index.is_placed(str(jobs[0]))
    assert again.revision == mine.revision + 1


def test_a_booking_that_rolls_back_leaves_the_prepared_plan_as_it_was(engine: Engine) -> None:
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        before = _prepared(session, region_id)
    _book_and_roll_back(engine, (jobs[0], 10))
    with unit_of_work(sessions) as session:
        now = _prepared(session, region_id)
    assert now is before
    assert not now.index.is_placed(str(jobs[0]))


def test_a_refused_plan_is_not_kept_as_prepared(engine: Engine) -> None:
    """The gate has the last word: a booking whose plan it refuses leaves nothing behind,
    in the database or prepared."""
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        first = book(session, session.get_one(Job, jobs[0]), at(MONDAY, 10))
        first_id = first.id
    with unit_of_work(sessions) as session:
        before = _prepared(session, region_id)

    def book_and_break_a_promise() -> None:
        with unit_of_work(sessions) as session:
            book(session, session.get_one(Job, jobs[1]), at(MONDAY, 12))
            # A promise broken behind the booking's back: its window moves off its stop.
            promised = session.get_one(Appointment, first_id)
            promised.window_start += timedelta(hours=4)
            promised.window_end += timedelta(hours=4)

    with pytest.raises(PlanRefused):
        book_and_break_a_promise()
    with unit_of_work(sessions) as session:
        now = _prepared(session, region_id)
    assert now is before
    assert not now.index.is_placed(str(jobs[1]))


def test_a_region_too_large_to_keep_is_read_per_job(
    engine: Engine, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `MAX_PREPARED_JOBS` nothing is prepared: offers and bookings read the job's own
    problem, and still book."""
    region_id, jobs = _tiny(engine)
    monkeypatch.setattr(live_plans, "MAX_PREPARED_JOBS", len(jobs) - 1)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        region = session.get_one(Region, region_id)
        assert live_plans.prepared(session, region, FIRST, 5, TRAVEL, SUNDAY) is None
        offered = offer_windows(
            session, session.get_one(Job, jobs[0]), TRAVEL, today=SUNDAY, rules=RULES
        )
    assert offered.choices
    with unit_of_work(sessions) as session:
        book(session, session.get_one(Job, jobs[0]), offered.choices[0].start)
    assert reads == []


def test_a_job_no_longer_plannable_is_not_booked_from_the_prepared_plan(engine: Engine) -> None:
    """A change of a job's status that took no lock leaves the revision where it was; the
    job's own row still decides, so the prepared plan cannot book it."""
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        prepared = _prepared(session, region_id)
        assert prepared.holds_new(jobs[0])
        session.get_one(Job, jobs[0]).status = JobStatus.CANCELLED
    with pytest.raises(SlotTaken), unit_of_work(sessions) as session:
        book(session, session.get_one(Job, jobs[0]), at(MONDAY, 10))
    with unit_of_work(sessions) as session:
        assert _prepared(session, region_id) is prepared


def test_jobs_the_prepared_plan_cannot_place_get_the_answer_of_their_own_problem(
    engine: Engine, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job the region's problem leaves out answers with its reason, and one waiting for a
    prerequisite not yet planned with the reason its own problem gives (the region's
    problem holds the prerequisite, a job's own does not): both say what they said before
    prepared plans, and neither reads a problem of its own."""
    from fieldplan import booking

    own_problems: list[object] = []
    build = booking.build_problem

    def counted(*args: Any, **kwargs: Any) -> Any:
        own_problems.append(kwargs.get("unpromised"))
        return build(*args, **kwargs)

    monkeypatch.setattr(booking, "build_problem", counted)
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        session.get_one(Job, jobs[0]).days = 9  # longer than the five days offered
        session.add(JobDependency(job_id=jobs[1], prerequisite_id=jobs[2]))
    with unit_of_work(sessions) as session:
        prepared = _prepared(session, region_id)
        too_long = offer_windows(
            session, session.get_one(Job, jobs[0]), TRAVEL, today=SUNDAY, rules=RULES
        )
        waiting = offer_windows(
            session, session.get_one(Job, jobs[1]), TRAVEL, today=SUNDAY, rules=RULES
        )
    assert prepared.left_out(jobs[0]) is not None
    assert prepared.holds_new(jobs[1])
    assert not prepared.places(jobs[1])
    assert prepared.waits(jobs[1]) == waiting.reason
    assert own_problems == []
    with engine.connect() as connection, connection.begin():
        outside = Session(bind=connection)
        assert too_long == offer_windows(
            outside, outside.get_one(Job, jobs[0]), TRAVEL, today=SUNDAY, rules=RULES
        )
        assert waiting == offer_windows(
            outside, outside.get_one(Job, jobs[1]), TRAVEL, today=SUNDAY, rules=RULES
        )
        outside.close()
    assert not too_long.choices
    assert too_long.reason is not None
    assert not waiting.choices
    assert waiting.reason is not None
    assert reads == [prepared.revision]


def test_an_offer_lets_the_booking_holding_the_lock_finish_first(engine: Engine) -> None:
    region_id, _ = _tiny(engine, jobs=1)
    holding, waited = threading.Event(), threading.Event()
    finished: list[float] = []

    def offer() -> None:
        holding.wait(5)
        while_unlocked(10)
        finished.append(time.monotonic())
        waited.set()

    thread = threading.Thread(target=offer)
    thread.start()
    with unit_of_work(session_factory(engine)) as session:
        lock_region(session, region_id)
        holding.set()
        assert not waited.wait(0.3)  # the offer waits while the lock is held
        committed = time.monotonic()
    thread.join(5)
    assert finished
    assert finished[0] >= committed


def test_a_session_closed_while_holding_the_lock_holds_up_no_offer(engine: Engine) -> None:
    """However a transaction ends (commit, rollback, or its session closed half-way), the
    process no longer counts it as holding the region's lock."""
    region_id, _ = _tiny(engine, jobs=1)
    for end in ("commit", "rollback", "close"):
        session = session_factory(engine)()
        lock_region(session, region_id)
        getattr(session, end)()
        session.close()
        started = time.monotonic()
        while_unlocked(2)
        assert time.monotonic() - started < 1, end


def test_a_later_period_catches_up_on_a_booking_before_it(
    engine: Engine, other: Engine, reads: list[int]
) -> None:
    """Looking further ahead for first dates uses the later period's prepared plan; a
    booking into the first period leaves that problem (planned elsewhere), as a fresh read
    of the later period would have it, without reading the region again."""
    region_id, jobs = _tiny(engine)
    later = MONDAY + timedelta(days=7)
    with unit_of_work(session_factory(engine)) as session:
        region = session.get_one(Region, region_id)
        before = live_plans.prepared(session, region, later, 5, TRAVEL, SUNDAY)
        assert before is not None
        assert before.holds_new(jobs[0])
    with unit_of_work(session_factory(other)) as session:
        book(session, session.get_one(Job, jobs[0]), at(MONDAY, 9))
    with unit_of_work(session_factory(engine)) as session:
        region = session.get_one(Region, region_id)
        now = live_plans.prepared(session, region, later, 5, TRAVEL, SUNDAY)
        afresh = build_problem(session, region, horizon_for(region, later, 5), TRAVEL, today=SUNDAY)
    assert now is not None
    assert reads == [before.revision]
    assert not now.holds_new(jobs[0])
    assert now.translation.left_out == afresh.left_out
    assert now.translation.planned_elsewhere == afresh.planned_elsewhere
    assert [j.id for j in now.translation.problem.jobs] == [j.id for j in afresh.problem.jobs]


def test_catching_up_after_a_booking_of_its_own_builds_the_problem_a_fresh_read_would(
    engine: Engine, other: Engine, reads: list[int]
) -> None:
    """This process books (its fork becomes the plan), another process books, this one
    catches up: every job of the problem, the first booking's too, is as a fresh read has it
    (its promise, where it is), so later bookings keep that promise."""
    region_id, jobs = _tiny(engine)

    def seen(problem: optimizer.Problem) -> list[tuple[object, ...]]:
        return [(j.id, j.windows, j.promised, j.previous_technician_day) for j in problem.jobs]

    with unit_of_work(session_factory(engine)) as session:
        _prepared(session, region_id)
    with unit_of_work(session_factory(engine)) as session:
        book(session, session.get_one(Job, jobs[0]), at(MONDAY, 9))
    with unit_of_work(session_factory(other)) as session:
        book(session, session.get_one(Job, jobs[1]), at(MONDAY, 13))
    with unit_of_work(session_factory(engine)) as session:
        caught_up = _prepared(session, region_id)
        region = session.get_one(Region, region_id)
        afresh = build_problem(
            session, region, horizon_for(region, FIRST, RULES.offer_days), TRAVEL, today=SUNDAY
        )
    assert len(reads) == 1
    assert seen(caught_up.translation.problem) == seen(afresh.problem)
    assert caught_up.translation.promised == afresh.promised


def test_what_a_transaction_wrote_is_never_kept_as_a_revisions_plan(
    engine: Engine, reads: list[int]
) -> None:
    """A transaction that books twice reads its own first booking when it places the
    second: that plan is no committed revision's, so it is not kept (had it been, the
    revision the rollback freed would next be another booking's, and its plan wrong)."""
    region_id, jobs = _tiny(engine)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        before = _prepared(session, region_id)
    _book_and_roll_back(engine, (jobs[0], 9), (jobs[1], 13))
    with unit_of_work(sessions) as session:
        book(session, session.get_one(Job, jobs[2]), at(MONDAY, 11))
    with unit_of_work(sessions) as session:
        now = _prepared(session, region_id)
        afresh = _fresh_index(session, region_id)
    assert now.revision == before.revision + 1
    assert _routes(now.index) == _routes(afresh)
    placed = {job for _, visits in _routes(now.index) for job, _ in visits if job}
    assert placed == {str(jobs[2])}


def test_jobs_a_plan_put_on_routes_are_offered_booked_and_caught_up_on_without_reading(
    engine: Engine, other: Engine, reads: list[int]
) -> None:
    """Planning the region puts jobs on routes before any customer has picked a window; a
    booking takes such a job off its route in a fork of the prepared plan. The offers are
    those of the job's own problem, two processes booking in turn catch up on each other
    without reading the region, and what they keep is what a fresh read gives."""
    region_id, jobs = _tiny(engine)
    with unit_of_work(session_factory(engine)) as session:
        plan_region(
            session,
            session.get_one(Region, region_id),
            MONDAY,
            1,
            TRAVEL,
            optimizer.Limits(time_limit_s=0.5),
            today=SUNDAY,
        )
    with unit_of_work(session_factory(engine)) as session:
        mine = _prepared(session, region_id)
        offered = _offers(session, jobs[0])
    with unit_of_work(session_factory(other)) as session:
        _prepared(session, region_id)
    assert all(mine.moves(j) for j in jobs)  # every job on the plan's route, none promised
    assert offered
    assert offered == _offers_afresh(engine, jobs[0])
    with unit_of_work(session_factory(engine)) as session:
        book(session, session.get_one(Job, jobs[0]), at(MONDAY, 14))
    with unit_of_work(session_factory(other)) as session:
        book(session, session.get_one(Job, jobs[1]), at(MONDAY, 9))
    with unit_of_work(session_factory(other)) as session:
        theirs = _offers(session, jobs[2])
    assert theirs == _offers_afresh(other, jobs[2])
    with unit_of_work(session_factory(engine)) as session:
        caught_up = _prepared(session, region_id)
        afresh = _fresh_index(session, region_id)
        offered_now = _offers(session, jobs[3])
    assert reads == [mine.revision, mine.revision]  # once per process, before the bookings
    assert caught_up.revision == mine.revision + 2
    assert _routes(caught_up.index) == _routes(afresh)
    assert offered_now == _offers_afresh(engine, jobs[3])
    starts = {job: start for _, visits in _routes(afresh) for job, start in visits}
    assert 14 * 3600 <= starts[str(jobs[0])] % 86400 <= 16 * 3600  # its window, local time
    assert {str(j) for j in jobs} <= set(starts)  # nothing fell off the route
