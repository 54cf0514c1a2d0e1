"""What planners do to a plan by hand: pin, move and unassign jobs.

Each change is re-checked by the engine's validator on the day it lands in before anything is
written, and a change that would break a promise to a customer is refused with the reason,
unless the planner says they renegotiated it: then the appointment moves with the job (and the
customer gets an updated invite from the caller).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from fieldplan import plan_gate
from fieldplan.appointments import (
    Appointment,
    AppointmentError,
    flag_at_risk,
    live_appointment,
    reschedule,
)
from fieldplan.booking import BookingRules, drop_from_plans, release_dependants, write_routes
from fieldplan.jobs import Job, JobStatus, change_status
from fieldplan.planning import Translation, build_problem, horizon_for, stored_plan
from fieldplan.regions import Region, lock_region
from fieldplan.technicians import Technician
from fieldplan.travel import TravelTimes
from optimizer.check import check
from optimizer.construct import Stop, simulate
from optimizer.model import TimeWindow, VisitKind
from optimizer.slots import SlotIndex, without_job


class ChangeRefused(AppointmentError):
    """A planner's change the rules do not allow; the message says which rule."""


@dataclass(frozen=True)
class Moved:
    job: Job
    appointment: Appointment | None  # the promise, moved with the job when renegotiated
    renegotiated: bool


def pin(
    session: Session,
    job: Job,
    technician: Technician,
    day: date,
    start: time | None,
    *,
    actor: str,
    position: int | None = None,
) -> None:
    if technician.region_id != job.region_id:
        raise ChangeRefused("the technician works in another region")
    if not set(job.skills) <= set(technician.skills):
        missing = ", ".join(sorted(set(job.skills) - set(technician.skills)))
        raise ChangeRefused(f"{technician.code} lacks the skill(s) {missing}")
    if technician.shift_on(day) is None:
        raise ChangeRefused(f"{technician.code} does not work on {day}")
    lock_region(session, job.region_id)
    job.pinned_technician_id, job.pinned_day, job.pinned_start = technician.id, day, start
    job.pinned_position = position
    session.flush()


def unpin(session: Session, job: Job) -> None:
    lock_region(session, job.region_id)
    job.pinned_technician_id = job.pinned_day = job.pinned_start = job.pinned_position = None
    session.flush()


