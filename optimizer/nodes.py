"""What the search's own arithmetic knows of a routing model's nodes, read once per search.

The insertion (`optimizer.iterated.BestInsertion`) and the descent (`optimizer.descent`) both
judge routes with plain numpy arithmetic instead of asking OR-Tools; this is the one place
that arithmetic's numbers come from, so the two cannot read the model differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optimizer.routing import Model, NodeRole, arc_cost


@dataclass(frozen=True)
class NodeData:
    """Per routing node and per vehicle, in the model's units (seconds, cost units, litres and
    kilograms). Time-window bounds are the model's: the hull of a node's windows."""

    travel: npt.NDArray[np.int64]  # node x node
    cost: npt.NDArray[np.int64]  # node x node, the model's arc cost
    service: npt.NDArray[np.int64]
    ready: npt.NDArray[np.int64]  # earliest start (depots: 0)
    due: npt.NDArray[np.int64]  # latest start
    starts: list[int]  # per vehicle, its start and end depot node
    ends: list[int]
    shift: list[tuple[int, int]]  # per vehicle, earliest start and latest end
    capacity: npt.NDArray[np.int64]  # 2 x vehicles: volume and weight
    # The van's loads as the model's capacity dimensions count them: what a job's own goods
    # (and parts that need no pickup) put in the van at the start, and what each stop adds (a
    # pickup) or takes out (the job).
    boarded: npt.NDArray[np.int64]  # 2 x nodes
    change: npt.NDArray[np.int64]  # 2 x nodes
    # Jobs the search's own insertion places: their job node, and their pickup options.
    options: dict[int, list[int]]
    allowed: dict[int, npt.NDArray[np.bool_]]  # node -> per vehicle, may it serve the node
    # Per vehicle: what makes two empty technician-days the same candidate (ends, shift, van,
    # and the jobs it may serve: skills and pins differ between days alike otherwise).
    alike: list[tuple[int, ...]]
    fixed: int  # the cost of a technician-day used
    penalty: npt.NDArray[np.int64]  # per node: what leaving its job unplanned costs
    # 3 x vehicles: the lunch break's earliest and latest start and its duration (-1: none).
    lunch: npt.NDArray[np.int64]

    @staticmethod
    def of(model: Model) -> NodeData:
        problem, layout, routing = model.problem, model.layout, model.routing
        manager, time = model.manager, model.time
        places = np.asarray(layout.place, dtype=np.int64)
        travel = problem.duration_s[np.ix_(places, places)]
        size = len(layout.place)
        ready = np.zeros(size, dtype=np.int64)
        due = np.zeros(size, dtype=np.int64)
        for node in range(size):
            if layout.role[node] != NodeRole.DEPOT:
                var = time.CumulVar(manager.NodeToIndex(node))
                ready[node], due[node] = var.Min(), var.Max()
        vehicles = problem.technician_days
        starts = [manager.IndexToNode(routing.Start(v)) for v in range(len(vehicles))]
        ends = [manager.IndexToNode(routing.End(v)) for v in range(len(vehicles))]
        shift = [
            (time.CumulVar(routing.Start(v)).Min(), time.CumulVar(routing.End(v)).Max())
            for v in range(len(vehicles))
        ]
        jobs = problem.jobs
        boarded = np.zeros((2, size), dtype=np.int64)
        change = np.zeros((2, size), dtype=np.int64)
        penalty = np.zeros(size, dtype=np.int64)
        options: dict[int, list[int]] = {}
        for node, role in enumerate(layout.role):
            if role == NodeRole.DEPOT or role == NodeRole.HELPER:
                continue
            job = jobs[layout.job_index[node]]
            goods = np.array([job.volume_l, job.weight_kg])
            parts = np.array([job.part_volume_l, job.part_weight_kg])
            if role == NodeRole.PICKUP:
                change[:, node] = parts
                continue
            penalty[node] = problem.weights.unplanned_penalty(job)
            change[:, node] = -goods - parts
            boarded[:, node] = goods if job.needs_pickup else goods + parts
            if job.crew_size < 2:
                options[node] = list(layout.pickup_nodes.get(job.id, []))
        capacity = np.array(
            [[v.volume_capacity_l for v in vehicles], [v.weight_capacity_kg for v in vehicles]],
            dtype=np.int64,
        )
        lunch = np.array(
            [
                [v.lunch.earliest_start_s if v.lunch else 0 for v in vehicles],
                [v.lunch.latest_start_s if v.lunch else 0 for v in vehicles],
                [v.lunch.duration_s if v.lunch else -1 for v in vehicles],
            ],
            dtype=np.int64,
        ).reshape(3, len(vehicles))
        vehicle_ids = range(len(vehicles))
        allowed = {
            node: np.array(
                [routing.VehicleVar(manager.NodeToIndex(node)).Contains(v) for v in vehicle_ids],
                dtype=np.bool_,
            )
            for job_node, pickups in options.items()
            for node in (job_node, *pickups)
        }
        return NodeData(
            travel=travel,
            cost=arc_cost(problem, travel, problem.distance_m[np.ix_(places, places)]),
            service=np.asarray(layout.service_s, dtype=np.int64),
            ready=ready,
            due=due,
            starts=starts,
            ends=ends,
            shift=shift,
            capacity=capacity,
            boarded=boarded,
            change=change,
            options=options,
            allowed=allowed,
            alike=[
                (
                    starts[v],
                    ends[v],
                    *shift[v],
                    *capacity[:, v],
                    *lunch[:, v],
                    hash(tuple(node for node, ok in allowed.items() if ok[v])),
                )
                for v in range(len(vehicles))
            ],
            fixed=problem.weights.technician_day_fixed,
            penalty=penalty,
            lunch=lunch,
        )
