"""The one gate every stored plan passes: no write may lose or break a promise.

Writers of plans (bookings, moves, cancellations, re-plans, the day's reports) change rows in
many ways; what they must never do is the same for all of them. So it is checked in one place,
against the database as it will be committed, not against what the writer meant to write:

- every promised appointment's job is on exactly one route of the newest plan of its day,
  starting inside its window (a promise flagged *at risk* has been told and may be off);
- no job is on two routes of a day, nor on more days than it lasts;
- a job and its prerequisites keep their order and lead time across days;
- every route of a day after today keeps every rule of the engine's validator.

Every session registers what it flushes (plans, routes, stops, appointments); writers call
`verify` when their change is complete, and the commit calls it again for anything a writer
forgot, so a plan that breaks the rules raises `PlanRefused`, the transaction rolls back and
the caller answers 409 with the reasons. `defects` is the same check for any days, read only:
`fieldplan check-plans` and the KPIs use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

import optimizer
from fieldplan.appointments import LIVE_APPOINTMENTS, Appointment, AppointmentStatus
from fieldplan.jobs import Job, JobDependency, JobStatus
from fieldplan.planning import (
    TechnicianDayKey,
    Translation,
    UnreadablePlan,
    build_problem,
    horizon_for,
    stored_plan_to_judge,
)
from fieldplan.plans import Plan, Route, Stop, StopKind, lead_visits, newest_plans
from fieldplan.regions import Region
from fieldplan.travel import TravelTimes
from fieldplan.workdays import add_working_days, working_days_between
from optimizer.check import Rule

# Jobs whose promise must be on the plan: not yet visited, or being visited right now.
_OWED = (
    JobStatus.NEW,
    JobStatus.OFFERED,
    JobStatus.BOOKED,
    JobStatus.PLANNED,
    JobStatus.EN_ROUTE,
    JobStatus.IN_PROGRESS,
)
# Validator rules an at-risk promise may break: it has been flagged, the planner and the
# customer know, and a new window is being agreed.
_TOLD = frozenset({Rule.PROMISE, Rule.WINDOW})
# A pin is the planner's instruction to the next plan, not a fact of the stored one: a job
# pinned after its day was planned stays where it is until it is re-planned (or moved). The
# protection is room the engine plans with, not a promise: a day that went otherwise, or a
# plan made before it, may have less, and still keeps every promise.
_INSTRUCTIONS = frozenset({Rule.PIN, Rule.PROTECTION})


class DefectKind(StrEnum):
    PROMISE_NOT_PLANNED = "promise_not_planned"
    PROMISE_OUTSIDE_WINDOW = "promise_outside_window"
    JOB_ON_TWO_ROUTES = "job_on_two_routes"
    DEPENDENCY = "dependency"
    RULE = "rule"  # a rule of the engine's validator


@dataclass(frozen=True, order=True)
class Defect:
    day: date
    kind: DefectKind
    job_id: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.day} {self.kind}: {self.message}"


class PlanRefused(RuntimeError):
    """A write would store a plan that loses or breaks a promise; nothing of it is kept."""

    def __init__(self, defects: list[Defect]) -> None:
        self.defects = defects
        shown = "; ".join(str(d) for d in defects[:5])
        more = f" (and {len(defects) - 5} more)" if len(defects) > 5 else ""
        super().__init__(f"the plan was not changed, it would break: {shown}{more}")


@dataclass
class GateContext:
    """What a session's writes are judged with: today's date (today's routes record what
    happens, so the engine's rules hold from tomorrow on) and the travel times."""

    today: date | None = None
    travel: TravelTimes | None = None
    translations: list[Translation] = field(default_factory=list)
    touched: dict[int, set[date]] = field(default_factory=lambda: defaultdict(set))
    jobs: set[int] = field(default_factory=set)  # jobs whose stops or promise were written


_KEY = "fieldplan.plan_gate"


def context(session: Session) -> GateContext:
    found = session.info.get(_KEY)
    if found is None:
        found = session.info[_KEY] = GateContext()
    assert isinstance(found, GateContext)
    return found


def judge_with(
    session: Session,
    *,
    today: date | None = None,
    travel: TravelTimes | None = None,
    translation: Translation | None = None,
) -> None:
    """Tell the gate the day and travel times, and a problem the writer already built (so the
    validator need not build it again)."""
    found = context(session)
    found.today = today or found.today
    found.travel = travel or found.travel
    if translation is not None:
        found.translations.append(translation)


def verify(session: Session) -> None:
    """Raise `PlanRefused` when what this session wrote since the last verify breaks a
    promise or a rule; nothing is checked when it wrote no plan or appointment."""
    session.flush()
    found = context(session)
    touched = {region: days for region, days in found.touched.items() if days}
    jobs = set(found.jobs)
    found.touched.clear()
    found.jobs.clear()
    problems: list[Defect] = []
    for region_id, days in sorted(touched.items()):
        region = session.get_one(Region, region_id)
        problems += defects(
            session,
            region,
            days,
            today=found.today,
            travel=found.travel,
            translations=found.translations,
            jobs=jobs,
        )
    found.translations.clear()
    if problems:
        raise PlanRefused(sorted(problems))


def defects(
    session: Session,
    region: Region,
    days: Iterable[date],
    *,
    today: date | None,
    travel: TravelTimes | None,
    translations: Iterable[Translation] = (),
    jobs: set[int] | None = None,
) -> list[Defect]:
    """Everything wrong with the newest stored plans of these days of the region (and with
    the dependencies of `jobs`, which a write moved or took out)."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    zone = ZoneInfo(region.timezone)
    plans = newest_plans(session, region.id, wanted)
    found: list[Defect] = []
    found += _promises(session, region, wanted, plans, zone)
    found += _doubles(session, region, wanted, plans, today)
    found += _dependencies(session, region, wanted, plans, today, zone, jobs or set())
    later = [d for d in wanted if today is None or d > today]
    if later and travel is not None:
        found += _rules(session, region, later, today, travel, list(translations))
    return found


def region_defects(
    session: Session, region: Region, *, today: date, travel: TravelTimes | None
) -> list[Defect]:
    """The check over every day from `today` on that has a plan or a promise."""
    zone = ZoneInfo(region.timezone)
    days = set(
        session.scalars(
            select(Plan.day).where(Plan.region_id == region.id, Plan.day >= today).distinct()
        )
    )
    since = datetime.combine(today, time(0), zone)
    starts = session.scalars(
        select(Appointment.window_start)
        .join(Job, Job.id == Appointment.job_id)
        .where(
            Job.region_id == region.id,
            Appointment.status == AppointmentStatus.PROMISED,
            Appointment.window_start >= since,
        )
    )
    days |= {start.astimezone(zone).date() for start in starts}
    return sorted(defects(session, region, days, today=today, travel=travel))


def _lead_stops(plan: Plan | None) -> dict[int, list[Stop]]:
    found: dict[int, list[Stop]] = defaultdict(list)
    for route in plan.routes if plan is not None else ():
        for stop in route.stops:
            if stop.kind == StopKind.JOB and stop.job_id is not None and not stop.second_person:
                found[stop.job_id].append(stop)
    return found


def _local_day_bounds(days: list[date], zone: ZoneInfo) -> tuple[datetime, datetime]:
    return (
        datetime.combine(days[0], time(0), zone),
        datetime.combine(days[-1] + timedelta(days=1), time(0), zone),
    )


def _promises(
    session: Session,
    region: Region,
    days: list[date],
    plans: dict[date, Plan],
    zone: ZoneInfo,
) -> list[Defect]:
    first, last = _local_day_bounds(days, zone)
    rows = session.execute(
        select(Appointment, Job.status)
        .join(Job, Job.id == Appointment.job_id)
        .where(
            Job.region_id == region.id,
            Appointment.status == AppointmentStatus.PROMISED,
            Appointment.window_start >= first,
            Appointment.window_start < last,
            Job.status.in_(_OWED),
        )
    )
    wanted = set(days)
    found = []
    for appointment, _status in rows:
        day = appointment.window_start.astimezone(zone).date()
        if day not in wanted:
            continue
        stops = _lead_stops(plans.get(day)).get(appointment.job_id, [])
        window = (
            f"{appointment.window_start.astimezone(zone):%H:%M}-"
            f"{appointment.window_end.astimezone(zone):%H:%M}"
        )
        if not stops:
            found.append(
                Defect(
                    day,
                    DefectKind.PROMISE_NOT_PLANNED,
                    appointment.job_id,
                    f"job {appointment.job_id} is promised for {window} but on no route",
                )
            )
            continue
        begins = stops[0].start or stops[0].arrival
        if not appointment.window_start <= begins <= appointment.window_end:
            found.append(
                Defect(
                    day,
                    DefectKind.PROMISE_OUTSIDE_WINDOW,
                    appointment.job_id,
                    f"job {appointment.job_id} starts at {begins.astimezone(zone):%H:%M}, "
                    f"outside its promised {window}",
                )
            )
    return found


def _doubles(
    session: Session,
    region: Region,
    days: list[date],
    plans: dict[date, Plan],
    today: date | None,
) -> list[Defect]:
    """A job once a day at most, and on no more days than it lasts (from today on)."""
    found = []
    on_days: set[int] = set()
    for day in days:
        for job_id, stops in _lead_stops(plans.get(day)).items():
            on_days.add(job_id)
            if len(stops) > 1:
                found.append(
                    Defect(
                        day,
                        DefectKind.JOB_ON_TWO_ROUTES,
                        job_id,
                        f"job {job_id} is on {len(stops)} routes",
                    )
                )
    if not on_days:
        return found
    since = min(days) if today is None else min(min(days), today)
    everywhere = _planned_days(session, region.id, on_days, since)
    lengths = dict(session.execute(select(Job.id, Job.days).where(Job.id.in_(on_days))).all())
    for job_id, planned in sorted(everywhere.items()):
        if len(planned) > lengths.get(job_id, 1):
            shown = ", ".join(str(d) for d in sorted(planned))
            found.append(
                Defect(
                    min(planned & set(days), default=days[0]),
                    DefectKind.JOB_ON_TWO_ROUTES,
                    job_id,
                    f"job {job_id} is planned on {shown}",
                )
            )
    return found


def _planned_days(
    session: Session, region_id: int, job_ids: set[int], since: date
) -> dict[int, set[date]]:
    """job -> the days whose newest plan has it (lead visit), from `since` on."""
    found: dict[int, set[date]] = defaultdict(set)
    for visit in lead_visits(session, region_id, Plan.day >= since, job_ids=job_ids):
        found[visit.job_id].add(visit.day)
    return found


@dataclass(frozen=True)
class _When:
    first_day: date
    last_day: date
    start: datetime | None  # on the first day, when planned
    end: datetime | None  # on the last day, when planned
    planned: bool = True  # else only promised


def _dependencies(
    session: Session,
    region: Region,
    days: list[date],
    plans: dict[date, Plan],
    today: date | None,
    zone: ZoneInfo,
    jobs: set[int],
) -> list[Defect]:
    """Both ends of every dependency touching a job on these days (or one this write moved
    or took out) keep order and lead time."""
    on_days = {job_id for day in days for job_id in _lead_stops(plans.get(day))} | jobs
    return [
        Defect(
            broken.day if broken.day in days else days[0],
            DefectKind.DEPENDENCY,
            broken.link.job_id,
            broken.why,
        )
        for broken in broken_links(
            session, region, on_days, since=min(days) if today is None else today
        )
    ]


@dataclass(frozen=True)
class BrokenLink:
    link: JobDependency
    day: date  # the waiting job's first day
    why: str


def broken_links(
    session: Session, region: Region, job_ids: set[int], *, since: date
) -> list[BrokenLink]:
    """Dependencies touching these jobs whose waiting job is planned (from `since` on) but
    too early for its prerequisite, each end where it is planned, else where it is promised;
    or planned while its prerequisite, still to do, is neither planned nor promised."""
    if not job_ids:
        return []
    links = list(
        session.scalars(
            select(JobDependency).where(
                JobDependency.job_id.in_(job_ids) | JobDependency.prerequisite_id.in_(job_ids)
            )
        )
    )
    if not links:
        return []
    zone = ZoneInfo(region.timezone)
    involved = {link.job_id for link in links} | {link.prerequisite_id for link in links}
    when = _when(session, region.id, involved, since, zone)
    statuses = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(involved))).all())
    found = []
    for link in links:
        after = when.get(link.job_id)
        if statuses.get(link.job_id) not in _OWED or after is None or not after.planned:
            continue
        before = when.get(link.prerequisite_id)
        if before is None:
            if statuses.get(link.prerequisite_id) in _OWED:
                found.append(
                    BrokenLink(
                        link,
                        after.first_day,
                        f"job {link.job_id} is planned on {after.first_day} but job "
                        f"{link.prerequisite_id}, which must come first, is planned nowhere",
                    )
                )
            continue
        if statuses.get(link.prerequisite_id) in (JobStatus.CANCELLED, JobStatus.DONE):
            continue
        lag = max(link.lag_working_days, 0 if link.same_day_allowed else 1)
        earliest = add_working_days(before.last_day, lag)
        too_early = after.first_day < earliest
        same_day = after.first_day == before.last_day
        if not too_early and same_day and before.end is not None and after.start is not None:
            too_early = after.start < before.end
        if too_early:
            found.append(
                BrokenLink(
                    link,
                    after.first_day,
                    f"job {link.job_id} on {after.first_day} comes too early after job "
                    f"{link.prerequisite_id} on {before.last_day} (needs {lag} working day(s))",
                )
            )
    return found


def _when(
    session: Session, region_id: int, job_ids: set[int], since: date, zone: ZoneInfo
) -> dict[int, _When]:
    found: dict[int, _When] = {}
    for visit in lead_visits(session, region_id, Plan.day >= since, job_ids=job_ids):
        known = found.get(visit.job_id)
        if known is None:
            found[visit.job_id] = _When(visit.day, visit.day, visit.begins, visit.departure)
        else:
            found[visit.job_id] = _When(known.first_day, visit.day, known.start, visit.departure)
    promised = session.scalars(
        select(Appointment).where(
            Appointment.job_id.in_(job_ids - set(found)),
            Appointment.status.in_(LIVE_APPOINTMENTS),
        )
    )
    for appointment in promised:
        day = appointment.window_start.astimezone(zone).date()
        found[appointment.job_id] = _When(day, day, None, None, planned=False)
    return found


def _rules(
    session: Session,
    region: Region,
    days: list[date],
    today: date | None,
    travel: TravelTimes,
    translations: list[Translation],
) -> list[Defect]:
    """The engine's validator over the stored routes of these days, with a problem that
    covers them: one a writer built when it has them all, else one built here."""
    translation = next(
        (t for t in reversed(translations) if set(days) <= set(t.horizon.days)), None
    )
    if translation is None:
        span = working_days_between(days[0], days[-1])
        horizon = horizon_for(region, days[0], len(span))
        # The stored routes' jobs are all the validator looks at.
        translation = build_problem(
            session, region, horizon, travel, placing=(), today=today or days[0]
        )
    try:
        judged = stored_plan_to_judge(session, region, translation)
    except UnreadablePlan as unreadable:
        return [Defect(days[0], DefectKind.RULE, None, str(unreadable))]
    wanted = set(days)
    checked = {
        v.id
        for v in translation.problem.technician_days
        if TechnicianDayKey.parse(v.id).day in wanted
    }
    on_routes = {
        v.job_id for r in judged.routes if r.technician_day in checked for v in r.visits if v.job_id
    }
    at_risk = _at_risk(session, {int(j) for j in on_routes})
    found = []
    for violation in optimizer.check(translation.problem, judged):
        if violation.rule is Rule.COVERAGE or violation.rule in _INSTRUCTIONS:
            continue  # jobs left open are the plan's choice; promises are judged above
        subject_is_job = violation.subject.isdigit()
        if subject_is_job and violation.subject not in on_routes:
            continue  # a job of other days of this problem
        if not subject_is_job and violation.subject not in checked:
            continue
        if subject_is_job and int(violation.subject) in at_risk and violation.rule in _TOLD:
            continue
        day = _violation_day(violation, days)
        found.append(
            Defect(
                day,
                DefectKind.RULE,
                int(violation.subject) if subject_is_job else None,
                str(violation),
            )
        )
    return found


def _violation_day(violation: optimizer.Violation, days: list[date]) -> date:
    if "@" in violation.subject:
        return TechnicianDayKey.parse(violation.subject).day
    return days[0]


def _at_risk(session: Session, job_ids: set[int]) -> set[int]:
    return set(
        session.scalars(
            select(Appointment.job_id).where(
                Appointment.job_id.in_(job_ids), Appointment.status == AppointmentStatus.AT_RISK
            )
        )
    )


# Registering what each flush touches, and the last word at commit -------------------------


def _plan_of(session: Session, instance: Any) -> tuple[int, date] | None:
    if isinstance(instance, Plan):
        return instance.region_id, instance.day
    if isinstance(instance, Route):
        plan = instance.plan
        if plan is None and instance.plan_id is not None:
            plan = session.get(Plan, instance.plan_id)
        return (plan.region_id, plan.day) if plan is not None else None
    if isinstance(instance, Stop):
        route = instance.route
        if route is None:
            route_id = inspect(instance).committed_state.get("route_id", instance.route_id)
            route = session.get(Route, route_id) if route_id is not None else None
        return _plan_of(session, route) if route is not None else None
    return None


def _appointment_days(session: Session, appointment: Appointment) -> tuple[int, set[date]]:
    job = session.get_one(Job, appointment.job_id)
    zone = ZoneInfo(session.get_one(Region, job.region_id).timezone)
    starts = set(inspect(appointment).attrs.window_start.history.sum())
    starts.add(appointment.window_start)
    return job.region_id, {s.astimezone(zone).date() for s in starts if s is not None}


@event.listens_for(Session, "before_flush")
def _register(session: Session, _context: Any, _instances: Any) -> None:
    found = context(session)
    touched = found.touched
    with session.no_autoflush:
        for instance in (*session.new, *session.dirty, *session.deleted):
            if isinstance(instance, Appointment):
                region_id, days = _appointment_days(session, instance)
                touched[region_id] |= days
                found.jobs.add(instance.job_id)
                continue
            if isinstance(instance, Stop) and instance.job_id is not None:
                found.jobs.add(instance.job_id)
            if isinstance(instance, Route):
                gone = inspect(instance).attrs.stops.history.deleted
                found.jobs |= {s.job_id for s in gone if s.job_id is not None}
            where = _plan_of(session, instance)
            if where is not None:
                touched[where[0]].add(where[1])


@event.listens_for(Session, "before_commit")
def _last_word(session: Session) -> None:
    """What is still unjudged when the transaction commits (a savepoint's release is no
    commit: what it wrote is judged with the rest, before the transaction's)."""
    if session.in_nested_transaction():
        return
    if any(context(session).touched.values()) or session.new or session.dirty or session.deleted:
        verify(session)