def move(
    session: Session,
    job: Job,
    technician: Technician,
    day: date,
    position: int | None,
    *,
    travel: TravelTimes,
    rules: BookingRules,
    today: date,
    actor: str,
    renegotiate: bool,
) -> Moved:
    """Put the job on the technician's route of `day`, at `position` (None: where it costs the
    least), keeping every rule; the stops after it shift in time."""
    if technician.region_id != job.region_id:
        raise ChangeRefused("the technician works in another region")
    if job.status not in (JobStatus.NEW, JobStatus.OFFERED, JobStatus.BOOKED, JobStatus.PLANNED):
        raise ChangeRefused(f"the job is {job.status}: it cannot be moved")
    lock_region(session, job.region_id)
    region = session.get_one(Region, job.region_id)
    translation = build_problem(
        session,
        region,
        horizon_for(region, day, 1),
        travel,
        unpromised=job.id,
        placing={job.id},
        today=today,
    )
    if translation.horizon.days[0] != day:
        raise ChangeRefused(f"{day} is not a working day")
    key, vehicle_id = str(job.id), f"{technician.code}@{day.isoformat()}"
    engine_job = next((j for j in translation.problem.jobs if j.id == key), None)
    if engine_job is None:
        reason = translation.left_out.get(job.id, "not plannable")
        raise ChangeRefused(f"job {job.id} cannot go on {day}: {reason}")
    vehicles = {v.id: v for v in translation.problem.technician_days}
    vehicle = vehicles.get(vehicle_id)
    if vehicle is None:
        raise ChangeRefused(f"{technician.code} does not work on {day}")
    if not engine_job.skills <= vehicle.skills:
        missing = ", ".join(sorted(engine_job.skills - vehicle.skills))
        raise ChangeRefused(f"{technician.code} lacks the skill(s) {missing}")
    if engine_job.days > 1 or engine_job.crew_size > 1 or engine_job.needs_pickup:
        raise ChangeRefused(
            "multi-day and two-person jobs, and jobs with a part to pick up, are moved by "
            "pinning them and re-optimising (the engine places their other stops)"
        )
    plan, touched = without_job(stored_plan(session, region, translation), key)
    index = SlotIndex(translation.problem, plan)
    r = next(i for i, s in enumerate(index.builder.routes) if s.vehicle.id == vehicle_id)
    state = index.builder.routes[r]
    positions = range(len(state.stops) + 1) if position is None else [position]
    if position is not None and not 0 <= position <= len(state.stops):
        raise ChangeRefused(f"position must be between 0 and {len(state.stops)}")
    appointment = live_appointment(session, job.id)
    # The promise kept where it can be (waiting for its window if need be, with its room),
    # else anywhere in the shift, which breaks it unless renegotiated.
    tries = [replace(engine_job, windows=(TimeWindow(vehicle.shift.start_s, vehicle.shift.end_s),))]
    kept = _promised_window(translation, appointment)
    if kept is not None:
        tries.insert(0, replace(engine_job, windows=(kept,), promised=True))
    best = None
    for free in tries:
        for at in positions:
            stops = [
                *state.stops[:at],
                Stop(VisitKind.JOB, free, free.place, free.duration_s, free.windows),
                *state.stops[at:],
            ]
            schedule = simulate(translation.problem, vehicle, stops)
            if schedule is not None and (best is None or schedule.cost < best[1].cost):
                best = (stops, schedule, at)
        if best is not None:
            break
    if best is None:
        raise ChangeRefused(
            f"job {job.id} does not fit on {vehicle_id} there: the shift, a break or another "
            "customer's promised window would be broken"
        )
    stops, schedule, at = best
    start_s = schedule.starts[at]
    start = translation.horizon.to_datetime(start_s)
    renegotiated = False
    if appointment is not None and not (
        appointment.window_start <= start <= appointment.window_end
    ):
        if not renegotiate:
            raise ChangeRefused(
                f"this breaks the promise to the customer ({appointment.window_start:%d %b %H:%M}"
                f"-{appointment.window_end:%H:%M} UTC); move it with renegotiate=true once agreed"
            )
        window_start = _round_down(start, rules.step_minutes)
        reschedule(
            session,
            appointment,
            window_start,
            window_start + timedelta(minutes=rules.window_minutes),
            actor=actor,
            reason=f"moved by a planner to {technician.code}, agreed with the customer",
        )
        renegotiated = True
    state.stops, state.schedule = stops, schedule
    index.builder.placed[key] = (r, start_s, schedule.stop_end(at, engine_job.duration_s, 0))
    # The independent validator has the last word on the day as it would be saved.
    route_jobs = {s.job.id for s in stops}
    broken = [
        v
        for v in check(translation.problem, index.plan())
        if v.subject == vehicle_id or v.subject in route_jobs
    ]
    if broken:
        raise ChangeRefused(f"job {job.id} cannot go there: {broken[0]}")
    drop_from_plans(session, job, today)  # wherever it was, on this day or another
    write_routes(session, region, translation, index, touched | {vehicle_id})
    if job.status != JobStatus.PLANNED:
        change_status(session, job, JobStatus.PLANNED, actor=actor, reason=f"moved to {vehicle_id}")
    release_dependants(
        session, session.get_one(Region, job.region_id), {job.id}, today=today, actor=actor
    )
    plan_gate.judge_with(session, today=today, travel=travel, translation=translation)
    plan_gate.verify(session)
    return Moved(job, appointment, renegotiated)


def _promised_window(
    translation: Translation, appointment: Appointment | None
) -> TimeWindow | None:
    if appointment is None:
        return None
    start = translation.horizon.to_seconds(appointment.window_start)
    end = translation.horizon.to_seconds(appointment.window_end)
    return TimeWindow(start, end) if start is not None and end is not None else None


def _round_down(moment: datetime, step_minutes: int) -> datetime:
    minutes = (moment.hour * 60 + moment.minute) // step_minutes * step_minutes
    return moment.replace(hour=minutes // 60, minute=minutes % 60, second=0, microsecond=0)


def unassign(session: Session, job: Job, *, actor: str, renegotiate: bool, today: date) -> None:
    """Take the job out of every plan. A promised job keeps its appointment, flagged at risk
    for the planner to agree a new window, and only when the planner says so."""
    lock_region(session, job.region_id)
    appointment = live_appointment(session, job.id)
    if appointment is not None and not renegotiate:
        raise ChangeRefused(
            "the customer has a promised window for this job: unassign with renegotiate=true "
            "and agree a new window with them"
        )
    drop_from_plans(session, job, today)
    if appointment is not None:
        flag_at_risk(session, appointment, actor=actor, reason="unassigned by a planner")
    if job.status == JobStatus.PLANNED:
        back = JobStatus.BOOKED if appointment is not None else JobStatus.NEW
        change_status(session, job, back, actor=actor, reason="unassigned by a planner")
    release_dependants(
        session, session.get_one(Region, job.region_id), {job.id}, today=today, actor=actor
    )
    plan_gate.judge_with(session, today=today)
    plan_gate.verify(session)
