"""Descent on the changed routes alone: the plan's cost moves by exactly what the whole model
says, and only where no rule ties routes together."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from optimizer import Job, TimeWindow
from optimizer.iterated import BestInsertion, StringRemoval, lighten, movable_nodes, routes_of
from optimizer.model import Dependency
from optimizer.regional import RegionalDescent, separable
from optimizer.routing import build
from tests.test_iterated import _closed
from tests.test_optimizer_rules import H, _source, tech, world


def _field_day(seed: int) -> list[Job]:
    """Windows, preferred windows, parts to pick up, goods in the van: rules of one route."""
    rng = random.Random(seed)
    jobs = []
    for i in range(18):
        start = rng.randrange(8, 15) * H
        job = Job(
            f"j{i}",
            rng.randrange(1, 30),
            H // 3,
            windows=(TimeWindow(start, start + 2 * H),) if rng.random() < 0.5 else (),
            preferred=TimeWindow(start, start + H) if rng.random() < 0.3 else None,
            volume_l=rng.randint(0, 4),
        )
        if rng.random() < 0.3:
            job = replace(
                job,
                needs_pickup=True,
                pickup_sources=(_source(f"s{i}", rng.randrange(30)),),
                part_volume_l=rng.randint(1, 4),
            )
        jobs.append(job)
    return jobs


@pytest.mark.parametrize("seed", range(6))
def test_a_region_moves_the_cost_by_what_the_whole_model_says(seed: int) -> None:
    vans = [
        tech("x", volume_l=16, overtime_s=2 * H),
        tech("y", home=12, volume_l=16),
        tech("z", home=25, volume_l=16, overtime_s=H),
    ]
    problem = world(_field_day(seed), vans)
    assert separable(problem)
    model = build(problem)
    params = _closed(model)
    lighten(params)
    start = model.routing.SolveWithParameters(params)
    assert start is not None
    current, cost = routes_of(model, start), int(start.ObjectiveValue())
    rng = random.Random(seed)
    removal = StringRemoval(model, movable_nodes(model), rng)
    insertion = BestInsertion(model, rng)
    regional = RegionalDescent(model, params, lambda: 10.0)
    compared = 0
    for _ in range(15):
        ruined = removal.ruin(current)
        kept = {n for nodes in ruined for n in nodes}
        rebuilt = insertion.insert(ruined, [n for r in current for n in r if n not in kept])
        touched = [v for v, nodes in enumerate(rebuilt) if nodes != current[v]]
        found = regional(current, rebuilt, touched)
        if found is None:
            continue
        change, polished = found
        after = list(current)
        for v, nodes in polished.items():
            after[v] = nodes
        indices = [[model.manager.NodeToIndex(n) for n in nodes] for nodes in after]
        whole = model.routing.ReadAssignmentFromRoutes(indices, True)
        assert whole is not None
        assert int(whole.ObjectiveValue()) - cost == change
        compared += 1
        current, cost = after, cost + change
    assert compared > 5


def test_no_region_of_no_routes() -> None:
    """OR-Tools aborts the process on a model without vehicles; the region declines first."""
    model = build(world(_field_day(0), [tech("x")]))
    params = _closed(model)
    assert RegionalDescent(model, params, lambda: 1.0)([[]], [[]], []) is None


def test_crews_dependencies_and_multi_day_jobs_tie_routes_together() -> None:
    plain = world(_field_day(1), [tech("x"), tech("y")])
    assert separable(plain)
    jobs = list(plain.jobs)
    for tied in (
        replace(jobs[0], crew_size=2),
        replace(jobs[0], after=(Dependency(jobs[1].id),)),
        replace(jobs[0], days=2),
    ):
        assert not separable(replace(plain, jobs=[tied, *jobs[1:]]))
