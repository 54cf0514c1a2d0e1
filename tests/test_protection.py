"""Promise protection: a promised start keeps room for the work before it running long."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import Job, Plan, Problem, TimeWindow, check
from optimizer.construct import Stop, simulate
from optimizer.model import DAY_S, VisitKind
from optimizer.protection import Exposure, Protection
from optimizer.slots import SlotIndex, day_grid
from tests.test_optimizer_properties import worlds
from tests.test_optimizer_rules import H, tech, world

QUIET = Protection(leg_log_sd=0.0, holdup_rate=0.0, common_share=0.0)  # durations only


def stop(job: Job) -> Stop:
    return Stop(
        VisitKind.JOB, job, job.place, job.duration_s, job.windows or (TimeWindow(0, DAY_S),)
    )


def promised(job_id: str, place: int, minutes: int, window: tuple[float, float]) -> Job:
    lo, hi = window
    return Job(
        job_id,
        place,
        minutes * 60,
        windows=(TimeWindow(int(lo * H), int(hi * H)),),
        promised=True,
        duration_log_sd=0.3,
    )


def test_room_is_the_quantile_of_what_the_work_before_may_add() -> None:
    exposure = Exposure(QUIET, 8 * H)
    exposure.work(2 * H, 2 * H, 0.3)
    # One job: its duration is log-normal, so the quantile is exact.
    expected = 11 * H - (8 * H + 2 * H * math.exp(QUIET.z * 0.3))
    assert math.isclose(exposure.room(11 * H), expected, rel_tol=1e-9)
    # Four jobs and their legs with hold-ups: a Monte Carlo of the same day misses a window
    # with no room to spare about as often as the target says.
    protection = Protection(common_share=0.25)
    exposure = Exposure(protection, 8 * H)
    for _ in range(4):
        exposure.travel(20 * 60)
        exposure.work(H, H, 0.25)
    closes = -exposure.room(0)  # the window's end that leaves no room to spare
    rng = random.Random(5)
    late = 0
    for _ in range(40_000):
        day = rng.gauss(0, 0.25 * 0.5)
        t = float(8 * H)
        for _ in range(4):
            holdup = rng.uniform(20 * 60, 60 * 60) if rng.random() < 0.02 else 0.0
            t += 20 * 60 * math.exp(rng.gauss(0, 0.10)) + holdup
            t += H * math.exp(day + rng.gauss(0, 0.25 * math.sqrt(0.75)))
        late += t > closes
    assert abs(late / 40_000 - (1 - protection.target)) < 0.006


def test_a_promise_right_after_long_work_must_start_earlier_in_its_window() -> None:
    long = Job("long", 1, 4 * H, duration_log_sd=0.3)  # 08:01-12:01
    edge = promised("edge", 2, 30, (10.5, 12.5))  # starts 12:02, 28 minutes before the end
    problem = world([long, edge], [tech("t")])
    vehicle = problem.technician_days[0]
    assert simulate(problem, vehicle, [stop(long), stop(edge)]) is not None
    protected = replace(problem, protection=QUIET)
    assert simulate(protected, vehicle, [stop(long), stop(edge)]) is None
    # Four hours of work at a log-sd of 0.3 take up to 7 h 24 on 98 % of days: a window that
    # closes at 16:30 has the room.
    later = promised("edge", 2, 30, (14.5, 16.5))
    assert simulate(protected, vehicle, [stop(long), stop(later)]) is not None


def test_waiting_for_a_window_absorbs_what_ran_long_before_it() -> None:
    # The technician waits for `wait` to open at 13:00 whether the work before it took half an
    # hour or two: only the half hour of `wait` (and the legs) can make `last` late.
    wait = promised("wait", 2, 30, (13, 15))
    for hours in (0.5, 2.0):
        first = Job("first", 1, int(hours * H), duration_log_sd=0.3)
        for closes, feasible in ((14.0, True), (13.85, False)):
            last = promised("last", 3, 30, (13.5, closes))
            problem = replace(world([first, wait, last], [tech("t")]), protection=QUIET)
            stops = [stop(first), stop(wait), stop(last)]
            schedule = simulate(problem, problem.technician_days[0], stops)
            assert (schedule is not None) is feasible, (hours, closes)


def test_check_names_a_promise_without_its_room() -> None:
    long = Job("long", 1, 4 * H, duration_log_sd=0.3)
    edge = promised("edge", 2, 30, (10.5, 12.5))
    problem = world([long, edge], [tech("t")])
    index = SlotIndex(problem, Plan((), (), 0))
    index.book(replace(long, windows=()), TimeWindow(8 * H, 10 * H))
    index.book(replace(edge, promised=False), TimeWindow(int(10.5 * H), int(12.5 * H)))
    plan = index.plan()
    booked = replace(
        problem, jobs=[replace(long, windows=(TimeWindow(8 * H, 10 * H),), promised=True), edge]
    )
    assert check(booked, plan) == []
    violations = check(replace(booked, protection=QUIET), plan)
    assert [(v.rule, v.subject) for v in violations] == [("protection", "edge")]


def test_the_offer_keeps_late_windows_for_routes_with_room() -> None:
    long = promised("long", 1, 5 * 60, (8, 10))
    newcomer = Job("new", 2, 30 * 60, duration_log_sd=0.3)
    problem = world([long, newcomer], [tech("t")])
    base = SlotIndex(problem, Plan((), (), 0))
    base.book(replace(long, promised=False), TimeWindow(8 * H, 10 * H))
    grid = day_grid([0], 8 * H, 17 * H)
    plain = {o.window for o in SlotIndex(problem, base.plan()).offer(newcomer, grid).feasible()}
    protected_problem = replace(problem, protection=QUIET)
    protected_index = SlotIndex(protected_problem, base.plan())
    protected = {o.window for o in protected_index.offer(newcomer, grid).feasible()}
    # 13:00-15:00 starts at 13:02 after five hours of work and lunch-free: too close with
    # protection only when the window closes within the quantile of that work.
    assert protected < plain
    for window in sorted(protected, key=lambda w: w.start_s):
        index = SlotIndex(protected_problem, base.plan())
        index.book(newcomer, window)
        promises = {"long": TimeWindow(8 * H, 10 * H), "new": window}
        booked = replace(
            protected_problem,
            jobs=[replace(j, windows=(promises[j.id],), promised=True) for j in problem.jobs],
        )
        assert check(booked, index.plan()) == []


def test_a_route_planned_before_protection_is_kept_but_takes_no_more_work() -> None:
    long = promised("long", 1, 4 * 60, (8, 10))
    edge = promised("edge", 2, 30, (10.5, 12.5))
    problem = world([long, edge], [tech("t")])
    index = SlotIndex(problem, Plan((), (), 0))
    index.book(replace(long, promised=False), TimeWindow(8 * H, 10 * H))
    index.book(replace(edge, promised=False), TimeWindow(int(10.5 * H), int(12.5 * H)))
    old = index.plan()
    newcomer = Job("new", 3, 30 * 60)
    protected = replace(problem, jobs=[long, edge, newcomer], protection=QUIET)
    kept = SlotIndex(protected, old)
    assert kept.is_placed("long")
    assert kept.is_placed("edge")
    offered = kept.offer(newcomer, day_grid([0], 8 * H, 17 * H)).feasible()
    assert offered == []


@settings(max_examples=25, deadline=None)
@given(worlds(), st.data())
def test_plans_booked_with_protection_pass_check_with_it(problem: Problem, data) -> None:  # type: ignore[no-untyped-def]
    spread = data.draw(st.sampled_from((0.1, 0.25, 0.4)))
    protection = Protection(common_share=data.draw(st.sampled_from((0.0, 0.25, 1.0))))
    customers = [
        replace(j, windows=(), promised=False, duration_log_sd=spread) for j in problem.jobs
    ]
    customers = [replace(j, after=(), pin=None, days=1) for j in customers]
    problem = replace(problem, jobs=customers, protection=protection)
    days = list(range(problem.horizon_days - 1))
    index = SlotIndex(problem, Plan((), (), 0))
    for job in customers:
        offered = index.offer(job, day_grid(days, 8 * H, 17 * H)).feasible()
        if offered:
            index.book(job, data.draw(st.sampled_from(offered)).window)
    booked = replace(
        problem,
        jobs=[
            replace(j, windows=(index.promises[j.id],), promised=True)
            if j.id in index.promises
            else j
            for j in customers
        ],
    )
    assert [str(v) for v in check(booked, index.plan()) if v.rule != "coverage"] == []


def test_a_copied_walk_goes_on_without_changing_the_one_it_came_from() -> None:
    """The lunch's places share the day before them: each goes on from a copy of that walk."""
    walk = Exposure(Protection(), 8 * H)
    walk.travel(1200)
    walk.work(3600, 3600, 0.3)
    before = walk.room(12 * H)
    twin = walk.copy()
    assert twin.room(12 * H) == before
    twin.wait_until(10 * H)
    twin.travel(1800)
    twin.work(2 * H, 2 * H, 0.3)
    assert walk.room(12 * H) == before  # the twin's day is its own
    assert twin.room(14 * H) < twin.room(15 * H)
