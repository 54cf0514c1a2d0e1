"""Problem and plan: frozen data in and out of the engine.

Time is integer seconds from the start of the planning horizon (day 0, 00:00 local), so a
multi-day plan is one time axis and day d begins at d * 86400. Places are indices into the
problem's travel matrices; the engine never sees coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from optimizer.protection import Protection
from optimizer.reasons import Why

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class TimeWindow:
    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if self.end_s < self.start_s:
            raise ValueError(f"time window ends before it starts: {self}")

    def contains(self, t: int) -> bool:
        return self.start_s <= t <= self.end_s

    def overlaps(self, other: TimeWindow) -> bool:
        return self.start_s <= other.end_s and other.start_s <= self.end_s


@dataclass(frozen=True, slots=True)
class Break:
    """A lunch break of `duration_s` that must start inside [earliest_start_s, latest_start_s]."""

    earliest_start_s: int
    latest_start_s: int
    duration_s: int

    @property
    def window_s(self) -> int:
        """How long the lunch may start: a job longer than this takes its lunch on site."""
        return self.latest_start_s - self.earliest_start_s


@dataclass(frozen=True, slots=True)
class TechnicianDay:
    """One technician on one day: the engine's vehicle."""

    id: str
    technician: str
    day: int
    skills: frozenset[str]
    start_place: int
    end_place: int
    shift: TimeWindow
    max_overtime_s: int = 0
    lunch: Break | None = None
    volume_capacity_l: int = 10**9
    weight_capacity_kg: int = 10**9
    cost_per_hour: float = 0.0
    # Urgent-repair reserve: jobs other than repairs may fill at most this share of the shift.
    max_planned_share: float = 1.0


@dataclass(frozen=True, slots=True)
class PickupSource:
    """A store or warehouse that can hand over all of a job's missing parts."""

    site: str
    place: int
    open_windows: tuple[TimeWindow, ...]  # opening hours on the horizon's days, stock permitting
    service_s: int = 600


@dataclass(frozen=True, slots=True)
class Pin:
    """What a planner fixed: the technician-day, and optionally the start time or the position
    in the route (0: the day's first job; pickups and the lunch break do not count, another
    job's second person does)."""

    technician_day: str
    start_s: int | None = None
    position: int | None = None

    def __post_init__(self) -> None:
        if self.position is not None and self.position < 0:
            raise ValueError(f"a pinned position counts from 0: {self}")


@dataclass(frozen=True, slots=True)
class Dependency:
    """This job may start only on a day at least `lag_days` horizon days after `job_id`'s day;
    with lag 0 it may be the same day, but not before the prerequisite has ended."""

    job_id: str
    lag_days: int = 0


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    place: int
    duration_s: int
    skills: frozenset[str] = frozenset()
    # Hard: the job must start inside one of these (customer availability or a promise).
    windows: tuple[TimeWindow, ...] = ()
    # True when `windows` is a promise made to the customer: never broken by a feasible plan.
    promised: bool = False
    # Soft: starting outside costs Weights.outside_preferred_per_min per minute.
    preferred: TimeWindow | None = None
    volume_l: int = 0  # goods carried from the start of the day to this job
    weight_kg: int = 0
    part_volume_l: int = 0  # missing parts picked up on the way
    part_weight_kg: int = 0
    pickup_sources: tuple[PickupSource, ...] = ()
    needs_pickup: bool = False
    priority: int = 1
    waiting_days: int = 0
    crew_size: int = 1
    # An installation of several consecutive working days by the same technician: the job's
    # windows hold for its first day, each day is `duration_s` of work.
    days: int = 1
    is_repair: bool = False
    after: tuple[Dependency, ...] = ()
    pin: Pin | None = None
    previous_technician_day: str | None = None  # where the last communicated plan had it
    # How long the work really takes: log-normal spread of the duration (0: as planned).
    duration_log_sd: float = 0.0

    @property
    def pinned_position(self) -> int | None:
        return self.pin.position if self.pin is not None else None

    def promise_closes(self, start_s: int) -> int | None:
        """When the promise a start at `start_s` keeps closes, for the promise protection:
        the end of the promised window it lies in. None when there is no room to keep: no
        promise, a start pinned to the minute (held where it is), or a later day of the job."""
        if not self.promised or (self.pin is not None and self.pin.start_s is not None):
            return None
        return next((w.end_s for w in self.windows if w.start_s <= start_s <= w.end_s), None)


@dataclass(frozen=True)
class Weights:
    """Every weight of the objective, in cost units (1 unit = 1 second of driving).

    Travel time counts once, distance adds `per_km`; overtime and lateness against a preferred
    window cost per minute; every technician-day used costs a fixed amount so the plan does not
    spread jobs thinly; leaving a job unplanned costs `unplanned_base` times its priority plus a
    share per day it has already waited, and a promised job costs more than anything else.
    """

    travel_per_s: int = 1
    per_km: int = 30
    overtime_per_min: int = 120
    outside_preferred_per_min: int = 30
    technician_day_fixed: int = 1_800
    unplanned_base: int = 40_000
    unplanned_per_waiting_day: int = 4_000
    unplanned_promised: int = 10_000_000
    moved_from_previous: int = 3_600

    def unplanned_penalty(self, job: Job) -> int:
        if job.promised or job.pin is not None:  # a promise, or a planner's decision
            return self.unplanned_promised
        return self.unplanned_base * max(1, job.priority) + (
            self.unplanned_per_waiting_day * job.waiting_days
        )


