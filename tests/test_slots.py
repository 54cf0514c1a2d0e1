"""Offering windows and booking them: every offered window must be bookable, and every booked
plan must pass the independent validator with the new promise in it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import Job, PickupSource, Plan, Problem, TimeWindow, check
from optimizer.construct import Builder, Stop, construct, simulate
from optimizer.model import DAY_S, Dependency, VisitKind
from optimizer.reasons import Reason, Why
from optimizer.slots import SlotIndex, Unbookable, day_grid
from tests.test_optimizer_properties import broken_rules, worlds
from tests.test_optimizer_rules import H, tech, world

GRID_1 = day_grid([0], 8 * H, 17 * H)


def with_job(problem: Problem, job: Job) -> Problem:
    return replace(problem, jobs=[*problem.jobs, job])


def promised(problem: Problem, job_id: str, window: TimeWindow) -> Problem:
    return replace(
        problem,
        jobs=[
            replace(j, windows=(window,), promised=True) if j.id == job_id else j
            for j in problem.jobs
        ],
    )


def brute_force_feasible(problem: Problem, plan: Plan, job: Job, window: TimeWindow) -> bool:
    """Every insertion position of every route, without the index's shortcuts."""
    built = Builder.from_plan(problem, plan)
    assert built is not None
    builder, _ = built
    windows = builder.job_windows(replace(job, windows=(window,)))
    if windows is None:
        return False
    if job.crew_size >= 2:
        return two_people_fit(builder, job, windows)
    return builder.best_for(job, windows, builder.eligible(job)) is not None


def two_people_fit(builder: Builder, job: Job, windows: tuple[TimeWindow, ...]) -> bool:
    """Every position on every two routes of a day, both people starting at the later of the
    two earliest starts. (The construction's own search for two people tries only the first
    person's cheapest position, so it is no oracle for the index: a second technician who can
    only come later makes it miss windows the index rightly offers.)"""
    problem = builder.problem

    def placed(r: int, i: int, stop: Stop) -> list[Stop]:
        stops = builder.routes[r].stops
        return [*stops[:i], stop, *stops[i:]]

    def earliest(r: int, stop: Stop) -> list[tuple[int, int]]:
        found = []
        for i in range(len(builder.routes[r].stops) + 1):
            schedule = simulate(problem, builder.routes[r].vehicle, placed(r, i, stop))
            if schedule is not None:
                found.append((i, schedule.starts[i]))
        return found

    def fits(r: int, i: int, stop: Stop, at: int) -> bool:
        fixed = replace(stop, windows=(TimeWindow(at, at),))
        return simulate(problem, builder.routes[r].vehicle, placed(r, i, fixed)) is not None

    first = Stop(VisitKind.JOB, job, job.place, job.duration_s, windows)
    second = replace(first, second_person=True)
    vehicles = builder.eligible(job)
    as_first = {r: earliest(r, first) for r in vehicles}
    as_second = {h: earliest(h, second) for h in vehicles}
    for r in vehicles:
        for h in vehicles:
            if h == r or builder.routes[h].vehicle.day != builder.routes[r].vehicle.day:
                continue
            for i, a in as_first[r]:
                for k, b in as_second[h]:
                    if fits(r, i, first, max(a, b)) and fits(h, k, second, max(a, b)):
                        return True
    return False


