"""Saving what the engine planned: a new version of each day of the horizon, through the gate.

An optimisation reads the region, solves, and then saves only if nothing changed the region
meanwhile (its revision); the saved days then pass `plan_gate.verify` like every other write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import optimizer
from fieldplan import plan_gate
from fieldplan.appointments import flag_at_risk, live_appointment
from fieldplan.booking import release_dependants
from fieldplan.jobs import JobStatus, change_status
from fieldplan.planning import Translation, build_problem, fill_route, horizon_for
from fieldplan.plans import Plan, Route, UnassignedJob, next_version
from fieldplan.regions import Region, lock_region
from fieldplan.travel import TravelTimes
from optimizer.reasons import Why


@dataclass
class SavedPlans:
    plans: list[Plan]
    engine_plan: optimizer.Plan
    unplanned: dict[int, Why]


def save_plan(
    session: Session,
    region: Region,
    translation: Translation,
    engine_plan: optimizer.Plan,
    *,
    planner: str,
    actor: str,
    today: date,
) -> SavedPlans:
    """Store the engine's plan as a new version of each day's plan; move job statuses."""
    horizon = translation.horizon
    by_day: dict[int, list[optimizer.Route]] = {}
    for route in engine_plan.routes:
        vehicle = translation.problem.technician_day(route.technician_day)
        by_day.setdefault(vehicle.day, []).append(route)
    kpis = engine_plan.kpis(translation.problem)
    plans = []
    for d, day in enumerate(horizon.days):
        plan = Plan(
            region_id=region.id,
            day=day,
            version=next_version(session, region.id, day),
            planner=planner,
            kpis={},
        )
        session.add(plan)
        travel_s = 0
        for engine_route in by_day.get(d, []):
            technician = translation.vehicle_technician[engine_route.technician_day]
            route_row = Route(technician_id=technician.id)
            fill_route(route_row, translation, engine_route)
            travel_s += engine_route.travel_s
            plan.routes.append(route_row)
        plan.kpis = {
            "technician_days_used": len(by_day.get(d, [])),
            "travel_h": round(travel_s / 3600, 2),
            "jobs_planned": sum(
                1
                for r in by_day.get(d, [])
                for v in r.visits
                if v.kind is optimizer.VisitKind.JOB and not v.second_person
            ),
        }
        plans.append(plan)
    unplanned = {int(u.job_id): u.reason for u in engine_plan.unplanned}
    for job_id, reason in unplanned.items():
        if job_id in translation.promised:
            appointment = live_appointment(session, job_id)
            if appointment is not None:
                flag_at_risk(session, appointment, actor=actor, reason=str(reason))
    unplanned.update(
        (job_id, reason)
        for job_id, reason in translation.left_out.items()
        if job_id not in translation.planned_elsewhere
    )
    if plans:
        plans[0].kpis = {**plans[0].kpis, "horizon": kpis}
        for job_id, reason in sorted(unplanned.items()):
            plans[0].unassigned.append(
                UnassignedJob(job_id=job_id, reason=str(reason), reason_code=reason.reason.value)
            )
    session.flush()
    planned_now = set(engine_plan.job_visits())
    for engine_id, job in translation.jobs.items():
        if job.id in translation.held:
            continue  # its status is what the day made of it
        if engine_id not in planned_now and job.status == JobStatus.PLANNED:
            # It was in this horizon's previous version and is not any more.
            back = JobStatus.BOOKED if job.id in translation.promised else JobStatus.NEW
            change_status(
                session, job, back, actor=actor, reason=f"not in the new plan by {planner}"
            )
    for engine_job_id in planned_now:
        job = translation.jobs[engine_job_id]
        if job.id not in translation.held and job.status != JobStatus.PLANNED:
            change_status(
                session, job, JobStatus.PLANNED, actor=actor, reason=f"planned by {planner}"
            )
    # What the new plan leaves out no longer holds up what waits for it outside the horizon.
    left = {job.id for engine_id, job in translation.jobs.items() if engine_id not in planned_now}
    release_dependants(session, region, left, today=today, actor=actor)
    plan_gate.judge_with(session, translation=translation)
    plan_gate.verify(session)
    return SavedPlans(plans, engine_plan, unplanned)


def plan_region(
    session: Session,
    region: Region,
    first_day: date,
    working_days: int,
    travel: TravelTimes,
    limits: optimizer.Limits,
    *,
    actor: str = "planner:engine",
    on_progress: Callable[[optimizer.Progress], None] | None = None,
    today: date,
    solve_outside_transaction: bool = False,
    before_save: Callable[[], None] | None = None,
) -> SavedPlans:
    """Plan the region's days and save them, unless the region changed while it was solved
    (`PlanOutdated`). With `solve_outside_transaction` (for a caller that wrote nothing in
    the session yet) the reading transaction ends before the search, which then holds no
    database resource, and the save runs in a transaction of its own; `before_save` runs
    just before it (a cancelled run refuses there)."""
    horizon = horizon_for(region, first_day, working_days)
    started_at = session.scalar(select(Region.revision).where(Region.id == region.id))
    translation = build_problem(session, region, horizon, travel, today=today)
    plan_gate.judge_with(session, today=today, travel=travel)
    if solve_outside_transaction:
        session.rollback()  # only read so far; what the save needs is read again after
    engine_plan = optimizer.solve(translation.problem, limits, on_progress=on_progress)
    if before_save is not None:
        before_save()
    try:
        revision = lock_region(session, region.id)
    except OperationalError as locked:  # SQLite: another writer committed while we read
        raise PlanOutdated(
            "bookings or planners changed the plan while it was optimised: run it again"
        ) from locked
    if revision != (started_at or 0) + 1:
        raise PlanOutdated(
            "bookings or planners changed the plan while it was optimised: run it again"
        )
    return save_plan(
        session,
        region,
        translation,
        engine_plan,
        planner=engine_plan.search.value,
        actor=actor,
        today=today,
    )


class PlanOutdated(RuntimeError):
    """The region changed during a long optimisation; saving would overwrite those changes."""