@dataclass(frozen=True, eq=False)
class Problem:
    jobs: Sequence[Job]
    technician_days: Sequence[TechnicianDay]
    duration_s: npt.NDArray[np.int64]  # travel seconds between places
    distance_m: npt.NDArray[np.int64]
    weights: Weights = field(default_factory=Weights)
    horizon_days: int = 1
    # Room kept before promised windows close for work running long (None: plan as if exact).
    protection: Protection | None = None

    def __post_init__(self) -> None:
        n = self.duration_s.shape[0]
        if self.duration_s.shape != (n, n) or self.distance_m.shape != (n, n):
            raise ValueError("travel matrices must be square and of equal size")
        ids = [j.id for j in self.jobs]
        if len(set(ids)) != len(ids):
            raise ValueError("job ids must be unique")
        vids = [v.id for v in self.technician_days]
        if len(set(vids)) != len(vids):
            raise ValueError("technician-day ids must be unique")

    def job(self, job_id: str) -> Job:
        return self._jobs_by_id()[job_id]

    def lunch_inside_a_job(self) -> bool:
        """Whether some job may be longer than some day's lunch window and so take its lunch
        on site (see `optimizer.construct`): a rule of the construction's own, which OR-Tools'
        breaks and the compiled descent do not hold."""
        windows = [v.lunch.window_s for v in self.technician_days if v.lunch is not None]
        return bool(windows) and any(j.duration_s > min(windows) for j in self.jobs)

    def protects_promises(self) -> bool:
        """Whether some promise keeps a protection: a rule over all the work before it."""
        return self.protection is not None and any(
            j.promised and (j.pin is None or j.pin.start_s is None) for j in self.jobs
        )

    def technician_day(self, vehicle_id: str) -> TechnicianDay:
        return {v.id: v for v in self.technician_days}[vehicle_id]

    def _jobs_by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}


class VisitKind(StrEnum):
    JOB = "job"
    PICKUP = "pickup"
    BREAK = "break"


@dataclass(frozen=True, slots=True)
class Visit:
    kind: VisitKind
    arrival_s: int  # when the technician gets there
    start_s: int  # when work starts (after waiting for the window)
    end_s: int
    job_id: str | None = None
    site: str | None = None
    place: int | None = None
    second_person: bool = False  # the helper's visit of a two-person job (carries no goods)


@dataclass(frozen=True, slots=True)
class Route:
    technician_day: str
    visits: tuple[Visit, ...]
    start_s: int
    end_s: int
    travel_s: int
    distance_m: int


@dataclass(frozen=True, slots=True)
class Unplanned:
    job_id: str
    reason: Why


class Search(StrEnum):
    """Which search found a plan, so that a plan says whether the product ran its strong path.

    Ranked weakest first: where two searches find equally good plans, the stronger one is
    named, having confirmed it."""

    CONSTRUCTION = "construction"  # the rule-aware cheapest insertion alone
    RUIN_AND_RECREATE = "ruin-and-recreate"  # `optimizer.improve`, on the construction's rules
    ROUTING = "routing"  # OR-Tools' guided search, then iterated ruin and recreate around it
    COMPILED = "compiled"  # as ROUTING, every round polished by the compiled descent


@dataclass(frozen=True)
class Plan:
    routes: tuple[Route, ...]
    unplanned: tuple[Unplanned, ...]
    objective: int
    status: str = "solved"
    search: Search = Search.CONSTRUCTION

    def job_visits(self) -> dict[str, list[tuple[str, Visit]]]:
        """job id -> every (technician-day, visit) serving it (two for a two-person job)."""
        found: dict[str, list[tuple[str, Visit]]] = {}
        for route in self.routes:
            for visit in route.visits:
                if visit.kind is VisitKind.JOB and visit.job_id:
                    found.setdefault(visit.job_id, []).append((route.technician_day, visit))
        return found

    def is_feasible(self, problem: Problem) -> bool:
        from optimizer.check import check

        return not check(problem, self)

    def kpis(self, problem: Problem) -> dict[str, float]:
        used = [r for r in self.routes if r.visits]
        shifts = {v.id: v for v in problem.technician_days}
        worked = sum(r.end_s - r.start_s for r in used)
        available = sum(v.shift.end_s - v.shift.start_s for v in problem.technician_days)
        overtime = sum(max(0, r.end_s - shifts[r.technician_day].shift.end_s) for r in used)
        planned = len({v.job_id for r in used for v in r.visits if v.kind is VisitKind.JOB})
        return {
            "jobs_planned": planned,
            "jobs_unplanned": len(self.unplanned),
            "technician_days_used": len(used),
            "travel_h": round(sum(r.travel_s for r in used) / 3600, 2),
            "distance_km": round(sum(r.distance_m for r in used) / 1000, 1),
            "overtime_h": round(overtime / 3600, 2),
            "utilisation_pct": round(100 * worked / available, 1) if available else 0.0,
        }
