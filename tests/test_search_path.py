"""Which search the product's rules send a problem to (`Plan.search`).

The strong path is OR-Tools' guided search with iterated ruin and recreate around it, its
rounds polished by the compiled descent where a route's rules allow; a rule it cannot hold
sends the problem to the weaker rule-aware ruin and recreate alone. Each test is one rule on
a small day where every search finds the same plan, so the name is the path's, not luck's:
of equally good plans the strongest search that found one is named.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from optimizer import Job, Limits, Search, TimeWindow, check, solve
from optimizer.model import Dependency, Problem
from optimizer.protection import Protection
from tests.test_optimizer_rules import H, tech, world

LIMITS = Limits(time_limit_s=1.0)


def _day(*, lunch: bool = False, **changes: object) -> Problem:
    jobs = [
        Job(f"j{k}", place, H // 2, windows=(TimeWindow(8 * H, 16 * H),))
        for k, place in enumerate((2, 4, 7, 11, 13, 17))
    ]
    problem = world(jobs, [tech("x", lunch=lunch), tech("y", home=20, lunch=lunch)])
    return replace(problem, **changes) if changes else problem


def _search(problem: Problem) -> Search:
    plan = solve(problem, LIMITS)
    assert check(problem, plan) == []
    assert not plan.unplanned
    return plan.search


def test_windows_loads_and_shifts_run_the_compiled_descent() -> None:
    assert _search(_day()) is Search.COMPILED


def test_a_lunch_break_runs_the_compiled_descent() -> None:
    assert _search(_day(lunch=True)) is Search.COMPILED


@pytest.mark.parametrize(
    "rule",
    ["two-person job", "dependency", "job longer than the lunch window", "promise protection"],
)
def test_rules_that_tie_routes_or_hold_lunch_inside_a_job_fall_back_to_ruin_and_recreate(
    rule: str,
) -> None:
    problem = _day(lunch=True)
    jobs = list(problem.jobs)
    if rule == "two-person job":
        jobs[0] = replace(jobs[0], crew_size=2)
    elif rule == "dependency":
        jobs[1] = replace(jobs[1], after=(Dependency(jobs[0].id),))
    elif rule == "job longer than the lunch window":
        jobs[2] = replace(jobs[2], duration_s=3 * H, windows=(TimeWindow(8 * H, 11 * H),))
    else:
        jobs[3] = replace(jobs[3], windows=(TimeWindow(10 * H, 12 * H),), promised=True)
        problem = replace(problem, protection=Protection(target=0.98))
    assert _search(replace(problem, jobs=jobs)) is Search.RUIN_AND_RECREATE
