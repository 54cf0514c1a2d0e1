"""VRPTW benchmark: `python -m benchmarks.vrptw --set solomon --time-limit 10`.

Solves every instance of a set with fieldplan's engine and, side by side in the same run,
OR-Tools configured as its documentation's VRPTW example (and PyVRP or VROOM when installed),
then prints instance, solver, routes, distance, BKS, gap and seconds, and the mean and max gap
per solver. Exits non-zero when fieldplan misses a bar of the issue: all instances feasible,
mean gap <= 2.0 % and max gap <= 5 % on Solomon; mean gap <= 3 % on gh200.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from benchmarks.instances import (
    Instance,
    best_known,
    read_vrplib,
    set_folder,
    tenths_matrix,
    vrptw_problem,
)
from optimizer import Limits, check, solve

console = Console()
BARS = {"solomon": (2.0, 5.0), "gh200": (3.0, None)}


@dataclass(frozen=True)
class Outcome:
    instance: str
    solver: str
    routes: int
    distance: float
    bks: float
    seconds: float
    feasible: bool

    @property
    def gap_pct(self) -> float:
        return 100.0 * (self.distance / self.bks - 1.0) if self.feasible else float("nan")


def run_fieldplan(instance: Instance, time_limit: float) -> tuple[int, float, bool]:
    problem = vrptw_problem(instance)
    plan = solve(problem, Limits(time_limit_s=time_limit, workers=2))
    feasible = not plan.unplanned and not check(problem, plan)
    return len(plan.routes), sum(r.distance_m for r in plan.routes) / 10.0, feasible


def run_ortools_doc(instance: Instance, time_limit: float) -> tuple[int, float, bool]:
    """OR-Tools as its VRPTW documentation sets it up: path-cheapest-arc, guided local search,
    every visit mandatory, plus the capacity dimension the instances need."""
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


def run_pyvrp(instance: Instance, time_limit: float) -> tuple[int, float, bool]:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    matrix = tenths_matrix(instance.coordinates)
    model = pyvrp.Model()
    model.add_vehicle_type(
        num_available=instance.vehicles,
        capacity=instance.capacity,
        tw_early=instance.ready[0] * 10,
        tw_late=instance.due[0] * 10,
    )
    depot = model.add_depot(x=0, y=0)
    locations = [depot] + [
        model.add_client(
            x=0,
            y=0,
            delivery=instance.demand[i],
            service_duration=instance.service[i] * 10,
            tw_early=instance.ready[i] * 10,
            tw_late=instance.due[i] * 10,
        )
        for i in range(1, len(instance.coordinates))
    ]
    for i, a in enumerate(locations):
        for j, b in enumerate(locations):
            model.add_edge(a, b, distance=int(matrix[i, j]), duration=int(matrix[i, j]))
    result = model.solve(stop=MaxRuntime(time_limit), display=False)
    best = result.best
    return best.num_routes(), best.distance() / 10.0, best.is_feasible()


SOLVERS = {"fieldplan": run_fieldplan, "ortools-doc": run_ortools_doc, "pyvrp": run_pyvrp}


def available(name: str) -> bool:
    return name != "pyvrp" or importlib.util.find_spec("pyvrp") is not None


def summarise(outcomes: list[Outcome], solver: str) -> tuple[int, int, float, float]:
    mine = [o for o in outcomes if o.solver == solver]
    gaps = [o.gap_pct for o in mine if o.feasible]
    feasible = sum(1 for o in mine if o.feasible)
    mean = sum(gaps) / len(gaps) if gaps else float("nan")
    return feasible, len(mine), mean, max(gaps) if gaps else float("nan")


def main(
    instance_set: Annotated[
        str, typer.Option("--set", help="folder under shared/benchmarks or a path")
    ] = "solomon",
    time_limit: Annotated[float, typer.Option("--time-limit")] = 10.0,
    instances: Annotated[str | None, typer.Option(help="A,B,C: a subset")] = None,
    solvers: Annotated[str | None, typer.Option(help="fieldplan,ortools-doc,pyvrp")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown")] = None,
    no_bars: Annotated[bool, typer.Option("--no-bars", help="report only (smoke runs)")] = False,
) -> None:
    folder = set_folder(instance_set)
    bks = best_known(folder)
    names = instances.split(",") if instances else sorted(bks)
    chosen = [s for s in (solvers.split(",") if solvers else SOLVERS) if available(s)]
    outcomes: list[Outcome] = []
    table = Table(
        "instance",
        "solver",
        "routes",
        "distance",
        "BKS",
        "gap %",
        "seconds",
        title=f"VRPTW {folder.name}, {time_limit:g} s per instance",
    )
    for name in names:
        instance = read_vrplib(folder / f"{name}.vrp")
        for solver in chosen:
            started = time.perf_counter()
            routes, distance, feasible = SOLVERS[solver](instance, time_limit)
            outcome = Outcome(
                name,
                solver,
                routes,
                distance,
                bks[name][1],
                time.perf_counter() - started,
                feasible,
            )
            outcomes.append(outcome)
            table.add_row(
                name,
                solver,
                str(routes),
                f"{distance:.1f}",
                f"{outcome.bks:.1f}",
                f"{outcome.gap_pct:.2f}" if feasible else "infeasible",
                f"{outcome.seconds:.1f}",
            )
            console.print(
                f"{name:>10} {solver:<12} {distance:10.1f} "
                f"{outcome.gap_pct:7.2f}% {outcome.seconds:6.1f}s",
                highlight=False,
            )
    console.print(table)
    summary = Table("solver", "feasible", "mean gap %", "max gap %", title="Summary")
    for solver in chosen:
        solved, total, mean, worst = summarise(outcomes, solver)
        summary.add_row(solver, f"{solved}/{total}", f"{mean:.2f}", f"{worst:.2f}")
    console.print(summary)
    if csv_path is not None:
        with csv_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "instance",
                    "solver",
                    "routes",
                    "distance",
                    "bks",
                    "gap_pct",
                    "seconds",
                    "feasible",
                ]
            )
            for o in outcomes:
                writer.writerow(
                    [
                        o.instance,
                        o.solver,
                        o.routes,
                        f"{o.distance:.1f}",
                        o.bks,
                        f"{o.gap_pct:.3f}",
                        f"{o.seconds:.2f}",
                        o.feasible,
                    ]
                )
    if markdown is not None:
        lines = [
            "| instance | solver | routes | distance | BKS | gap % | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {o.instance} | {o.solver} | {o.routes} | {o.distance:.1f} | {o.bks:.1f} | "
            f"{o.gap_pct:.2f} | {o.seconds:.1f} |"
            for o in outcomes
        ]
        markdown.write_text("\n".join(lines) + "\n")
    if no_bars:
        return
    solved, total, mean, worst = summarise(outcomes, "fieldplan")
    mean_bar, max_bar = BARS.get(folder.name, (None, None))
    missed = []
    if solved < total:
        missed.append(f"{total - solved} instance(s) infeasible")
    if mean_bar is not None and not mean <= mean_bar:
        missed.append(f"mean gap {mean:.2f}% > {mean_bar}%")
    if max_bar is not None and not worst <= max_bar:
        missed.append(f"max gap {worst:.2f}% > {max_bar}%")
    if missed:
        console.print("[red]Bar missed: " + "; ".join(missed))
        sys.exit(1)
    console.print("[green]All bars met.")


if __name__ == "__main__":
    typer.run(main)
