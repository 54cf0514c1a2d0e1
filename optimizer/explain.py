"""Why a job is unplanned, in words a planner can act on.

The reasons are found by looking at the problem again, not at the search: the first rule that
excludes every technician-day wins; when none does, the job lost on capacity.
"""

from __future__ import annotations

from collections.abc import Sequence

from optimizer.model import DAY_S, Job, Problem, TimeWindow
from optimizer.reasons import Reason, Why


def clock(t: int) -> str:
    day, rest = divmod(t, DAY_S)
    return f"day {day} {rest // 3600:02d}:{rest % 3600 // 60:02d}"


def explain_unplanned(problem: Problem, job_ids: Sequence[str]) -> dict[str, Why]:
    return {job_id: explain(problem, problem.job(job_id), set(job_ids)) for job_id in job_ids}


def explain(problem: Problem, job: Job, unplanned: set[str]) -> Why:
    vehicles = problem.technician_days
    skilled = [v for v in vehicles if job.skills <= v.skills]
    if not skilled:
        return Why.of(Reason.NO_SKILL, skills=", ".join(sorted(job.skills)))
    if job.pin is not None:
        skilled = [v for v in skilled if v.id == job.pin.technician_day]
        if not skilled:
            return Why.of(Reason.PIN_CANNOT_TAKE, technician_day=job.pin.technician_day)
    long_enough = [
        v for v in skilled if v.shift.end_s + v.max_overtime_s - job.duration_s >= v.shift.start_s
    ]
    if not long_enough:
        return Why.of(Reason.LONGER_THAN_SHIFTS)
    fitting = [
        v
        for v in long_enough
        if not job.windows
        or any(
            w.overlaps(
                TimeWindow(v.shift.start_s, v.shift.end_s + v.max_overtime_s - job.duration_s)
            )
            for w in job.windows
        )
    ]
    if not fitting:
        return Why.of(Reason.NO_SHIFT_IN_WINDOWS)
    if job.days > 1:
        if job.crew_size >= 2:
            return Why.of(Reason.CREW_OVER_DAYS)
        works = {(v.technician, v.day) for v in long_enough}
        starts = [
            v for v in fitting if all((v.technician, v.day + k) in works for k in range(job.days))
        ]
        if not starts:
            return Why.of(Reason.NO_CONSECUTIVE_DAYS, days=job.days)
    if job.crew_size >= 2:
        per_day: dict[int, int] = {}
        for v in fitting:
            per_day[v.day] = per_day.get(v.day, 0) + 1
        if max(per_day.values()) < 2:
            return Why.of(Reason.NO_TWO_ON_A_DAY)
    if job.needs_pickup:
        if not job.pickup_sources:
            return Why.of(Reason.PART_NOWHERE)
        opens = [w for s in job.pickup_sources for w in s.open_windows]
        if not opens:
            return Why.of(Reason.PART_NOWHERE)
        last_shift_end = max(v.shift.end_s + v.max_overtime_s for v in fitting)
        first_open = min(w.start_s for w in opens)
        if first_open >= last_shift_end:
            return Why.of(Reason.PART_NOT_BEFORE, available=clock(first_open))
    for dependency in job.after:
        if dependency.job_id in unplanned:
            return Why.of(Reason.WAITS_FOR, job=dependency.job_id)
    if job.pin is not None and job.pin.position is not None:
        return Why.of(
            Reason.PIN_POSITION,
            position=job.pin.position + 1,
            technician_day=job.pin.technician_day,
        )
    return Why.of(Reason.NO_CAPACITY)
