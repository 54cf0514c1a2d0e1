"""Invariants over random small worlds: every plan the engine returns passes `check`."""

from __future__ import annotations

import time
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import Job, Limits, PickupSource, TimeWindow, check, solve
from optimizer.check import Rule
from optimizer.construct import build_greedy, construct, to_plan
from optimizer.improve import Budget, polish, shiftable_jobs, total_cost
from optimizer.model import DAY_S, Dependency
from optimizer.protection import Protection
from tests.test_optimizer_rules import H, tech, world

SKILLS = ("kitchen", "flooring", "measure")


def broken_rules(problem, plan) -> list[str]:  # type: ignore[no-untyped-def]
    """Every violation except an unplanned promise (random promises can be impossible; that
    case is reported as a broken promise, which is right, and tested on its own)."""
    return [str(v) for v in check(problem, plan) if not (v.rule is Rule.PROMISE and v.left_out)]


@st.composite
def worlds(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    days = draw(st.integers(1, 2))
    technicians = [
        tech(
            f"t{i}",
            d,
            skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=3))),
            home=draw(st.integers(0, 29)),
            lunch=draw(st.booleans()),
            overtime_s=draw(st.sampled_from((0, 1800, 3600))),
            volume_l=draw(st.sampled_from((500, 2000, 10**6))),
        )
        for i in range(draw(st.integers(1, 3)))
        for d in range(days)
    ]
    jobs: list[Job] = []
    for k in range(draw(st.integers(1, 10))):
        day = draw(st.integers(0, days - 1))
        start = day * DAY_S + draw(st.integers(8, 16)) * H
        windowed = draw(st.booleans())
        pickup = draw(st.booleans()) and k % 3 == 0
        jobs.append(
            Job(
                id=f"j{k}",
                place=draw(st.integers(0, 29)),
                duration_s=draw(st.sampled_from((1800, 3600, 7200))),
                skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=1))),
                windows=(TimeWindow(start, start + 2 * H),) if windowed else (),
                promised=windowed and draw(st.booleans()),
                volume_l=draw(st.sampled_from((0, 0, 300))),
                needs_pickup=pickup,
                part_volume_l=10 if pickup else 0,
                pickup_sources=(
                    PickupSource(
                        "s",
                        draw(st.integers(0, 29)),
                        tuple(
                            TimeWindow(d * DAY_S + 8 * H, d * DAY_S + 18 * H) for d in range(days)
                        ),
                    ),
                )
                if pickup
                else (),
                crew_size=2 if draw(st.integers(0, 5)) == 0 else 1,
                priority=draw(st.integers(1, 5)),
                after=(Dependency(f"j{k - 1}", draw(st.integers(0, 1))),)
                if k and draw(st.integers(0, 4)) == 0
                else (),
            )
        )
    return world(jobs, technicians, days=days)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_constructed_plans_always_pass_the_validator_except_for_stated_broken_promises(
    problem,  # type: ignore[no-untyped-def]
) -> None:
    plan = construct(problem)
    assert broken_rules(problem, plan) == []
    planned = set(plan.job_visits())
    assert planned.isdisjoint({u.job_id for u in plan.unplanned})
    assert planned | {u.job_id for u in plan.unplanned} == {j.id for j in problem.jobs}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_solved_plans_keep_every_rule_and_every_skill_matches(problem) -> None:  # type: ignore[no-untyped-def]
    plan = solve(problem, Limits(time_limit_s=0.3))
    assert broken_rules(problem, plan) == []
    vehicles = {v.id: v for v in problem.technician_days}
    for job_id, served in plan.job_visits().items():
        for vehicle, _ in served:
            assert problem.job(job_id).skills <= vehicles[vehicle].skills


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.booleans())
def test_the_descent_after_a_round_never_costs_more_and_keeps_every_rule(  # type: ignore[no-untyped-def]
    problem, protect: bool
) -> None:
    if protect:
        problem = replace(problem, protection=Protection(target=0.9))
    builder, unplaced = build_greedy(problem)
    before = to_plan(problem, builder, sorted(unplaced))
    cost = total_cost(builder, unplaced)
    shiftable = shiftable_jobs(problem)
    polish(builder, list(range(len(builder.routes))), shiftable, Budget(1, None, time.monotonic))
    after = to_plan(problem, builder, sorted(unplaced))
    assert total_cost(builder, unplaced) <= cost
    assert set(after.job_visits()) == set(before.job_visits())
    assert broken_rules(problem, after) == []
