"""A descent of our own for routes judged by their time windows, loads and arcs alone.

Every round of the ruin-and-recreate loop (`optimizer.iterated`) polishes the routes it changed.
OR-Tools does that in a model of those routes (`optimizer.regional`) in about 12 ms on
Solomon's 100-customer instances, most of a round, and the loop's strength is its number of
rounds. Where a route's rules are its job windows, its van load and its shift (see `plain`),
the classic constant-time checks decide a move without replaying the route: the earliest
departure from the stop before the change, the latest start at the stop after it, and for a
string of stops three numbers, its duration, earliest departure and latest arrival (Savelsbergh
1992; Vidal et al. 2013 concatenate them). The moves are the usual ones: strings of up to three
stops relocated to another route or within their own, jobs left out put back, two stops of two
routes swapped, route tails exchanged (2-opt*) and a stretch of a route reversed (2-opt). The
loops over candidates are compiled by numba (`optimizer.kernels`): in numpy each kind of move
cost about as much as OR-Tools' whole descent, in interpreter overhead alone. A round now costs
under a millisecond instead of over ten (RC107, one core, 2.85 s: 3,528 rounds against 104).
The plan the search returns is still read
from the whole model, and then checked by the validator, so a rule this arithmetic missed could
cost search time but never a wrong plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from optimizer.model import Problem
from optimizer.nodes import NodeData
from optimizer.regional import separable

Routes = list[list[int]]
Ints = npt.NDArray[np.int64]

# A descent stops after this many moves: a round's proposal is a few dozen moves from its local
# optimum at most; the cap only bounds a pathological case.
MOST_MOVES = 1_000


def plain(problem: Problem) -> bool:
    """Whether a route's feasibility and cost are its windows, loads, shift, lunch break and
    arcs alone: no overtime, soft window, repair reserve, stability cost, position pin, pickup,
    two-person job, lunch inside a long job or protected promise, no tie between routes, and at
    most one window per job (the model's bounds of a job with several are their hull)."""
    if not separable(problem) or problem.lunch_inside_a_job() or problem.protects_promises():
        return False
    if any(v.max_overtime_s or v.max_planned_share < 1 for v in problem.technician_days):
        return False
    return not any(
        j.preferred is not None
        or j.previous_technician_day is not None
        or j.pinned_position is not None
        or j.needs_pickup
        or len(j.windows) > 1
        for j in problem.jobs
    )


def warm_up() -> None:
    """Compiles the kernels (or loads them from numba's cache beside their file) on a plan of
    nothing, so that the first real search does not pay for it: compiling takes about 20 s
    once per installation, loading about 0.2 s once per process."""
    one = np.zeros((1, 1), dtype=np.int64)
    none = np.zeros(1, dtype=np.int64)
    nodes = (one, one, none, none, none, np.zeros((2, 1), dtype=np.int64), none)
    lunch = np.array([[0], [0], [-1]], dtype=np.int64)
    vans = (none, none, np.zeros((2, 1), dtype=np.int64), none, lunch)
    paths, sizes, vehicles = np.zeros((1, 3), dtype=np.int64), none + 2, none
    allow = np.ones((1, 1), dtype=np.bool_)
    kernels = _kernels()
    kernels.descend(paths, sizes, vehicles, none[:0], nodes, vans, allow, 0, 1)
    kernels.insert(paths, sizes, vehicles, none[:0], nodes, vans, allow, 0, 0, 0.0)


def _kernels() -> ModuleType:
    """The compiled loops, imported on first use (see `optimizer.kernels` for why)."""
    from optimizer import kernels

    return kernels


class Descent:
    """Best-improvement descent over some routes (and jobs left out, which go back in where
    they fit); every move it makes lowers the cost the model would compute by as much."""

    def __init__(self, data: NodeData, vehicles: int) -> None:
        self._data = data
        self._kernels = _kernels()
        size = data.travel.shape[0]
        self._allow = np.zeros((size, vehicles), dtype=np.bool_)
        for node, allowed in data.allowed.items():
            self._allow[node] = allowed
        for node in (*data.starts, *data.ends):
            self._allow[node] = True
        classes = {(data.ends[v], data.shift[v][1]) for v in range(vehicles)}
        number = {c: k for k, c in enumerate(sorted(classes))}
        self._end_class = np.array(
            [number[(data.ends[v], data.shift[v][1])] for v in range(vehicles)], dtype=np.int64
        )
        self._opens = np.array([s for s, _ in data.shift], dtype=np.int64)
        self._closes = np.array([e for _, e in data.shift], dtype=np.int64)

    def cost(self, v: int, nodes: Sequence[int]) -> int:
        """What one route costs the objective: its arcs and its day, nothing when empty."""
        if not nodes:
            return 0
        d = self._data
        path = [d.starts[v], *nodes, d.ends[v]]
        return int(d.cost[path[:-1], path[1:]].sum()) + d.fixed

    def __call__(
        self,
        before: Routes,
        after: Routes,
        vehicles: Sequence[int],
        unplanned: Sequence[int] = (),
    ) -> tuple[int, dict[int, list[int]]]:
        """The cost change from `before` to `after` polished, and the polished routes by
        vehicle: those of `vehicles` and any empty technician-day the descent opened.
        `unplanned` are jobs `before` left out (some of which `after` may have placed)."""
        kept = {n for v in vehicles for n in after[v]}
        out = [n for v in vehicles for n in before[v] if n not in kept]
        out += [n for n in unplanned if n not in kept]
        routes = {v: list(after[v]) for v in vehicles}
        seen = {self._data.alike[v] for v in vehicles if not after[v]}
        for v, nodes in enumerate(after):
            if not nodes and v not in routes and self._data.alike[v] not in seen:
                seen.add(self._data.alike[v])
                routes[v] = []
        out = self.descend(routes, out)
        old = sum(self.cost(v, before[v]) for v in vehicles)
        old += int(self._data.penalty[list(unplanned)].sum()) if unplanned else 0
        new = sum(self.cost(v, nodes) for v, nodes in routes.items())
        new += int(self._data.penalty[out].sum()) if out else 0
        return new - old, {v: nodes for v, nodes in routes.items() if v in vehicles or nodes}

    def descend(self, routes: dict[int, list[int]], out: list[int]) -> list[int]:
        """Improves `routes` (by vehicle) in place; returns the jobs still left out."""
        order = list(routes)
        paths, sizes = self._paths([routes[v] for v in order], order, len(out))
        left = np.asarray(out, dtype=np.int64)
        count = self._kernels.descend(
            paths,
            sizes,
            np.asarray(order, dtype=np.int64),
            left,
            self._nodes(),
            self._vans(),
            self._allow,
            self._data.fixed,
            MOST_MOVES,
        )
        for r, v in enumerate(order):
            routes[v] = paths[r, 1 : sizes[r] - 1].tolist()
        return [int(n) for n in left[:count]]

    def insert(self, routes: Routes, removed: Sequence[int], seed: int, blink: float) -> Routes:
        """`removed` back into `routes` in the given order, each at its cheapest position in
        time and in the van, the odd position blinked past (the insertion of SISR, as
        `optimizer.iterated.BestInsertion` does it for every problem); a job that fits nowhere
        stays out. `seed` draws the blinks."""
        alike = self._data.alike
        seen: set[tuple[int, ...]] = set()
        order = []
        for v, nodes in enumerate(routes):
            if nodes:
                order.append(v)
            elif alike[v] not in seen:  # empty technician-days alike are one candidate
                seen.add(alike[v])
                order.append(v)
        paths, sizes = self._paths([routes[v] for v in order], order, len(removed))
        self._kernels.insert(
            paths,
            sizes,
            np.asarray(order, dtype=np.int64),
            np.asarray(removed, dtype=np.int64),
            self._nodes(),
            self._vans(),
            self._allow,
            self._data.fixed,
            seed,
            blink,
        )
        rebuilt = [list(nodes) for nodes in routes]
        for r, v in enumerate(order):
            rebuilt[v] = paths[r, 1 : sizes[r] - 1].tolist()
        return rebuilt

    def _paths(self, routes: Routes, vehicles: list[int], more: int) -> tuple[Ints, Ints]:
        """Rows of depots and stops, with room for `more` stops in any row."""
        d = self._data
        width = sum(len(nodes) for nodes in routes) + more + 2
        paths = np.zeros((len(routes), width), dtype=np.int64)
        sizes = np.zeros(len(routes), dtype=np.int64)
        for r, (v, nodes) in enumerate(zip(vehicles, routes, strict=True)):
            path = [d.starts[v], *nodes, d.ends[v]]
            paths[r, : len(path)] = path
            sizes[r] = len(path)
        return paths, sizes

    def _nodes(self) -> tuple[Any, ...]:
        d = self._data
        return (d.travel, d.cost, d.service, d.ready, d.due, d.boarded, d.penalty)

    def _vans(self) -> tuple[Any, ...]:
        return (self._opens, self._closes, self._data.capacity, self._end_class, self._data.lunch)
