"""Our own descent and insertion for plain routes (`optimizer.descent`).

Every plan they return is one the routing model accepts, at the cost they claim; and after a
descent no move of the kinds it makes (checked by enumerating them one by one, with a
schedule simulated from the problem itself) lowers the cost any further.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from optimizer import Break, Job, Pin, Problem, TechnicianDay, TimeWindow, Weights
from optimizer.construct import Stop, simulate
from optimizer.descent import Descent, plain
from optimizer.iterated import StringRemoval, movable_nodes
from optimizer.model import VisitKind
from optimizer.nodes import NodeData
from optimizer.protection import Protection
from optimizer.routing import Model, build
from tests.test_optimizer_rules import H, tech, world

Routes = list[list[int]]


@st.composite
def plain_problems(draw: st.DrawFn) -> Problem:
    """Two or three vans from two depots, some with a lunch break, up to eight jobs with
    windows, goods and skills, on a travel matrix that need not keep the triangle inequality."""
    jobs_count = draw(st.integers(2, 8))
    places = jobs_count + 2
    xy = np.array(
        draw(
            st.lists(
                st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=places, max_size=places
            )
        )
    )
    km = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    noise = np.array(
        draw(st.lists(st.integers(0, 600), min_size=places**2, max_size=places**2))
    ).reshape(places, places)
    duration = (km * 60).astype(np.int64) + noise
    np.fill_diagonal(duration, 0)
    distance = (km * 1000).astype(np.int64) + noise * 3
    np.fill_diagonal(distance, 0)
    vans = []
    for k in range(draw(st.integers(2, 3))):
        opens, closes = draw(st.sampled_from([(8, 17), (7, 12), (12, 18)]))
        lunch = draw(
            st.sampled_from(
                [
                    None,
                    Break((opens + 3) * H, (opens + 5) * H, 1800),
                    Break(opens * H, closes * H, 0),
                ]
            )
        )
        vans.append(
            TechnicianDay(
                id=f"v{k}",
                technician=f"t{k}",
                day=0,
                skills=frozenset(draw(st.sampled_from([(), ("tiles",)]))),
                start_place=draw(st.integers(0, 1)),
                end_place=draw(st.integers(0, 1)),
                shift=TimeWindow(opens * H, closes * H),
                lunch=lunch,
                volume_capacity_l=draw(st.sampled_from([5, 9, 10**9])),
            )
        )
    jobs = []
    for i in range(jobs_count):
        windows: tuple[TimeWindow, ...] = ()
        if draw(st.booleans()):
            start = draw(st.integers(7, 16)) * H
            windows = (TimeWindow(start, start + draw(st.sampled_from([H, 2 * H, 4 * H]))),)
        pin = Pin(f"v{draw(st.integers(0, 1))}") if draw(st.integers(0, 9)) == 0 else None
        jobs.append(
            Job(
                f"j{i}",
                i + 2,
                draw(st.sampled_from([15, 30, 60, 90])) * 60,
                skills=frozenset(draw(st.sampled_from([(), (), ("tiles",)]))),
                windows=windows,
                volume_l=draw(st.integers(0, 4)),
                priority=draw(st.integers(1, 3)),
                pin=pin,
            )
        )
    weights = Weights(
        per_km=draw(st.sampled_from([0, 30])),
        technician_day_fixed=draw(st.sampled_from([0, 1800, 20_000])),
    )
    return Problem(jobs, vans, duration, distance, weights, horizon_days=2)


def _closed(model: Model) -> None:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    model.routing.CloseModelWithParameters(params)


class Reference:
    """The problem's rules read from the problem itself, one plan at a time."""

    def __init__(self, model: Model) -> None:
        self.problem = problem = model.problem
        layout = model.layout
        self.job = {layout.job_node[j.id]: j for j in problem.jobs}
        self.start = [layout.depot_of_place[v.start_place] for v in problem.technician_days]
        self.end = [layout.depot_of_place[v.end_place] for v in problem.technician_days]
        self.place = layout.place

    def feasible(self, v: int, nodes: list[int]) -> bool:
        van = self.problem.technician_days[v]
        jobs = [self.job[n] for n in nodes]
        if sum(j.volume_l for j in jobs) > van.volume_capacity_l:
            return False
        if any(
            not j.skills <= van.skills or (j.pin and j.pin.technician_day != van.id) for j in jobs
        ):
            return False
        if van.lunch is not None:  # the product's lunch rule, as the construction keeps it
            stops = [
                Stop(VisitKind.JOB, j, j.place, j.duration_s, j.windows or (van.shift,))
                for j in jobs
            ]
            return simulate(self.problem, van, stops) is not None
        here, time = van.start_place, van.shift.start_s
        for job in jobs:
            time += int(self.problem.duration_s[here, job.place])
            if job.windows:
                time = max(time, job.windows[0].start_s)
                if time > job.windows[0].end_s:
                    return False
            here, time = job.place, time + job.duration_s
        return time + int(self.problem.duration_s[here, van.end_place]) <= van.shift.end_s

    def cost(self, routes: Routes, out: list[int]) -> int:
        problem, weights = self.problem, self.problem.weights
        total = sum(weights.unplanned_penalty(self.job[n]) for n in out)
        for v, nodes in enumerate(routes):
            if not nodes:
                continue
            van = problem.technician_days[v]
            stops = [van.start_place, *(self.job[n].place for n in nodes), van.end_place]
            total += weights.technician_day_fixed
            for a, b in itertools.pairwise(stops):
                total += int(problem.duration_s[a, b]) * weights.travel_per_s
                total += int(problem.distance_m[a, b]) * weights.per_km // 1000
        return total

    def neighbours(self, routes: Routes, out: list[int]):  # type: ignore[no-untyped-def]
        """Every plan one move of the descent's kinds away, with the jobs left out."""
        vans = self.problem.technician_days
        for a, first in enumerate(routes):
            for i in range(len(first)):
                for length in (1, 2, 3):
                    if i + length > len(first):
                        break
                    moved, rest = first[i : i + length], first[:i] + first[i + length :]
                    for b, second in enumerate(routes):
                        if b == a:  # or-opt: elsewhere in its own route
                            for k in range(len(rest) + 1):
                                if k != i:
                                    yield _with(routes, {a: rest[:k] + moved + rest[k:]}), out
                            continue
                        for k in range(len(second) + 1):
                            changed = {a: rest, b: second[:k] + moved + second[k:]}
                            yield _with(routes, changed), out
            for i in range(len(first)):  # 2-opt: a stretch reversed
                for j in range(i + 1, len(first)):
                    turned = first[:i] + first[i : j + 1][::-1] + first[j + 1 :]
                    yield _with(routes, {a: turned}), out
            for b in range(a + 1, len(routes)):
                second = routes[b]
                for i, u in enumerate(first):  # swap
                    for j, w in enumerate(second):
                        changed = {
                            a: [*first[:i], w, *first[i + 1 :]],
                            b: [*second[:j], u, *second[j + 1 :]],
                        }
                        yield _with(routes, changed), out
                alike = (vans[a].end_place, vans[a].shift.end_s)
                if (vans[b].end_place, vans[b].shift.end_s) != alike:
                    continue
                for i in range(len(first) + 1):  # 2-opt*: tails exchanged
                    for j in range(len(second) + 1):
                        changed = {a: first[:i] + second[j:], b: second[:j] + first[i:]}
                        yield _with(routes, changed), out
        for u in out:  # a job left out put back
            for b, second in enumerate(routes):
                for k in range(len(second) + 1):
                    changed = {b: [*second[:k], u, *second[k:]]}
                    yield _with(routes, changed), [n for n in out if n != u]


