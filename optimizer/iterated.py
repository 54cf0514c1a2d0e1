"""Iterated ruin and recreate around OR-Tools' local search.

Guided local search on its own stalls on time-window instances: after a few seconds it keeps
circling one basin (on Solomon's R1 and RC1 sets it sat 4-6 % above the best known distance
whatever the extra time). Slack induction by string removals (Christiaens and Vanden Berghe,
2020) is what moves such plans: take short strings of consecutive visits out of a few routes
that lie close together, so their neighbours get room, and put the jobs back where they fit
best. Here the ruin and a cheapest-insertion proposal are ours; OR-Tools then reads the proposal
back under every rule of the routing model (or, when it refuses it, inserts the jobs itself)
and its descent polishes the result to a local optimum; where routes are independent of each
other, most rounds polish only the routes they changed (`optimizer.regional`), and where a
route's rules are its windows, load and arcs alone, our own compiled insertion and descent
(`optimizer.descent`) replace OR-Tools in every round. Simulated annealing on the model's
objective decides which plan the next round starts from. OR-Tools 9.15 has an iterated local
search of its own, but in its Python build the search ends at the first local optimum, hence
this loop.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util import optional_boolean_pb2

from optimizer.descent import Descent, plain
from optimizer.improve import movable_jobs
from optimizer.nodes import NodeData
from optimizer.regional import RegionalDescent, separable
from optimizer.routing import Model, NodeRole, routes_of

# Operators that cost far more per pass than they find once the plan is good: the insertion
# LNS family re-inserts whole paths, the chain and shortest-path ones scan long sequences.
# Without them one pass over a 100-job plan takes ~4 ms instead of ~50 ms, and the loop below
# needs many passes; the pair, exchange and activity operators stay.
HEAVY_OPERATORS = (
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
    "use_lin_kernighan",
    "use_relocate_subtrip",
    "use_exchange_subtrip",
    "use_shortest_path_swap_active",
    "use_swap_active_chain",
    "use_shortest_path_two_opt",
    "use_make_chain_inactive",
    "use_relocate_expensive_chain",
)

# The insertion skips a position with this chance (SISR's blinks).
BLINK = 0.01
# String removal as the paper sets it: strings of at most 10 visits, 10 visits on average.
MAX_STRING = 10
MEAN_REMOVED = 10
# The share of the loop's time that may go to emptying routes (`RouteElimination`).
ELIMINATION_SHARE = 0.3
# Where OR-Tools polishes routes in a model of their own (see `optimizer.regional`), every this
# many rounds the whole model polishes instead, for moves between regions and jobs left out. On
# 18 hard Solomon instances at 3 s: 2.9-3.1 % mean gap without regions, 2.9 with every 4th round
# whole, 2.5-2.6 with every 8th, 2.4 with every 16th and 32nd. With our own descent
# (`optimizer.descent`) a round costs about a hundredth of a whole-model descent, and on R1 and
# RC1 at 3 s the whole model every 16th round gave 1.23 % mean gap, every 64th 0.61 %, never
# 0.46 %: there it never polishes.
WHOLE_EVERY = 16
# Route states the insertion keeps between rounds before it starts afresh.
STATE_CACHE = 20_000
# Annealing from about one average leg of the start plan down to a twentieth of it.
START_TEMPERATURE_LEGS = 1.0
END_TEMPERATURE_RATIO = 0.05


def lighten(params: Any) -> None:
    for name in HEAVY_OPERATORS:
        setattr(params.local_search_operators, name, optional_boolean_pb2.BOOL_FALSE)


@dataclass(frozen=True)
class Found:
    """The best solution of the loop, already read into plain data by the caller's reader."""

    cost: int
    value: Any


Routes = list[list[int]]  # routing nodes per vehicle, depots excluded
# What polishing some routes gives: the change of the plan's cost, the routes by vehicle.
Polished = tuple[int, dict[int, list[int]]]


def mean_leg_cost(model: Model, routes: Routes) -> float:
    routing, manager = model.routing, model.manager
    total = legs = 0
    for v, nodes in enumerate(routes):
        if not nodes:
            continue
        indices = [routing.Start(v), *(manager.NodeToIndex(n) for n in nodes), routing.End(v)]
        for a, b in itertools.pairwise(indices):
            total += routing.GetArcCostForVehicle(a, b, v)
            legs += 1
    return total / legs if legs else 1.0


