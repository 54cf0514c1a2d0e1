"""`solve(problem, limits) -> Plan`: build the model, search, read the plan back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from optimizer.check import check
from optimizer.construct import Builder, build_greedy, to_plan
from optimizer.costs import plan_cost
from optimizer.descent import plain
from optimizer.explain import explain_unplanned
from optimizer.improve import Budget, improve
from optimizer.iterated import iterate, lighten
from optimizer.model import Plan, Problem, Route, Search, Unplanned, Visit, VisitKind
from optimizer.reasons import Reason, Why
from optimizer.routing import Model, NodeRole, SearchSettings, build, search_parameters


@dataclass(frozen=True)
class Progress:
    """One improvement found during search, for progress bars."""

    solutions: int
    objective: int
    wall_ms: int  # OR-Tools' own clock since the search began


@dataclass(frozen=True)
class Limits:
    """When to stop. With `max_solutions` and no time pressure the result is reproducible;
    under a pure time limit it depends on how fast the machine is."""

    time_limit_s: float = 10.0
    max_solutions: int | None = None
    # Rounds of ruin and recreate; with `max_solutions` too, a run is reproducible per seed.
    max_rounds: int | None = None
    seed: int = 0
    # Time comes in as data: the clock the limit is measured on (tests pass a fake one).
    clock: Callable[[], float] = time.monotonic
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    # With 2, a second search starts from OR-Tools' own first solution in another process, so
    # both cores work; the better valid plan wins.
    workers: int = 1

    @classmethod
    def quick(cls, seed: int = 0) -> Limits:
        """A plan within three seconds of wall time on both cores for a day of about a hundred
        jobs: what a planner can wait for after moving a job (`python -m benchmarks.vrptw
        --quick` holds it against VROOM). The first plan is always built in full, so a large
        region's quick plan takes as long as its construction (6.0 s for 1,000 jobs)."""
        return cls(time_limit_s=QUICK_PLAN_S, seed=seed, workers=2)


# The search time of `Limits.quick`. The second core works to the first one's deadline, so a
# solve takes its limit plus about 0.05 s (Solomon: 2.89 s on average, 2.92 at most).
QUICK_PLAN_S = 2.85


ProgressCallback = Callable[[Progress], None]

# The share of OR-Tools' time that guided local search gets before ruin and recreate takes
# over. GLS finds most of its gain in the first seconds; on eight hard Li & Lim instances, 30 s,
# 0.3 left lc204 at 0.00 % where 0.6 left it at 8.06 %. Where routes are short, the loop
# polishes only the few a round changed (`optimizer.regional`), its rounds are cheaper and it
# does better with more of the time: on 18 hard Solomon instances at 3 s, 1.94 % mean gap with
# 0.1 (twice), 2.4-2.6 % with 0.3. Long routes make a region nearly the whole plan, so the loop
# is as slow as before there and guided search keeps its share (with 0.1, one full Solomon run
# at 10 s left R211 at 7.7 %, three routes where the best known plan has four).
GUIDED_SHARE = 0.1
GUIDED_SHARE_LONG_ROUTES = 0.3
# The search from a smaller fleet (see _fleet_conscious): what a technician-day used costs
# there, in average legs of the first plan, and its share of the search's time.
# Measured on Solomon, 10 s: RC103 went from 5.7-7.9 % (13 or 12 routes) to 2.2-3.6 %; with
# 10 legs or half the time, instances whose best plans do not use the fewest routes (R207)
# lost more than that.
FLEET_LEGS = 5.0
FLEET_SHARE = 0.3
# Jobs a route of the first plan holds on average from which the second core searches with
# another seed instead (see _rival_mode).
LONG_ROUTE_JOBS = 12


