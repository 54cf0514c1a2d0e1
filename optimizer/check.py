"""An independent validator: does a plan keep every rule of its problem?

Written apart from the routing model on purpose: it recomputes times, loads and pairings from
the plan and the raw problem, so a modelling error in `routing.py` shows up here as a violation
instead of being trusted. Every test of a returned plan goes through `check`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from optimizer.model import DAY_S, Job, Plan, Problem, Route, TechnicianDay, Visit, VisitKind
from optimizer.protection import Exposure


class Rule(StrEnum):
    """The rule a violation breaks, as data (a `str`, so logs and reports read it as is)."""

    CAPACITY = "capacity"
    COVERAGE = "coverage"
    CREW = "crew"
    DEPENDENCY = "dependency"
    DURATION = "duration"
    LUNCH = "lunch"
    MULTI_DAY = "multi-day"
    OVERTIME = "overtime"
    PICKUP = "pickup"
    PIN = "pin"
    PROMISE = "promise"
    PROTECTION = "protection"
    RESERVE = "reserve"
    ROUTE = "route"
    SHIFT = "shift"
    SKILLS = "skills"
    TIMING = "timing"
    WINDOW = "window"


@dataclass(frozen=True)
class Violation:
    rule: Rule
    subject: str
    message: str
    # A promise or pin the plan leaves out and lists as unplanned: the plan says so honestly
    # (and `solve` keeps such a plan); every other violation is a wrong plan.
    left_out: bool = False

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.message}"


def check(problem: Problem, plan: Plan) -> list[Violation]:
    return list(_all(problem, plan))


def _all(problem: Problem, plan: Plan) -> Iterator[Violation]:
    vehicles = {v.id: v for v in problem.technician_days}
    jobs = {j.id: j for j in problem.jobs}
    for route in plan.routes:
        vehicle = vehicles.get(route.technician_day)
        if vehicle is None:
            yield Violation(Rule.ROUTE, route.technician_day, "unknown technician-day")
            continue
        yield from route_timing(problem, vehicle, route)
        yield from shift_and_overtime(vehicle, route)
        yield from lunch_break(vehicle, route)
        yield from pinned_positions(route, jobs)
        yield from van_capacity(vehicle, route, jobs)
        yield from capacity_reserve(vehicle, route, jobs)
        yield from promise_protection(problem, vehicle, route, jobs)
        for visit in route.visits:
            if visit.job_id is not None and visit.job_id not in jobs:
                yield Violation(Rule.ROUTE, route.technician_day, f"unknown job {visit.job_id}")
    # Job rules read only routes of known technician-days (the others are reported above), so
    # a plan kept from before a technician-day went away is judged, never a crash.
    plan = replace(plan, routes=tuple(r for r in plan.routes if r.technician_day in vehicles))
    visits = plan.job_visits()
    breaks = {
        route.technician_day: visit
        for route in plan.routes
        for visit in route.visits
        if visit.kind is VisitKind.BREAK
    }
    yield from coverage(problem, plan, visits)
    for job_id, unordered in visits.items():
        job = jobs.get(job_id)
        if job is None:
            continue
        served = sorted(unordered, key=lambda pair: pair[1].start_s)
        yield from windows(job, served, breaks)
        yield from skills_and_pins(job, served, vehicles)
        yield from crew(job, served, vehicles)
        yield from part_pickup(job, served, plan)
        yield from dependencies(job, served, visits, jobs)


def coverage(
    problem: Problem, plan: Plan, visits: dict[str, list[tuple[str, Visit]]]
) -> Iterator[Violation]:
    """Every job is either planned or listed as unplanned with a reason, never both; a
    promised job left unplanned is a broken promise."""
    unplanned = {u.job_id for u in plan.unplanned}
    for job in problem.jobs:
        if job.id in visits and job.id in unplanned:
            yield Violation(Rule.COVERAGE, job.id, "both planned and unplanned")
        if job.id not in visits and job.id not in unplanned:
            yield Violation(Rule.COVERAGE, job.id, "neither planned nor listed as unplanned")
        if job.id not in visits and job.promised:
            yield Violation(
                Rule.PROMISE, job.id, "a promised appointment is not planned", left_out=True
            )
        if job.id not in visits and job.pin is not None:
            yield Violation(Rule.PIN, job.id, "a pinned job is not planned", left_out=True)


def route_timing(problem: Problem, vehicle: TechnicianDay, route: Route) -> Iterator[Violation]:
    """Visits follow each other with the travel time between them (lunch may sit in a gap)."""
    place, free_at = vehicle.start_place, route.start_s
    previous: Visit | None = None
    for visit in route.visits:
        if visit.kind is VisitKind.BREAK:
            if previous is not None and _inside(visit, previous):
                continue  # lunch on site, inside a long job
            if visit.start_s < free_at:
                yield Violation(Rule.TIMING, route.technician_day, "lunch overlaps work")
            free_at = max(free_at, visit.end_s) if visit.start_s <= free_at else free_at
            continue
        assert visit.place is not None
        leg = int(problem.duration_s[place, visit.place])
        lunch = _break_between(route, free_at, visit.start_s)
        needed = free_at + leg + (lunch if lunch is not None else 0)
        if visit.start_s < needed:
            yield Violation(
                Rule.TIMING,
                route.technician_day,
                f"{visit.kind} {visit.job_id} starts at {visit.start_s}, "
                f"cannot be there before {needed}",
            )
        if visit.start_s < visit.arrival_s:
            yield Violation(
                Rule.TIMING, route.technician_day, f"{visit.job_id} starts before arrival"
            )
        place, free_at = visit.place, visit.end_s
        previous = visit
    home = free_at + int(problem.duration_s[place, vehicle.end_place])
    lunch = _break_between(route, free_at, route.end_s)
    if route.end_s < home + (lunch or 0):
        yield Violation(Rule.TIMING, route.technician_day, "ends before the drive home is over")


def promise_protection(
    problem: Problem, vehicle: TechnicianDay, route: Route, jobs: dict[str, Job]
) -> Iterator[Violation]:
    """Every promised start leaves the room the work before it may need (`protection`)."""
    protection = problem.protection
    if protection is None or not route.visits:
        return
    exposure = Exposure(protection, vehicle.shift.start_s)
    place, free_at = vehicle.start_place, vehicle.shift.start_s
    previous: Visit | None = None
    for visit in route.visits:
        if visit.kind is VisitKind.BREAK:
            if previous is not None and _inside(visit, previous):
                continue
            exposure.pause(visit.end_s - visit.start_s)
            if visit.start_s > free_at:
                exposure.wait_until(visit.end_s)
            continue
        job = jobs.get(visit.job_id) if visit.job_id is not None else None
        if job is None or visit.place is None:
            return  # reported by the route's other rules
        exposure.travel(int(problem.duration_s[place, visit.place]))
        closes = job.promise_closes(visit.start_s) if visit.kind is VisitKind.JOB else None
        if closes is not None:
            room = exposure.room(closes)
            if room < 0:
                yield Violation(
                    Rule.PROTECTION,
                    job.id,
                    f"starts {-room / 60:.0f} min too close to its window's end for the work "
                    f"before it at {protection.target:.0%}",
                )
        if visit.start_s > visit.arrival_s:
            exposure.wait_until(visit.start_s)
        if visit.kind is VisitKind.JOB:
            exposure.work(visit.end_s - visit.start_s, job.duration_s, job.duration_log_sd)
        else:
            on_site = visit.end_s - visit.start_s
            exposure.work(on_site, on_site, protection.pickup_log_sd)
        place, free_at = visit.place, visit.end_s
        previous = visit


def _inside(lunch: Visit, visit: Visit) -> bool:
    return (
        visit.kind is VisitKind.JOB
        and visit.start_s <= lunch.start_s
        and lunch.end_s <= visit.end_s
    )


def _break_between(route: Route, after: int, before: int) -> int | None:
    for visit in route.visits:
        if visit.kind is VisitKind.BREAK and after <= visit.start_s < before:
            return visit.end_s - visit.start_s
    return None


def shift_and_overtime(vehicle: TechnicianDay, route: Route) -> Iterator[Violation]:
    if route.start_s < vehicle.shift.start_s:
        yield Violation(Rule.SHIFT, vehicle.id, "starts before the shift")
    if route.end_s > vehicle.shift.end_s + vehicle.max_overtime_s:
        yield Violation(
            Rule.OVERTIME,
            vehicle.id,
            f"ends {route.end_s - vehicle.shift.end_s} s after the shift, "
            f"more than the allowed {vehicle.max_overtime_s} s",
        )


def lunch_break(vehicle: TechnicianDay, route: Route) -> Iterator[Violation]:
    breaks = [v for v in route.visits if v.kind is VisitKind.BREAK]
    if vehicle.lunch is None:
        return
    if len(breaks) != 1:
        yield Violation(Rule.LUNCH, vehicle.id, f"{len(breaks)} lunch breaks instead of one")
        return
    lunch, rule = breaks[0], vehicle.lunch
    if not rule.earliest_start_s <= lunch.start_s <= rule.latest_start_s:
        yield Violation(Rule.LUNCH, vehicle.id, "lunch starts outside its window")
    if lunch.end_s - lunch.start_s < rule.duration_s:
        yield Violation(Rule.LUNCH, vehicle.id, "lunch is too short")
    for visit in route.visits:
        if (
            visit.kind is not VisitKind.BREAK
            and visit.start_s < lunch.end_s
            and (lunch.start_s < visit.end_s)
            and not _inside(lunch, visit)
        ):
            yield Violation(Rule.LUNCH, vehicle.id, f"lunch overlaps {visit.job_id}")


def van_capacity(vehicle: TechnicianDay, route: Route, jobs: dict[str, Job]) -> Iterator[Violation]:
    job_ids = [
        v.job_id
        for v in route.visits
        if v.kind is VisitKind.JOB and v.job_id in jobs and not v.second_person
    ]
    for goods, parts, capacity in (
        ("volume_l", "part_volume_l", vehicle.volume_capacity_l),
        ("weight_kg", "part_weight_kg", vehicle.weight_capacity_kg),
    ):
        load = sum(getattr(jobs[j], goods) for j in job_ids if j is not None)
        if load > capacity:
            yield Violation(Rule.CAPACITY, vehicle.id, f"{goods} {load} loaded > {capacity}")
        for visit in route.visits:
            if visit.job_id is None or visit.job_id not in jobs:
                continue
            job = jobs[visit.job_id]
            if visit.kind is VisitKind.PICKUP:
                load += getattr(job, parts)
            elif visit.kind is VisitKind.JOB and not visit.second_person:
                load -= getattr(job, goods) + (getattr(job, parts) if job.needs_pickup else 0)
            if load > capacity:
                yield Violation(Rule.CAPACITY, vehicle.id, f"{goods} {load} on board > {capacity}")


def capacity_reserve(
    vehicle: TechnicianDay, route: Route, jobs: dict[str, Job]
) -> Iterator[Violation]:
    if vehicle.max_planned_share >= 1.0:
        return
    planned = sum(
        jobs[v.job_id].duration_s
        for v in route.visits
        if v.kind is VisitKind.JOB and v.job_id in jobs and not jobs[v.job_id].is_repair
    )
    limit = (vehicle.shift.end_s - vehicle.shift.start_s) * vehicle.max_planned_share
    if planned > limit:
        yield Violation(
            Rule.RESERVE, vehicle.id, f"{planned} s planned > reserve limit {limit:.0f} s"
        )


def windows(
    job: Job, served: list[tuple[str, Visit]], breaks: dict[str, Visit]
) -> Iterator[Violation]:
    """Every visit lasts the job's duration (plus a lunch taken inside it); the first day's
    start keeps the job's windows."""
    first_day = served[0][1].start_s // DAY_S
    for technician_day, visit in served:
        lunch = breaks.get(technician_day)
        inner = lunch.end_s - lunch.start_s if lunch and _inside(lunch, visit) else 0
        if visit.end_s - visit.start_s != job.duration_s + inner:
            yield Violation(Rule.DURATION, job.id, "visit is not as long as the job")
        if visit.start_s // DAY_S != first_day:
            continue
        if job.windows and not any(w.contains(visit.start_s) for w in job.windows):
            rule = Rule.PROMISE if job.promised else Rule.WINDOW
            yield Violation(rule, job.id, f"starts at {visit.start_s}, outside its windows")


