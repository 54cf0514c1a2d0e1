"""Ruin and recreate: improve a constructed plan by removing related jobs and reinserting them.

OR-Tools cannot take a field-service plan with synchronised crews, dependencies or lunch taken
inside a long job as a warm start, so this is the search that improves such plans. Each round
removes a handful of jobs that lie close together (so they can trade places), then reinserts
them and the unplanned jobs near them with the same rule-aware insertion as the construction. A
round is kept when the plan gets cheaper. Rounds are seeded, so a run is reproducible for a
seed and a round limit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from optimizer.construct import Builder, Schedule, Stop, _order, build_greedy, simulate, to_plan
from optimizer.model import Job, Plan, Problem


@dataclass(frozen=True)
class Budget:
    rounds: int
    deadline: float | None  # on `clock`'s scale; None: rounds only
    clock: Callable[[], float]
    seed: int = 0


Snapshot = tuple[list[tuple[list[Stop], Schedule | None]], dict[str, tuple[int, int, int]]]


def _snapshot(builder: Builder) -> Snapshot:
    return ([(list(r.stops), r.schedule) for r in builder.routes], dict(builder.placed))


def _restore(builder: Builder, snapshot: Snapshot) -> None:
    routes, placed = snapshot
    for state, (stops, schedule) in zip(builder.routes, routes, strict=True):
        state.stops = stops
        state.schedule = schedule
    builder.placed = placed


def total_cost(builder: Builder, unplaced: set[str]) -> int:
    weights = builder.problem.weights
    routes = sum(builder.cost(r) for r in range(len(builder.routes)))
    return routes + sum(weights.unplanned_penalty(builder.problem.job(j)) for j in unplaced)


def improve(
    problem: Problem, budget: Budget, start: tuple[Builder, set[str]] | None = None
) -> Plan:
    builder, unplaced = start if start is not None else build_greedy(problem)
    if not problem.jobs or not any(r.stops for r in builder.routes):
        return to_plan(problem, builder, sorted(unplaced))
    rng = random.Random(budget.seed)
    movable = movable_jobs(problem)
    duration = problem.duration_s
    order = {job.id: i for i, job in enumerate(_order(problem))}
    current = total_cost(builder, unplaced)
    for _ in range(budget.rounds):
        if budget.deadline is not None and budget.clock() >= budget.deadline:
            break
        placed = [j for j in builder.placed if j in movable]
        if not placed:
            break
        anchor = problem.job(rng.choice(placed))
        size = rng.randint(3, min(15, max(3, len(placed) // 3)))
        near = sorted(placed, key=lambda j: duration[anchor.place, problem.job(j).place])[:size]
        waiting = sorted(
            (j for j in unplaced if j in movable),
            key=lambda j: duration[anchor.place, problem.job(j).place],
        )[: max(2, size // 2)]
        snapshot = _snapshot(builder)
        if not _remove(builder, set(near)):
            _restore(builder, snapshot)
            continue
        candidates = near + waiting
        rng.shuffle(candidates)
        candidates.sort(key=lambda j: order[j] + rng.randint(0, 3))
        still_out = set(unplaced) - set(waiting)
        for job_id in candidates:
            if not _insert(builder, problem.job(job_id)):
                still_out.add(job_id)
        cost = total_cost(builder, still_out)
        if cost < current:
            current, unplaced = cost, still_out
        else:
            _restore(builder, snapshot)
    return to_plan(problem, builder, sorted(unplaced))


def movable_jobs(problem: Problem) -> set[str]:
    """Jobs a round may take out: not pinned, not tied to others by a dependency."""
    tied = {d.job_id for j in problem.jobs for d in j.after} | {
        j.id for j in problem.jobs if j.after
    }
    return {j.id for j in problem.jobs if j.pin is None and j.id not in tied}


def _remove(builder: Builder, job_ids: set[str]) -> bool:
    for state in builder.routes:
        kept = [s for s in state.stops if s.job.id not in job_ids]
        if len(kept) == len(state.stops):
            continue
        schedule = simulate(builder.problem, state.vehicle, kept)
        if schedule is None:
            return False
        state.stops, state.schedule = kept, schedule
    for job_id in job_ids:
        builder.placed.pop(job_id, None)
    return True


def _insert(builder: Builder, job: Job) -> bool:
    windows = builder.job_windows(job)
    vehicles = builder.eligible(job)
    if windows is None or not vehicles:
        return False
    candidate = builder.best_for(job, windows, vehicles)
    if candidate is None or candidate.added_cost >= builder.problem.weights.unplanned_penalty(job):
        return False
    builder.place(job, candidate, freeze=job.crew_size >= 2)
    return True
