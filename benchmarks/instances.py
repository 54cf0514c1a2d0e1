"""Readers for the published instance sets, and their translation into engine problems.

Distances follow the DIMACS convention of the shared benchmark data: Euclidean, truncated to
one decimal; we work in integer tenths so totals are exact, and travel time equals distance.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from optimizer import Break, Job, PickupSource, Problem, TechnicianDay, TimeWindow, Weights

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
MANDATORY = 10**8  # leaving a customer out costs more than any route


@dataclass(frozen=True)
class Instance:
    name: str
    coordinates: list[tuple[float, float]]  # node 0 is the depot
    demand: list[int]
    ready: list[int]
    due: list[int]
    service: list[int]
    vehicles: int
    capacity: int
    # Pickup-and-delivery instances: pickup node -> its delivery node.
    pairs: dict[int, int]


class Lunch(StrEnum):
    """The lunch break every vehicle of a literature instance gets, to measure the search the
    product runs (every technician-day it plans has one)."""

    NONE = "none"  # as published
    ZERO = "zero"  # zero minutes, to start at any time: the best known plan is still optimal
    REAL = "real"  # 6 % of the horizon, to start between 35 % and 60 % of it (30 min of 8.5 h)


def lunch_break(lunch: Lunch, opens: int, closes: int) -> Break | None:
    """The break of a vehicle whose day runs from `opens` to `closes` (the peers get the same
    numbers)."""
    if lunch is Lunch.NONE:
        return None
    if lunch is Lunch.ZERO:
        return Break(opens, closes, 0)
    span = closes - opens
    return Break(opens + round(0.35 * span), opens + round(0.60 * span), round(0.06 * span))


def with_lunch(problem: Problem, lunch: Lunch) -> Problem:
    return replace(
        problem,
        technician_days=[
            replace(v, lunch=lunch_break(lunch, v.shift.start_s, v.shift.end_s))
            for v in problem.technician_days
        ],
    )


def set_folder(name_or_path: str) -> Path:
    path = Path(name_or_path)
    return path if path.is_dir() else SHARED / name_or_path


def best_known(folder: Path) -> dict[str, tuple[int, float]]:
    with (folder / "bks.csv").open() as handle:
        return {
            row["instance"]: (int(row["vehicles"]), float(row["distance"]))
            for row in csv.DictReader(handle)
        }


def read_vrplib(path: Path) -> Instance:
    """A VRPTW instance in VRPLIB format (Solomon, Gehring-Homberger)."""
    header: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line == "EOF":
            continue
        if line.endswith("SECTION"):
            current = line
            sections[current] = []
        elif current is None and ":" in line:
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
        elif current is not None:
            sections[current].append(line.split())
    coords = [(float(r[1]), float(r[2])) for r in sections["NODE_COORD_SECTION"]]
    n = len(coords)
    demand = [int(r[1]) for r in sections["DEMAND_SECTION"]]
    windows = sections["TIME_WINDOW_SECTION"]
    if "SERVICE_TIME_SECTION" in sections:
        service = [int(float(r[1])) for r in sections["SERVICE_TIME_SECTION"]]
    else:
        service = [0] + [int(float(header.get("SERVICE_TIME", "0")))] * (n - 1)
    return Instance(
        name=header.get("NAME", path.stem),
        coordinates=coords,
        demand=demand,
        ready=[int(float(r[1])) for r in windows],
        due=[int(float(r[2])) for r in windows],
        service=service,
        vehicles=int(header.get("VEHICLES", n)),
        capacity=int(header["CAPACITY"]),
        pairs={},
    )


def read_lilim(path: Path) -> Instance:
    """A Li & Lim pickup-and-delivery instance (`vehicles capacity speed`, then nodes)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    vehicles, capacity = int(lines[0][0]), int(lines[0][1])
    nodes = lines[1:]
    pairs = {int(r[0]): int(r[8]) for r in nodes if int(r[0]) != 0 and int(r[7]) == 0}
    return Instance(
        name=path.stem,
        coordinates=[(float(r[1]), float(r[2])) for r in nodes],
        demand=[int(r[3]) for r in nodes],
        ready=[int(r[4]) for r in nodes],
        due=[int(r[5]) for r in nodes],
        service=[int(r[6]) for r in nodes],
        vehicles=vehicles,
        capacity=capacity,
        pairs=pairs,
    )