def solve(
    problem: Problem,
    limits: Limits | None = None,
    *,
    warm_start: Plan | None = None,
    on_progress: ProgressCallback | None = None,
) -> Plan:
    """The best valid plan found within the limits.

    A first plan comes from the rule-aware construction (or from `warm_start` when that still
    passes `check`); OR-Tools' guided local search then improves it, and iterated ruin and
    recreate (`optimizer.iterated`) takes it further for the remaining time; where routes are
    short and a technician-day costs little, that search goes towards fewer routes first (see
    `_fleet_conscious`). With `workers=2` the other core searches from OR-Tools' own first
    solution with another seed (see `_rival_mode`). A result is only taken if the
    independent validator accepts it, so a modelling slip in the search can cost quality but
    never correctness.
    """
    limits = limits or Limits()
    deadline = limits.clock() + limits.time_limit_s
    held = Builder.from_plan(problem, warm_start) if warm_start is not None else None
    state = held if held is not None else build_greedy(problem)
    first = to_plan(problem, state[0], sorted(state[1]))
    first = replace(first, objective=plan_cost(problem, first))
    if on_progress is not None:
        on_progress(Progress(0, first.objective, 0))
    if not problem.jobs or not problem.technician_days or limits.time_limit_s <= 0:
        return first
    # OR-Tools cannot hold crews, dependencies, protected promises or lunch inside a long job
    # (see _ortools_cannot_warm_start); there the ruin-and-recreate search gets all the time
    # (and the second core runs it with another seed), elsewhere it hands over to OR-Tools
    # early and the second core runs OR-Tools from its own first solution.
    own_search_only = _ortools_cannot_warm_start(problem)
    rival = (
        _start_rival(problem, limits, _rival_mode(own_search_only, first), first, deadline)
        if limits.workers >= 2
        else None
    )
    share = 1.0 if own_search_only else 0.05
    budget = Budget(
        rounds=limits.max_rounds if limits.max_rounds is not None else 10**9,
        deadline=limits.clock() + limits.time_limit_s * share,
        clock=limits.clock,
        seed=limits.seed,
    )
    improved = improve(problem, budget, start=state)
    candidates: list[Plan | None] = [first, improved]
    if on_progress is not None:
        on_progress(Progress(1, plan_cost(problem, improved), 0))
    remaining = deadline - limits.clock()
    if not own_search_only and remaining > 0.2:
        rest = replace(limits, time_limit_s=remaining)
        searched = (
            search(problem, rest, improved, on_progress, guided_share=GUIDED_SHARE_LONG_ROUTES)
            if _long_routes(first)
            else _search_from_a_smaller_fleet(problem, rest, first, improved, on_progress)
        )
        candidates.append(searched)
        if searched is None and deadline - limits.clock() > 0.2:
            # OR-Tools refused the plan as its start: the rest of the time goes on from there.
            budget = replace(budget, deadline=deadline, seed=limits.seed + 2)
            candidates.append(improve(problem, budget, start=state))
    if rival is not None:
        with rival:
            candidates.append(rival.result())
    valid = [
        replace(plan, objective=plan_cost(problem, plan))
        for plan in candidates
        if plan is not None and (plan is first or not breaks_rules(problem, plan))
    ]
    ranks = list(Search)
    return min(valid, key=lambda plan: (plan.objective, -ranks.index(plan.search)))


def breaks_rules(problem: Problem, plan: Plan) -> bool:
    """Any violation but an honestly reported one: a promise or pin that could not be planned
    is listed as unplanned (and the plan reports it), every other violation disqualifies."""
    return any(not v.left_out for v in check(problem, plan))


def _rival_mode(own_search_only: bool, first: Plan) -> str:
    """What the second core does: ruin and recreate with another seed where OR-Tools cannot
    start from our plans; where routes are short, OR-Tools towards fewer routes first; where
    they are long, OR-Tools with another seed.

    One route fewer was the better basin on Solomon's RC103 (8 jobs a route), but on R207 and
    RC208 (25 a route) it cost what a second independent search gains: with the fleet search on
    the second core, RC208 landed at 11.2 % in one full run and R207 at 3.5-6.5 %, against
    0-3 % and 3.1-3.8 % with another seed.
    """
    if own_search_only:
        return "lns"
    return "ortools" if _long_routes(first) else "fleet"


def _long_routes(first: Plan) -> bool:
    used = [r for r in first.routes if r.visits]
    jobs = sum(1 for r in used for v in r.visits if v.kind is VisitKind.JOB)
    return jobs >= LONG_ROUTE_JOBS * max(1, len(used))


def _search_from_a_smaller_fleet(
    problem: Problem,
    limits: Limits,
    first: Plan,
    start: Plan | None = None,
    on_progress: ProgressCallback | None = None,
) -> Plan | None:
    """The search from `start` (OR-Tools' own first solution when None), first on
    `_fleet_conscious(problem, first)`, then on the problem itself from what that found."""
    began = limits.clock()
    surrogate = _fleet_conscious(problem, first)
    if surrogate is problem:
        return search(problem, limits, start, on_progress)
    # Its costs are not the problem's, so it reports no progress.
    fewer = search(
        surrogate, replace(limits, time_limit_s=limits.time_limit_s * FLEET_SHARE), start, None
    )
    rest = limits.time_limit_s - (limits.clock() - began)
    if fewer is None or rest <= 0.2:
        return fewer
    return search(problem, replace(limits, time_limit_s=rest), fewer, on_progress) or fewer


