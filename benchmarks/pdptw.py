"""Pickup-and-delivery benchmark: `python -m benchmarks.pdptw --set lilim100 --time-limit 30`.

Li & Lim instances: each delivery must be preceded, on the same route, by its pickup: the
pattern of a part picked up at a store on the way to the job. Distances are reported in double
precision as the BKS are; the BKS minimise vehicles first, so the table shows both. Exits
non-zero when the issue's bar is missed: all feasible and mean distance gap <= 1.0 %, as
published and with `--lunch zero` (a zero-minute break that may start at any time for every
vehicle: the best known plans stay optimal, and the search is the one the product's days get).
With `--lunch real` the best known plans no longer apply: the table reports, no bar is held.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.instances import (
    Lunch,
    best_known,
    exact_distance,
    pdptw_problem,
    read_lilim,
    set_folder,
    with_lunch,
)
from benchmarks.report import (
    Outcome,
    bars_missed,
    console,
    finish,
    print_tables,
    progress_line,
    write_outputs,
)
from optimizer import Limits, VisitKind, check, solve

MEAN_BAR = 1.0


def main(
    instance_set: Annotated[str, typer.Option("--set")] = "lilim100",
    time_limit: Annotated[float, typer.Option("--time-limit")] = 30.0,
    instances: Annotated[str | None, typer.Option(help="A,B,C: a subset")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown")] = None,
    no_bars: Annotated[bool, typer.Option("--no-bars", help="report only (smoke runs)")] = False,
    lunch: Annotated[Lunch, typer.Option(help="a lunch break for every vehicle")] = Lunch.NONE,
) -> None:
    folder = set_folder(instance_set)
    bks = best_known(folder)
    names = instances.split(",") if instances else sorted(bks)
    outcomes = []
    for name in names:
        instance = read_lilim(folder / f"{name}.txt")
        problem = with_lunch(pdptw_problem(instance), lunch)
        started = time.perf_counter()
        plan = solve(problem, Limits(time_limit_s=time_limit, workers=2))
        seconds = time.perf_counter() - started
        distance = sum(
            exact_distance(
                instance,
                [
                    v.place
                    for v in route.visits
                    if v.kind is not VisitKind.BREAK and v.place is not None
                ],
            )
            for route in plan.routes
        )
        feasible = not plan.unplanned and not check(problem, plan)
        outcome = Outcome(
            name,
            "fieldplan",
            len(plan.routes),
            distance,
            bks[name][1],
            seconds,
            feasible,
            variant=f"lunch-{lunch.value}",
        )
        outcomes.append(outcome)
        progress_line(outcome)
        console.print(f"{'':>10} vehicles {len(plan.routes)} (BKS {bks[name][0]})", highlight=False)
    title = f"PDPTW {folder.name}, {time_limit:g} s per instance, lunch {lunch.value}"
    print_tables(outcomes, ["fieldplan"], title)
    write_outputs(outcomes, csv_path, markdown)
    if no_bars or lunch is Lunch.REAL:
        return
    missed = bars_missed(outcomes, "fieldplan", MEAN_BAR, None)
    finish(missed)


if __name__ == "__main__":
    typer.run(main)