def skills_and_pins(
    job: Job, served: list[tuple[str, Visit]], vehicles: dict[str, TechnicianDay]
) -> Iterator[Violation]:
    """Every visit needs the skills; a pin holds the job's first visit (not its second
    person's, nor its later days)."""
    for vehicle_id, _ in served:
        vehicle = vehicles.get(vehicle_id)
        if vehicle is None:
            continue  # reported once, as an unknown technician-day
        if not job.skills <= vehicle.skills:
            yield Violation(
                Rule.SKILLS,
                job.id,
                f"{vehicle_id} lacks {', '.join(sorted(job.skills - vehicle.skills))}",
            )
    lead = [(vehicle_id, visit) for vehicle_id, visit in served if not visit.second_person]
    if job.pin is None or not lead:
        return
    vehicle_id, visit = lead[0]
    if job.pin.technician_day != vehicle_id:
        yield Violation(Rule.PIN, job.id, f"pinned to {job.pin.technician_day}, not {vehicle_id}")
    if job.pin.start_s is not None and visit.start_s != job.pin.start_s:
        yield Violation(Rule.PIN, job.id, "does not start at its pinned time")


def pinned_positions(route: Route, jobs: dict[str, Job]) -> Iterator[Violation]:
    """A job pinned to a position is exactly that job of its route (pickups and lunch do not
    count, a second person's visit does)."""
    position = 0
    for visit in route.visits:
        if visit.kind is not VisitKind.JOB:
            continue
        job = jobs.get(visit.job_id or "")
        wanted = job.pinned_position if job is not None and not visit.second_person else None
        if wanted is not None and wanted != position:
            yield Violation(
                Rule.PIN, visit.job_id or "", f"is job {position + 1}, pinned as job {wanted + 1}"
            )
        position += 1