def test_a_job_gets_windows_on_a_free_day_and_the_cheapest_are_recommended() -> None:
    problem = world([Job("new", place=5, duration_s=H)], [tech("a", home=0)])
    empty = Plan((), (), 0)
    offer = SlotIndex(problem, empty).offer(problem.job("new"), GRID_1)
    feasible = offer.feasible()
    # 2-hour windows starting 08:00 ... 15:00; a one-hour job (plus 5 min back home) fits all.
    assert [o.window.start_s // H for o in feasible] == list(range(8, 16))
    assert sum(o.recommended for o in offer.options) == 3
    assert all(o.start_s is not None and o.window.contains(o.start_s) for o in feasible)
    assert offer.reason is None


def test_promises_to_other_customers_are_never_broken_by_an_offer() -> None:
    # The technician has promised 09:00-10:00 at place 20 (20 minutes from home) and
    # 11:00-12:00 at place 0: a two-hour job at place 10 fits neither before nor between.
    a = tech("a", home=0)
    first = Job("p1", place=20, duration_s=H, windows=(TimeWindow(9 * H, 10 * H),), promised=True)
    second = Job("p2", place=0, duration_s=H, windows=(TimeWindow(11 * H, 12 * H),), promised=True)
    new = Job("new", place=10, duration_s=2 * H)
    problem = world([first, second, new], [a])
    base = construct(replace(problem, jobs=[first, second]))
    offer = SlotIndex(problem, base).offer(new, GRID_1)
    for option in offer.options:
        assert option.feasible == brute_force_feasible(problem, base, new, option.window)
        if option.feasible:
            assert option.start_s is not None
            assert option.start_s >= 12 * H
    assert not any(o.feasible for o in offer.options if o.window.end_s <= 11 * H)


def test_no_technician_with_the_skill_is_the_reason() -> None:
    problem = world([Job("k", place=3, duration_s=H, skills=frozenset({"kitchen"}))], [tech("a")])
    offer = SlotIndex(problem, Plan((), (), 0)).offer(problem.job("k"), GRID_1)
    assert offer.feasible() == []
    assert offer.reason == Why.of(Reason.NO_SKILL, skills="kitchen")
    assert str(offer.reason) == "no technician has the skill(s) kitchen"


def test_a_missing_part_gets_a_pickup_and_only_days_it_can_be_collected() -> None:
    source = PickupSource("store", 8, (TimeWindow(DAY_S + 8 * H, DAY_S + 18 * H),))
    job = Job(
        "fix",
        place=12,
        duration_s=H,
        needs_pickup=True,
        part_volume_l=10,
        pickup_sources=(source,),
    )
    problem = world([job], [tech("a", 0), tech("a", 1)], days=2)
    index = SlotIndex(problem, Plan((), (), 0))
    offer = index.offer(job, day_grid([0, 1], 8 * H, 17 * H))
    day0 = [o for o in offer.options if o.window.start_s < DAY_S]
    day1 = [o for o in offer.options if o.window.start_s >= DAY_S]
    assert not any(o.feasible for o in day0)
    assert {o.reason for o in day0} == {Why.of(Reason.PART_LATER, available="day 1 08:00")}
    assert str(day0[0].reason) == "the part can be picked up from day 1 08:00 on"
    assert any(o.feasible for o in day1)
    option = index.book(job, next(o.window for o in day1 if o.feasible))
    plan = index.plan()
    after = promised(problem, "fix", index.promises["fix"])
    assert check(after, plan) == []
    kinds = [v.kind.value for v in plan.routes[0].visits if v.job_id == "fix"]
    assert kinds == ["pickup", "job"]
    assert option.technician_day == "a@1"


def test_installation_after_delivery_only_in_windows_after_the_delivery() -> None:
    delivery = Job("delivery", place=4, duration_s=H)
    install = Job("install", place=4, duration_s=2 * H, after=(Dependency("delivery", 1),))
    problem = world([delivery, install], [tech("a", d) for d in range(3)], days=3)
    base = construct(replace(problem, jobs=[delivery]))
    index = SlotIndex(problem, base)
    offer = index.offer(install, day_grid([0, 1, 2], 8 * H, 17 * H))
    delivered_day = base.job_visits()["delivery"][0][1].start_s // DAY_S
    for option in offer.options:
        if option.window.start_s // DAY_S <= delivered_day:
            assert not option.feasible
            assert option.reason == Why.of(Reason.TOO_EARLY)
    assert any(o.feasible for o in offer.options)


def test_a_job_waiting_for_an_unplanned_prerequisite_is_not_offered() -> None:
    delivery = Job("delivery", place=4, duration_s=H)
    install = Job("install", place=4, duration_s=H, after=(Dependency("delivery"),))
    problem = world([delivery, install], [tech("a")])
    offer = SlotIndex(problem, Plan((), (), 0)).offer(install, GRID_1)
    assert offer.feasible() == []
    assert offer.reason == Why.of(Reason.WAITS_FOR_FIRST, job="delivery")


def test_a_two_person_job_books_two_technicians_at_the_same_minute() -> None:
    job = Job("sofa", place=6, duration_s=H, crew_size=2)
    problem = world([job], [tech("a", home=0), tech("b", home=10)])
    index = SlotIndex(problem, Plan((), (), 0))
    offer = index.offer(job, GRID_1)
    assert offer.feasible()
    index.book(job, offer.feasible()[0].window)
    plan = index.plan()
    visits = plan.job_visits()["sofa"]
    assert len(visits) == 2
    assert visits[0][1].start_s == visits[1][1].start_s
    assert check(promised(problem, "sofa", index.promises["sofa"]), plan) == []


def test_a_multi_day_installation_takes_the_same_technician_on_following_days() -> None:
    job = Job("kitchen", place=6, duration_s=7 * H, days=2)
    problem = world([job], [tech("a", 0), tech("a", 1), tech("b", 1)], days=2)
    index = SlotIndex(problem, Plan((), (), 0))
    offer = index.offer(job, day_grid([0, 1], 8 * H, 17 * H))
    assert {o.window.start_s // DAY_S for o in offer.feasible()} == {0}
    index.book(job, offer.feasible()[0].window)
    plan = index.plan()
    assert sorted(v for v, _ in plan.job_visits()["kitchen"]) == ["a@0", "a@1"]
    assert check(promised(problem, "kitchen", index.promises["kitchen"]), plan) == []


def test_a_booked_window_is_refused_once_the_capacity_is_gone() -> None:
    jobs = [Job(f"j{k}", place=0, duration_s=2 * H) for k in range(5)]
    problem = world(jobs, [tech("a", home=0)])  # 9 hours: four 2-hour jobs fit, not five
    index = SlotIndex(problem, Plan((), (), 0))
    window = TimeWindow(8 * H, 17 * H)
    for job in jobs[:4]:
        index.book(job, window)
    with pytest.raises(Unbookable, match="no longer available"):
        index.book(jobs[4], window)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_every_offered_window_is_feasible_and_bookable(problem, data) -> None:  # type: ignore[no-untyped-def]
    base = construct(problem)
    planned = set(base.job_visits())
    days = list(range(problem.horizon_days - 1))
    newcomer = Job(
        "newcomer",
        place=data.draw(st.integers(0, 29)),
        duration_s=data.draw(st.sampled_from((1800, 3600, 5400))),
        crew_size=data.draw(st.sampled_from((1, 1, 2))),
    )
    kept = [j for j in problem.jobs if j.id in planned]
    # Jobs the first plan left out play no part; their dependents are dropped with them.
    kept = [replace(j, after=tuple(d for d in j.after if d.job_id in planned)) for j in kept]
    problem = replace(problem, jobs=[*kept, newcomer])
    base = replace(base, unplanned=())
    offer = SlotIndex(problem, base).offer(newcomer, day_grid(days, 8 * H, 17 * H))
    for option in offer.options:
        if not option.feasible:
            continue
        assert brute_force_feasible(problem, base, newcomer, option.window)
        index = SlotIndex(problem, base)
        index.book(newcomer, option.window)
        booked = promised(problem, "newcomer", option.window)
        assert broken_rules(booked, index.plan()) == []


def test_a_region_without_technicians_offers_nothing_and_says_why() -> None:
    problem = world([Job("a", place=1, duration_s=H)], [])
    offer = SlotIndex(problem, Plan((), (), 0)).offer(problem.job("a"), GRID_1)
    assert offer.feasible() == []
    assert offer.reason == Why.of(Reason.NO_TECHNICIAN)


def test_a_stored_multi_day_installation_keeps_its_later_days() -> None:
    kitchen = Job("kitchen", place=6, duration_s=7 * H, days=2)
    problem = world([kitchen], [tech("a", 0, lunch=True), tech("a", 1, lunch=True)], days=2)
    base = construct(problem)
    start = base.job_visits()["kitchen"][0][1].start_s
    window = TimeWindow(max(8 * H, start - H), max(8 * H, start - H) + 2 * H)
    promised_problem = promised(problem, "kitchen", window)
    index = SlotIndex(promised_problem, base)
    assert sorted(v for v, _ in index.plan().job_visits()["kitchen"]) == ["a@0", "a@1"]
    assert check(promised_problem, index.plan()) == []


def test_a_route_that_no_longer_fits_is_kept_as_it_was_and_gets_nothing_new() -> None:
    job = Job("old", place=5, duration_s=H)
    problem = world([job], [tech("a")])
    base = construct(problem)
    # The promise changed since the plan was made: the stored route cannot keep it.
    moved = promised(problem, "old", TimeWindow(16 * H + 1800, 16 * H + 1800))
    newcomer = Job("new", place=5, duration_s=H)
    index = SlotIndex(with_job(moved, newcomer), base)
    assert index.plan().routes == base.routes
    assert index.offer(newcomer, GRID_1).feasible() == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_a_job_taken_off_its_route_leaves_the_plan_loaded_without_it(problem, data) -> None:  # type: ignore[no-untyped-def]
    """`without` times the routes the job leaves as loading the plan without it does, so
    offers and bookings from it are those of the job's own problem."""
    from optimizer.slots import without_job

    base = construct(problem)
    planned = sorted(base.job_visits())
    if not planned:
        return
    gone = data.draw(st.sampled_from(planned))
    index = SlotIndex(problem, base)
    taken_off = index.without(gone)
    loaded = SlotIndex(problem, without_job(base, gone)[0])
    assert taken_off is not None
    assert not taken_off.is_placed(gone)
    assert index.is_placed(gone)  # the fork's change is its own
    assert taken_off.plan().routes == loaded.plan().routes
    assert taken_off.changed == {v for v, _ in base.job_visits()[gone]}
    newcomer = problem.job(gone)
    grid = day_grid(range(problem.horizon_days), 8 * H, 17 * H)
    mine, theirs = taken_off.offer(newcomer, grid), loaded.offer(newcomer, grid)
    assert [(o.window, o.start_s) for o in mine.feasible()] == [
        (o.window, o.start_s) for o in theirs.feasible()
    ]