class StringRemoval:
    """The ruin: strings of consecutive visits from routes near a random seed job.

    A job leaves with all its nodes (its pickup options and its second person), so what is left
    still satisfies the pairing constraints and OR-Tools can read it back.
    """

    def __init__(self, model: Model, movable: set[int], rng: random.Random) -> None:
        layout = model.layout
        self._rng = rng
        self._job_of = layout.job_index
        self._seeds = sorted(movable)
        places = np.asarray(layout.place, dtype=np.int64)
        travel = model.problem.duration_s[np.ix_(places, places)]
        # Nodes by increasing travel time from each node, for "routes close to the seed".
        self._near: npt.NDArray[np.int64] = np.argsort(travel, axis=1, kind="stable")
        self.movable = movable

    def ruin(self, routes: Routes, around: int | None = None) -> Routes:
        """Strings from routes near `around` (a node; by default a random movable one)."""
        rng = self._rng
        where = {node: (r, k) for r, nodes in enumerate(routes) for k, node in enumerate(nodes)}
        used = [nodes for nodes in routes if nodes]
        if not used or not self._seeds:
            return routes
        average = sum(len(nodes) for nodes in used) / len(used)
        longest = min(MAX_STRING, average)
        most_routes = 4 * MEAN_REMOVED / (1 + longest) - 1
        wanted = int(rng.uniform(1, most_routes + 1))
        removed_jobs: set[int] = set()
        ruined: set[int] = set()
        for node in self._near[around if around is not None else rng.choice(self._seeds)]:
            if len(ruined) >= wanted:
                break
            if node not in where or int(node) not in self.movable:
                continue
            r, k = where[int(node)]
            if r in ruined:
                continue
            nodes = routes[r]
            size = int(rng.uniform(1, min(len(nodes), longest) + 1))
            first = max(0, min(k - rng.randrange(size), len(nodes) - size))
            for taken in nodes[first : first + size]:
                if taken in self.movable:
                    removed_jobs.add(self._job_of[taken])
            ruined.add(r)
        return [[n for n in nodes if self._job_of[n] not in removed_jobs] for nodes in routes]


@dataclass(frozen=True)
class _RouteState:
    """What the insertion knows of one route: its path (depots included), the window bounds,
    earliest and latest starts of its stops and the van's loads after each stop."""

    vehicle: int
    path: npt.NDArray[np.int64]
    timing: tuple[npt.NDArray[np.int64], ...]
    load: npt.NDArray[np.int64]
    departs: npt.NDArray[np.int64]  # earliest departure from each stop but the last
    peak: npt.NDArray[np.int64]  # the most the van holds up to each stop but the last
    fixed: int  # what opening this route costs: the day's fixed cost when it is empty
    capacity: npt.NDArray[np.int64]  # volume and weight


@dataclass(frozen=True)
class _Edges:
    """Every leg of every route in one set of arrays, so a job's cheapest position over the
    whole plan is a handful of numpy operations instead of one round per route."""

    states: list[_RouteState]
    before: npt.NDArray[np.int64]
    after: npt.NDArray[np.int64]
    departs: npt.NDArray[np.int64]
    latest: npt.NDArray[np.int64]  # latest start at the leg's far end
    peak: npt.NDArray[np.int64]
    capacity: npt.NDArray[np.int64]
    vehicle: npt.NDArray[np.int64]
    fixed: npt.NDArray[np.int64]
    route: npt.NDArray[np.int64]  # index into `states`
    position: npt.NDArray[np.int64]  # the leg's index in its route

    @staticmethod
    def of(states: list[_RouteState]) -> _Edges:
        sizes = [len(s.path) - 1 for s in states]
        if not states:
            empty = np.zeros(0, dtype=np.int64)
            return _Edges(
                [], *(empty,) * 3, empty, *(np.zeros((2, 0), np.int64),) * 2, *(empty,) * 4
            )
        return _Edges(
            states,
            np.concatenate([s.path[:-1] for s in states]),
            np.concatenate([s.path[1:] for s in states]),
            np.concatenate([s.departs for s in states]),
            np.concatenate([s.timing[3][1:] for s in states]),
            np.concatenate([s.peak for s in states], axis=1),
            np.repeat(np.stack([s.capacity for s in states], axis=1), sizes, axis=1),
            np.repeat([s.vehicle for s in states], sizes),
            np.repeat([s.fixed for s in states], sizes),
            np.repeat(np.arange(len(states)), sizes),
            np.concatenate([np.arange(size) for size in sizes]),
        )