def crew(
    job: Job, served: list[tuple[str, Visit]], tech_days: dict[str, TechnicianDay]
) -> Iterator[Violation]:
    if job.days > 1:
        yield from multi_day(job, served, tech_days)
        return
    vehicles = [vehicle for vehicle, _ in served]
    if len(served) != job.crew_size:
        yield Violation(Rule.CREW, job.id, f"served by {len(served)}, needs {job.crew_size}")
    elif sum(1 for _, visit in served if not visit.second_person) != 1:
        yield Violation(Rule.CREW, job.id, "a job needs exactly one lead technician")
    elif len(set(vehicles)) != len(vehicles):
        yield Violation(Rule.CREW, job.id, "both people of a two-person job on one route")
    elif len({visit.start_s for _, visit in served}) != 1:
        yield Violation(Rule.CREW, job.id, "the two technicians do not start together")


def multi_day(
    job: Job, served: list[tuple[str, Visit]], tech_days: dict[str, TechnicianDay]
) -> Iterator[Violation]:
    """N consecutive horizon days, one visit a day, all by the same technician."""
    days = [tech_days[vehicle].day for vehicle, _ in served]
    technicians = {tech_days[vehicle].technician for vehicle, _ in served}
    if len(served) != job.days * job.crew_size:
        yield Violation(Rule.MULTI_DAY, job.id, f"{len(served)} visits for {job.days} days")
    elif days != list(range(days[0], days[0] + job.days)):
        yield Violation(Rule.MULTI_DAY, job.id, f"days {days} are not consecutive")
    elif len(technicians) != 1:
        yield Violation(Rule.MULTI_DAY, job.id, "not the same technician every day")


