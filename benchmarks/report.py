"""Shared reporting for the benchmark scripts: one table, CSV and Markdown, the same columns."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def verdict(missed: bool, *, bars: bool) -> None:
    """Say whether every bar was met; with `bars`, a missed one is a failing exit."""
    if missed and bars:
        console.print("[red]Bar missed.")
        raise SystemExit(1)
    console.print("All bars met." if not missed else "Bar missed (report only).")


@dataclass(frozen=True)
class Outcome:
    instance: str
    solver: str
    routes: int
    distance: float
    bks: float
    seconds: float
    feasible: bool
    # What was measured beside the instance itself, e.g. the lunch break every vehicle got.
    variant: str = "published"

    @property
    def gap_pct(self) -> float:
        return 100.0 * (self.distance / self.bks - 1.0) if self.feasible else float("nan")


def summarise(outcomes: Sequence[Outcome], solver: str) -> tuple[int, int, float, float]:
    mine = [o for o in outcomes if o.solver == solver]
    gaps = [o.gap_pct for o in mine if o.feasible]
    feasible = sum(1 for o in mine if o.feasible)
    mean = sum(gaps) / len(gaps) if gaps else float("nan")
    return feasible, len(mine), mean, max(gaps) if gaps else float("nan")


def print_tables(outcomes: Sequence[Outcome], solvers: Sequence[str], title: str) -> None:
    table = Table(
        "instance", "solver", "routes", "distance", "BKS", "gap %", "seconds", title=title
    )
    for o in outcomes:
        table.add_row(
            o.instance,
            o.solver,
            str(o.routes),
            f"{o.distance:.1f}",
            f"{o.bks:.1f}",
            f"{o.gap_pct:.2f}" if o.feasible else "infeasible",
            f"{o.seconds:.1f}",
        )
    console.print(table)
    summary = Table("solver", "feasible", "mean gap %", "max gap %", title="Summary")
    for solver in solvers:
        solved, total, mean, worst = summarise(outcomes, solver)
        summary.add_row(solver, f"{solved}/{total}", f"{mean:.2f}", f"{worst:.2f}")
    console.print(summary)


def progress_line(o: Outcome) -> None:
    gap = f"{o.gap_pct:7.2f}%" if not math.isnan(o.gap_pct) else "infeasible"
    console.print(
        f"{o.instance:>10} {o.solver:<12} {o.routes:>3} {o.distance:10.1f} {gap} {o.seconds:6.1f}s",
        highlight=False,
    )


def write_outputs(
    outcomes: Sequence[Outcome], csv_path: Path | None, markdown: Path | None
) -> None:
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
                    "variant",
                ]
            )
            for o in outcomes:
                writer.writerow(
                    [
                        o.instance,
                        o.solver,
                        o.routes,
                        f"{o.distance:.2f}",
                        o.bks,
                        f"{o.gap_pct:.3f}",
                        f"{o.seconds:.2f}",
                        o.feasible,
                        o.variant,
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


def bars_missed(
    outcomes: Sequence[Outcome], solver: str, mean_bar: float | None, max_bar: float | None
) -> list[str]:
    solved, total, mean, worst = summarise(outcomes, solver)
    missed = []
    if solved < total:
        missed.append(f"{total - solved} instance(s) infeasible")
    if mean_bar is not None and not mean <= mean_bar:
        missed.append(f"mean gap {mean:.2f}% > {mean_bar}%")
    if max_bar is not None and not worst <= max_bar:
        missed.append(f"max gap {worst:.2f}% > {max_bar}%")
    return missed


def finish(missed: list[str]) -> None:
    """Say which bars were missed and exit non-zero, or say all were met."""
    if missed:
        console.print("[red]Bar missed: " + "; ".join(missed))
        raise SystemExit(1)
    console.print("[green]All bars met.")
