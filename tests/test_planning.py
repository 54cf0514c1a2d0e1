"""The translation from the database to the engine and back."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

import optimizer
from fieldplan import importing
from fieldplan.catalogue import JobKind
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import Job, JobStatus
from fieldplan.optimisation import plan_region
from fieldplan.planning import build_problem, horizon_for
from fieldplan.plans import Plan
from fieldplan.regions import Region
from fieldplan.travel import GeodesicTravelTimes
from tests.conftest import SAMPLE, TODAY

MONDAY = date(2026, 11, 23)


def test_the_sample_week_translates_into_a_valid_engine_problem(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    rows = importing.read_rows(SAMPLE / "orders.csv")[:120]
    importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
    translation = build_problem(
        session, region, horizon_for(region, MONDAY, 5), GeodesicTravelTimes(), today=TODAY
    )
    problem = translation.problem
    assert len(problem.technician_days) >= 16 * 4  # the four-day weeks included
    assert {v.day for v in problem.technician_days} == {0, 1, 2, 3, 4}
    assert any(j.needs_pickup and j.pickup_sources for j in problem.jobs)
    assert any(j.crew_size == 2 for j in problem.jobs)
    plan = optimizer.solve(problem, optimizer.Limits(time_limit_s=1))
    assert optimizer.check(problem, plan) == []


def test_an_overdue_repair_is_planned_not_left_out(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    rows = importing.read_rows(SAMPLE / "orders.csv")
    repair_rows = [r for r in rows if r.values["services"] == "repair"][:1]
    importing.import_rows(session, repair_rows, region=region, gazetteer=gazetteer, today=TODAY)
    repair = session.scalars(select(Job).where(Job.kind == JobKind.REPAIR)).one()
    repair.latest_date = MONDAY - timedelta(days=3)
    session.flush()
    saved = plan_region(
        session,
        region,
        MONDAY,
        2,
        GeodesicTravelTimes(),
        optimizer.Limits(time_limit_s=0.5),
        today=TODAY,
    )
    assert repair.id not in saved.unplanned
    assert repair.status == JobStatus.PLANNED


def test_each_replan_is_a_new_version_of_the_day(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    rows = importing.read_rows(SAMPLE / "orders.csv")[:20]
    importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
    for _ in range(2):
        plan_region(
            session,
            region,
            MONDAY,
            1,
            GeodesicTravelTimes(),
            optimizer.Limits(time_limit_s=0.3),
            today=TODAY,
        )
    versions = session.scalars(select(Plan.version).where(Plan.day == MONDAY)).all()
    assert sorted(versions) == [1, 2]


def test_replanning_one_week_leaves_the_next_weeks_plan_alone(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    rows = importing.read_rows(SAMPLE / "orders.csv")[:60]
    importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
    limits = optimizer.Limits(time_limit_s=0.3)
    later = plan_region(
        session, region, MONDAY + timedelta(days=7), 1, GeodesicTravelTimes(), limits, today=TODAY
    )
    next_monday_jobs = {int(j) for j in later.engine_plan.job_visits()}
    assert next_monday_jobs
    this_week = plan_region(session, region, MONDAY, 1, GeodesicTravelTimes(), limits, today=TODAY)
    assert next_monday_jobs.isdisjoint(int(j) for j in this_week.engine_plan.job_visits())
    # Planned on another day is neither planned here nor "unplanned" on this day's list.
    assert next_monday_jobs.isdisjoint(this_week.unplanned)
    with session.no_autoflush:
        statuses = {session.get_one(Job, j).status for j in next_monday_jobs}
    assert statuses == {JobStatus.PLANNED}


def test_a_job_that_leaves_the_plan_goes_back_to_open(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    rows = importing.read_rows(SAMPLE / "orders.csv")[:30]
    importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
    limits = optimizer.Limits(time_limit_s=0.3)
    first = plan_region(session, region, MONDAY, 1, GeodesicTravelTimes(), limits, today=TODAY)
    planned = [session.get_one(Job, int(j)) for j in first.engine_plan.job_visits()]
    assert all(job.status == JobStatus.PLANNED for job in planned)
    for technician in region_technicians(session, region):
        technician.shifts = [s for s in technician.shifts if s.weekday != MONDAY.weekday()]
    session.flush()
    plan_region(session, region, MONDAY, 1, GeodesicTravelTimes(), limits, today=TODAY)
    assert all(job.status == JobStatus.NEW for job in planned)


def region_technicians(session: Session, region: Region) -> list:  # type: ignore[type-arg]
    from fieldplan.technicians import Technician

    return list(session.scalars(select(Technician).where(Technician.region_id == region.id)))


def test_a_replan_knows_where_each_job_was_so_moving_it_costs(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    rows = importing.read_rows(SAMPLE / "orders.csv")[:30]
    importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
    limits = optimizer.Limits(time_limit_s=0.3)
    first = plan_region(session, region, MONDAY, 1, GeodesicTravelTimes(), limits, today=TODAY)
    where = {
        job_id: next(vehicle for vehicle, visit in served if not visit.second_person)
        for job_id, served in first.engine_plan.job_visits().items()
    }
    translation = build_problem(
        session, region, horizon_for(region, MONDAY, 1), GeodesicTravelTimes(), today=TODAY
    )
    previous = {j.id: j.previous_technician_day for j in translation.problem.jobs}
    assert where
    # The engine's stability weight (Weights.moved_from_previous) now applies to every job.
    assert {job_id: previous[job_id] for job_id in where} == where
    assert all(previous[j] is None for j in previous if j not in where)


def test_placing_one_job_reads_less_and_offers_at_least_the_same(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    """A booking's problem holds only the stored routes' jobs and the job being placed. It
    offers every window the whole problem offers; it may offer more, as a measuring that no
    planned job waits for may shift in its day (the whole problem holds every prerequisite of
    a job it sees at its time), and what it books keeps every rule."""
    from fieldplan.planning import stored_plan
    from optimizer.slots import SlotIndex, day_grid, without_job

    rows = importing.read_rows(SAMPLE / "orders.csv")[:120]
    importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
    travel = GeodesicTravelTimes()
    plan_region(session, region, MONDAY, 2, travel, optimizer.Limits(time_limit_s=0.5), today=TODAY)
    horizon = horizon_for(region, MONDAY, 3)
    grid = day_grid(range(3), 8 * 3600, 17 * 3600)
    candidates = session.scalars(
        select(Job.id).where(Job.status.in_([JobStatus.NEW, JobStatus.PLANNED])).order_by(Job.id)
    ).all()

    def index(job_id: int, **narrow: object) -> tuple[SlotIndex, optimizer.Job | None]:
        translation = build_problem(
            session, region, horizon, travel, unpromised=job_id, today=TODAY, **narrow
        )
        job = next((j for j in translation.problem.jobs if j.id == str(job_id)), None)
        stored, _ = without_job(stored_plan(session, region, translation), str(job_id))
        return SlotIndex(translation.problem, stored), job

    compared = booked = 0
    for job_id in candidates[::10]:
        whole, job = index(job_id)
        narrow, narrow_job = index(job_id, placing={job_id})
        # Left out of the small problem only where the whole one offers nothing either (a
        # prerequisite planned nowhere yet).
        offered = {o.window for o in whole.offer(job, grid).feasible()} if job else set()
        options = narrow.offer(narrow_job, grid).feasible() if narrow_job else []
        assert offered <= {o.window for o in options}, job_id
        compared += 1
        if options and narrow_job is not None:
            narrow.book(narrow_job, options[0].window)
            broken = [
                v for v in optimizer.check(narrow.problem, narrow.plan()) if v.rule != "coverage"
            ]
            assert broken == [], job_id
            booked += 1
    assert compared >= 15
    assert booked >= 5  # many of them can be placed: the comparison is not vacuous
    full = build_problem(session, region, horizon, travel, today=TODAY)
    small = build_problem(session, region, horizon, travel, placing={candidates[0]}, today=TODAY)
    assert len(small.problem.jobs) < len(full.problem.jobs)