def _with(routes: Routes, changed: dict[int, list[int]]) -> Routes:
    return [changed.get(v, nodes) for v, nodes in enumerate(routes)]


def _objective(model: Model, routes: Routes) -> int | None:
    indices = [[model.manager.NodeToIndex(n) for n in nodes] for nodes in routes]
    solution = model.routing.ReadAssignmentFromRoutes(indices, True)
    return None if solution is None else int(solution.ObjectiveValue())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=plain_problems(), seed=st.integers(0, 2**16))
def test_descents_end_where_no_move_of_their_kinds_improves(problem: Problem, seed: int) -> None:
    assert plain(problem)
    model = build(problem)
    _closed(model)
    vans = len(problem.technician_days)
    own = Descent(NodeData.of(model), vans)
    reference = Reference(model)
    jobs = sorted(model.layout.job_node.values())
    random.Random(seed).shuffle(jobs)
    routes = own.insert([[] for _ in range(vans)], jobs, seed, 0.0)
    out = [n for n in jobs if not any(n in nodes for nodes in routes)]
    assert all(reference.feasible(v, nodes) for v, nodes in enumerate(routes))
    by_vehicle = dict(enumerate(routes))
    out = own.descend(by_vehicle, out)
    routes = [by_vehicle[v] for v in range(vans)]
    cost = reference.cost(routes, out)
    assert _objective(model, routes) == cost
    assert sorted([*out, *(n for nodes in routes for n in nodes)]) == sorted(jobs)
    for neighbour, left in reference.neighbours(routes, out):
        if all(reference.feasible(v, nodes) for v, nodes in enumerate(neighbour)):
            assert reference.cost(neighbour, left) >= cost, (routes, neighbour)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=plain_problems(), seed=st.integers(0, 2**16))