def part_pickup(job: Job, served: list[tuple[str, Visit]], plan: Plan) -> Iterator[Violation]:
    pickups = [
        (route, visit)
        for route in plan.routes
        for visit in route.visits
        if visit.kind is VisitKind.PICKUP and visit.job_id == job.id
    ]
    if not job.needs_pickup:
        if pickups:
            yield Violation(Rule.PICKUP, job.id, "a pickup for a job that needs none")
        return
    if len(pickups) != 1:
        yield Violation(Rule.PICKUP, job.id, f"{len(pickups)} pickups instead of one")
        return
    route, pickup = pickups[0]
    lead_vehicle, lead_visit = next(
        ((v, visit) for v, visit in served if not visit.second_person), served[0]
    )
    if route.technician_day != lead_vehicle:
        yield Violation(Rule.PICKUP, job.id, "part picked up on another technician-day")
    if pickup.end_s > lead_visit.start_s:
        yield Violation(Rule.PICKUP, job.id, "part picked up after the job starts")
    source = next((s for s in job.pickup_sources if s.site == pickup.site), None)
    if source is None:
        yield Violation(Rule.PICKUP, job.id, f"{pickup.site} cannot supply the part")
    elif not any(
        w.start_s <= pickup.start_s and pickup.end_s <= w.end_s for w in source.open_windows
    ):
        yield Violation(Rule.PICKUP, job.id, f"{pickup.site} is closed or has no stock then")


def dependencies(
    job: Job,
    served: list[tuple[str, Visit]],
    visits: dict[str, list[tuple[str, Visit]]],
    jobs: dict[str, Job],
) -> Iterator[Violation]:
    start = served[0][1].start_s
    for dependency in job.after:
        if dependency.job_id not in jobs:
            continue
        before = visits.get(dependency.job_id)
        if before is None:
            yield Violation(Rule.DEPENDENCY, job.id, f"planned without {dependency.job_id}")
            continue
        first = before[0][1]
        if start // DAY_S < first.start_s // DAY_S + dependency.lag_days:
            yield Violation(
                Rule.DEPENDENCY,
                job.id,
                f"needs {dependency.lag_days} day(s) after {dependency.job_id}",
            )
        if start < first.end_s:
            yield Violation(Rule.DEPENDENCY, job.id, f"starts before {dependency.job_id} ends")