def tenths_matrix(coordinates: list[tuple[float, float]]) -> npt.NDArray[np.int64]:
    xy = np.asarray(coordinates, dtype=np.float64)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    tenths: npt.NDArray[np.int64] = np.floor(d * 10.0 + 1e-9).astype(np.int64)
    return tenths


PDP_SCALE = 100  # Li & Lim BKS use double-precision distances: work in hundredths


def exact_distance(instance: Instance, places: list[int]) -> float:
    """Euclidean length of a depot-to-depot path in double precision (the BKS convention)."""
    xy = instance.coordinates
    path = [0, *places, 0]
    return sum(math.dist(xy[a], xy[b]) for a, b in itertools.pairwise(path))


def _literature_problem(
    jobs: list[Job], instance: Instance, matrix: npt.NDArray[np.int64], scale: int
) -> Problem:
    """Identical vehicles from the depot, and the literature's objective: distance only, with
    every customer mandatory."""
    horizon = instance.due[0] * scale
    vehicles = [
        TechnicianDay(
            id=f"v{k}",
            technician=f"v{k}",
            day=0,
            skills=frozenset(),
            start_place=0,
            end_place=0,
            shift=TimeWindow(instance.ready[0] * scale, horizon),
            volume_capacity_l=instance.capacity,
        )
        for k in range(instance.vehicles)
    ]
    weights = Weights(
        travel_per_s=1,
        per_km=0,
        overtime_per_min=0,
        outside_preferred_per_min=0,
        technician_day_fixed=0,
        unplanned_base=MANDATORY,
        unplanned_per_waiting_day=0,
    )
    return Problem(
        jobs, vehicles, matrix, matrix, weights, horizon_days=math.ceil(horizon / 86400) + 1
    )


def pdptw_problem(instance: Instance) -> Problem:
    """Each delivery is a job whose goods must be fetched at its own pickup node first, on the
    same route: the engine's missing-part pickup, with one possible site."""
    xy = np.asarray(instance.coordinates, dtype=np.float64)
    exact = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    matrix: npt.NDArray[np.int64] = np.rint(exact * PDP_SCALE).astype(np.int64)
    s = PDP_SCALE
    jobs = []
    for pickup, delivery in sorted(instance.pairs.items()):
        source = PickupSource(
            site=str(pickup),
            place=pickup,
            open_windows=(
                TimeWindow(
                    instance.ready[pickup] * s,
                    (instance.due[pickup] + instance.service[pickup]) * s,
                ),
            ),
            service_s=instance.service[pickup] * s,
        )
        jobs.append(
            Job(
                id=str(delivery),
                place=delivery,
                duration_s=instance.service[delivery] * s,
                windows=(TimeWindow(instance.ready[delivery] * s, instance.due[delivery] * s),),
                part_volume_l=instance.demand[pickup],
                needs_pickup=True,
                pickup_sources=(source,),
            )
        )
    return _literature_problem(jobs, instance, matrix, PDP_SCALE)


def vrptw_problem(instance: Instance) -> Problem:
    """Customers as mandatory jobs with hard windows; identical vehicles from the depot."""
    matrix = tenths_matrix(instance.coordinates)
    jobs = [
        Job(
            id=str(i),
            place=i,
            duration_s=instance.service[i] * 10,
            windows=(TimeWindow(instance.ready[i] * 10, instance.due[i] * 10),),
            volume_l=instance.demand[i],
            priority=1,
        )
        for i in range(1, len(instance.coordinates))
    ]
    return _literature_problem(jobs, instance, matrix, 10)
