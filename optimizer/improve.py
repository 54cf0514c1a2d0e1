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
from dataclasses import dataclass, replace

from optimizer.construct import Builder, Schedule, Stop, _order, build_greedy, simulate, to_plan
from optimizer.model import Job, Plan, Problem, Search, VisitKind


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
    shiftable = shiftable_jobs(problem)
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
        touched = [
            r
            for r, (state, (stops, _)) in enumerate(zip(builder.routes, snapshot[0], strict=True))
            if state.stops != stops
        ]
        polish(builder, touched, shiftable & set(candidates), budget, partners=shiftable)
        cost = total_cost(builder, still_out)
        if cost < current:
            current, unplaced = cost, still_out
        else:
            _restore(builder, snapshot)
    return replace(to_plan(problem, builder, sorted(unplaced)), search=Search.RUIN_AND_RECREATE)


def polish(
    builder: Builder,
    routes: list[int],
    shiftable: set[str],
    budget: Budget,
    *,
    partners: set[str] | None = None,
) -> None:
    """A descent over the routes a round changed: a job of `shiftable` (those the round put
    back) moved to another position of its route or of another changed route, or swapped with
    a job of `partners` (by default `shiftable`) on another changed route, while that lowers
    the cost. Every day is replayed with `simulate`, so every rule of the construction
    holds (promise protection, lunch inside a long job, overtime, preferred windows); only
    jobs whose stop stands alone move (no pickup, second person, other days or dependency).

    The insertion puts each job back where it is cheapest given the jobs placed before it;
    the descent lets the later ones make room for the earlier ones, what ruin and recreate
    alone only finds by chance."""
    problem = builder.problem
    partners = shiftable if partners is None else partners
    routes = [r for r in routes if r not in builder.blocked]
    improved = True
    while improved:
        improved = False
        for a in routes:
            for i, stop in enumerate(builder.routes[a].stops):
                if budget.deadline is not None and budget.clock() >= budget.deadline:
                    return
                if stop.kind is not VisitKind.JOB or stop.job.id not in shiftable:
                    continue
                if _relocate(builder, problem, a, i, routes) or _swap(
                    builder, problem, a, i, routes, partners
                ):
                    improved = True
                    break
            if improved:
                break


def _relocate(builder: Builder, problem: Problem, a: int, i: int, routes: list[int]) -> bool:
    source = builder.routes[a]
    stop = source.stops[i]
    rest = source.stops[:i] + source.stops[i + 1 :]
    without = simulate(problem, source.vehicle, rest)
    if without is None:
        return False
    for b in routes:
        target = builder.routes[b]
        if b != a and not stop.job.skills <= target.vehicle.skills:
            continue
        base = rest if b == a else target.stops
        before = builder.cost(a) + (builder.cost(b) if b != a else 0)
        for k in range(len(base) + 1):
            if b == a and k == i:
                continue
            stops = [*base[:k], stop, *base[k:]]
            schedule = simulate(problem, target.vehicle, stops)
            if schedule is None:
                continue
            after = schedule.cost + (without.cost if b != a else 0)
            if after < before:
                if b != a:
                    builder.set_route(a, rest, without)
                builder.set_route(b, stops, schedule)
                return True
    return False


def _swap(
    builder: Builder, problem: Problem, a: int, i: int, routes: list[int], shiftable: set[str]
) -> bool:
    source = builder.routes[a]
    stop = source.stops[i]
    for b in routes:
        if b == a:
            continue
        target = builder.routes[b]
        if not stop.job.skills <= target.vehicle.skills:
            continue
        before = builder.cost(a) + builder.cost(b)
        for j, other in enumerate(target.stops):
            if other.kind is not VisitKind.JOB or other.job.id not in shiftable:
                continue
            if not other.job.skills <= source.vehicle.skills:
                continue
            mine = [*source.stops[:i], other, *source.stops[i + 1 :]]
            first = simulate(problem, source.vehicle, mine)
            if first is None:
                continue
            theirs = [*target.stops[:j], stop, *target.stops[j + 1 :]]
            second = simulate(problem, target.vehicle, theirs)
            if second is not None and first.cost + second.cost < before:
                builder.set_route(a, mine, first)
                builder.set_route(b, theirs, second)
                return True
    return False


def shiftable_jobs(problem: Problem) -> set[str]:
    """Jobs the descent may move: movable ones whose stop stands alone on its route."""
    movable = movable_jobs(problem)
    return {
        j.id
        for j in problem.jobs
        if j.id in movable and j.crew_size == 1 and j.days == 1 and not j.needs_pickup
    }


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