class BestInsertion:
    """The recreate's first half: put removed jobs back at their cheapest feasible position, in
    a random order with the odd position skipped (the paper's "blinks"), so OR-Tools' descent
    starts from a complete plan and only has to polish.

    Feasibility here is the time-window and load arithmetic of the paper: earliest arrival
    forwards, latest start backwards, within each node's window bounds, and the van's load
    after every stop. A job with a missing part goes in as a pair, its pickup (at the best of
    its sites) anywhere before it on the same route. The model holds more rules than that, so a
    proposal is only a proposal: OR-Tools reads it back under every constraint, and the caller
    falls back to letting OR-Tools insert when it is refused. Two-person jobs are always left
    to OR-Tools.
    """

    def __init__(
        self, model: Model, rng: random.Random, blink: float = BLINK, data: NodeData | None = None
    ) -> None:
        data = data if data is not None else NodeData.of(model)
        self._rng = rng
        self._blink = blink
        self._travel, self._cost, self._service = data.travel, data.cost, data.service
        self._ready, self._due = data.ready, data.due
        self._starts, self._ends, self._shift = data.starts, data.ends, data.shift
        self._fixed = data.fixed
        self._boarded, self._change = data.boarded, data.change
        self._options = data.options
        self._capacity = data.capacity
        self._alike = data.alike
        self._allowed = data.allowed
        self._states: dict[tuple[int, ...], _RouteState] = {}

    @property
    def job_nodes(self) -> set[int]:
        """The job nodes this insertion can place (with their pickups)."""
        return set(self._options)

    def insert(
        self,
        routes: Routes,
        removed: Sequence[int],
        *,
        first: Sequence[int] = (),
        open_routes: bool = True,
    ) -> Routes:
        """`removed` back into `routes` in a random order, after the job nodes in `first` (in
        their order); with `open_routes` false, no empty technician-day is started."""
        rng = self._rng
        routes = [list(nodes) for nodes in routes]
        order = [n for n in removed if n in self._options and n not in first]
        rng.shuffle(order)
        states = [self._state(v, nodes) for v, nodes in enumerate(routes)]
        edges: _Edges | None = None
        for node in [*first, *order]:
            if self._options[node]:
                found = self._best_pair(routes, states, node, open_routes)
            else:
                if edges is None:
                    edges = _Edges.of([s for v, s in enumerate(states) if routes[v] or open_routes])
                found = self._best_single(edges, node)
            if found is not None:
                v, route = found
                routes[v] = route
                states[v] = self._state(v, route)
                edges = None
        return routes

    def _state(self, v: int, nodes: list[int]) -> _RouteState:
        """A route's timing and loads, kept while the route is unchanged (most routes outlive
        many ruins)."""
        key = (v, *nodes)
        found = self._states.get(key)
        if found is not None:
            return found
        if len(self._states) > STATE_CACHE:
            self._states.clear()
        path = np.asarray([self._starts[v], *nodes, self._ends[v]], dtype=np.int64)
        ready, due, earliest, latest = self._timing(v, path)
        load = self._boarded[:, path].sum(axis=1, keepdims=True) + np.cumsum(
            self._change[:, path], axis=1
        )
        state = _RouteState(
            v,
            path,
            (ready, due, earliest, latest),
            load,
            departs=earliest[:-1] + self._service[path[:-1]],
            peak=np.maximum.accumulate(load[:, :-1], axis=1),
            fixed=0 if nodes else self._fixed,
            capacity=self._capacity[:, v],
        )
        self._states[key] = state
        return state

    def _best_single(self, edges: _Edges, node: int) -> tuple[int, list[int]] | None:
        """The cheapest feasible position for a job without pickup over every route at once."""
        if edges.before.size == 0:
            return None
        service, travel = self._service, self._travel
        before, after = edges.before, edges.after
        arrival = np.maximum(self._ready[node], edges.departs + travel[before, node])
        # The job's goods ride from the start of the day until the job.
        fits = (
            self._allowed[node][edges.vehicle]
            & (arrival <= self._due[node])
            & (arrival + service[node] + travel[node, after] <= edges.latest)
            & (edges.peak + self._boarded[:, node, None] <= edges.capacity).all(axis=0)
        )
        added = (
            self._cost[before, node]
            + self._cost[node, after]
            - self._cost[before, after]
            + edges.fixed
        )
        chosen = self._choose(fits, added)
        if chosen is None:
            return None
        state = edges.states[edges.route[chosen]]
        k = int(edges.position[chosen])
        nodes = state.path[1:-1].tolist()
        return state.vehicle, [*nodes[:k], node, *nodes[k:]]

    def _best_pair(
        self, routes: Routes, states: list[_RouteState], node: int, open_routes: bool
    ) -> tuple[int, list[int]] | None:
        """The cheapest feasible route and positions for a job and its pickup, route by route."""
        best: tuple[int, int, list[int]] | None = None  # cost, route, the route after
        tried_empty: set[tuple[int, ...]] = set()
        for v, nodes in enumerate(routes):
            if not self._allowed[node][v] or not (nodes or open_routes):
                continue
            if not nodes:  # empty technician-days alike are one candidate, not dozens
                if self._alike[v] in tried_empty:
                    continue
                tried_empty.add(self._alike[v])
            state = states[v]
            for pickup in self._options[node]:
                if not self._allowed[pickup][v]:
                    continue
                pair = self._pair(v, state.path, state.timing, state.load, pickup, node)
                if pair is not None and (best is None or pair[0] + state.fixed < best[0]):
                    added, i, j = pair
                    route = [*nodes[:i], pickup, *nodes[i:j], node, *nodes[j:]]
                    best = (added + state.fixed, v, route)
        return None if best is None else (best[1], best[2])

    def _timing(
        self, v: int, path: npt.NDArray[np.int64]
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
    ]:
        """Window bounds of the path's stops (ready, due), earliest starts and latest starts."""
        ready, due = self._ready[path].copy(), self._due[path].copy()
        ready[0], due[0] = self._shift[v]
        ready[-1], due[-1] = self._shift[v]
        # Plain Python numbers: the recursions below are sequential, and numpy scalars are slow.
        legs = (self._travel[path[:-1], path[1:]] + self._service[path[:-1]]).tolist()
        opens, closes = ready.tolist(), due.tolist()
        earliest = list(opens)
        for k in range(1, len(opens)):
            earliest[k] = max(opens[k], earliest[k - 1] + legs[k - 1])
        latest = list(closes)
        for k in range(len(closes) - 2, -1, -1):
            latest[k] = min(closes[k], latest[k + 1] - legs[k])
        return ready, due, np.asarray(earliest, dtype=np.int64), np.asarray(latest, dtype=np.int64)

    def _pair(
        self,
        v: int,
        path: npt.NDArray[np.int64],
        timing: tuple[npt.NDArray[np.int64], ...],
        load: npt.NDArray[np.int64],
        pickup: int,
        node: int,
    ) -> tuple[int, int, int] | None:
        """The cheapest (i, j): the pickup after the path's i-th stop, the job after its j-th
        (j >= i; j == i is straight from the pickup to the job). Every (i, j) at once: row i
        holds the stops' earliest starts as the pickup at i pushes them."""
        ready, due, earliest, latest = timing
        service, travel, cost = self._service, self._travel, self._cost
        n = len(path)
        before, after = path[:-1], path[1:]
        at_pickup = np.maximum(
            self._ready[pickup], earliest[:-1] + service[before] + travel[before, pickup]
        )
        reach_pickup = at_pickup <= self._due[pickup]
        leaves_pickup = at_pickup + service[pickup]
        leg = travel[before, after] + service[before]
        elapsed = np.concatenate(([0], np.cumsum(leg)))  # travel and service from the start
        rows = np.arange(n - 1)[:, None]
        cols = np.arange(n)[None, :]
        # earliest'[i, k] for k > i: max over the pushed arrival at i+1 and each later ready.
        slack = np.where(cols > rows + 1, ready - elapsed, np.iinfo(np.int64).min // 2)
        first = np.maximum(leaves_pickup + travel[pickup, after], ready[1:]) - elapsed[1:]
        slack[np.arange(n - 1), np.arange(1, n)] = first
        pushed = np.maximum.accumulate(slack, axis=1) + elapsed
        in_time = np.logical_and.accumulate((cols <= rows) | (pushed <= due), axis=1)
        # The job after stop j (j > i), straight after the pickup when j == i.
        pushed_j = pushed[:, :-1]
        arrival = np.maximum(self._ready[node], pushed_j + service[before] + travel[before, node])
        direct = np.maximum(self._ready[node], leaves_pickup + travel[pickup, node])
        diagonal = np.arange(n - 1)
        arrival[diagonal, diagonal] = direct
        fits = (
            (cols[:, :-1] >= rows)
            & reach_pickup[:, None]
            & in_time[:, :-1]
            & (arrival <= self._due[node])
            & (arrival + service[node] + travel[node, after] <= latest[1:])
        )
        # Goods ride from the start until the job, parts from the pickup to the job.
        goods, parts = self._boarded[:, node], self._change[:, pickup]
        start_peak = np.maximum.accumulate(load[:, :-1], axis=1) + goods[:, None]
        capacity = self._capacity[:, v]
        for d in range(2):
            window = np.where(cols[:, :-1] >= rows, load[d, :-1], np.iinfo(np.int64).min // 2)
            between = np.maximum.accumulate(window, axis=1) + goods[d] + parts[d]
            fits &= (start_peak[d, :, None] <= capacity[d]) & (between <= capacity[d])
        into_pickup = cost[before, pickup] - cost[before, after]
        added = (into_pickup + cost[pickup, after])[:, None] + (
            cost[before, node] + cost[node, after] - cost[before, after]
        )[None, :]
        added[diagonal, diagonal] = into_pickup + cost[pickup, node] + cost[node, after]
        chosen = self._choose(fits, added)
        if chosen is None:
            return None
        i, j = divmod(chosen, n - 1)
        return int(added[i, j]), i, j

    def _choose(self, fits: npt.NDArray[np.bool_], added: npt.NDArray[np.int64]) -> int | None:
        """The flat index of the cheapest feasible position, the odd one blinked past."""
        candidates = np.flatnonzero(fits)
        if candidates.size == 0:
            return None
        ranked = candidates[np.argsort(added.flat[candidates], kind="stable")]
        for k in ranked:
            if self._rng.random() >= self._blink:
                return int(k)
        return int(ranked[0])


class RouteElimination:
    """Fleet minimisation as in SISR: empty the route with the fewest jobs, then ruin and
    recreate without opening a route, until every job has found a place again.

    A round is kept when fewer jobs are left out, or as many but ones that were out less
    often: every round a job spends outside raises its count, so the search keeps making room
    for the jobs that are hardest to place instead of circling. Ruins are centred on a job
    that is out. String removals alone rarely empty a whole route; it only pays where a
    technician-day used costs something (see `solve._fleet_conscious`).
    """

    def __init__(
        self, removal: StringRemoval, insertion: BestInsertion, rng: random.Random
    ) -> None:
        self._removal = removal
        self._insertion = insertion
        self._jobs = insertion.job_nodes
        self._rng = rng

    def attempt(
        self, routes: Routes, *, until: float, clock: Callable[[], float], rounds: int
    ) -> Routes | None:
        """A plan with one route fewer than `routes`, or None when the time or the rounds ran
        out first."""
        used = [r for r, nodes in enumerate(routes) if nodes]
        movable = self._removal.movable
        if len(used) < 2:
            return None
        fewest = min(used, key=lambda r: (len(routes[r]), self._rng.random()))
        if any(n not in movable for n in routes[fewest]):
            return None
        out = [n for n in routes[fewest] if n in self._jobs]
        current = [[] if r == fewest else list(nodes) for r, nodes in enumerate(routes)]
        absences: dict[int, int] = {}
        for _ in range(rounds):
            if not out or clock() >= until:
                break
            ruined = self._removal.ruin(current, around=self._rng.choice(out))
            kept = _flat(ruined)
            gone = [n for nodes in current for n in nodes if n not in kept and n in self._jobs]
            first = sorted(out, key=lambda n: -absences.get(n, 0))
            rebuilt = self._insertion.insert(ruined, gone, first=first, open_routes=False)
            placed = _flat(rebuilt)
            left = [n for n in (*out, *gone) if n not in placed]
            for n in left:
                absences[n] = absences.get(n, 0) + 1
            if len(left) < len(out) or (
                len(left) == len(out)
                and sum(absences[n] for n in left) < sum(absences.get(n, 0) for n in out)
            ):
                current, out = rebuilt, left
        return None if out else current


def movable_nodes(model: Model) -> set[int]:
    """Nodes of the jobs a ruin may take out (see `movable_jobs`)."""
    layout, jobs = model.layout, model.problem.jobs
    movable = movable_jobs(model.problem)
    return {
        node
        for node, role in enumerate(layout.role)
        if role != NodeRole.DEPOT and jobs[layout.job_index[node]].id in movable
    }


def iterate(
    model: Model,
    start: Any,
    closed_with: Any,
    *,
    deadline: float,
    clock: Callable[[], float],
    seed: int,
    rounds: int | None,
    read: Callable[[Any], Any],
    descent_limit_s: Callable[[], float],
) -> Found:
    """Ruin-and-recreate rounds from `start` (a solution of `model`) until the deadline or the
    round limit; returns the best solution seen, read by `read` as soon as the whole model holds
    it (a solution object is only valid until the next solve): at once for plans the whole model
    polished, at the end for the regions' best."""
    rng = random.Random(seed)
    current = routes_of(model, start)
    current_cost = int(start.ObjectiveValue())
    best = Found(current_cost, read(start))
    movable = movable_nodes(model)
    if not movable:
        return best
    removal = StringRemoval(model, movable, rng)
    data = NodeData.of(model)
    insertion = BestInsertion(model, rng, data=data)
    hot = START_TEMPERATURE_LEGS * mean_leg_cost(model, current)
    cold = hot * END_TEMPERATURE_RATIO
    # The model's own parameters (a solve with other operators would build them anew), but a
    # plain descent to the local optimum and no solution limit.
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.CopyFrom(closed_with)
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    params.solution_limit = 2**63 - 1
    polish = _Polisher(model, params, descent_limit_s)
    began = clock()
    # Where routes cost nothing, emptying one is undone by the next descent; two-person jobs
    # are beyond our insertion.
    if model.problem.weights.technician_day_fixed > 0 and not model.layout.helper_node:
        elimination = RouteElimination(removal, insertion, rng)
        until = began + ELIMINATION_SHARE * (deadline - began)
        while clock() < until:
            fewer = elimination.attempt(
                current, until=until, clock=clock, rounds=rounds if rounds is not None else 2**62
            )
            solution = polish(fewer) if fewer else None
            if solution is None:
                break
            before = sum(1 for nodes in current if nodes)
            # Taken whatever it costs: the distance search goes on from the smaller fleet.
            current, current_cost = routes_of(model, solution), int(solution.ObjectiveValue())
            if current_cost < best.cost:
                best = Found(current_cost, read(solution))
            if sum(1 for nodes in current if nodes) >= before:
                break  # the descent opened a route again: a day costs less than it saves
    # The last plan the whole model accepted, to fall back on should a smaller model ever
    # disagree with it.
    trusted, trusted_cost = current, current_cost
    # Where routes are independent, each round polishes only the routes it changed: with our
    # own descent where a route's rules are its windows, loads and arcs, else with OR-Tools in a
    # model of those routes.
    regional: Callable[[Routes, Routes, list[int]], Polished | None] | None = None
    own = Descent(data, len(model.problem.technician_days)) if plain(model.problem) else None
    own_jobs = sorted(insertion.job_nodes)
    if own is not None:
        regional = own
    elif separable(model.problem):
        regional = RegionalDescent(model, params, descent_limit_s)
    # The best plan the regions found, known by their arithmetic only: it is read from the
    # whole model once, at the end. Polishing and reading every new best there took about 40 %
    # of a three-second search on RC107, where the best changes often.
    unread, unread_cost = current, best.cost
    # The longest whole-model descent so far. A descent that its time limit stops leaves the
    # model refusing every later plan (see `search`), and the unread best must still be read.
    whole_s = 0.0
    done = 0
    while (rounds is None or done < rounds) and clock() < deadline:
        done += 1
        temperature = _temperature(hot, cold, done, rounds, began, deadline, clock)
        ruined = removal.ruin(current)
        kept = _flat(ruined)
        gone = [n for nodes in current for n in nodes if n not in kept]
        # Jobs the plan leaves out get another chance in every round of our own insertion (the
        # whole model's descent gives them theirs elsewhere).
        waiting: list[int] = []
        if own is not None:
            taken = set(gone)
            waiting = [n for n in own_jobs if n not in kept and n not in taken]
            order = [*gone, *waiting]
            rng.shuffle(order)
            rebuilt = own.insert(ruined, order, rng.randrange(2**31), BLINK)
        else:
            rebuilt = insertion.insert(ruined, gone)
        if rebuilt == current:
            continue  # every job went back where it was: about a quarter of the rounds
        threshold = current_cost - temperature * math.log(1.0 - rng.random())
        if regional is not None and (own is not None or done % WHOLE_EVERY):
            touched = [v for v, nodes in enumerate(rebuilt) if nodes != current[v]]
            found = (
                own(current, rebuilt, touched, waiting)
                if own is not None
                else regional(current, rebuilt, touched)
            )
            if found is not None:
                # Accept a worse plan with the annealing probability (log of a uniform draw).
                if current_cost + found[0] < threshold:
                    current = list(current)
                    for v, nodes in found[1].items():
                        current[v] = nodes
                    current_cost += found[0]
                    if current_cost < unread_cost:
                        unread, unread_cost = current, current_cost
                continue
        if regional is not None and deadline - clock() < 2 * whole_s:
            continue
        # Our proposal first; when the model refuses it, OR-Tools inserts the jobs itself.
        began_polish = clock()
        solution = polish(rebuilt) or polish(ruined)
        whole_s = max(whole_s, clock() - began_polish)
        if solution is None:
            if regional is not None:  # the regions' plan is not the model's: stop using them
                current, current_cost, regional = trusted, trusted_cost, None
                unread, unread_cost = trusted, best.cost
            continue
        cost = int(solution.ObjectiveValue())
        if cost < threshold:
            current, current_cost = routes_of(model, solution), cost
            trusted, trusted_cost = current, current_cost
            if cost < best.cost:
                best = Found(cost, read(solution))
            if cost < unread_cost:
                unread, unread_cost = current, cost
    if unread_cost < best.cost:
        solution = model.routing.ReadAssignmentFromRoutes(_indices(model, unread), True)
        if solution is not None and (cost := int(solution.ObjectiveValue())) < best.cost:
            best = Found(cost, read(solution))
    return best


class _Polisher:
    """OR-Tools' descent from a plan given as routes: None when the model refuses the plan."""

    def __init__(self, model: Model, params: Any, limit_s: Callable[[], float]) -> None:
        self._model = model
        self._params = params
        self._limit_s = limit_s

    def __call__(self, routes: Routes) -> Any:
        routing = self._model.routing
        candidate = routing.ReadAssignmentFromRoutes(_indices(self._model, routes), True)
        if candidate is None:
            return None
        self._params.time_limit.FromMilliseconds(max(1, int(self._limit_s() * 1000)))
        return routing.SolveFromAssignmentWithParameters(candidate, self._params)


def _temperature(
    hot: float,
    cold: float,
    done: int,
    rounds: int | None,
    began: float,
    deadline: float,
    clock: Callable[[], float],
) -> float:
    if rounds is not None:
        progress = done / rounds
    else:
        progress = min(1.0, (clock() - began) / max(1e-9, deadline - began))
    return float(hot * (cold / hot) ** progress)


def _flat(routes: Routes) -> set[int]:
    return {node for nodes in routes for node in nodes}


def _indices(model: Model, routes: Sequence[Sequence[int]]) -> list[list[int]]:
    manager = model.manager
    return [[manager.NodeToIndex(node) for node in nodes] for nodes in routes]
