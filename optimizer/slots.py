"""Windows a customer may pick, and booking one, by insertion into the current plan.

A re-solve per candidate window would take seconds; a customer waits milliseconds. So the index
keeps, for every gap between two stops of every technician-day, when the technician can leave
the stop before it and how late they may reach the stop after it without breaking any later
promise or the shift (the route's forward slack). A job fits a window in a gap when it can
start inside the window after the first and finish in time for the second. That test runs over
all gaps at once with numpy; it is optimistic only about lunch, capacity and the reserve share,
so the cheapest gaps that pass are confirmed by the exact route simulation before a window is
offered. An offered window is therefore always bookable against the plan it was computed on;
a window may be missed when its only feasible insertions are not among the few confirmed ones.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from optimizer.construct import (
    Builder,
    Candidate,
    Stop,
    _pickup_windows,
    _route,
    as_stored,
    simulate,
    to_plan,
)
from optimizer.explain import clock
from optimizer.model import (
    DAY_S,
    Job,
    PickupSource,
    Plan,
    Problem,
    Route,
    TimeWindow,
    VisitKind,
)
from optimizer.reasons import Reason, Why

TRIES = 8  # gaps confirmed by simulation per window, cheapest detour first
GOOD_ENOUGH = 3  # confirmed insertions after which the cheapest of them is taken
RECOMMENDED = 3  # cheapest feasible windows marked as recommended


@dataclass(frozen=True, slots=True)
class WindowOption:
    window: TimeWindow
    added_cost: int | None  # None when the window is not feasible
    added_travel_s: int = 0
    technician_day: str | None = None
    start_s: int | None = None
    reason: Why | None = None
    recommended: bool = False

    @property
    def feasible(self) -> bool:
        return self.added_cost is not None


@dataclass(frozen=True)
class Offer:
    job_id: str
    options: tuple[WindowOption, ...]
    reason: Why | None = None  # why no window is feasible, when none is

    def feasible(self) -> list[WindowOption]:
        return [o for o in self.options if o.feasible]


class Unbookable(ValueError):
    """The window cannot be kept any more; `why` says why."""

    def __init__(self, why: Why) -> None:
        super().__init__(str(why))
        self.why = why


Gap = tuple[int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Gaps:
    """Every gap of every route, concatenated: the arrays the fit test runs over."""

    route: npt.NDArray[np.int64]
    position: npt.NDArray[np.int64]
    day: npt.NDArray[np.int64]
    prev_place: npt.NDArray[np.int64]
    next_place: npt.NDArray[np.int64]
    depart: npt.NDArray[np.int64]  # earliest departure from the stop before the gap
    latest: npt.NDArray[np.int64]  # latest arrival at the stop after the gap
    fixed: npt.NDArray[np.int64]  # cost of opening an unused technician-day


def route_gaps(problem: Problem, builder: Builder, r: int) -> list[Gap]:
    """(position, prev place, next place, depart, latest arrival, fixed) of each gap of route r."""
    state = builder.routes[r]
    vehicle, stops, schedule = state.vehicle, state.stops, state.schedule
    assert schedule is not None
    duration = problem.duration_s
    n = len(stops)
    lunch_s = vehicle.lunch.duration_s if vehicle.lunch else 0
    places = [vehicle.start_place, *(s.place for s in stops), vehicle.end_place]
    latest = [0] * (n + 1)
    latest[n] = vehicle.shift.end_s + vehicle.max_overtime_s
    for i in range(n - 1, -1, -1):
        stop = stops[i]
        start = schedule.starts[i]
        window_end = max((w.end_s for w in stop.windows if w.start_s <= start), default=start)
        service = stop.service_s + (lunch_s if i == schedule.lunch_inside else 0)
        follow = latest[i + 1] - int(duration[places[i + 1], places[i + 2]]) - service
        latest[i] = min(window_end, follow)
    fixed = problem.weights.technician_day_fixed if n == 0 else 0
    gaps = []
    for i in range(n + 1):
        depart = (
            vehicle.shift.start_s
            if i == 0
            else schedule.stop_end(i - 1, stops[i - 1].service_s, lunch_s)
        )
        gaps.append((i, places[i], places[i + 1], depart, latest[i], fixed))
    return gaps


class SlotIndex:
    """The current plan, prepared for fast window queries and bookings."""

    def __init__(self, problem: Problem, plan: Plan) -> None:
        prepared = Builder.from_plan(problem, plan, lenient=True)
        assert prepared is not None  # lenient loading always gives a builder
        self.problem = problem
        self.builder, _ = prepared
        # Routes that no longer fit are left as they were: never offered, never rewritten.
        blocked = {self.builder.routes[r].vehicle.id for r in self.builder.blocked}
        self._kept = tuple(r for r in plan.routes if r.technician_day in blocked)
        self._per_route = [route_gaps(problem, self.builder, r) for r in range(self._n)]
        self._gaps: _Gaps | None = None
        self.promises: dict[str, TimeWindow] = {}  # bookings made through this index
        self.changed: set[str] = set()  # technician-days whose routes bookings changed
        self._skill_masks: dict[frozenset[str], npt.NDArray[np.bool_]] = {}
        self._dependents: dict[str, list[tuple[str, int]]] = {}
        for job in problem.jobs:
            for dependency in job.after:
                self._dependents.setdefault(dependency.job_id, []).append(
                    (job.id, dependency.lag_days)
                )

    def fork(self) -> SlotIndex:
        """An index to book into while this one keeps answering offers: a booking replaces
        a route's stops, schedule and gaps whole, so the twins share everything else."""
        twin = copy.copy(self)
        twin.builder = self.builder.fork()
        twin._per_route = list(self._per_route)
        twin.promises = {}  # the twin's own bookings, as `changed` is its own routes
        twin.changed = set()
        return twin

    def without(self, job_id: str) -> SlotIndex | None:
        """A fork with the job taken off every route that has it and those routes timed
        again, as loading the plan without the job would time them (to offer or book a new
        place for it). None when such a route would not fit even so: only loading the plan
        afresh knows what becomes of it."""
        twin = self.fork()
        for r, state in enumerate(twin.builder.routes):
            if not any(s.job.id == job_id for s in state.stops):
                continue
            stops = [s for s in state.stops if s.job.id != job_id]
            schedule = as_stored(self.problem, state.vehicle, stops)
            if schedule is None:
                return None
            twin.builder.set_route(r, stops, schedule)
            twin._per_route[r] = route_gaps(self.problem, twin.builder, r)
            twin.changed.add(state.vehicle.id)
        twin.builder.placed.pop(job_id, None)
        twin._gaps = None
        return twin

    @property
    def _n(self) -> int:
        return len(self.builder.routes)

    def plan(self) -> Plan:
        kept = {v.job_id for r in self._kept for v in r.visits if v.job_id}
        unplaced = sorted(
            j.id for j in self.problem.jobs if j.id not in self.builder.placed and j.id not in kept
        )
        built = to_plan(self.problem, self.builder, unplaced)
        return replace(built, routes=built.routes + self._kept)

    def route(self, technician_day: str) -> Route:
        """The route of a technician-day as it stands, timed."""
        state = next(s for s in self.builder.routes if s.vehicle.id == technician_day)
        assert state.schedule is not None
        return _route(self.problem, state.vehicle, state.stops, state.schedule)

    def is_placed(self, job_id: str) -> bool:
        return job_id in self.builder.placed

    # -- the fit test --------------------------------------------------------------------

    def _all_gaps(self) -> _Gaps:
        if self._gaps is None:
            rows = [(r, *g) for r, gaps in enumerate(self._per_route) for g in gaps]
            a = np.asarray(rows, dtype=np.int64).reshape(-1, 7)
            days = np.asarray([s.vehicle.day for s in self.builder.routes], dtype=np.int64)
            self._gaps = _Gaps(
                route=a[:, 0],
                position=a[:, 1],
                day=days[a[:, 0]] if len(a) else a[:, 0],
                prev_place=a[:, 2],
                next_place=a[:, 3],
                depart=a[:, 4],
                latest=a[:, 5],
                fixed=a[:, 6],
            )
        return self._gaps

    def _eligible(self, job: Job) -> npt.NDArray[np.bool_]:
        mask = self._skill_masks.get(job.skills)
        if mask is None:
            mask = np.asarray(
                [
                    job.skills <= s.vehicle.skills and r not in self.builder.blocked
                    for r, s in enumerate(self.builder.routes)
                ],
                dtype=bool,
            )
            self._skill_masks[job.skills] = mask
        if job.pin is not None:
            mask = mask & np.asarray(
                [s.vehicle.id == job.pin.technician_day for s in self.builder.routes], dtype=bool
            )
        return mask

    def _bounds(self, job: Job) -> tuple[int, int] | Why:
        """Earliest and latest start that the job's dependencies allow, or why there is none."""
        earliest, latest = 0, self.problem.horizon_days * DAY_S
        ids = {j.id for j in self.problem.jobs}
        for dependency in job.after:
            if dependency.job_id not in ids:
                continue
            placed = self.builder.placed.get(dependency.job_id)
            if placed is None:
                return Why.of(Reason.WAITS_FOR_FIRST, job=dependency.job_id)
            _, start, end = placed
            earliest = max(earliest, end)
            if dependency.lag_days:
                earliest = max(earliest, (start // DAY_S + dependency.lag_days) * DAY_S)
        for dependent, lag in self._dependents.get(job.id, []):
            placed = self.builder.placed.get(dependent)
            if placed is None:
                continue
            _, start, _ = placed
            latest = min(latest, start - job.duration_s)
            if lag:
                latest = min(latest, (start // DAY_S - lag + 1) * DAY_S - 1)
        if latest < earliest:
            return Why.of(Reason.NO_ROOM_BETWEEN)
        return earliest, latest

    def _windows(
        self, job: Job, window: TimeWindow, bounds: tuple[int, int]
    ) -> tuple[TimeWindow, ...]:
        """The window, narrowed by the job's own availability and its dependencies."""
        lo, hi = max(window.start_s, bounds[0]), min(window.end_s, bounds[1])
        allowed = job.windows or (TimeWindow(0, self.problem.horizon_days * DAY_S),)
        return tuple(
            TimeWindow(max(lo, w.start_s), min(hi, w.end_s))
            for w in allowed
            if max(lo, w.start_s) <= min(hi, w.end_s)
        )

    # -- confirming one insertion ------------------------------------------------------------

    def _confirm(
        self, job: Job, r: int, i: int, windows: tuple[TimeWindow, ...]
    ) -> Candidate | None:
        state = self.builder.routes[r]
        base = self.builder.cost(r)
        job = replace(job, windows=windows, promised=True)  # kept with its protection
        lead = Stop(VisitKind.JOB, job, job.place, job.duration_s, windows)
        tries: list[list[Stop]] = []
        if job.needs_pickup:
            for source in self._sources(job, r, i):
                pickup = Stop(
                    VisitKind.PICKUP,
                    job,
                    source.place,
                    source.service_s,
                    _pickup_windows(source),
                    source,
                )
                tries.append([*state.stops[:i], pickup, lead, *state.stops[i:]])
                if i > 0:
                    tries.append([pickup, *state.stops[:i], lead, *state.stops[i:]])
        else:
            tries.append([*state.stops[:i], lead, *state.stops[i:]])
        best: Candidate | None = None
        for stops in tries:
            schedule = simulate(self.problem, state.vehicle, stops)
            if schedule is not None and (best is None or schedule.cost - base < best.added_cost):
                best = Candidate(schedule.cost - base, [(r, stops, schedule)])
        if best is None:
            return None
        if job.crew_size >= 2:
            return self._with_helper(job, best)
        if job.days > 1:
            return self._with_following_days(job, best)
        return best

    def _sources(self, job: Job, r: int, i: int) -> list[PickupSource]:
        """The two pickup sites open that day that add the least detour before the job."""
        vehicle = self.builder.routes[r].vehicle
        day = TimeWindow(vehicle.shift.start_s, vehicle.shift.end_s)
        prev = self._per_route[r][i][1]
        duration = self.problem.duration_s
        open_ = [s for s in job.pickup_sources if any(w.overlaps(day) for w in s.open_windows)]
        open_.sort(key=lambda s: int(duration[prev, s.place]) + int(duration[s.place, job.place]))
        return open_[:2]

    def _with_helper(self, job: Job, lead: Candidate) -> Candidate | None:
        """The second technician of a two-person job: another route of the day, same start."""
        r, stops, schedule = lead.changes[0]
        at = next(k for k, s in enumerate(stops) if s.kind is VisitKind.JOB and s.job.id == job.id)
        job = stops[at].job  # as promised
        start = schedule.starts[at]
        fixed = (TimeWindow(start, start),)
        frozen = [replace(s, windows=fixed) if k == at else s for k, s in enumerate(stops)]
        helper = Stop(VisitKind.JOB, job, job.place, job.duration_s, fixed, second_person=True)
        gaps = self._all_gaps()
        duration = self.problem.duration_s
        arrive = gaps.depart + duration[gaps.prev_place, job.place]
        back = gaps.latest - job.duration_s - duration[job.place, gaps.next_place]
        ok = (
            self._eligible(replace(job, pin=None))[gaps.route]
            & (gaps.day == self.builder.routes[r].vehicle.day)
            & (gaps.route != r)
            & (arrive <= start)
            & (back >= start)
        )
        candidates = np.flatnonzero(ok)
        detour = (
            duration[gaps.prev_place[candidates], job.place]
            + duration[job.place, gaps.next_place[candidates]]
            + gaps.fixed[candidates]
        )
        for g in candidates[np.argsort(detour, kind="stable")][:TRIES]:
            h, i = int(gaps.route[g]), int(gaps.position[g])
            state = self.builder.routes[h]
            with_helper = [*state.stops[:i], helper, *state.stops[i:]]
            helper_schedule = simulate(self.problem, state.vehicle, with_helper)
            if helper_schedule is None:
                continue
            return Candidate(
                lead.added_cost + helper_schedule.cost - self.builder.cost(h),
                [(r, frozen, schedule), (h, with_helper, helper_schedule)],
            )
        return None

    def _with_following_days(self, job: Job, first: Candidate) -> Candidate | None:
        """The rest of a multi-day installation: the same technician, the next days."""
        r = first.changes[0][0]
        vehicle = self.builder.routes[r].vehicle
        by_key = {
            (s.vehicle.technician, s.vehicle.day): k for k, s in enumerate(self.builder.routes)
        }
        changes, added = list(first.changes), first.added_cost
        rest = replace(job, needs_pickup=False, days=1)
        for k in range(1, job.days):
            nxt = by_key.get((vehicle.technician, vehicle.day + k))
            if nxt is None or not self._eligible(job)[nxt]:
                return None
            v = self.builder.routes[nxt].vehicle
            shift = (TimeWindow(v.shift.start_s, v.shift.end_s + v.max_overtime_s),)
            part = self.builder.best_single(rest, shift, [nxt])
            if part is None:
                return None
            changes.extend(part.changes)
            added += part.added_cost
        return Candidate(added, changes)

    # -- queries ---------------------------------------------------------------------------

    def _best_in(
        self,
        job: Job,
        window: TimeWindow,
        bounds: tuple[int, int],
        order: npt.NDArray[np.int64],
        arrive: npt.NDArray[np.int64],
        back: npt.NDArray[np.int64],
    ) -> Candidate | None:
        windows = self._windows(job, window, bounds)
        if not windows:
            return None
        lo = min(w.start_s for w in windows)
        hi = max(w.end_s for w in windows)
        start = np.maximum(arrive[order], lo)
        fits = order[(start <= hi) & (start <= back[order])]
        gaps = self._all_gaps()
        best: Candidate | None = None
        confirmed = 0
        for g in fits[:TRIES]:
            found = self._confirm(job, int(gaps.route[g]), int(gaps.position[g]), windows)
            if found is None:
                continue
            confirmed += 1
            if best is None or found.added_cost < best.added_cost:
                best = found
            if confirmed >= GOOD_ENOUGH:
                break
        return best

    def _prepare(
        self, job: Job
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Gaps the job could use at all, cheapest detour first, with its arrival and latest
        start in each."""
        gaps = self._all_gaps()
        duration, distance = self.problem.duration_s, self.problem.distance_m
        weights = self.problem.weights
        p = job.place
        arrive = gaps.depart + duration[gaps.prev_place, p]
        back = gaps.latest - job.duration_s - duration[p, gaps.next_place]
        detour = (
            (
                duration[gaps.prev_place, p]
                + duration[p, gaps.next_place]
                - duration[gaps.prev_place, gaps.next_place]
            )
            * weights.travel_per_s
            + (
                distance[gaps.prev_place, p]
                + distance[p, gaps.next_place]
                - distance[gaps.prev_place, gaps.next_place]
            )
            * weights.per_km
            // 1000
            + gaps.fixed
        )
        usable = np.flatnonzero(self._eligible(job)[gaps.route] & (arrive <= back))
        order = usable[np.argsort(detour[usable], kind="stable")]
        return order, arrive, back

    def offer(self, job: Job, grid: Sequence[TimeWindow]) -> Offer:
        """Every window of `grid` in which the job can be inserted, each with its marginal cost."""
        if self.is_placed(job.id):
            raise ValueError(f"job {job.id} is already in the plan: take it out to move it")
        bounds = self._bounds(job)
        if isinstance(bounds, Why):
            return Offer(job.id, tuple(WindowOption(w, None, reason=bounds) for w in grid), bounds)
        order, arrive, back = self._prepare(job)
        options = []
        for window in grid:
            why = self._window_reason(job, window, bounds)
            found = None if why else self._best_in(job, window, bounds, order, arrive, back)
            if found is None:
                full = Why.of(Reason.WINDOW_FULL)
                options.append(WindowOption(window, None, reason=why or full))
                continue
            options.append(self._option(window, job, found))
        cheapest = sorted(
            (o for o in options if o.added_cost is not None), key=lambda o: o.added_cost or 0
        )[:RECOMMENDED]
        marked = {id(o) for o in cheapest}
        final = tuple(replace(o, recommended=True) if id(o) in marked else o for o in options)
        reason = None if cheapest else self._overall_reason(job, final)
        return Offer(job.id, final, reason)

    def _option(self, window: TimeWindow, job: Job, found: Candidate) -> WindowOption:
        r, stops, schedule = found.changes[0]
        at = next(k for k, s in enumerate(stops) if s.kind is VisitKind.JOB and s.job.id == job.id)
        before = sum(
            (self.builder.routes[c].schedule or schedule).travel_s for c, _, _ in found.changes
        )
        after = sum(s.travel_s for _, _, s in found.changes)
        return WindowOption(
            window,
            found.added_cost,
            added_travel_s=after - before,
            technician_day=self.builder.routes[r].vehicle.id,
            start_s=schedule.starts[at],
        )

    def _window_reason(self, job: Job, window: TimeWindow, bounds: tuple[int, int]) -> Why | None:
        if not self._windows(job, window, bounds):
            if window.end_s < bounds[0]:
                return Why.of(Reason.TOO_EARLY)
            if window.start_s > bounds[1]:
                return Why.of(Reason.TOO_LATE)
            return Why.of(Reason.OUTSIDE_DATES)
        if job.needs_pickup:
            day = window.start_s // DAY_S
            if not any(
                w.start_s // DAY_S == day for s in job.pickup_sources for w in s.open_windows
            ):
                first = min(
                    (w.start_s for s in job.pickup_sources for w in s.open_windows), default=None
                )
                return (
                    Why.of(Reason.PART_LATER, available=clock(first))
                    if first is not None
                    else Why.of(Reason.PART_NOT_IN_PERIOD)
                )
        return None

    def _overall_reason(self, job: Job, options: Sequence[WindowOption]) -> Why:
        if not self._eligible(job).any():
            if not job.skills:
                return Why.of(Reason.NO_TECHNICIAN)
            return Why.of(Reason.NO_SKILL, skills=", ".join(sorted(job.skills)))
        reasons = {o.reason for o in options if o.reason}
        if any(r.reason is Reason.WINDOW_FULL for r in reasons):
            return Why.of(Reason.PERIOD_FULL)
        return min(reasons, key=str) if reasons else Why.of(Reason.NO_WINDOW_GIVEN)

    # -- booking -------------------------------------------------------------------------

    def book(self, job: Job, window: TimeWindow) -> WindowOption:
        """Insert the job so that it starts inside `window`; the window becomes its promise."""
        if self.is_placed(job.id):
            raise Unbookable(Why.of(Reason.ALREADY_PLACED, job=job.id))
        bounds = self._bounds(job)
        if isinstance(bounds, Why):
            raise Unbookable(bounds)
        why = self._window_reason(job, window, bounds)
        if why:
            raise Unbookable(why)
        order, arrive, back = self._prepare(job)
        found = self._best_in(job, window, bounds, order, arrive, back)
        if found is None:
            raise Unbookable(Why.of(Reason.WINDOW_GONE))
        option = self._option(window, job, found)
        promised = replace(job, windows=(window,), promised=True)
        for r, stops, schedule in found.changes:
            self.builder.routes[r].stops = [
                replace(s, job=promised) if s.job.id == job.id else s for s in stops
            ]
            self.builder.routes[r].schedule = schedule
            self._per_route[r] = route_gaps(self.problem, self.builder, r)
            self.changed.add(self.builder.routes[r].vehicle.id)
        assert option.start_s is not None
        self.builder.placed[job.id] = (
            found.changes[0][0],
            option.start_s,
            option.start_s + job.duration_s,
        )
        self._gaps = None
        self.promises[job.id] = window
        return option


def day_grid(
    days: Sequence[int],
    first_start_s: int,
    last_end_s: int,
    width_s: int = 7200,
    step_s: int = 3600,
) -> list[TimeWindow]:
    """Windows of `width_s` starting every `step_s` between the day-times given, on each day."""
    windows = []
    for day in days:
        t = first_start_s
        while t + width_s <= last_end_s:
            windows.append(TimeWindow(day * DAY_S + t, day * DAY_S + t + width_s))
            t += step_s
    return windows


def without_job(plan: Plan, job_id: str) -> tuple[Plan, set[str]]:
    """The plan with every visit of a job taken out (to move it), and the technician-days that
    lost a visit."""
    routes, touched = [], set()
    for route in plan.routes:
        visits = tuple(v for v in route.visits if v.job_id != job_id)
        if len(visits) != len(route.visits):
            touched.add(route.technician_day)
            route = replace(route, visits=visits)
        routes.append(route)
    return replace(plan, routes=tuple(routes)), touched