def _fleet_conscious(problem: Problem, start: Plan) -> Problem:
    """The problem a search on short routes starts on: each technician-day used costs at least
    a few average legs of `start`.

    Where a day used costs little or nothing (the literature's distance-only objective),
    emptying a route is undone by the next descent, which reopens a route as soon as that
    shortens the drive by a metre; but plans with fewer routes are sometimes a better basin
    even for distance (Solomon's RC103: 11 routes in the best known plan, 13 from guided
    search). The first search goes there first, and with `workers=2` so does the rival, from
    another start; each goes on on the true objective from what it found there. On Solomon's
    R1 and RC1, four quick plans (`Limits.quick`) each: 2.10 % mean gap with the first core
    going there too, 2.25 % with the second core only; at 10 s, and on one core alone, no
    difference beyond noise.
    """
    weights = problem.weights
    used = [r for r in start.routes if r.visits]
    legs = sum(1 + sum(v.kind is not VisitKind.BREAK for v in r.visits) for r in used)
    travel = sum(
        r.travel_s * weights.travel_per_s + r.distance_m * weights.per_km // 1000 for r in used
    )
    fixed = int(FLEET_LEGS * travel / max(1, legs))
    if fixed <= weights.technician_day_fixed:
        return problem
    return replace(problem, weights=replace(weights, technician_day_fixed=fixed))


def _ortools_cannot_warm_start(problem: Problem) -> bool:
    """Rules the routing model cannot hold: two-person jobs and dependencies tie routes
    together, a job longer than a lunch window takes its lunch on site, which OR-Tools' breaks
    (never during a visit) cannot express, and a promise's protection depends on all the work
    before it. A lunch break as such it models exactly."""
    return (
        problem.lunch_inside_a_job()
        or problem.protects_promises()
        or any(j.crew_size >= 2 or j.after for j in problem.jobs)
    )


class _Rival:
    """A search from scratch in a separate process (both cores, no shared OR-Tools state).

    The problem travels to the child when it starts, not through a pool's feeder thread: the
    main search holds the GIL inside OR-Tools, so a feeder thread would not get to send it.
    Starting is itself left to a thread, though: the parent's write of the problem blocks until
    the child has imported what it needs to read it, 0.8-1.0 s on Solomon's instances, about a
    third of a quick plan's time, which the first core now searches through. That thread
    needs the GIL only between the writes of a few chunks.
    """

    def __init__(
        self, problem: Problem, limits: Limits, mode: str, start: Plan, deadline: float
    ) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._limits = limits
        self._answered = False
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_rival_main,
            args=(sender, problem, replace(limits, workers=1), mode, start, deadline),
            daemon=True,
        )

        def launch() -> None:
            try:
                self._process.start()
            except Exception:  # no process to be had: one core it is (`result` reads None)
                pass
            finally:
                sender.close()  # so that a child that never started reads as gone

        self._launcher = threading.Thread(target=launch, daemon=True)
        self._launcher.start()

    def result(self) -> Plan | None:
        self._launcher.join()
        try:
            if self._receiver.poll(self._limits.time_limit_s + 60):
                plan: Plan | None = self._receiver.recv()
                self._answered = True
                return plan
        except (EOFError, OSError):  # a crashed rival costs quality, never the plan
            pass
        return None

    def __enter__(self) -> _Rival:
        return self

    def __exit__(self, *_: object) -> None:
        self._receiver.close()
        if self._answered:
            # It has nothing left to do but exit, which takes the interpreter about 0.2 s with
            # numba loaded: not worth waiting for. multiprocessing reaps it at the next start.
            return
        self._launcher.join()
        if self._process.pid is None:
            return
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()


def _rival_main(
    sender: Any, problem: Problem, limits: Limits, mode: str, start: Plan, deadline: float
) -> None:
    # The first core's deadline: starting a process and importing OR-Tools takes about 0.3 s,
    # which would otherwise be added to every solve's wall time. (time.monotonic is one clock
    # for every process of the machine.)
    limits = replace(limits, time_limit_s=max(0.0, deadline - limits.clock()))
    try:
        if mode == "lns":
            budget = Budget(
                rounds=limits.max_rounds if limits.max_rounds is not None else 10**9,
                deadline=limits.clock() + limits.time_limit_s,
                clock=limits.clock,
                seed=limits.seed + 1,
            )
            plan: Plan | None = improve(problem, budget)
        elif mode == "fleet":
            plan = _search_from_a_smaller_fleet(
                problem, replace(limits, seed=limits.seed + 1), start
            )
        else:
            plan = search(
                problem,
                replace(limits, seed=limits.seed + 1),
                None,
                None,
                guided_share=GUIDED_SHARE_LONG_ROUTES,  # this mode is for long routes
            )
        if plan is None and (rest := deadline - limits.clock()) > 0.2:
            # OR-Tools refused its start: ruin and recreate has the rest of the time.
            budget = Budget(10**9, limits.clock() + rest, limits.clock, limits.seed + 3)
            plan = improve(problem, budget)
    except Exception:
        plan = None
    sender.send(plan)
    sender.close()


