"""Field-service day benchmark: `python -m benchmarks.fieldservice --jobs 1000 --technicians 100`.

A seeded Dutch working day around Utrecht with every rule at once: skills, customer windows,
promised two-hour windows, lunch breaks, overtime, van capacity, missing parts picked up at
stores, two-person jobs and pins. Promises and pins are taken from a first plan, so they are
keepable, as real ones are. Reports time to the first valid plan, cost after the time limit,
unplanned jobs and the validator's verdict; exits non-zero unless the plan is valid within the
limit and no promise is broken.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from benchmarks.places import RandomPlaces
from benchmarks.report import console
from fieldplan.sample_region import SKILL_SETS
from fieldplan.travel import GeodesicTravelTimes
from optimizer import (
    Break,
    Job,
    Limits,
    PickupSource,
    Pin,
    Problem,
    TechnicianDay,
    TimeWindow,
    check,
    solve,
)
from optimizer.construct import construct

H = 3600
KINDS = (  # (skills, minutes, weight, volume_l, share)
    (("measure",), 40, 0, 0, 0.25),
    ((), 30, 150, 1500, 0.20),  # delivery
    (("flooring",), 120, 0, 0, 0.15),
    (("blinds",), 45, 0, 0, 0.15),
    (("carpentry",), 60, 0, 0, 0.10),
    (("plumbing",), 90, 0, 0, 0.08),
    (("kitchen",), 60, 0, 0, 0.07),  # kitchen repair
)


def generate(jobs: int, technicians: int, seed: int) -> Problem:
    rng = random.Random(seed)
    places = RandomPlaces(rng)
    vehicles = []
    for t in range(technicians):
        home = places.add()
        start = rng.choice((7 * H + 1800, 8 * H, 8 * H, 8 * H + 1800))
        vehicles.append(
            TechnicianDay(
                id=f"T{t:03d}",
                technician=f"T{t:03d}",
                day=0,
                skills=frozenset(SKILL_SETS[t % len(SKILL_SETS)]),
                start_place=home,
                end_place=home,
                shift=TimeWindow(start, start + 8 * H + 1800),
                max_overtime_s=H,
                lunch=Break(11 * H + 1800, 13 * H + 1800, 1800),
                volume_capacity_l=12000 if t % 4 == 0 else 6000,
                weight_capacity_kg=1100 if t % 4 == 0 else 700,
            )
        )
    shares = [k[4] for k in KINDS]
    engine_jobs = []
    for j in range(jobs):
        skills, minutes, weight, volume, _ = rng.choices(KINDS, shares)[0]
        place = places.add()
        windows: tuple[TimeWindow, ...] = ()
        if rng.random() < 0.3:
            windows = (rng.choice((TimeWindow(8 * H, 12 * H), TimeWindow(12 * H, 17 * H))),)
        pickup = rng.random() < 0.1 and bool(skills)
        engine_jobs.append(
            Job(
                id=f"J{j:04d}",
                place=place,
                duration_s=minutes * 60 + rng.choice((0, 900)),
                skills=frozenset(skills),
                windows=windows,
                weight_kg=weight,
                volume_l=volume,
                crew_size=2 if not skills and rng.random() < 0.4 else 1,
                needs_pickup=pickup,
                part_volume_l=20 if pickup else 0,
                part_weight_kg=5 if pickup else 0,
                pickup_sources=tuple(
                    PickupSource(code, index, (TimeWindow(7 * H, 21 * H),))
                    for code, index in rng.sample(places.sites, 2)
                )
                if pickup
                else (),
                priority=5 if skills == ("kitchen",) else rng.choice((1, 1, 2)),
                waiting_days=rng.randint(0, 6),
            )
        )
    matrices = GeodesicTravelTimes().matrices(places.points)
    problem = Problem(
        engine_jobs,
        vehicles,
        np.asarray(matrices.duration_s),
        np.asarray(matrices.distance_m),
        horizon_days=2,
    )
    return with_promises_and_pins(problem, rng)


def with_promises_and_pins(problem: Problem, rng: random.Random) -> Problem:
    """Promise 2-hour windows around a first plan's starts for a fifth of the planned jobs, and
    pin a few, as a day that already has commitments."""
    first = construct(problem)
    placed = {job_id: served for job_id, served in first.job_visits().items()}
    jobs = []
    for job in problem.jobs:
        served = placed.get(job.id)
        if served and rng.random() < 0.2:
            start = served[0][1].start_s
            window = TimeWindow(max(0, start - H), start + H)
            job = replace(job, windows=(window,), promised=True)
        elif served and job.crew_size == 1 and rng.random() < 0.03:
            job = replace(job, pin=Pin(served[0][0]))
        jobs.append(job)
    return replace(problem, jobs=jobs)


def main(
    jobs: Annotated[int, typer.Option(min=1)] = 1000,
    technicians: Annotated[int, typer.Option(min=1)] = 100,
    time_limit: Annotated[float, typer.Option("--time-limit")] = 60.0,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    problem = generate(jobs, technicians, seed)
    promised = sum(1 for j in problem.jobs if j.promised)
    started = time.perf_counter()
    first = construct(problem)
    first_s = time.perf_counter() - started
    first_valid = not [v for v in check(problem, first)]
    plan = solve(problem, Limits(time_limit_s=time_limit, workers=2), warm_start=first)
    total_s = time.perf_counter() - started
    violations = check(problem, plan)
    broken = [v for v in violations if v.rule == "promise"]
    kpis = plan.kpis(problem)
    table = Table(
        "figure",
        "value",
        "reference",
        "ratio",
        title=f"Field-service day: {jobs} jobs, {technicians} technicians",
    )
    table.add_row(
        "time to first valid plan (s)",
        f"{first_s:.1f}",
        f"{time_limit:g}",
        f"{first_s / time_limit:.2f}",
    )
    table.add_row("first plan valid", str(first_valid), "True", "")
    table.add_row("cost of first plan", f"{first.objective:,}", "", "")
    table.add_row(
        f"cost after {time_limit:g} s",
        f"{plan.objective:,}",
        f"{first.objective:,}",
        f"{plan.objective / max(1, first.objective):.3f}",
    )
    table.add_row("total time (s)", f"{total_s:.1f}", f"{time_limit + 5:g}", "")
    table.add_row(
        "jobs planned", str(kpis["jobs_planned"]), str(jobs), f"{kpis['jobs_planned'] / jobs:.2f}"
    )
    table.add_row("jobs unplanned (with reasons)", str(len(plan.unplanned)), "", "")
    table.add_row("promised jobs", str(promised), "", "")
    table.add_row("promises broken", str(len(broken)), "0", "")
    table.add_row("validator violations", str(len(violations)), "0", "")
    table.add_row("travel (h)", f"{kpis['travel_h']:.1f}", "", "")
    table.add_row("utilisation (%)", f"{kpis['utilisation_pct']:.1f}", "", "")
    console.print(table)
    if violations or not first_valid or first_s > time_limit:
        console.print("[red]Bar missed: " + "; ".join(str(v) for v in violations[:5]))
        sys.exit(1)
    console.print("[green]Valid plan within the limit, no promise broken.")


if __name__ == "__main__":
    typer.run(main)
