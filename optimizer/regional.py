"""OR-Tools' descent on the routes a round changed, in a model of those routes alone.

A round of ruin and recreate changes a few routes that lie close together, yet a descent on the
whole model scans every route: on Solomon's 100-customer instances it takes about 20 ms, nearly
all of a round. Where no rule ties one technician-day to another (no crews, dependencies or
multi-day jobs), every term of the objective belongs to one route, so the changed routes can be
polished in a model of their own (a few ms) and the plan's cost moves by exactly what theirs
did. The caller still runs the whole model now and then, for moves between regions and for
jobs left out, and reads every plan it keeps from the whole model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from optimizer.model import Problem
from optimizer.routing import Model, NodeRole, build, routes_of

Routes = list[list[int]]


def separable(problem: Problem) -> bool:
    """Whether each route's feasibility and cost depend on that route alone."""
    return not any(j.crew_size >= 2 or j.after or j.days > 1 for j in problem.jobs)


class RegionalDescent:
    """Descent in a model of some technician-days and the jobs on their routes."""

    def __init__(self, model: Model, params: Any, limit_s: Callable[[], float]) -> None:
        self._problem = model.problem
        self._params = params
        self._limit_s = limit_s
        layout = model.layout
        # A node as what it stands for: (job index, role, which pickup option), so it can be
        # found in the smaller model's layout and back.
        self._meaning = [
            (layout.job_index[node], role, _option(model, node))
            for node, role in enumerate(layout.role)
        ]
        self._node_of = {meaning: node for node, meaning in enumerate(self._meaning)}

    def __call__(
        self, before: Routes, after: Routes, vehicles: Sequence[int]
    ) -> tuple[int, dict[int, list[int]]] | None:
        """The cost change from `before` to `after` polished, and the polished routes of
        `vehicles` by vehicle; None when the smaller model refuses either plan."""
        if not vehicles:  # OR-Tools aborts the process on a model without vehicles
            return None
        problem = self._problem
        job_indices = sorted(
            {self._meaning[n][0] for v in vehicles for n in (*before[v], *after[v])}
        )
        part = replace(
            problem,
            jobs=[problem.jobs[i] for i in job_indices],
            technician_days=[problem.technician_days[v] for v in vehicles],
        )
        model = build(part)
        routing = model.routing
        routing.CloseModelWithParameters(self._params)
        local_of = {i: k for k, i in enumerate(job_indices)}
        old = routing.ReadAssignmentFromRoutes(
            self._indices(model, [before[v] for v in vehicles], local_of), True
        )
        if old is None:
            return None
        old_cost = int(old.ObjectiveValue())
        start = routing.ReadAssignmentFromRoutes(
            self._indices(model, [after[v] for v in vehicles], local_of), True
        )
        if start is None:
            return None
        self._params.time_limit.FromMilliseconds(max(1, int(self._limit_s() * 1000)))
        solution = routing.SolveFromAssignmentWithParameters(start, self._params)
        if solution is None:
            return None
        layout = model.layout
        polished = [
            [
                self._node_of[
                    (
                        job_indices[layout.job_index[local]],
                        layout.role[local],
                        _option(model, local),
                    )
                ]
                for local in nodes
            ]
            for nodes in routes_of(model, solution)
        ]
        return int(solution.ObjectiveValue()) - old_cost, dict(zip(vehicles, polished, strict=True))

    def _indices(
        self, model: Model, routes: Sequence[Sequence[int]], local_of: dict[int, int]
    ) -> list[list[int]]:
        layout, manager, jobs = model.layout, model.manager, model.problem.jobs
        indices: list[list[int]] = []
        for nodes in routes:
            found: list[int] = []
            for node in nodes:
                job_index, role, option = self._meaning[node]
                job_id = jobs[local_of[job_index]].id
                local = (
                    layout.pickup_nodes[job_id][option]
                    if role == NodeRole.PICKUP
                    else layout.job_node[job_id]
                )
                found.append(manager.NodeToIndex(local))
            indices.append(found)
        return indices


def _option(model: Model, node: int) -> int:
    layout = model.layout
    if layout.role[node] != NodeRole.PICKUP:
        return 0
    job_id = model.problem.jobs[layout.job_index[node]].id
    return layout.pickup_nodes[job_id].index(node)
