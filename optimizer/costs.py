"""The objective of a plan, computed from the plan itself.

Both the construction and the OR-Tools search optimise these same terms (see `Weights`); this
function scores any plan the same way, so the best of several candidates can be chosen fairly.
"""

from __future__ import annotations

from optimizer.model import Plan, Problem, VisitKind


def plan_cost(problem: Problem, plan: Plan) -> int:
    weights = problem.weights
    vehicles = {v.id: v for v in problem.technician_days}
    jobs = {j.id: j for j in problem.jobs}
    cost = 0
    for route in plan.routes:
        vehicle = vehicles[route.technician_day]
        cost += route.travel_s * weights.travel_per_s + route.distance_m * weights.per_km // 1000
        cost += max(0, route.end_s - vehicle.shift.end_s) * weights.overtime_per_min // 60
        cost += weights.technician_day_fixed
        for visit in route.visits:
            if visit.kind is not VisitKind.JOB or visit.second_person or visit.job_id is None:
                continue
            job = jobs[visit.job_id]
            if job.preferred is not None:
                outside = max(
                    0, job.preferred.start_s - visit.start_s, visit.start_s - job.preferred.end_s
                )
                cost += outside * weights.outside_preferred_per_min // 60
            if job.previous_technician_day not in (None, route.technician_day):
                cost += weights.moved_from_previous
    for unplanned in plan.unplanned:
        cost += weights.unplanned_penalty(jobs[unplanned.job_id])
    return cost