def test_rounds_move_the_cost_by_what_the_model_says(problem: Problem, seed: int) -> None:
    """Ruin, our insertion and a descent of the routes it changed, as the search's loop does
    them: the model accepts each plan, and its cost moves by exactly the change claimed."""
    model = build(problem)
    _closed(model)
    vans = len(problem.technician_days)
    own = Descent(NodeData.of(model), vans)
    rng = random.Random(seed)
    removal = StringRemoval(model, movable_nodes(model), rng)
    jobs = sorted(model.layout.job_node.values())
    current = own.insert([[] for _ in range(vans)], jobs, seed, 0.0)
    cost = _objective(model, current)
    assert cost is not None
    for _ in range(8):
        ruined = removal.ruin(current)
        kept = {n for nodes in ruined for n in nodes}
        gone = [n for nodes in current for n in nodes if n not in kept]
        rebuilt = own.insert(ruined, gone, rng.randrange(2**16), 0.1)
        proposed = _objective(model, rebuilt)
        assert proposed is not None
        touched = [v for v, nodes in enumerate(rebuilt) if nodes != current[v]]
        change, polished = own(current, rebuilt, touched)
        assert cost + change <= proposed
        after = [polished.get(v, nodes) for v, nodes in enumerate(current)]
        assert _objective(model, after) == cost + change
        current, cost = after, cost + change


def test_only_routes_of_windows_loads_and_arcs_are_plain() -> None:
    jobs = [Job("a", 3, H), Job("b", 5, H, windows=(TimeWindow(9 * H, 11 * H),))]
    simple = world(jobs, [tech("x"), tech("y", home=4, volume_l=3)])
    assert plain(simple)
    lunch = replace(tech("x"), lunch=Break(12 * H, 13 * H, 1800))
    assert plain(world(jobs, [lunch]))
    # Lunch inside a job longer than the lunch window is the construction's rule alone.
    assert not plain(world([replace(jobs[0], duration_s=2 * H)], [lunch]))
    promise = replace(jobs[1], promised=True)
    assert not plain(replace(world([promise], [tech("x")]), protection=Protection()))
    assert not plain(world(jobs, [tech("x", overtime_s=H)]))
    assert not plain(world(jobs, [tech("x", share=0.8)]))
    soft = [replace(jobs[0], preferred=TimeWindow(9 * H, 10 * H)), jobs[1]]
    assert not plain(world(soft, [tech("x")]))
    two = (TimeWindow(9 * H, 10 * H), TimeWindow(14 * H, 15 * H))
    assert not plain(world([replace(jobs[0], windows=two)], [tech("x")]))
    assert not plain(world([replace(jobs[0], crew_size=2)], [tech("x"), tech("y")]))
    assert not plain(world([replace(jobs[0], pin=Pin("x@0", position=0))], [tech("x")]))
    assert not plain(world([replace(jobs[0], previous_technician_day="x@0")], [tech("x")]))


def test_an_empty_day_with_the_skill_is_not_stood_in_for_by_one_without() -> None:
    """Empty technician-days count as one candidate only when they could serve the same jobs."""
    job = Job("tiling", 5, H, skills=frozenset({"tiles"}))
    problem = world([job], [tech("x"), tech("y", skills=frozenset({"tiles"}))])
    model = build(problem)
    _closed(model)
    own = Descent(NodeData.of(model), 2)
    node = model.layout.job_node["tiling"]
    assert own.insert([[], []], [node], 0, 0.0) == [[], [node]]