def _start_rival(
    problem: Problem, limits: Limits, mode: str, start: Plan, deadline: float
) -> _Rival | None:
    try:
        return _Rival(problem, limits, mode, start, deadline)
    except Exception:  # no pipe or thread to be had: one core it is (`launch` catches the rest)
        return None


def search(
    problem: Problem,
    limits: Limits,
    start: Plan | None,
    on_progress: ProgressCallback | None,
    *,
    guided_share: float = GUIDED_SHARE,
) -> Plan | None:
    """OR-Tools routing search, from `start` when given: guided local search first, then
    iterated ruin and recreate (see `optimizer.iterated`) for the rest of the time."""
    model = build(problem)
    routing = model.routing
    solver = routing.solver()
    counter = [0]
    began = limits.clock()
    deadline = began + limits.time_limit_s
    guided_until = began + limits.time_limit_s * guided_share
    guided = [True]

    def report() -> None:
        counter[0] += 1
        if guided[0] and on_progress is not None:
            on_progress(Progress(counter[0], int(routing.CostVar().Value()), solver.WallTime()))
        # Guided search ends on our clock, not on OR-Tools' time limit: a search stopped by
        # that limit leaves it tripped, and reading routes back into the model then fails.
        if limits.clock() >= (guided_until if guided[0] else deadline):
            solver.FinishCurrentSearch()

    routing.AddAtSolutionCallback(report)
    params = search_parameters(
        SearchSettings(
            time_limit_s=limits.time_limit_s,
            first_solution=limits.first_solution,
            metaheuristic=limits.metaheuristic,
            max_solutions=limits.max_solutions,
        )
    )
    lighten(params)
    routing.CloseModelWithParameters(params)
    if start is not None and start.routes:
        # When OR-Tools cannot take the constructed plan as its start, a search from scratch
        # does worse than that plan in the same time: the caller goes on with its own search.
        initial = routing.ReadAssignmentFromRoutes(_routes_as_indices(model, start), True)
        if initial is None:
            return None
        solution = routing.SolveFromAssignmentWithParameters(initial, params)
    else:
        solution = routing.SolveWithParameters(params)
    if solution is None:
        return None
    guided[0] = False

    def read(found: Any) -> Plan:
        plan = read_plan(model, found)
        if on_progress is not None:
            on_progress(Progress(counter[0], plan.objective, solver.WallTime()))
        return plan

    best = iterate(
        model,
        solution,
        params,
        deadline=deadline,
        clock=limits.clock,
        seed=limits.seed,
        rounds=limits.max_rounds,
        read=read,
        descent_limit_s=lambda: deadline - limits.clock(),
    )
    plan: Plan = best.value
    return replace(plan, search=Search.COMPILED if plain(problem) else Search.ROUTING)


def _routes_as_indices(model: Model, plan: Plan) -> list[list[int]]:
    """A plan as routing indices, pickups and second persons included, for a warm start."""
    layout, manager = model.layout, model.manager
    by_vehicle = {r.technician_day: r for r in plan.routes}
    routes: list[list[int]] = []
    for vehicle in model.problem.technician_days:
        indices: list[int] = []
        route = by_vehicle.get(vehicle.id)
        for visit in route.visits if route else ():
            if visit.job_id is None or visit.job_id not in layout.job_node:
                continue
            node: int | None = None
            if visit.kind is VisitKind.PICKUP:
                node = next(
                    (
                        n
                        for n in layout.pickup_nodes.get(visit.job_id, [])
                        if (src := layout.source[n]) is not None and src.site == visit.site
                    ),
                    None,
                )
            elif visit.kind is VisitKind.JOB:
                node = (
                    layout.helper_node.get(visit.job_id)
                    if visit.second_person
                    else layout.job_node[visit.job_id]
                )
            if node is not None:
                indices.append(manager.NodeToIndex(node))
        routes.append(indices)
    return routes


