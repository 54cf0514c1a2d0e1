"""The one module that speaks to OR-Tools: builds a routing model from a `Problem`.

Every field-service rule is one function below, named for the rule, that adds its variables and
constraints to the model; `optimizer.check` holds the independent twin of each. Callbacks read
precomputed matrices and vectors registered once, so no Python runs per arc during search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from optimizer.model import DAY_S, Job, PickupSource, Problem, TimeWindow

BIG = 10**9


class NodeRole:
    DEPOT = "depot"
    JOB = "job"
    HELPER = "helper"  # the second person of a two-person job
    PICKUP = "pickup"


@dataclass
class Layout:
    """Which routing node is what: depots first, then jobs, helpers and pickup options."""

    place: list[int] = field(default_factory=list)
    service_s: list[int] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    job_index: list[int] = field(default_factory=list)  # index into problem.jobs, -1 for depots
    source: list[PickupSource | None] = field(default_factory=list)
    depot_of_place: dict[int, int] = field(default_factory=dict)
    job_node: dict[str, int] = field(default_factory=dict)
    helper_node: dict[str, int] = field(default_factory=dict)
    pickup_nodes: dict[str, list[int]] = field(default_factory=dict)

    def add(
        self,
        place: int,
        service_s: int,
        role: str,
        job_index: int = -1,
        source: PickupSource | None = None,
    ) -> int:
        self.place.append(place)
        self.service_s.append(service_s)
        self.role.append(role)
        self.job_index.append(job_index)
        self.source.append(source)
        return len(self.place) - 1


def lay_out(problem: Problem) -> Layout:
    layout = Layout()
    for vehicle in problem.technician_days:
        for place in (vehicle.start_place, vehicle.end_place):
            if place not in layout.depot_of_place:
                layout.depot_of_place[place] = layout.add(place, 0, NodeRole.DEPOT)
    for i, job in enumerate(problem.jobs):
        layout.job_node[job.id] = layout.add(job.place, job.duration_s, NodeRole.JOB, i)
        if job.crew_size >= 2:
            layout.helper_node[job.id] = layout.add(job.place, job.duration_s, NodeRole.HELPER, i)
        if job.needs_pickup:
            layout.pickup_nodes[job.id] = [
                layout.add(src.place, src.service_s, NodeRole.PICKUP, i, src)
                for src in job.pickup_sources
            ]
    return layout


@dataclass
class Model:
    """A built routing model and the handles needed to read a solution back."""

    problem: Problem
    layout: Layout
    manager: Any
    routing: Any
    time: Any
    breaks: dict[int, Any]  # vehicle -> lunch interval


def build(problem: Problem) -> Model:
    layout = lay_out(problem)
    vehicles = problem.technician_days
    starts = [layout.depot_of_place[v.start_place] for v in vehicles]
    ends = [layout.depot_of_place[v.end_place] for v in vehicles]
    manager = pywrapcp.RoutingIndexManager(len(layout.place), len(vehicles), starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    places = np.asarray(layout.place, dtype=np.int64)
    travel = problem.duration_s[np.ix_(places, places)]
    distance = problem.distance_m[np.ix_(places, places)]

    minimise_travel_and_distance(problem, routing, travel, distance)
    time = add_time(problem, layout, routing, travel)
    model = Model(problem, layout, manager, routing, time, {})
    apply_shifts_and_overtime(model)
    apply_job_windows(model)
    apply_preferred_windows(model)
    apply_skills_and_pins(model)
    apply_van_capacity(model)
    apply_part_pickups(model)
    apply_two_person_jobs(model)
    apply_dependencies(model)
    apply_capacity_reserve(model)
    apply_stability(model)
    apply_optional_jobs(model)
    apply_lunch_breaks(model)
    for v in range(len(vehicles)):
        routing.SetFixedCostOfVehicle(problem.weights.technician_day_fixed, v)
        routing.AddVariableMaximizedByFinalizer(time.CumulVar(routing.Start(v)))
        routing.AddVariableMinimizedByFinalizer(time.CumulVar(routing.End(v)))
    return model


def minimise_travel_and_distance(
    problem: Problem, routing: Any, travel: npt.NDArray[np.int64], distance: npt.NDArray[np.int64]
) -> None:
    """Objective: every second driven, plus `per_km` per kilometre."""
    callback = routing.RegisterTransitMatrix(arc_cost(problem, travel, distance).tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(callback)


def arc_cost(
    problem: Problem, travel: npt.NDArray[np.int64], distance: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    cost: npt.NDArray[np.int64] = (
        travel * problem.weights.travel_per_s + distance * problem.weights.per_km // 1000
    )
    return cost


def add_time(problem: Problem, layout: Layout, routing: Any, travel: npt.NDArray[np.int64]) -> Any:
    service = np.asarray(layout.service_s, dtype=np.int64)
    transit = travel + service[:, None]
    callback = routing.RegisterTransitMatrix(transit.tolist())
    horizon = problem.horizon_days * DAY_S
    routing.AddDimension(callback, horizon, horizon, False, "time")
    dimension = routing.GetDimensionOrDie("time")
    return dimension


def apply_shifts_and_overtime(model: Model) -> None:
    """A technician-day starts within its shift and ends by the shift end; overtime up to the
    technician's limit is allowed at `overtime_per_min`."""
    routing, time = model.routing, model.time
    per_s = max(1, model.problem.weights.overtime_per_min // 60)
    for v, vehicle in enumerate(model.problem.technician_days):
        time.CumulVar(routing.Start(v)).SetRange(vehicle.shift.start_s, vehicle.shift.end_s)
        end = time.CumulVar(routing.End(v))
        end.SetRange(vehicle.shift.start_s, vehicle.shift.end_s + vehicle.max_overtime_s)
        if vehicle.max_overtime_s:
            time.SetCumulVarSoftUpperBound(routing.End(v), vehicle.shift.end_s, per_s)


def _restrict_to_windows(var: Any, windows: tuple[TimeWindow, ...]) -> None:
    ordered = sorted(windows, key=lambda w: w.start_s)
    var.SetRange(ordered[0].start_s, max(w.end_s for w in ordered))
    reach = ordered[0].end_s
    for window in ordered[1:]:
        if window.start_s > reach + 1:
            var.RemoveInterval(reach + 1, window.start_s - 1)
        reach = max(reach, window.end_s)


def apply_job_windows(model: Model) -> None:
    """Hard windows: a promised appointment or the customer's availability (several allowed).

    A job may also not start on a day none of its candidate technician-days works."""
    layout, _routing, time = model.layout, model.routing, model.time
    for job in model.problem.jobs:
        if not job.windows:
            continue
        for node in (layout.job_node[job.id], layout.helper_node.get(job.id)):
            if node is not None:
                _restrict_to_windows(time.CumulVar(model.manager.NodeToIndex(node)), job.windows)


def apply_preferred_windows(model: Model) -> None:
    """Soft window: each minute before or after the preferred window costs."""
    per_s = max(1, model.problem.weights.outside_preferred_per_min // 60)
    for job in model.problem.jobs:
        if job.preferred is None:
            continue
        index = model.manager.NodeToIndex(model.layout.job_node[job.id])
        model.time.SetCumulVarSoftLowerBound(index, job.preferred.start_s, per_s)
        model.time.SetCumulVarSoftUpperBound(index, job.preferred.end_s, per_s)


def eligible_vehicles(problem: Problem, job: Job, *, pinned: bool = True) -> list[int]:
    """Technician-days with all the job's skills, whose shift can host one of its windows;
    with `pinned`, only the one a pin names."""
    found = []
    for v, vehicle in enumerate(problem.technician_days):
        if not job.skills <= vehicle.skills:
            continue
        if pinned and job.pin is not None and job.pin.technician_day != vehicle.id:
            continue
        latest_start = vehicle.shift.end_s + vehicle.max_overtime_s - job.duration_s
        if latest_start < vehicle.shift.start_s:
            continue
        reach = TimeWindow(vehicle.shift.start_s, latest_start)
        if job.windows and not any(w.overlaps(reach) for w in job.windows):
            continue
        found.append(v)
    return found


def apply_skills_and_pins(model: Model) -> None:
    """A job goes only to a technician with all its skills; a pin fixes the technician-day of
    the job (its second person works elsewhere) and, when given, the start time and the
    position in the route."""
    problem, layout, routing, manager = model.problem, model.layout, model.routing, model.manager
    for job in problem.jobs:
        # Multi-day jobs are placed by the construction and ruin-and-recreate searches only.
        allowed = eligible_vehicles(problem, job) if job.days == 1 else []
        for node in [layout.job_node[job.id], *layout.pickup_nodes.get(job.id, [])]:
            routing.VehicleVar(manager.NodeToIndex(node)).SetValues([-1, *allowed])
        if job.id in layout.helper_node:
            helped = eligible_vehicles(problem, job, pinned=False) if job.days == 1 else []
            helper = manager.NodeToIndex(layout.helper_node[job.id])
            routing.VehicleVar(helper).SetValues([-1, *helped])
        if job.pin is not None and job.pin.start_s is not None:
            index = manager.NodeToIndex(layout.job_node[job.id])
            model.time.CumulVar(index).SetRange(job.pin.start_s, job.pin.start_s)
    apply_pinned_positions(model)


def apply_pinned_positions(model: Model) -> None:
    """A dimension counting the jobs before each node (a second person's visit is a job of its
    route, a pickup is not), fixed at a pinned job to its position."""
    problem, layout, routing = model.problem, model.layout, model.routing
    pinned = {j.id: j.pinned_position for j in problem.jobs if j.pinned_position is not None}
    if not pinned:
        return
    counts = [1 if role in (NodeRole.JOB, NodeRole.HELPER) else 0 for role in layout.role]
    callback = routing.RegisterUnaryTransitVector(counts)
    routing.AddDimension(callback, 0, len(counts), True, "position")
    position = routing.GetDimensionOrDie("position")
    for job_id, wanted in pinned.items():
        position.CumulVar(model.manager.NodeToIndex(layout.job_node[job_id])).SetValue(wanted)


def apply_van_capacity(model: Model) -> None:
    """Goods leave with the van in the morning, missing parts board at the pickup; the load
    never exceeds the van's volume or weight."""
    layout = model.layout
    jobs = model.problem.jobs
    if not any(j.volume_l or j.part_volume_l or j.weight_kg or j.part_weight_kg for j in jobs):
        return
    for name, goods, parts, capacity in (
        ("volume", "volume_l", "part_volume_l", "volume_capacity_l"),
        ("weight", "weight_kg", "part_weight_kg", "weight_capacity_kg"),
    ):
        demand = []
        for node, role in enumerate(layout.role):
            job = jobs[layout.job_index[node]] if layout.job_index[node] >= 0 else None
            if job is None or role == NodeRole.HELPER:
                demand.append(0)
            elif role == NodeRole.PICKUP:
                demand.append(getattr(job, parts))
            else:
                demand.append(-getattr(job, goods) - getattr(job, parts))
        callback = model.routing.RegisterUnaryTransitVector(demand)
        capacities = [min(getattr(v, capacity), BIG) for v in model.problem.technician_days]
        model.routing.AddDimensionWithVehicleCapacity(callback, 0, capacities, False, name)
        dimension = model.routing.GetDimensionOrDie(name)
        for v in range(len(capacities)):
            dimension.CumulVar(model.routing.Start(v)).SetRange(0, capacities[v])


def apply_part_pickups(model: Model) -> None:
    """A job with a missing part needs exactly one pickup, at one of the sites that has the part
    on that day, during its opening hours, earlier on the same technician-day."""
    layout, routing, manager, time = model.layout, model.routing, model.manager, model.time
    solver = routing.solver()
    for job in model.problem.jobs:
        nodes = layout.pickup_nodes.get(job.id)
        if nodes is None:
            continue
        if not nodes:
            # No site can supply the part: the job stays unplanned and explain.py says why.
            routing.VehicleVar(manager.NodeToIndex(layout.job_node[job.id])).SetValues([-1])
            continue
        indices = [manager.NodeToIndex(n) for n in nodes]
        for node, index in zip(nodes, indices, strict=True):
            source = layout.source[node]
            assert source is not None
            if source.open_windows:
                closing = tuple(
                    TimeWindow(w.start_s, w.end_s - source.service_s)
                    for w in source.open_windows
                    if w.end_s - source.service_s >= w.start_s
                )
                if closing:
                    _restrict_to_windows(time.CumulVar(index), closing)
                else:
                    routing.VehicleVar(index).SetValues([-1])
            else:
                routing.VehicleVar(index).SetValues([-1])
        pickup_set = routing.AddDisjunction(indices, 0, 1)
        job_index = manager.NodeToIndex(layout.job_node[job.id])
        penalty = model.problem.weights.unplanned_penalty(job)
        delivery_set = routing.AddDisjunction([job_index], penalty)
        routing.AddPickupAndDeliverySets(pickup_set, delivery_set)
        solver.Add(
            solver.Sum([routing.ActiveVar(i) for i in indices]) == routing.ActiveVar(job_index)
        )


def apply_two_person_jobs(model: Model) -> None:
    """Two technicians start a two-person job together, on two different routes.

    The second person is a node of its own that may only be active with the first, at the same
    start time on another route. Forcing both active together defeats OR-Tools' one-node-at-a-
    time insertion, so instead the second person's absence costs as much as the job itself and
    `read_plan` unplans a job whose second person was not found.
    """
    layout, routing, manager, time = model.layout, model.routing, model.manager, model.time
    solver = routing.solver()
    for job_id, helper in layout.helper_node.items():
        lead = manager.NodeToIndex(layout.job_node[job_id])
        second = manager.NodeToIndex(helper)
        with_second = routing.ActiveVar(second)
        solver.Add(with_second <= routing.ActiveVar(lead))
        solver.Add(time.CumulVar(second) * with_second == time.CumulVar(lead) * with_second)
        apart = routing.VehicleVar(lead) - routing.VehicleVar(second)
        solver.Add(apart * apart >= with_second)


def apply_dependencies(model: Model) -> None:
    """Delivery after measuring plus its lead time, installation after delivery: the dependent
    job's day is at least `lag_days` after the prerequisite's, and it starts only once the
    prerequisite has ended; without its prerequisite it is not planned at all.

    The constraints hold for inactive nodes too; that is harmless because an inactive node's
    time is free inside its own windows, and a pair whose windows could never satisfy them is
    decided up front: the dependent job is then kept out of the plan.
    """
    problem, layout, routing, manager, time = (
        model.problem,
        model.layout,
        model.routing,
        model.manager,
        model.time,
    )
    solver = routing.solver()
    for job in problem.jobs:
        for dependency in job.after:
            if dependency.job_id not in layout.job_node:
                continue
            before = problem.job(dependency.job_id)
            first = manager.NodeToIndex(layout.job_node[before.id])
            then = manager.NodeToIndex(layout.job_node[job.id])
            if not _can_follow(before, job, dependency.lag_days):
                routing.VehicleVar(then).SetValues([-1])
                continue
            solver.Add(routing.ActiveVar(then) <= routing.ActiveVar(first))
            solver.Add(time.CumulVar(then) >= time.CumulVar(first) + before.duration_s)
            if dependency.lag_days:
                solver.Add(
                    time.CumulVar(then) // DAY_S
                    >= time.CumulVar(first) // DAY_S + dependency.lag_days
                )


def _can_follow(before: Job, job: Job, lag_days: int) -> bool:
    earliest = min((w.start_s for w in before.windows), default=0) + before.duration_s
    latest = max((w.end_s for w in job.windows), default=BIG)
    earliest_day = min((w.start_s for w in before.windows), default=0) // DAY_S
    return latest >= earliest and latest // DAY_S >= earliest_day + lag_days


def apply_capacity_reserve(model: Model) -> None:
    """Keep a share of each technician-day free for urgent repairs."""
    problem, layout = model.problem, model.layout
    if all(v.max_planned_share >= 1.0 for v in problem.technician_days):
        return
    load = [
        layout.service_s[node]
        if role == NodeRole.JOB and not problem.jobs[layout.job_index[node]].is_repair
        else 0
        for node, role in enumerate(layout.role)
    ]
    callback = model.routing.RegisterUnaryTransitVector(load)
    capacities = [
        int((v.shift.end_s - v.shift.start_s) * min(1.0, v.max_planned_share))
        for v in problem.technician_days
    ]
    model.routing.AddDimensionWithVehicleCapacity(callback, 0, capacities, True, "reserve")


def apply_stability(model: Model) -> None:
    """Re-optimising moves an already communicated job to another technician-day only when
    that saves more than `moved_from_previous`."""
    problem, layout, routing = model.problem, model.layout, model.routing
    if not any(j.previous_technician_day for j in problem.jobs):
        return
    vehicle_of = {v.id: i for i, v in enumerate(problem.technician_days)}
    callbacks = []
    for v in range(len(problem.technician_days)):
        moved = []
        for node, role in enumerate(layout.role):
            job = problem.jobs[layout.job_index[node]] if role == NodeRole.JOB else None
            previous = job.previous_technician_day if job else None
            moved.append(1 if previous is not None and vehicle_of.get(previous) != v else 0)
        callbacks.append(routing.RegisterUnaryTransitVector(moved))
    routing.AddDimensionWithVehicleTransits(callbacks, 0, len(layout.role), True, "moved")
    routing.GetDimensionOrDie("moved").SetSpanCostCoefficientForAllVehicles(
        problem.weights.moved_from_previous
    )


def apply_optional_jobs(model: Model) -> None:
    """Every job may stay unplanned at a penalty that grows with priority and waiting time."""
    layout, routing, manager = model.layout, model.routing, model.manager
    for job in model.problem.jobs:
        if layout.pickup_nodes.get(job.id):
            continue  # its disjunction is part of the pickup-and-delivery set
        index = manager.NodeToIndex(layout.job_node[job.id])
        routing.AddDisjunction([index], model.problem.weights.unplanned_penalty(job))
    for job_id, helper in layout.helper_node.items():
        penalty = model.problem.weights.unplanned_penalty(model.problem.job(job_id))
        routing.AddDisjunction([manager.NodeToIndex(helper)], penalty)


def apply_lunch_breaks(model: Model) -> None:
    """A lunch break inside its window, during the working day, never during a visit or a
    drive (it may take the place of waiting time)."""
    routing, time = model.routing, model.time
    solver = routing.solver()
    visit_s = [model.layout.service_s[model.manager.IndexToNode(i)] for i in range(routing.Size())]
    for v, vehicle in enumerate(model.problem.technician_days):
        lunch = vehicle.lunch
        if lunch is None:
            continue
        interval = solver.FixedDurationIntervalVar(
            lunch.earliest_start_s, lunch.latest_start_s, lunch.duration_s, False, f"lunch {v}"
        )
        time.SetBreakIntervalsOfVehicle([interval], v, visit_s)
        solver.Add(interval.StartExpr() >= time.CumulVar(routing.Start(v)))
        solver.Add(interval.EndExpr() <= time.CumulVar(routing.End(v)))
        model.breaks[v] = interval


@dataclass(frozen=True)
class SearchSettings:
    time_limit_s: float
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    max_solutions: int | None = None
    log: bool = False


def routes_of(model: Model, solution: Any) -> list[list[int]]:
    """Routing nodes per vehicle, depots excluded."""
    routing, manager = model.routing, model.manager
    routes: list[list[int]] = []
    for v in range(routing.vehicles()):
        nodes: list[int] = []
        index = solution.Value(routing.NextVar(routing.Start(v)))
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append(nodes)
    return routes


def search_parameters(settings: SearchSettings) -> Any:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, settings.first_solution
    )
    params.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, settings.metaheuristic
    )
    params.time_limit.FromMilliseconds(max(1, int(settings.time_limit_s * 1000)))
    if settings.max_solutions is not None:
        params.solution_limit = settings.max_solutions
    params.log_search = settings.log
    return params
