"""Why a job is unplanned, in words a planner can act on.

The reasons are found by looking at the problem again, not at the search: the first rule that
excludes every technician-day wins; when none does, the job lost on capacity.
"""

from __future__ import annotations

from collections.abc import Sequence

from optimizer.model import DAY_S, Job, Problem, TimeWindow


def clock(t: int) -> str:
    day, rest = divmod(t, DAY_S)
    return f"day {day} {rest // 3600:02d}:{rest % 3600 // 60:02d}"


def explain_unplanned(problem: Problem, job_ids: Sequence[str]) -> dict[str, str]:
    return {job_id: explain(problem, problem.job(job_id), set(job_ids)) for job_id in job_ids}


def explain(problem: Problem, job: Job, unplanned: set[str]) -> str:
    vehicles = problem.technician_days
    skilled = [v for v in vehicles if job.skills <= v.skills]
    if not skilled:
        return f"no technician has the skill(s) {', '.join(sorted(job.skills))}"
    if job.pin is not None:
        skilled = [v for v in skilled if v.id == job.pin.technician_day]
        if not skilled:
            return f"pinned to {job.pin.technician_day}, which cannot take it (skills or absence)"
    long_enough = [
        v for v in skilled if v.shift.end_s + v.max_overtime_s - job.duration_s >= v.shift.start_s
    ]
    if not long_enough:
        return "longer than any shift of a technician with the skills, overtime included"
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
        return "no technician with the skills works during any of its allowed windows"
    if job.days > 1:
        if job.crew_size >= 2:
            return "a two-person job over several days: not planned by the engine yet"
        works = {(v.technician, v.day) for v in long_enough}
        starts = [
            v for v in fitting if all((v.technician, v.day + k) in works for k in range(job.days))
        ]
        if not starts:
            return (
                f"no technician with the skills works {job.days} consecutive days "
                "in this horizon from an allowed start"
            )
    if job.crew_size >= 2:
        per_day: dict[int, int] = {}
        for v in fitting:
            per_day[v.day] = per_day.get(v.day, 0) + 1
        if max(per_day.values()) < 2:
            return "needs two technicians with the skills on one day; no day has two"
    if job.needs_pickup:
        if not job.pickup_sources:
            return "missing part is not available at any store or warehouse in the horizon"
        opens = [w for s in job.pickup_sources for w in s.open_windows]
        if not opens:
            return "missing part is not available at any store or warehouse in the horizon"
        last_shift_end = max(v.shift.end_s + v.max_overtime_s for v in fitting)
        first_open = min(w.start_s for w in opens)
        if first_open >= last_shift_end:
            return f"missing part is not available before {clock(first_open)}"
    for dependency in job.after:
        if dependency.job_id in unplanned:
            return f"waits for job {dependency.job_id}, which is not planned yet"
    if job.pin is not None and job.pin.position is not None:
        return (
            f"pinned as job {job.pin.position + 1} of {job.pin.technician_day}: no plan found "
            "with that many jobs before it that keeps every rule"
        )
    return "no capacity left in any technician-day that could take it"
