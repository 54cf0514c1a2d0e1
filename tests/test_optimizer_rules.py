"""One tiny named world per field-service rule; every returned plan goes through `check`.

Places lie on a line one kilometre apart (place i at km i): one minute of driving per km.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from optimizer import (
    Break,
    Job,
    Limits,
    PickupSource,
    Pin,
    Plan,
    Problem,
    Progress,
    TechnicianDay,
    TimeWindow,
    Visit,
    VisitKind,
    Weights,
    check,
    solve,
)
from optimizer.construct import Stop, construct, simulate
from optimizer.model import DAY_S, Dependency, Route
from optimizer.reasons import Reason, Why

H = 3600
QUICK = Limits(time_limit_s=1.0)


def line(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    km = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    return (km * 60).astype(np.int64), (km * 1000).astype(np.int64)


def tech(
    name: str,
    day: int = 0,
    *,
    skills: frozenset[str] = frozenset(),
    home: int = 0,
    lunch: bool = False,
    overtime_s: int = 0,
    volume_l: int = 10**9,
    share: float = 1.0,
    hours: tuple[int, int] = (8, 17),
) -> TechnicianDay:
    base = day * DAY_S
    return TechnicianDay(
        id=f"{name}@{day}",
        technician=name,
        day=day,
        skills=skills,
        start_place=home,
        end_place=home,
        shift=TimeWindow(base + hours[0] * H, base + hours[1] * H),
        max_overtime_s=overtime_s,
        lunch=Break(base + 12 * H, base + 13 * H, 1800) if lunch else None,
        volume_capacity_l=volume_l,
        max_planned_share=share,
    )


def world(
    jobs: list[Job], technicians: list[TechnicianDay], days: int = 1, weights: Weights | None = None
) -> Problem:
    duration, distance = line()
    return Problem(jobs, technicians, duration, distance, weights or Weights(), days + 1)


def planned(problem: Problem, limits: Limits = QUICK) -> Plan:
    plan = solve(problem, limits)
    assert check(problem, plan) == [], check(problem, plan)
    return plan


def where(plan: Plan, job_id: str) -> list[tuple[str, Visit]]:
    return plan.job_visits().get(job_id, [])


def reason(plan: Plan, job_id: str) -> Why:
    return next(u.reason for u in plan.unplanned if u.job_id == job_id)


def test_technician_days_are_vehicles_over_a_multi_day_horizon() -> None:
    tomorrow = TimeWindow(DAY_S, 2 * DAY_S - 1)
    problem = world([Job("a", 5, H, windows=(tomorrow,))], [tech("t", 0), tech("t", 1)], days=2)
    plan = planned(problem)
    ((vehicle, visit),) = where(plan, "a")
    assert vehicle == "t@1"
    assert visit.start_s >= DAY_S + 8 * H


def test_an_absent_technician_gets_nothing_and_the_job_says_why() -> None:
    problem = world(
        [Job("a", 5, H, windows=(TimeWindow(DAY_S, 2 * DAY_S - 1),))], [tech("t", 0)], days=2
    )  # t does not work on day 1
    plan = planned(problem)
    assert reason(plan, "a").reason is Reason.NO_SHIFT_IN_WINDOWS
    assert "works during any of its allowed windows" in str(reason(plan, "a"))


def test_a_promised_window_is_kept() -> None:
    promise = TimeWindow(14 * H, 16 * H)
    problem = world(
        [Job("a", 3, H, windows=(promise,), promised=True), Job("b", 4, H)], [tech("t")]
    )
    plan = planned(problem)
    assert promise.contains(where(plan, "a")[0][1].start_s)


def test_an_impossible_promise_is_reported_as_broken_not_silently_moved() -> None:
    problem = world(
        [Job("a", 3, H, windows=(TimeWindow(20 * H, 21 * H),), promised=True)], [tech("t")]
    )
    plan = solve(problem, QUICK)
    assert [v.rule for v in check(problem, plan)] == ["promise"]
    assert not plan.is_feasible(problem)


def test_a_preferred_window_is_used_when_it_costs_nothing() -> None:
    problem = world([Job("a", 3, H, preferred=TimeWindow(14 * H, 15 * H))], [tech("t")])
    start = where(planned(problem), "a")[0][1].start_s
    assert 14 * H <= start <= 15 * H


def test_lunch_falls_in_its_window_and_never_overlaps_work() -> None:
    jobs = [Job(f"j{i}", i + 1, 2 * H) for i in range(4)]
    plan = planned(world(jobs, [tech("t", lunch=True)]))
    breaks = [v for r in plan.routes for v in r.visits if v.kind is VisitKind.BREAK]
    assert len(breaks) == 1
    assert 12 * H <= breaks[0].start_s <= 13 * H


def test_lunch_waits_for_a_window_when_taking_it_later_would_miss_the_next_one() -> None:
    # "a" cannot start before 12:30, "b" must start by 12:58 and runs past the lunch window:
    # lunch as late as it can go (12:55, after "a") misses "b"; taken while waiting for "a" to
    # open, it costs nothing. OR-Tools' break model and `check` accept that day, so must we.
    a = Job("a", 2, 25 * 60, windows=(TimeWindow(12 * H + 1800, 12 * H + 2100),))
    b = Job("b", 3, 1800, windows=(TimeWindow(12 * H + 56 * 60, 12 * H + 58 * 60),))
    problem = world([a, b], [tech("t", lunch=True)])
    stops = [Stop(VisitKind.JOB, j, j.place, j.duration_s, j.windows) for j in (a, b)]
    schedule = simulate(problem, problem.technician_days[0], stops)
    assert schedule is not None
    assert schedule.lunch_start == 12 * H
    assert schedule.starts == (12 * H + 1800, 12 * H + 56 * 60)
    plan = planned(problem)
    assert not plan.unplanned
    (route,) = plan.routes
    assert [v.kind for v in route.visits] == [VisitKind.BREAK, VisitKind.JOB, VisitKind.JOB]


def test_a_day_that_fails_before_its_lunch_is_not_replayed_with_lunch_elsewhere() -> None:
    late = Job("late", 2, H, windows=(TimeWindow(8 * H, 8 * H),))  # 8:00 sharp, 2 km away
    problem = world([late], [tech("t", lunch=True)])
    stops = [Stop(VisitKind.JOB, late, late.place, late.duration_s, late.windows)]
    assert simulate(problem, problem.technician_days[0], stops) is None


def test_lunch_is_only_taken_inside_a_long_job_that_spans_the_lunch_window() -> None:
    # A two-hour job from 8:01 is longer than the lunch window but over by 10:01: lunch cannot
    # be inside it. "b" starts 12:05-12:10 and runs past 13:00, so lunch must come before it,
    # and from 12:00 on that is too late: no place for lunch keeps the day.
    long = Job("long", 1, 2 * H, windows=(TimeWindow(8 * H, 8 * H + 1800),))
    b = Job("b", 2, 58 * 60, windows=(TimeWindow(12 * H + 300, 12 * H + 600),))
    problem = world([long, b], [tech("t", lunch=True)])
    stops = [Stop(VisitKind.JOB, j, j.place, j.duration_s, j.windows) for j in (long, b)]
    assert simulate(problem, problem.technician_days[0], stops) is None


def test_a_job_longer_than_the_lunch_window_takes_its_lunch_on_site() -> None:
    # Seven hours of flooring in an eight-to-five shift: lunch cannot fit before or after it.
    problem = world([Job("floor", 3, 7 * H)], [tech("t", lunch=True)])
    plan = planned(problem)
    (route,) = plan.routes
    job = next(v for v in route.visits if v.kind is VisitKind.JOB)
    lunch = next(v for v in route.visits if v.kind is VisitKind.BREAK)
    assert job.start_s <= lunch.start_s
    assert lunch.end_s <= job.end_s
    assert job.end_s - job.start_s == 7 * H + 1800
    assert 12 * H <= lunch.start_s <= 13 * H
    # Stretching the job by its lunch is checked like any other duration.
    stretched = replace(
        route,
        visits=tuple(
            replace(v, end_s=v.end_s + 60) if v.kind is VisitKind.JOB else v for v in route.visits
        ),
    )
    assert check(problem, replace(plan, routes=(stretched,)))


def test_overtime_is_used_up_to_its_limit_but_not_beyond() -> None:
    fits = world([Job("a", 1, 9 * H)], [tech("t", overtime_s=H)])
    assert where(planned(fits), "a")
    too_long = world([Job("a", 1, 11 * H)], [tech("t", overtime_s=H)])
    assert not where(planned(too_long), "a")


def test_a_job_goes_only_to_a_technician_with_all_its_skills() -> None:
    problem = world(
        [Job("a", 2, H, skills=frozenset({"kitchen", "plumbing"}))],
        [
            tech("x", skills=frozenset({"kitchen"})),
            tech("y", skills=frozenset({"kitchen", "plumbing"}), home=20),
        ],
    )
    assert where(planned(problem), "a")[0][0] == "y@0"


def test_a_skill_nobody_has_is_named_in_the_reason() -> None:
    plan = planned(world([Job("a", 2, H, skills=frozenset({"roofing"}))], [tech("x")]))
    assert reason(plan, "a") == Why.of(Reason.NO_SKILL, skills="roofing")
    assert "roofing" in str(reason(plan, "a"))


def test_van_capacity_splits_deliveries_over_vans() -> None:
    jobs = [Job("a", 2, H, volume_l=700), Job("b", 3, H, volume_l=700)]
    plan = planned(world(jobs, [tech("x", volume_l=1000), tech("y", volume_l=1000)]))
    assert {where(plan, "a")[0][0], where(plan, "b")[0][0]} == {"x@0", "y@0"}


def _source(site: str, place: int, from_day: int = 0, days: int = 2) -> PickupSource:
    return PickupSource(
        site,
        place,
        tuple(TimeWindow(d * DAY_S + 8 * H, d * DAY_S + 20 * H) for d in range(from_day, days)),
    )


def test_a_missing_part_is_picked_up_on_the_way_at_the_nearest_site() -> None:
    job = Job(
        "a",
        10,
        H,
        needs_pickup=True,
        part_volume_l=5,
        pickup_sources=(_source("far", 29), _source("near", 6)),
    )
    plan = planned(world([job], [tech("t")]))
    visits = plan.routes[0].visits
    pickup = next(v for v in visits if v.kind is VisitKind.PICKUP)
    assert pickup.site == "near"
    assert pickup.end_s <= where(plan, "a")[0][1].start_s


def test_a_part_that_arrives_tomorrow_moves_the_job_to_tomorrow() -> None:
    job = Job("a", 10, H, needs_pickup=True, pickup_sources=(_source("s", 6, from_day=1),))
    plan = planned(world([job], [tech("t", 0), tech("t", 1)], days=2))
    assert where(plan, "a")[0][0] == "t@1"


def test_a_part_nowhere_to_be_had_is_the_reason() -> None:
    job = Job("a", 10, H, needs_pickup=True, pickup_sources=())
    plan = planned(world([job], [tech("t")]))
    assert reason(plan, "a").reason is Reason.PART_NOWHERE


def test_two_person_jobs_start_together_on_two_routes() -> None:
    problem = world([Job("a", 5, H, crew_size=2), Job("b", 9, H)], [tech("x"), tech("y", home=10)])
    served = where(planned(problem), "a")
    assert len(served) == 2
    assert served[0][0] != served[1][0]
    assert served[0][1].start_s == served[1][1].start_s


def test_a_two_person_job_with_one_technician_stays_unplanned() -> None:
    plan = planned(world([Job("a", 5, H, crew_size=2)], [tech("x")]))
    assert reason(plan, "a").reason is Reason.NO_TWO_ON_A_DAY


def test_installation_follows_delivery_and_lead_times_count_days() -> None:
    jobs = [
        Job("measure", 4, H),
        Job("delivery", 4, H, after=(Dependency("measure", 1),)),
        Job("install", 4, 2 * H, after=(Dependency("delivery", 0),)),
    ]
    plan = planned(world(jobs, [tech("t", d) for d in range(3)], days=3))
    measure, delivery, install = (where(plan, j)[0][1] for j in ("measure", "delivery", "install"))
    assert delivery.start_s // DAY_S >= measure.start_s // DAY_S + 1
    assert install.start_s >= delivery.end_s


def test_when_capacity_is_short_the_repair_wins() -> None:
    jobs = [
        Job("install", 3, 8 * H, priority=1),
        Job("repair", 4, 8 * H, priority=5, is_repair=True),
    ]
    plan = planned(world(jobs, [tech("t")]))
    assert where(plan, "repair")
    assert not where(plan, "install")


def test_a_pinned_job_stays_where_the_planner_put_it() -> None:
    jobs = [Job("a", 2, H, pin=Pin("y@0", 10 * H)), Job("b", 3, H)]
    plan = planned(world(jobs, [tech("x"), tech("y", home=25)]))
    ((vehicle, visit),) = where(plan, "a")
    assert (vehicle, visit.start_s) == ("y@0", 10 * H)


def _job_order(plan: Plan, vehicle_id: str) -> list[str]:
    (route,) = [r for r in plan.routes if r.technician_day == vehicle_id]
    return [v.job_id for v in route.visits if v.kind is VisitKind.JOB and v.job_id]


@pytest.mark.parametrize("lunch", [False, True], ids=["no-lunch", "lunch"])
@pytest.mark.parametrize("position", [0, 2])
def test_a_job_pinned_to_a_position_is_that_stop_of_its_route(lunch: bool, position: int) -> None:
    """Left alone, the job at km 9 would be last (out and back along the line)."""
    jobs = [
        Job("far", 9, H // 2, pin=Pin("x@0", position=position)),
        *(Job(name, place, H // 2) for name, place in (("a", 2), ("b", 4), ("c", 6))),
    ]
    plan = planned(world(jobs, [tech("x", lunch=lunch)]))
    order = _job_order(plan, "x@0")
    assert len(order) == 4
    assert order.index("far") == position


def test_check_reports_a_job_away_from_its_pinned_position() -> None:
    morning, afternoon = (TimeWindow(8 * H, 10 * H),), (TimeWindow(14 * H, 16 * H),)
    jobs = [Job("a", 2, H // 2, windows=morning), Job("b", 4, H // 2, windows=afternoon)]
    problem = world(jobs, [tech("x")])
    plan = planned(problem)
    assert _job_order(plan, "x@0") == ["a", "b"]
    pinned = replace(
        problem, jobs=[replace(problem.jobs[0], pin=Pin("x@0", position=1)), problem.jobs[1]]
    )
    assert [v.rule for v in check(pinned, plan)] == ["pin"]


def test_a_position_a_route_cannot_reach_leaves_the_job_unplanned_with_the_reason() -> None:
    jobs = [Job("a", 2, H // 2), Job("late", 4, H // 2, pin=Pin("x@0", position=3))]
    problem = world(jobs, [tech("x")])
    plan = solve(problem, QUICK)
    # Honestly reported, and nothing else broken.
    assert [str(v) for v in check(problem, plan)] == ["[pin] late: a pinned job is not planned"]
    assert where(plan, "a")
    (unplanned,) = plan.unplanned
    assert unplanned.reason == Why.of(Reason.PIN_POSITION, position=4, technician_day="x@0")
    assert "pinned as job 4 of x@0" in str(unplanned.reason)


def test_a_pin_holds_the_first_visit_and_lets_the_second_person_and_later_days_follow() -> None:
    crew = Job("crew", 5, H, crew_size=2, pin=Pin("y@0"))
    served = where(planned(world([crew], [tech("x"), tech("y", home=10)])), "crew")
    assert sorted((vehicle, visit.second_person) for vehicle, visit in served) == [
        ("x@0", True),
        ("y@0", False),
    ]
    long = Job("long", 5, 4 * H, days=2, pin=Pin("t@0"))
    plan = planned(world([long], [tech("t", 0), tech("t", 1), tech("u", 0)], days=2))
    assert sorted(vehicle for vehicle, _ in where(plan, "long")) == ["t@0", "t@1"]


def test_capacity_reserve_keeps_room_for_repairs() -> None:
    jobs = [Job(f"i{k}", 2, 2 * H) for k in range(4)] + [Job("r", 3, 2 * H, is_repair=True)]
    plan = planned(world(jobs, [tech("t", share=0.5)]))  # 9 h shift: 4.5 h for installations
    installs = sum(1 for k in range(4) if where(plan, f"i{k}"))
    assert installs == 2
    assert where(plan, "r")


def test_jobs_at_one_address_share_the_arrival() -> None:
    plan = planned(world([Job("a", 7, H), Job("b", 7, H)], [tech("t")]))
    route = plan.routes[0]
    assert route.travel_s == 2 * 7 * 60  # out and back once


def test_a_fixed_cost_per_technician_day_keeps_plans_compact() -> None:
    jobs = [Job("a", 3, H), Job("b", 4, H)]
    plan = planned(world(jobs, [tech("x"), tech("y")]))
    assert len(plan.routes) == 1


def test_the_validator_catches_a_broken_plan() -> None:
    problem = world(
        [
            Job(
                "a",
                3,
                H,
                windows=(TimeWindow(9 * H, 10 * H),),
                promised=True,
                skills=frozenset({"kitchen"}),
            )
        ],
        [tech("t", lunch=True)],
    )
    too_short = Visit(VisitKind.JOB, 8 * H, 8 * H, 8 * H + 1800, "a", None, 3)
    bad = Plan(routes=(Route("t@0", (too_short,), 8 * H, 9 * H, 0, 0),), unplanned=(), objective=0)
    rules = {v.rule for v in check(problem, bad)}
    assert {"promise", "skills", "lunch", "timing", "duration"} <= rules


def test_a_plan_can_start_from_a_previous_plan() -> None:
    problem = world([Job(f"j{i}", i + 1, H) for i in range(6)], [tech("x"), tech("y")])
    first = planned(problem)
    again = solve(problem, QUICK, warm_start=first)
    assert check(problem, again) == []
    assert again.objective <= first.objective


def test_construction_alone_is_valid_and_deterministic() -> None:
    jobs = [
        Job(
            f"j{i}",
            (7 * i) % 29 + 1,
            H // 2 + 600 * (i % 4),
            windows=(TimeWindow(8 * H + 1800 * (i % 6), 12 * H + 1800 * (i % 6)),),
        )
        for i in range(20)
    ]
    problem = world(jobs, [tech("x", lunch=True), tech("y", home=15, lunch=True)])
    one, two = construct(problem), construct(problem)
    assert check(problem, one) == []
    assert one == two


def test_progress_reports_improving_costs() -> None:
    seen: list[Progress] = []
    problem = world([Job(f"j{i}", (5 * i) % 29 + 1, H) for i in range(8)], [tech("x"), tech("y")])
    plan = solve(problem, QUICK, on_progress=seen.append)
    assert seen
    assert seen[0].objective >= plan.objective


@pytest.mark.parametrize("weights", [Weights(), Weights(per_km=0, technician_day_fixed=0)])
def test_kpis_add_up(weights: Weights) -> None:
    problem = world([Job(f"j{i}", i + 2, H) for i in range(5)], [tech("x")], weights=weights)
    plan = planned(problem)
    kpis = plan.kpis(problem)
    assert kpis["jobs_planned"] + kpis["jobs_unplanned"] == 5
    assert kpis["travel_h"] == round(sum(r.travel_s for r in plan.routes) / 3600, 2)
    assert replace(plan, routes=()).kpis(problem)["technician_days_used"] == 0


def test_two_workers_return_a_valid_plan_no_worse_than_one() -> None:
    jobs = [Job(f"j{i}", (11 * i) % 29 + 1, H // 2) for i in range(14)]
    problem = world(jobs, [tech("x"), tech("y", home=20)])
    # Round and solution limits make the main search reproducible, so the rival can only add.
    limits = Limits(time_limit_s=30.0, max_rounds=20, max_solutions=300)
    one = solve(problem, limits)
    two = solve(problem, replace(limits, workers=2))
    assert check(problem, two) == []
    assert two.objective <= one.objective


def test_a_pinned_job_outranks_unpinned_work_for_its_technician() -> None:
    jobs = [Job("big", 3, 8 * H, priority=5), Job("pinned", 4, 2 * H, pin=Pin("t@0"))]
    plan = planned(world(jobs, [tech("t")]))
    assert where(plan, "pinned")


def _busy_day() -> Problem:
    jobs = [Job(f"j{i}", (13 * i) % 29 + 1, H // 2 + 900 * (i % 3)) for i in range(24)]
    return world(
        jobs,
        [tech("x", lunch=True), tech("y", home=15, lunch=True), tech("z", home=28, lunch=True)],
    )


def test_ruin_and_recreate_never_does_worse_than_the_first_plan() -> None:
    problem = _busy_day()
    first = construct(problem)
    better = solve(problem, Limits(time_limit_s=60, max_rounds=40))
    assert check(problem, better) == []
    assert better.objective <= first.objective


def test_a_seeded_run_with_a_round_limit_is_reproducible() -> None:
    problem = _busy_day()
    limits = Limits(time_limit_s=600, max_rounds=25, seed=11)
    assert solve(problem, limits) == solve(problem, limits)


def test_the_time_limit_is_read_from_the_clock_it_is_given() -> None:
    ticks = iter(range(10**6))
    limits = Limits(time_limit_s=3, clock=lambda: float(next(ticks)))  # one second per look
    plan = solve(_busy_day(), limits)
    assert check(_busy_day(), plan) == []
    assert next(ticks) < 50  # it stopped after a handful of looks at the clock


def test_a_replan_keeps_communicated_jobs_where_they_were() -> None:
    jobs = [Job(f"j{i}", i + 1, H) for i in range(6)]
    technicians = [tech("x", home=3), tech("y", home=4)]
    # Last week's plan put the odd jobs with y and the even ones with x, and told customers.
    told = [
        replace(j, previous_technician_day="y@0" if i % 2 else "x@0") for i, j in enumerate(jobs)
    ]
    plan = planned(world(told, technicians))
    for i in range(6):
        assert where(plan, f"j{i}")[0][0] == ("y@0" if i % 2 else "x@0")
    free = planned(world(jobs, technicians))
    assert len(free.routes) == 1  # without the history, one technician does it all


def test_a_multi_day_installation_gets_consecutive_days_with_one_technician() -> None:
    kitchen = Job("kitchen", 6, 7 * H, skills=frozenset({"kitchen"}), days=3)
    problem = world(
        [kitchen, Job("other", 9, H)],
        [
            tech(name, d, skills=frozenset({"kitchen"}) if name == "k" else frozenset(), home=5)
            for name in ("k", "o")
            for d in range(4)
        ],
        days=4,
    )
    served = sorted(where(planned(problem), "kitchen"), key=lambda pair: pair[1].start_s)
    assert [vehicle.split("@")[0] for vehicle, _ in served] == ["k", "k", "k"]
    days = [visit.start_s // DAY_S for _, visit in served]
    assert days == list(range(days[0], days[0] + 3))


def test_a_multi_day_job_waits_for_a_technician_free_on_consecutive_days() -> None:
    kitchen = Job("kitchen", 6, 7 * H, skills=frozenset({"kitchen"}), days=2)
    # The only kitchen fitter works days 0 and 2, never two days in a row.
    problem = world(
        [kitchen],
        [tech("k", 0, skills=frozenset({"kitchen"})), tech("k", 2, skills=frozenset({"kitchen"}))],
        days=3,
    )
    plan = planned(problem)
    assert reason(plan, "kitchen") == Why.of(Reason.NO_CONSECUTIVE_DAYS, days=2)
    assert "2 consecutive days" in str(reason(plan, "kitchen"))


def test_the_validator_refuses_a_multi_day_job_split_over_technicians() -> None:
    job = Job("kitchen", 6, H, days=2)
    problem = world([job], [tech("a", 0), tech("b", 1)], days=2)
    visits = [
        Route(
            v,
            (
                Visit(
                    VisitKind.JOB,
                    d * DAY_S + 9 * H,
                    d * DAY_S + 9 * H,
                    d * DAY_S + 10 * H,
                    "kitchen",
                    None,
                    6,
                ),
            ),
            d * DAY_S + 8 * H,
            d * DAY_S + 11 * H,
            720,
            12000,
        )
        for d, v in enumerate(("a@0", "b@1"))
    ]
    bad = Plan(routes=tuple(visits), unplanned=(), objective=0)
    assert "multi-day" in {v.rule for v in check(problem, bad)}


@pytest.mark.parametrize(("jobs", "technicians"), [([], [tech("x")]), ([Job("a", 2, H)], [])])
def test_empty_worlds_give_an_empty_valid_plan(
    jobs: list[Job], technicians: list[TechnicianDay]
) -> None:
    problem = world(jobs, technicians)
    plan = solve(problem, QUICK)
    assert plan.routes == ()
    assert check(problem, plan) == []
    assert [u.job_id for u in plan.unplanned] == [j.id for j in jobs]
