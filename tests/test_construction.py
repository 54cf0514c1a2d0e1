"""The construction's cheapest insertion simulates positions in order of a lower bound on what
they add and stops when the bound passes the best found; it must find exactly what simulating
every position finds, whatever the weights and even where travel times break the triangle
inequality."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import Job, Problem, TimeWindow, Weights, construct
from optimizer.construct import Builder, Candidate, Stop, simulate
from optimizer.model import VisitKind
from tests.test_optimizer_rules import H, tech, world

PLACES = 10


def every_position(
    builder: Builder, job: Job, windows: tuple[TimeWindow, ...], vehicles: list[int]
) -> Candidate | None:
    """The reference: every position simulated, the first cheapest in vehicle and position
    order."""
    lead = Stop(VisitKind.JOB, job, job.place, job.duration_s, windows)
    best: Candidate | None = None
    for r in vehicles:
        state = builder.routes[r]
        for i in range(len(state.stops) + 1):
            stops = [*state.stops[:i], lead, *state.stops[i:]]
            schedule = simulate(builder.problem, state.vehicle, stops)
            if schedule is not None:
                added = schedule.cost - builder.cost(r)
                if best is None or added < best.added_cost:
                    best = Candidate(added, [(r, stops, schedule)])
    return best


def every_pair(
    builder: Builder, job: Job, windows: tuple[TimeWindow, ...], vehicles: list[int]
) -> Candidate | None:
    """The reference for two people: every lead, and for each every helper position."""
    best: Candidate | None = None
    for r in vehicles:
        single = every_position(builder, job, windows, [r])
        if single is None:
            continue
        _, stops, schedule = single.changes[0]
        lead_at = next(i for i, s in enumerate(stops) if s.job is job)
        fixed = (TimeWindow(schedule.starts[lead_at], schedule.starts[lead_at]),)
        helper = Stop(VisitKind.JOB, job, job.place, job.duration_s, fixed, second_person=True)
        for h in vehicles:
            state = builder.routes[h]
            if h == r or state.vehicle.day != builder.routes[r].vehicle.day:
                continue
            for i in range(len(state.stops) + 1):
                helper_stops = [*state.stops[:i], helper, *state.stops[i:]]
                helper_schedule = simulate(builder.problem, state.vehicle, helper_stops)
                if helper_schedule is None:
                    continue
                added = single.added_cost + helper_schedule.cost - builder.cost(h)
                if best is None or added < best.added_cost:
                    best = Candidate(
                        added, [(r, stops, schedule), (h, helper_stops, helper_schedule)]
                    )
    return best


@st.composite
def half_built(draw: st.DrawFn) -> tuple[Builder, list[Job]]:
    """A builder with some jobs placed, and jobs still to place."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Random, asymmetric, non-metric travel: the bound must not rely on the triangle inequality.
    duration = rng.integers(60, 2 * H, size=(PLACES, PLACES))
    distance = rng.integers(0, 40_000, size=(PLACES, PLACES))
    np.fill_diagonal(duration, 0)
    np.fill_diagonal(distance, 0)
    technicians = [
        tech(
            f"t{i}",
            home=draw(st.integers(0, PLACES - 1)),
            lunch=draw(st.booleans()),
            overtime_s=draw(st.sampled_from((0, 2 * H))),
        )
        for i in range(draw(st.integers(1, 4)))
    ]
    ids = [t.id for t in technicians]
    jobs = []
    for k in range(draw(st.integers(2, 10))):
        start = draw(st.integers(8, 16)) * H
        preferred_start = draw(st.integers(7, 17)) * H
        jobs.append(
            Job(
                f"j{k}",
                draw(st.integers(0, PLACES - 1)),
                draw(st.sampled_from((900, 1800, 3600))),
                windows=(TimeWindow(start, start + 2 * H),) if draw(st.booleans()) else (),
                preferred=TimeWindow(preferred_start, preferred_start + H)
                if draw(st.booleans())
                else None,
                previous_technician_day=draw(st.sampled_from((None, *ids))),
            )
        )
    weights = Weights(
        per_km=draw(st.sampled_from((0, 30, 77))),
        technician_day_fixed=draw(st.sampled_from((0, 1800))),
        overtime_per_min=draw(st.sampled_from((0, 120, 1000))),
        outside_preferred_per_min=draw(st.sampled_from((0, 30, 1000))),
    )
    problem = Problem(jobs, technicians, duration, distance, weights, 2)
    builder = Builder(problem)
    placed = draw(st.integers(0, len(jobs) - 1))
    for job in jobs[:placed]:
        found = every_position(builder, job, builder.job_windows(job) or (), builder.eligible(job))
        if found is not None:
            builder.place(job, found, freeze=False)
    return builder, jobs[placed:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(half_built())
def test_the_bounded_search_finds_what_simulating_every_position_finds(
    case: tuple[Builder, list[Job]],
) -> None:
    builder, waiting = case
    for job in waiting:
        windows = builder.job_windows(job)
        assert windows is not None
        vehicles = builder.eligible(job)
        found = builder.best_single(job, windows, vehicles)
        expected = every_position(builder, job, windows, vehicles)
        assert (found is None) == (expected is None)
        if found is not None and expected is not None:
            assert found.added_cost == expected.added_cost
            assert found.changes[0][:2] == expected.changes[0][:2]
        pair = builder.best_pair(job, windows, vehicles, vehicles)
        expected = every_pair(builder, job, windows, vehicles)
        assert (pair is None) == (expected is None)
        if pair is not None and expected is not None:
            assert pair.added_cost == expected.added_cost
            assert pair.changes[0][0] == expected.changes[0][0]
            assert pair.changes[1][:2] == expected.changes[1][:2]


def test_on_a_long_route_most_positions_are_never_simulated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Solomon-like: one technician with twenty jobs along a line, one more to place."""
    jobs = [Job(f"j{i}", i + 1, 600) for i in range(21)]
    problem = world(jobs, [tech("t", hours=(0, 23))])
    builder = Builder(problem)
    for job in jobs[:20]:
        found = builder.best_single(job, builder.job_windows(job) or (), [0])
        assert found is not None
        builder.place(job, found, freeze=False)
    last = jobs[20]
    windows = builder.job_windows(last) or ()
    expected = every_position(builder, last, windows, [0])
    simulated: list[int] = []

    def counted(*args: Any) -> Any:
        simulated.append(1)
        return simulate(*args)

    monkeypatch.setattr(construct, "simulate", counted)
    found = builder.best_single(last, windows, [0])
    assert found is not None
    assert expected is not None
    assert found.changes[0][1] == expected.changes[0][1]
    assert len(simulated) <= 2  # of 21 positions


def test_the_second_person_of_a_two_person_job_takes_no_lunch_inside_it() -> None:
    """A long job may hold the lunch on site, ending that much later; for the helper of a
    two-person job it would end later than the lead's visit, while a job waiting for it goes
    by the lead's end (the validator found such a plan starting a dependant too early)."""
    job = Job("kitchen", place=1, duration_s=2 * H, crew_size=2)
    day = tech("a", lunch=True)  # lunch to start between 12:00 and 13:00
    problem = world([job], [day])
    at_half_past_eleven = (TimeWindow(11 * H + 1800, 11 * H + 1800),)
    lead = Stop(VisitKind.JOB, job, job.place, job.duration_s, at_half_past_eleven)
    helper = Stop(
        VisitKind.JOB, job, job.place, job.duration_s, at_half_past_eleven, second_person=True
    )
    with_lunch_inside = simulate(problem, day, [lead])
    assert with_lunch_inside is not None
    assert with_lunch_inside.lunch_inside == 0
    # Lunch neither before (it opens at 12:00) nor after (the job ends past 13:00) fits.
    assert simulate(problem, day, [helper]) is None