def read_plan(model: Model, solution: Any) -> Plan:
    problem, layout, routing, manager, time = (
        model.problem,
        model.layout,
        model.routing,
        model.manager,
        model.time,
    )
    sequences: list[tuple[int, int, list[tuple[int, int]], int]] = []
    for v in range(len(problem.technician_days)):
        index = routing.Start(v)
        start_s = solution.Value(time.CumulVar(index))
        nodes: list[tuple[int, int]] = []
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            nodes.append((manager.IndexToNode(index), solution.Value(time.CumulVar(index))))
            index = solution.Value(routing.NextVar(index))
        sequences.append((v, start_s, nodes, solution.Value(time.CumulVar(index))))
    # A two-person job whose second person was not found is not planned (see routing).
    helpers_found = {
        problem.jobs[layout.job_index[node]].id
        for _, _, nodes, _ in sequences
        for node, _ in nodes
        if layout.role[node] == NodeRole.HELPER
    }
    short_handed = {job_id for job_id in layout.helper_node if job_id not in helpers_found}
    lunches = _lunch_starts(model, solution)
    routes = []
    for v, start_s, nodes, end_s in sequences:
        kept = [
            (n, t) for n, t in nodes if problem.jobs[layout.job_index[n]].id not in short_handed
        ]
        route = _route(model, v, start_s, kept, end_s, lunches.get(v))
        if route is not None:
            routes.append(route)
    planned = {
        visit.job_id for route in routes for visit in route.visits if visit.kind is VisitKind.JOB
    }
    missing = [j.id for j in problem.jobs if j.id not in planned]
    reasons = explain_unplanned(problem, missing)
    for job_id in short_handed:
        reasons[job_id] = Why.of(Reason.NO_SECOND_TECHNICIAN)
    return Plan(
        routes=tuple(routes),
        unplanned=tuple(Unplanned(job_id, reasons[job_id]) for job_id in missing),
        objective=int(solution.ObjectiveValue()),
    )


def _route(
    model: Model,
    v: int,
    start_s: int,
    nodes: list[tuple[int, int]],
    end_s: int,
    lunch: tuple[int, int] | None,
) -> Route | None:
    """Visits with arrival times recomputed from the travel matrix; lunch placed in its gap."""
    problem, layout = model.problem, model.layout
    vehicle = problem.technician_days[v]
    if not nodes:
        return None
    visits: list[Visit] = []
    travel = metres = 0
    previous_place, previous_end = vehicle.start_place, start_s
    for node, begin in nodes:
        place = layout.place[node]
        leg = int(problem.duration_s[previous_place, place])
        arrival = previous_end + leg
        if lunch is not None and previous_end <= lunch[0] < begin:
            visits.append(Visit(VisitKind.BREAK, lunch[0], lunch[0], lunch[1]))
            if lunch[0] < arrival:  # lunch interrupts the drive
                arrival += lunch[1] - lunch[0]
            lunch = None
        travel += leg
        metres += int(problem.distance_m[previous_place, place])
        job = problem.jobs[layout.job_index[node]]
        if layout.role[node] == NodeRole.PICKUP:
            source = layout.source[node]
            visits.append(
                Visit(
                    VisitKind.PICKUP,
                    arrival,
                    begin,
                    begin + layout.service_s[node],
                    job.id,
                    source.site if source else None,
                    place,
                )
            )
        else:
            visits.append(
                Visit(
                    VisitKind.JOB,
                    arrival,
                    begin,
                    begin + job.duration_s,
                    job.id,
                    None,
                    place,
                    layout.role[node] == NodeRole.HELPER,
                )
            )
        previous_place, previous_end = place, begin + layout.service_s[node]
    if lunch is not None:
        visits.append(Visit(VisitKind.BREAK, lunch[0], lunch[0], lunch[1]))
    travel += int(problem.duration_s[previous_place, vehicle.end_place])
    metres += int(problem.distance_m[previous_place, vehicle.end_place])
    return Route(vehicle.id, tuple(visits), start_s, end_s, travel, metres)


def _lunch_starts(model: Model, solution: Any) -> dict[int, tuple[int, int]]:
    if not model.breaks:
        return {}
    container = solution.IntervalVarContainer()
    found: dict[str, tuple[int, int]] = {}
    for i in range(container.Size()):
        element = container.Element(i)
        if element.PerformedValue():
            found[element.Var().Name()] = (element.StartValue(), element.EndValue())
    return {
        v: found[interval.Name()]
        for v, interval in model.breaks.items()
        if interval.Name() in found
    }


def job_ids(plan: Plan) -> Sequence[str]:
    return sorted(plan.job_visits())
