"""VRPTW benchmark: `python -m benchmarks.vrptw --set solomon --time-limit 10 [--lunch zero]`.

Solves every instance of a set with fieldplan's engine and, side by side in the same run,
OR-Tools configured as its documentation's VRPTW example (and PyVRP or VROOM when installed),
then prints instance, solver, routes, distance, BKS, gap and seconds, and the mean and max gap
per solver. Exits non-zero when fieldplan misses a bar:

- as published (`--lunch none`): all feasible, mean gap <= 2.0 % and max <= 5 % on Solomon,
  mean <= 3 % on gh200;
- `--lunch zero`, every vehicle with a zero-minute break that may start at any time (the best
  known plans stay optimal, and the product's path is measured: every technician-day it plans
  has a lunch): mean gap <= 0.3 % and max <= 2 % on Solomon at 10 s, mean <= 0.8 % on gh200;
- `--lunch real`, a break of 6 % of the horizon to start between 35 % and 60 % of it, the same
  for every peer (VROOM's vehicle breaks, OR-Tools' break intervals; PyVRP has no breaks and
  sits out): fieldplan's distance on average <= 0.97 x VROOM's and below OR-Tools' on every
  instance (the gap column is then against the best known plan without lunch).

With `--quick`, fieldplan's quick plan (`Limits.quick`) against VROOM, the others at 3 s:
feasible everywhere, a lower mean gap than VROOM's in the same run, at most 3 s per instance
on average.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.instances import (
    Instance,
    Lunch,
    best_known,
    lunch_break,
    read_vrplib,
    set_folder,
    tenths_matrix,
    vrptw_problem,
    with_lunch,
)
from benchmarks.report import (
    Outcome,
    bars_missed,
    console,
    finish,
    print_tables,
    progress_line,
    summarise,
    write_outputs,
)
from optimizer import Limits, check, solve
from optimizer.descent import warm_up

BARS = {
    Lunch.NONE: {"solomon": (2.0, 5.0), "gh200": (3.0, None)},
    Lunch.ZERO: {"solomon": (0.3, 2.0), "gh200": (0.8, None)},
}
# With a real lunch: fieldplan's distance against VROOM's, on average over the instances.
REAL_LUNCH_VS_VROOM = 0.97
# The quick plan's time: VROOM "reaches about +1.4 % in under 3 s" (the issue).
QUICK_S = 3.0


def run_fieldplan(instance: Instance, time_limit: float, lunch: Lunch) -> tuple[int, float, bool]:
    return _fieldplan(instance, Limits(time_limit_s=time_limit, workers=2), lunch)


def run_quick_plan(instance: Instance, lunch: Lunch) -> tuple[int, float, bool]:
    return _fieldplan(instance, Limits.quick(), lunch)


def _fieldplan(instance: Instance, limits: Limits, lunch: Lunch) -> tuple[int, float, bool]:
    problem = with_lunch(vrptw_problem(instance), lunch)
    plan = solve(problem, limits)
    feasible = not plan.unplanned and not check(problem, plan)
    return len(plan.routes), sum(r.distance_m for r in plan.routes) / 10.0, feasible


def run_ortools_doc(instance: Instance, time_limit: float, lunch: Lunch) -> tuple[int, float, bool]:
    """OR-Tools as its VRPTW documentation sets it up: path-cheapest-arc, guided local search,
    every visit mandatory, plus the capacity dimension the instances need, and a lunch as its
    documentation's break example has it: an interval per vehicle that visits may not overlap."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    matrix = tenths_matrix(instance.coordinates)
    n = len(instance.coordinates)
    manager = pywrapcp.RoutingIndexManager(n, instance.vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    service = [s * 10 for s in instance.service]
    transit = routing.RegisterTransitMatrix((matrix + [[s] for s in service]).tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(matrix.tolist()))
    horizon = instance.due[0] * 10
    routing.AddDimension(transit, horizon, horizon, False, "time")
    time_dimension = routing.GetDimensionOrDie("time")
    for node in range(1, n):
        index = manager.NodeToIndex(node)
        time_dimension.CumulVar(index).SetRange(instance.ready[node] * 10, instance.due[node] * 10)
    for v in range(instance.vehicles):
        time_dimension.CumulVar(routing.Start(v)).SetRange(instance.ready[0] * 10, horizon)
        time_dimension.CumulVar(routing.End(v)).SetRange(instance.ready[0] * 10, horizon)
    rest = lunch_break(lunch, instance.ready[0] * 10, horizon)
    if rest is not None:
        solver = routing.solver()
        visits = [service[manager.IndexToNode(i)] for i in range(routing.Size())]
        for v in range(instance.vehicles):
            interval = solver.FixedDurationIntervalVar(
                rest.earliest_start_s, rest.latest_start_s, rest.duration_s, False, f"lunch {v}"
            )
            time_dimension.SetBreakIntervalsOfVehicle([interval], v, visits)
    demand = routing.RegisterUnaryTransitVector(instance.demand)
    routing.AddDimensionWithVehicleCapacity(
        demand, 0, [instance.capacity] * instance.vehicles, True, "load"
    )
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(time_limit * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return 0, float("nan"), False
    routes = distance = 0
    for v in range(instance.vehicles):
        index = routing.Start(v)
        if routing.IsEnd(solution.Value(routing.NextVar(index))):
            continue
        routes += 1
        while not routing.IsEnd(index):
            following = solution.Value(routing.NextVar(index))
            distance += int(matrix[manager.IndexToNode(index), manager.IndexToNode(following)])
            index = following
    return routes, distance / 10.0, True


def run_pyvrp(instance: Instance, time_limit: float, lunch: Lunch) -> tuple[int, float, bool]:
    """PyVRP (0.14's model API) on the same truncated distances, for the same time. It has no
    breaks, so it only runs as published."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    matrix = tenths_matrix(instance.coordinates)
    model = pyvrp.Model()
    places = [model.add_location(x=x, y=y) for x, y in instance.coordinates]
    depot = model.add_depot(
        places[0], tw_early=instance.ready[0] * 10, tw_late=instance.due[0] * 10
    )
    model.add_vehicle_type(
        num_available=instance.vehicles,
        capacity=instance.capacity,
        start_depot=depot,
        end_depot=depot,
        tw_early=instance.ready[0] * 10,
        tw_late=instance.due[0] * 10,
    )
    for i in range(1, len(places)):
        model.add_client(
            places[i],
            delivery=instance.demand[i],
            service_duration=instance.service[i] * 10,
            tw_early=instance.ready[i] * 10,
            tw_late=instance.due[i] * 10,
        )
    for i, a in enumerate(places):
        for j, b in enumerate(places):
            model.add_edge(a, b, distance=int(matrix[i, j]), duration=int(matrix[i, j]))
    result = model.solve(stop=MaxRuntime(time_limit), display=False)
    best = result.best
    return best.num_routes(), best.distance() / 10.0, best.is_feasible()


def run_vroom(instance: Instance, time_limit: float, lunch: Lunch) -> tuple[int, float, bool]:
    """VROOM with its default exploration level (5) on both cores, the lunch as a vehicle
    break. It has no time limit to fill: it stops when its search is done, usually well within
    the others' limit."""
    import vroom

    matrix = tenths_matrix(instance.coordinates)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=matrix.tolist())
    shift = vroom.TimeWindow(instance.ready[0] * 10, instance.due[0] * 10)
    rest = lunch_break(lunch, instance.ready[0] * 10, instance.due[0] * 10)
    breaks = (
        [
            vroom.Break(
                0, [vroom.TimeWindow(rest.earliest_start_s, rest.latest_start_s)], rest.duration_s
            )
        ]
        if rest is not None
        else []
    )
    problem.add_vehicle(
        [
            vroom.Vehicle(
                k,
                start=0,
                end=0,
                capacity=[instance.capacity],
                time_window=shift,
                breaks=breaks,
            )
            for k in range(instance.vehicles)
        ]
    )
    problem.add_job(
        [
            vroom.Job(
                i,
                location=i,
                default_service=instance.service[i] * 10,
                delivery=[instance.demand[i]],
                time_windows=[vroom.TimeWindow(instance.ready[i] * 10, instance.due[i] * 10)],
            )
            for i in range(1, len(instance.coordinates))
        ]
    )
    solution = problem.solve(exploration_level=5, nb_threads=2)
    summary = solution.summary
    # The cost is the matrix's: travel in tenths, the DIMACS distance.
    return summary.routes, summary.cost / 10.0, summary.unassigned == 0


def real_lunch_bars_missed(outcomes: list[Outcome]) -> list[str]:
    """With a real lunch the best known plans no longer apply: fieldplan against the peers that
    model the same breaks, on the same instances in the same run."""
    missed = bars_missed(outcomes, "fieldplan", None, None)
    mine = {o.instance: o for o in outcomes if o.solver == "fieldplan" and o.feasible}
    vroom = {o.instance: o for o in outcomes if o.solver == "vroom" and o.feasible}
    ortools = {o.instance: o for o in outcomes if o.solver == "ortools-doc" and o.feasible}
    shared = [name for name in mine if name in vroom]
    if not shared:
        missed.append("no instance VROOM and fieldplan both solved, so nothing to compare")
    else:
        ratio = sum(mine[n].distance / vroom[n].distance for n in shared) / len(shared)
        console.print(f"fieldplan / VROOM distance, mean over {len(shared)}: {ratio:.3f}")
        if not ratio <= REAL_LUNCH_VS_VROOM:
            missed.append(f"distance {ratio:.3f} x VROOM's > {REAL_LUNCH_VS_VROOM}")
    behind = [n for n in mine if n in ortools and not mine[n].distance < ortools[n].distance]
    if behind:
        missed.append("not below OR-Tools on " + ", ".join(behind))
    return missed


def quick_bars_missed(outcomes: list[Outcome]) -> list[str]:
    """The issue's quick plan: better than VROOM's quality (same run) within VROOM's time
    class, under three seconds per instance on average."""
    missed = bars_missed(outcomes, "fieldplan", None, None)
    mine = [o for o in outcomes if o.solver == "fieldplan"]
    seconds = sum(o.seconds for o in mine) / max(1, len(mine))
    if seconds > QUICK_S:
        missed.append(f"mean time {seconds:.2f} s > {QUICK_S:g} s")
    if any(o.solver == "vroom" for o in outcomes):
        ours, theirs = summarise(outcomes, "fieldplan")[2], summarise(outcomes, "vroom")[2]
        if not ours < theirs:
            missed.append(f"mean gap {ours:.2f}% not below VROOM's {theirs:.2f}%")
    else:
        missed.append("VROOM (pyvroom) is not installed, so there is nothing to beat")
    return missed


SOLVERS = {
    "fieldplan": run_fieldplan,
    "ortools-doc": run_ortools_doc,
    "pyvrp": run_pyvrp,
    "vroom": run_vroom,
}
MODULES = {"pyvrp": "pyvrp", "vroom": "vroom"}


def available(name: str, lunch: Lunch) -> bool:
    if name == "pyvrp" and lunch is not Lunch.NONE:
        return False  # no breaks to give it
    module = MODULES.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def main(
    instance_set: Annotated[
        str, typer.Option("--set", help="folder under shared/benchmarks or a path")
    ] = "solomon",
    time_limit: Annotated[float, typer.Option("--time-limit")] = 10.0,
    instances: Annotated[str | None, typer.Option(help="A,B,C: a subset")] = None,
    solvers: Annotated[str | None, typer.Option(help="fieldplan,ortools-doc,pyvrp,vroom")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown")] = None,
    no_bars: Annotated[bool, typer.Option("--no-bars", help="report only (smoke runs)")] = False,
    quick: Annotated[
        bool,
        typer.Option(
            help=f"fieldplan's quick plan against VROOM; the others get {QUICK_S:g} s",
        ),
    ] = False,
    lunch: Annotated[
        Lunch, typer.Option(help="a lunch break for every vehicle (see the module's text)")
    ] = Lunch.NONE,
) -> None:
    folder = set_folder(instance_set)
    bks = best_known(folder)
    names = instances.split(",") if instances else sorted(bks)
    chosen = [s for s in (solvers.split(",") if solvers else SOLVERS) if available(s, lunch)]
    if "fieldplan" in chosen:
        warm_up()  # compiled once per installation, not inside the first instance's time
    outcomes: list[Outcome] = []
    for name in names:
        instance = read_vrplib(folder / f"{name}.vrp")
        for solver in chosen:
            started = time.perf_counter()
            if quick and solver == "fieldplan":
                routes, distance, feasible = run_quick_plan(instance, lunch)
            else:
                limit = QUICK_S if quick else time_limit
                routes, distance, feasible = SOLVERS[solver](instance, limit, lunch)
            outcome = Outcome(
                name,
                solver,
                routes,
                distance,
                bks[name][1],
                time.perf_counter() - started,
                feasible,
                variant=f"lunch-{lunch.value}",
            )
            outcomes.append(outcome)
            progress_line(outcome)
    title = ("quick plan" if quick else f"{time_limit:g} s per instance") + (
        f", lunch {lunch.value}" if lunch is not Lunch.NONE else ""
    )
    print_tables(outcomes, chosen, f"VRPTW {folder.name}, {title}")
    write_outputs(outcomes, csv_path, markdown)
    if no_bars:
        return
    if quick:
        finish(quick_bars_missed(outcomes))
    elif lunch is Lunch.REAL:
        finish(real_lunch_bars_missed(outcomes))
    else:
        finish(bars_missed(outcomes, "fieldplan", *BARS[lunch].get(folder.name, (None, None))))


if __name__ == "__main__":
    typer.run(main)
