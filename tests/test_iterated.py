"""Iterated ruin and recreate around OR-Tools: the ruin takes whole jobs, the recreate proposes
feasible cheapest positions, and the loop never returns worse than where it started."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from optimizer import Job, Limits, PickupSource, Pin, TimeWindow, Weights, check, solve
from optimizer.costs import plan_cost
from optimizer.descent import plain
from optimizer.iterated import (
    WHOLE_EVERY,
    BestInsertion,
    Found,
    RouteElimination,
    StringRemoval,
    _indices,
    iterate,
    movable_nodes,
)
from optimizer.model import Plan, Route, Visit, VisitKind
from optimizer.regional import separable
from optimizer.routing import Model, NodeRole, build, routes_of
from optimizer.solve import (
    FLEET_LEGS,
    LONG_ROUTE_JOBS,
    _fleet_conscious,
    _rival_mode,
    _search_from_a_smaller_fleet,
    read_plan,
    search,
)
from tests.test_optimizer_rules import H, _source, tech, world


def _closed(model: Model) -> object:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    model.routing.CloseModelWithParameters(params)
    return params


def _iterate(model: Model, start: object, params: object, *, seed: int, rounds: int) -> Found:
    """The loop for a fixed number of rounds, on a clock that never moves."""
    return iterate(
        model,
        start,
        params,
        deadline=float("inf"),
        clock=lambda: 0.0,
        seed=seed,
        rounds=rounds,
        read=lambda found: read_plan(model, found),
        descent_limit_s=lambda: 60.0,
    )


def test_the_ruin_takes_whole_jobs_and_never_a_pinned_one() -> None:
    jobs = [
        Job("part", 10, H, needs_pickup=True, pickup_sources=(_source("s1", 5), _source("s2", 15))),
        Job("pinned", 4, H, pin=Pin("x@0")),
        *(Job(f"j{i}", i + 1, H // 2) for i in range(8)),
    ]
    model = build(world(jobs, [tech("x"), tech("y", home=20)]))
    layout = model.layout
    every = [n for n in range(len(layout.role)) if layout.job_index[n] >= 0]
    movable = movable_nodes(model)
    assert layout.job_node["pinned"] not in movable
    nodes_of = {
        job.id: {n for n in every if layout.job_index[n] == i} for i, job in enumerate(jobs)
    }
    for seed in range(40):
        # Both pickup options on the route: only for the test, a plan holds one.
        ruined = StringRemoval(model, movable, random.Random(seed)).ruin([every[:6], every[6:]])
        left = {n for nodes in ruined for n in nodes}
        assert len(left) < len(every)
        for job_id, nodes in nodes_of.items():
            assert nodes <= left or not (nodes & left), job_id  # all of a job or none
        assert layout.job_node["pinned"] in left


def test_best_insertion_takes_the_cheapest_position_its_windows_allow() -> None:
    morning = TimeWindow(9 * H, 10 * H)
    jobs = [
        Job("a", 2, H // 2),
        Job("c", 6, H // 2, windows=(morning,)),
        Job("between", 4, H // 2),
        Job("late", 4, H // 2, windows=(TimeWindow(15 * H, 16 * H),)),
    ]
    model = build(world(jobs, [tech("x")]))
    _closed(model)
    node = model.layout.job_node
    route = [node["a"], node["c"]]
    insertion = BestInsertion(model, random.Random(0), blink=0.0)
    # On the way from a to c costs no detour at all.
    assert insertion.insert([route], [node["between"]]) == [[node["a"], node["between"], node["c"]]]
    # The same place, but only in the afternoon: after c's morning window, on the way home.
    assert insertion.insert([route], [node["late"]]) == [[node["a"], node["c"], node["late"]]]
    impossible = Job("never", 29, H, windows=(TimeWindow(8 * H, 8 * H + 60),))
    model = build(world([*jobs, impossible], [tech("x")]))
    _closed(model)
    rebuilt = BestInsertion(model, random.Random(0)).insert(
        [route], [model.layout.job_node["never"]]
    )
    assert rebuilt == [route]  # no feasible place: left for OR-Tools to settle


def _part_job(job_id: str, place: int, *sources: PickupSource, part_l: int = 0) -> Job:
    return Job(
        job_id, place, H // 2, needs_pickup=True, pickup_sources=sources, part_volume_l=part_l
    )


def test_a_job_with_a_missing_part_goes_in_with_its_pickup_before_it() -> None:
    jobs = [
        Job("a", 2, H // 2),
        Job("c", 12, H // 2),
        _part_job("part", 8, _source("far", 25), _source("near", 5)),
    ]
    model = build(world(jobs, [tech("x")]))
    _closed(model)
    node, pickups = model.layout.job_node, model.layout.pickup_nodes["part"]
    insertion = BestInsertion(model, random.Random(0), blink=0.0)
    # The store at km 5 and the job at km 8 both lie on the way from a to c: no detour.
    assert insertion.insert([[node["a"], node["c"]]], [node["part"], pickups[0]]) == [
        [node["a"], pickups[1], node["part"], node["c"]]
    ]


def test_the_pair_insertion_keeps_the_van_within_its_volume() -> None:
    def proposal(volume_l: int) -> list[str]:
        jobs = [
            Job("goods", 4, H // 2, volume_l=6, windows=(TimeWindow(9 * H, 10 * H),)),
            replace(
                _part_job("part", 8, _source("s", 2), part_l=5),
                windows=(TimeWindow(15 * H, 16 * H),),
            ),
        ]
        model = build(world(jobs, [tech("x", volume_l=volume_l)]))
        _closed(model)
        layout = model.layout
        (route,) = BestInsertion(model, random.Random(0), blink=0.0).insert(
            [[layout.job_node["goods"]]], [layout.job_node["part"], *layout.pickup_nodes["part"]]
        )
        return [layout.role[n] + ":" + jobs[layout.job_index[n]].id for n in route]

    # The goods go in the morning, the part job in the afternoon. With room for both the part
    # is fetched on the way out; with 10 l the goods must leave the van first.
    assert proposal(100) == ["pickup:part", "job:goods", "job:part"]
    assert proposal(10) == ["job:goods", "pickup:part", "job:part"]


def test_the_pair_insertion_only_uses_a_site_while_it_is_open() -> None:
    closes_early = PickupSource("near", 9, (TimeWindow(8 * H, 8 * H + 300),))
    jobs = [_part_job("part", 10, closes_early, _source("far", 20))]
    model = build(world(jobs, [tech("x")]))
    _closed(model)
    layout = model.layout
    (route,) = BestInsertion(model, random.Random(0), blink=0.0).insert(
        [[]], [layout.job_node["part"], *layout.pickup_nodes["part"]]
    )
    assert route == [layout.pickup_nodes["part"][1], layout.job_node["part"]]


@pytest.mark.parametrize("seed", range(12))
def test_every_proposal_of_the_insertion_is_a_solution_of_the_model(seed: int) -> None:
    """The insertion's arithmetic against the model's: OR-Tools reads back every route it
    proposes, windows, pickups before their jobs and van loads included."""
    rng = random.Random(seed)
    jobs = []
    for i in range(14):
        start = rng.randrange(8, 15) * H
        windows = (TimeWindow(start, start + 2 * H),) if rng.random() < 0.6 else ()
        job = Job(f"j{i}", rng.randrange(1, 30), H // 3, windows=windows)
        if rng.random() < 0.5:
            sources = tuple(
                _source(f"s{i}{k}", rng.randrange(30)) for k in range(rng.randint(1, 2))
            )
            job = replace(
                job,
                needs_pickup=True,
                pickup_sources=sources,
                part_volume_l=rng.randint(1, 6),
                volume_l=rng.randint(0, 4),
            )
        else:
            job = replace(job, volume_l=rng.randint(0, 6))
        jobs.append(job)
    problem = world(jobs, [tech("x", volume_l=14), tech("y", home=20, volume_l=14)])
    model = build(problem)
    params = _closed(model)
    start = model.routing.SolveWithParameters(params)
    assert start is not None
    routes = routes_of(model, start)
    removal = StringRemoval(model, movable_nodes(model), rng)
    insertion = BestInsertion(model, rng)
    proposed = paired = 0
    for _ in range(20):
        ruined = removal.ruin(routes)
        kept = {n for nodes in ruined for n in nodes}
        gone = [n for nodes in routes for n in nodes if n not in kept]
        rebuilt = insertion.insert(ruined, gone)
        proposed += sum(map(len, rebuilt)) - len(kept)
        paired += sum(
            model.layout.role[n] == NodeRole.PICKUP
            for nodes in rebuilt
            for n in nodes
            if n not in kept
        )
        indices = [[model.manager.NodeToIndex(n) for n in nodes] for nodes in rebuilt]
        assert model.routing.ReadAssignmentFromRoutes(indices, True) is not None, rebuilt
    assert proposed > paired > 0


def test_route_elimination_empties_a_route_when_the_others_have_room() -> None:
    jobs = [Job(f"j{i}", 3 * i + 1, H // 2, volume_l=1) for i in range(6)]
    vans = [tech("x", volume_l=3), tech("y", home=10, volume_l=3), tech("z", home=20, volume_l=3)]
    model = build(world(jobs, vans))  # two vans carry it all
    _closed(model)
    node = [model.layout.job_node[j.id] for j in jobs]
    movable = movable_nodes(model)
    rng = random.Random(3)
    insertion = BestInsertion(model, rng)
    elimination = RouteElimination(StringRemoval(model, movable, rng), insertion, rng)
    start = [[node[0], node[1]], [node[2], node[3]], [node[4], node[5]]]
    fewer = elimination.attempt(start, until=float("inf"), clock=lambda: 0.0, rounds=50)
    assert fewer is not None
    assert sum(1 for nodes in fewer if nodes) == 2
    assert sorted(n for nodes in fewer for n in nodes) == sorted(node)
    indices = [[model.manager.NodeToIndex(n) for n in nodes] for nodes in fewer]
    assert model.routing.ReadAssignmentFromRoutes(indices, True) is not None


def test_route_elimination_gives_up_when_every_route_is_needed() -> None:
    at_ten = (TimeWindow(10 * H, 10 * H),)
    jobs = [Job(f"j{i}", 5 + 10 * i, H, windows=at_ten) for i in range(3)]
    model = build(world(jobs, [tech("x"), tech("y", home=10), tech("z", home=20)]))
    _closed(model)
    node = [model.layout.job_node[j.id] for j in jobs]
    rng = random.Random(0)
    elimination = RouteElimination(
        StringRemoval(model, movable_nodes(model), rng), BestInsertion(model, rng), rng
    )
    # Three jobs at ten o'clock sharp, kilometres apart: three technicians.
    start = [[node[0]], [node[1]], [node[2]]]
    assert elimination.attempt(start, until=float("inf"), clock=lambda: 0.0, rounds=30) is None


def test_the_loop_never_returns_worse_than_its_start_and_is_reproducible() -> None:
    jobs = [Job(f"j{i}", (7 * i) % 29 + 1, H // 2) for i in range(16)]
    problem = world(jobs, [tech("x"), tech("y", home=15), tech("z", home=28)])

    def run(seed: int) -> tuple[int, int]:
        model = build(problem)
        params = _closed(model)
        start = model.routing.SolveWithParameters(params)
        best = _iterate(model, start, params, seed=seed, rounds=30)
        assert check(problem, best.value) == []
        assert len(routes_of(model, start)) == 3
        return int(start.ObjectiveValue()), best.cost

    start, found = run(5)
    assert found <= start
    assert run(5) == (start, found)


def test_a_search_with_round_and_solution_limits_repeats_itself() -> None:
    jobs = [Job(f"j{i}", (11 * i) % 29 + 1, H // 2) for i in range(14)]
    problem = world(jobs, [tech("x"), tech("y", home=20)])
    limits = Limits(time_limit_s=60.0, max_rounds=15, max_solutions=200, seed=2)
    first = search(problem, limits, None, None)
    assert first is not None
    assert check(problem, first) == []
    assert search(problem, limits, None, None) == first


def test_a_search_on_short_routes_starts_where_every_route_costs_a_few_legs() -> None:
    jobs = [Job(f"j{i}", 2 * i + 1, H // 2) for i in range(6)]
    free_days = Weights(technician_day_fixed=0, per_km=0)
    problem = world(jobs, [tech("x"), tech("y", home=20)], weights=free_days)
    start = solve(problem, Limits(time_limit_s=0))
    legs = sum(len(route.visits) + 1 for route in start.routes if route.visits)
    travel = sum(route.travel_s for route in start.routes)
    surrogate = _fleet_conscious(problem, start)
    assert surrogate.weights.technician_day_fixed == int(FLEET_LEGS * travel / legs) > 0
    assert surrogate.jobs == problem.jobs
    # Where a day used already costs more, the problem is searched as it is.
    dear = replace(problem, weights=replace(free_days, technician_day_fixed=10**6))
    assert _fleet_conscious(dear, start) is dear


def test_the_search_from_a_smaller_fleet_returns_a_plan_scored_on_the_true_objective() -> None:
    """It starts from our plan on the surrogate, whose costs are not the problem's: what it
    returns, and the last progress it reports, are the problem's own."""
    jobs = [Job(f"j{i}", 2 * i + 1, H // 2) for i in range(6)]
    problem = world(
        jobs,
        [tech("x"), tech("y", home=20)],
        weights=Weights(technician_day_fixed=0, per_km=0),
    )
    first = solve(problem, Limits(time_limit_s=0))
    assert _fleet_conscious(problem, first) is not problem
    reported: list[int] = []
    limits = Limits(time_limit_s=60.0, max_rounds=10, max_solutions=100, seed=1)
    found = _search_from_a_smaller_fleet(
        problem, limits, first, first, lambda progress: reported.append(progress.objective)
    )
    assert found is not None
    assert check(problem, found) == []
    assert not found.unplanned
    assert found.objective == plan_cost(problem, found)
    assert reported[-1] == found.objective


def test_the_second_core_goes_for_fewer_routes_only_where_routes_are_short() -> None:
    def plan(jobs_per_route: int, routes: int) -> Plan:
        visit = Visit(VisitKind.JOB, 0, 0, 60, job_id="j", place=1)
        pickup = Visit(VisitKind.PICKUP, 0, 0, 60, job_id="j", site="s", place=2)
        route = Route("v", (pickup,) * 5 + (visit,) * jobs_per_route, 0, 0, 0, 0)
        return Plan((route,) * routes, (), 0)

    assert _rival_mode(False, plan(8, 12)) == "fleet"
    # Pickups are not jobs: 11 jobs a route is still short.
    assert _rival_mode(False, plan(LONG_ROUTE_JOBS - 1, 3)) == "fleet"
    assert _rival_mode(False, plan(LONG_ROUTE_JOBS, 3)) == "ortools"
    assert _rival_mode(True, plan(8, 12)) == "lns"


@pytest.mark.parametrize("overtime_s", [0, H])
def test_a_best_plan_found_by_the_regions_alone_is_read_from_the_whole_model(
    overtime_s: int,
) -> None:
    """Rounds polished by regions only (fewer than WHOLE_EVERY) keep their best unread; the
    loop still returns it, read from the whole model at the end. Without overtime the regions
    are polished by our own descent, with it by OR-Tools in a model of those routes."""
    jobs = [Job(f"j{i}", (7 * i) % 29 + 1, H // 2) for i in range(12)]
    # No fixed cost per day, so no route elimination polishes the whole model first.
    problem = world(
        jobs,
        [tech("x", overtime_s=overtime_s), tech("y", home=15), tech("z", home=28)],
        weights=Weights(technician_day_fixed=0),
    )
    assert plain(problem) == (overtime_s == 0)
    assert separable(problem)
    model = build(problem)
    params = _closed(model)
    # A poor start: the jobs zigzag between the ends of the line, four to a route.
    nodes = [model.layout.job_node[job.id] for job in jobs]
    zigzag = [nodes[0::3], nodes[1::3], nodes[2::3]]
    start = model.routing.ReadAssignmentFromRoutes(_indices(model, zigzag), True)
    assert start is not None
    start_cost = int(start.ObjectiveValue())
    best = _iterate(model, start, params, seed=1, rounds=WHOLE_EVERY - 1)
    assert best.cost < start_cost
    assert best.value.objective == best.cost
    assert check(problem, best.value) == []


def test_our_own_loop_plans_a_job_the_start_left_out() -> None:
    """On plain routes no whole-model descent runs, so jobs the start plan left out must get
    their chance in the rounds' own insertion."""
    jobs = [Job(f"j{i}", 2 * i + 3, H) for i in range(4)]
    problem = world(jobs, [tech("x"), tech("y", home=20)], weights=Weights(technician_day_fixed=0))
    assert plain(problem)
    model = build(problem)
    params = _closed(model)
    nodes = [model.layout.job_node[job.id] for job in jobs]
    start = model.routing.ReadAssignmentFromRoutes(_indices(model, [nodes[:3], []]), True)
    assert start is not None
    best = _iterate(model, start, params, seed=0, rounds=10)
    assert best.cost < int(start.ObjectiveValue())
    assert not best.value.unplanned
    assert check(problem, best.value) == []
