"""A first plan by cheapest feasible insertion, respecting every rule.

OR-Tools' own first-solution heuristics stall on field-service problems (lunch breaks, pickups
that must ride on the same route, two people who start together, dependencies across days,
and far more jobs than capacity). This construction handles those rules explicitly: jobs are
taken hardest and most valuable first and each goes where it adds the least cost, with its
pickup on the same route before it, its second person on another route at the same minute,
and its prerequisites already in place. Times of stops that others depend on are frozen once
placed, so a later insertion can never break a synchronisation or a dependency.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from optimizer.model import (
    DAY_S,
    Break,
    Job,
    PickupSource,
    Plan,
    Problem,
    Route,
    TechnicianDay,
    TimeWindow,
    Unplanned,
    Visit,
    VisitKind,
    Weights,
)
from optimizer.protection import Exposure

INFEASIBLE = None


@dataclass(frozen=True, slots=True)
class Stop:
    kind: VisitKind
    job: Job
    place: int
    service_s: int
    windows: tuple[TimeWindow, ...]
    source: PickupSource | None = None
    second_person: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    """The earliest-start timing of a route: stop starts, lunch, end, travel and cost."""

    starts: tuple[int, ...]
    arrivals: tuple[int, ...]
    lunch_start: int | None
    end_s: int
    travel_s: int
    distance_m: int
    cost: int
    # Index of a long job that the lunch break sits inside (the job ends that much later).
    lunch_inside: int | None = None

    def stop_end(self, index: int, service_s: int, lunch_s: int) -> int:
        return self.starts[index] + service_s + (lunch_s if index == self.lunch_inside else 0)


def _may_hold_lunch(stop: Stop, lunch: Break) -> bool:
    """A job longer than the whole lunch window cannot have lunch before or after it when it
    spans the window: the technician takes the break on site, and the job ends later. Not
    the second person of a two-person job: the job would then end later on the helper's day
    than on the lead's, and what waits for the job waits for the lead's end."""
    return stop.kind is VisitKind.JOB and not stop.second_person and stop.service_s > lunch.window_s


def _takes_lunch_inside(stop: Stop, start: int, lunch: Break) -> bool:
    return _may_hold_lunch(stop, lunch) and start <= lunch.latest_start_s


@dataclass
class RouteState:
    vehicle: TechnicianDay
    stops: list[Stop] = field(default_factory=list)
    schedule: Schedule | None = None


def _first_start(windows: tuple[TimeWindow, ...], arrive: int) -> int | None:
    best: int | None = None
    for w in windows:
        if arrive <= w.end_s:
            t = max(arrive, w.start_s)
            if best is None or t < best:
                best = t
    return best


def spread_of(problem: Problem, stop: Stop) -> float:
    if stop.kind is VisitKind.PICKUP:
        return problem.protection.pickup_log_sd if problem.protection is not None else 0.0
    return stop.job.duration_log_sd


def _at_pinned_positions(stops: Sequence[Stop]) -> bool:
    """Every job pinned to a position is exactly that job of the route (see `Pin`)."""
    position = 0
    for stop in stops:
        if stop.kind is not VisitKind.JOB:
            continue
        wanted = None if stop.second_person else stop.job.pinned_position
        if wanted is not None and wanted != position:
            return False
        position += 1
    return True


@dataclass(frozen=True, slots=True)
class LunchAt:
    """Where a day's lunch goes: in the gap before stop `index` (`len(stops)`: after the last
    one, on the way home) or, with `inside`, on site during that stop, a long job."""

    index: int
    inside: bool = False


def simulate(
    problem: Problem, vehicle: TechnicianDay, stops: Sequence[Stop], *, protect: bool = True
) -> Schedule | None:
    """Time, load and reserve of a stop sequence on a technician-day, or None if infeasible.
    With `protect` (and a problem with a `Protection`) every promised start keeps its room.

    Lunch goes as late as it can: in the gap before the first stop that would end after the
    lunch window closes (or inside it, a job longer than the window). Where the day fails after
    that, an earlier gap may still save it (a lunch taken while waiting for a window to open
    costs nothing, taken later it pushes a tight window out), so the earlier places are tried,
    latest first: a day is feasible here exactly when some place for its lunch makes it so,
    which is what OR-Tools' break model and `check` accept too. Where the day fails before its
    lunch, no place helps: lunch only ever delays what follows it.
    """
    load = _setting_out(stops)
    if not _fits_the_van_and_pins(vehicle, stops, load):
        return INFEASIBLE
    schedule, placed = _replay(problem, vehicle, stops, protect, None, load)
    if schedule is not INFEASIBLE or placed is None:
        return schedule
    lunch = vehicle.lunch
    assert lunch is not None  # only a day with lunch says where it went
    # Up to the place tried, every such day is the same day without lunch: the first replay
    # records where it stands before each stop, the others go on from there.
    before: list[_Before] = []
    for index in range(placed.index, -1, -1):
        for inside in (True, False):
            option = LunchAt(index, inside)
            if option == placed:
                continue
            # `_replay` would refuse lunch on site elsewhere only when it got there.
            if inside and (index >= len(stops) or not _may_hold_lunch(stops[index], lunch)):
                continue
            if before:
                schedule, _ = _replay(problem, vehicle, stops, protect, option, before[index])
            else:
                schedule, _ = _replay(problem, vehicle, stops, protect, option, load, before)
            if schedule is not INFEASIBLE:
                return schedule
    return INFEASIBLE


@dataclass(frozen=True, slots=True)
class _Before:
    """Where a day stands before one of its stops, its lunch not taken yet."""

    t: int
    place: int
    travel: int
    metres: int
    volume: int
    weight: int
    starts: tuple[int, ...]
    arrivals: tuple[int, ...]
    exposure: Exposure | None


@dataclass(frozen=True, slots=True)
class _Load:
    """What a day's stops ask of the van and the day before it sets out."""

    volume: int
    weight: int
    planned_s: int  # work that is not a repair: the urgent-repair reserve stays free of it


def _setting_out(stops: Sequence[Stop]) -> _Load:
    volume = weight = planned_s = 0
    for stop in stops:
        if stop.kind is VisitKind.JOB and not stop.second_person:
            volume += stop.job.volume_l
            weight += stop.job.weight_kg
            if not stop.job.is_repair:
                planned_s += stop.service_s
    return _Load(volume, weight, planned_s)


def as_stored(problem: Problem, vehicle: TechnicianDay, stops: Sequence[Stop]) -> Schedule | None:
    """A stored route timed as loading the plan times it. One planned before its promises
    were protected (or whose day went otherwise) is kept as it is without their room, and
    takes no more work until it has the room again."""
    schedule = simulate(problem, vehicle, stops)
    if schedule is None and problem.protection is not None:
        schedule = simulate(problem, vehicle, stops, protect=False)
    return schedule


def _fits_the_van_and_pins(vehicle: TechnicianDay, stops: Sequence[Stop], load: _Load) -> bool:
    """What holds or fails wherever the lunch goes: the goods the van sets out with, the
    share of the day planned work may take, jobs pinned to a position."""
    if load.volume > vehicle.volume_capacity_l or load.weight > vehicle.weight_capacity_kg:
        return False
    day_s = vehicle.shift.end_s - vehicle.shift.start_s
    if vehicle.max_planned_share < 1.0 and load.planned_s > day_s * vehicle.max_planned_share:
        return False
    return _at_pinned_positions(stops)


def _replay(
    problem: Problem,
    vehicle: TechnicianDay,
    stops: Sequence[Stop],
    protect: bool,
    lunch_at: LunchAt | None,
    origin: _Load | _Before,
    record: list[_Before] | None = None,
) -> tuple[Schedule | None, LunchAt | None]:
    """The day with its lunch where `lunch_at` says (None: as late as it can go), and where the
    lunch went when the day failed after it (None when it failed before lunch or succeeded).
    The van's load as it sets out (`origin`) and the pins are `simulate`'s to check, once.
    From a `_Before` the day goes on from there (its lunch still to come); `record` gets
    where it stands before each stop until its lunch."""
    duration, distance = problem.duration_s, problem.distance_m
    weights = problem.weights
    lunch = vehicle.lunch
    lunch_start: int | None = None
    lunch_inside: int | None = None
    placed: LunchAt | None = None
    exposure: Exposure | None
    if isinstance(origin, _Load):
        exposure = (
            Exposure(problem.protection, vehicle.shift.start_s)
            if protect and problem.protection is not None and stops
            else None
        )
        t, place = vehicle.shift.start_s, vehicle.start_place
        starts: list[int] = []
        arrivals: list[int] = []
        travel = metres = 0
        volume, weight = origin.volume, origin.weight
    else:
        exposure = origin.exposure.copy() if origin.exposure is not None else None
        t, place, travel, metres = origin.t, origin.place, origin.travel, origin.metres
        volume, weight = origin.volume, origin.weight
        starts, arrivals = list(origin.starts), list(origin.arrivals)
    for index in range(len(starts), len(stops)):
        stop = stops[index]
        if record is not None and lunch_start is None:
            record.append(
                _Before(
                    t,
                    place,
                    travel,
                    metres,
                    volume,
                    weight,
                    tuple(starts),
                    tuple(arrivals),
                    exposure.copy() if exposure is not None else None,
                )
            )
        leg = int(duration[place, stop.place])
        arrive = t + leg
        start = _first_start(stop.windows, arrive)
        if start is None:
            return INFEASIBLE, placed
        extra = 0
        lunch_first: Break | None = None  # lunch taken before this stop
        if lunch is not None and lunch_start is None:
            spans = start + stop.service_s > lunch.latest_start_s
            if lunch_at is None:
                here = spans
                inside = here and _takes_lunch_inside(stop, start, lunch)
            else:
                here = index == lunch_at.index
                inside = here and lunch_at.inside
                if inside and not (spans and _takes_lunch_inside(stop, start, lunch)):
                    return INFEASIBLE, None
            if inside:
                lunch_start = max(start, lunch.earliest_start_s)
                lunch_inside, extra = index, lunch.duration_s
                placed = LunchAt(index, True)
            elif here:
                # Lunch comes before this stop: in the gap, during the drive or the wait.
                lunch_start = max(t, lunch.earliest_start_s)
                placed = LunchAt(index)
                if lunch_start > lunch.latest_start_s:
                    return INFEASIBLE, placed
                if lunch_start < arrive:  # lunch interrupts the drive
                    arrive += lunch.duration_s
                ready = max(t + leg + lunch.duration_s, lunch_start + lunch.duration_s)
                start = _first_start(stop.windows, ready)
                if start is None:
                    return INFEASIBLE, placed
                lunch_first = lunch
        if exposure is not None:
            if lunch_first is not None and lunch_start is not None:
                exposure.pause(lunch_first.duration_s)
                if lunch_start > t:
                    exposure.wait_until(lunch_start + lunch_first.duration_s)
            exposure.travel(leg)
            closes = stop.job.promise_closes(start) if stop.kind is VisitKind.JOB else None
            if closes is not None and exposure.room(closes) < 0:
                return INFEASIBLE, placed
            if start > arrive:
                exposure.wait_until(start)
            exposure.work(stop.service_s + extra, stop.service_s, spread_of(problem, stop))
        travel += leg
        metres += int(distance[place, stop.place])
        arrivals.append(arrive)
        starts.append(start)
        if stop.kind is VisitKind.PICKUP:
            volume += stop.job.part_volume_l
            weight += stop.job.part_weight_kg
            if volume > vehicle.volume_capacity_l or weight > vehicle.weight_capacity_kg:
                return INFEASIBLE, placed
        elif not stop.second_person:
            volume -= stop.job.volume_l + (stop.job.part_volume_l if stop.job.needs_pickup else 0)
            weight -= stop.job.weight_kg + (stop.job.part_weight_kg if stop.job.needs_pickup else 0)
        t = start + stop.service_s + extra
        place = stop.place
    leg = int(duration[place, vehicle.end_place])
    end = t + leg
    if lunch is not None and lunch_start is None and stops:
        lunch_start = max(t, lunch.earliest_start_s)
        placed = LunchAt(len(stops))
        if lunch_start > lunch.latest_start_s:
            return INFEASIBLE, placed
        end = max(t + leg + lunch.duration_s, lunch_start + lunch.duration_s)
    if end > vehicle.shift.end_s + vehicle.max_overtime_s:
        return INFEASIBLE, placed
    travel += leg
    metres += int(distance[place, vehicle.end_place])
    cost = (
        travel * weights.travel_per_s
        + metres * weights.per_km // 1000
        + _overtime_cost(vehicle, end, weights)
        + (weights.technician_day_fixed if stops else 0)
    )
    for stop, start in zip(stops, starts, strict=True):
        if stop.kind is VisitKind.JOB and not stop.second_person:
            previous = stop.job.previous_technician_day
            if previous is not None and previous != vehicle.id:
                cost += weights.moved_from_previous  # stability: a communicated job moved
        cost += _outside_preferred_cost(stop, start, weights)
    schedule = Schedule(
        tuple(starts), tuple(arrivals), lunch_start, end, travel, metres, cost, lunch_inside
    )
    return schedule, None


def _overtime_cost(vehicle: TechnicianDay, end_s: int, weights: Weights) -> int:
    return max(0, end_s - vehicle.shift.end_s) * weights.overtime_per_min // 60


def _outside_preferred_cost(stop: Stop, start_s: int, weights: Weights) -> int:
    preferred = stop.job.preferred
    if stop.kind is not VisitKind.JOB or preferred is None or stop.second_person:
        return 0
    outside = max(0, preferred.start_s - start_s, start_s - preferred.end_s)
    return outside * weights.outside_preferred_per_min // 60


def _pickup_windows(source: PickupSource) -> tuple[TimeWindow, ...]:
    """When a pickup may start: inside opening hours, finishing before closing."""
    return tuple(
        TimeWindow(w.start_s, w.end_s - source.service_s)
        for w in source.open_windows
        if w.end_s - source.service_s >= w.start_s
    )


@dataclass
class Candidate:
    added_cost: int
    changes: list[tuple[int, list[Stop], Schedule]]  # (route index, new stops, schedule)


class Builder:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.routes = [RouteState(v) for v in problem.technician_days]
        for state in self.routes:
            state.schedule = simulate(problem, state.vehicle, [])
        self.placed: dict[str, tuple[int, int, int]] = {}  # job -> (route, start, end)
        self.frozen: set[str] = set()
        # Routes of a stored plan that no longer fit (lenient loading): left alone.
        self.blocked: set[int] = set()

    @classmethod
    def from_plan(
        cls, problem: Problem, plan: Plan, *, lenient: bool = False
    ) -> tuple[Builder, set[str]] | None:
        """A builder holding an existing plan, or None when the plan no longer fits. With
        `lenient`, a route that no longer fits (a technician now absent, a changed promise) is
        left out and blocked instead, so the rest of the plan stays usable."""
        builder = cls(problem)
        jobs = {j.id: j for j in problem.jobs}
        index = {v.id: i for i, v in enumerate(problem.technician_days)}
        tied = {d.job_id for j in problem.jobs for d in j.after}
        first_day = {
            job_id: min(v.start_s // DAY_S for _, v in served)
            for job_id, served in plan.job_visits().items()
        }
        for route in plan.routes:
            r = index.get(route.technician_day)
            if r is None:
                if lenient:
                    continue
                return None
            stops: list[Stop] = []
            fits = True
            for visit in route.visits:
                job = jobs.get(visit.job_id) if visit.job_id else None
                if job is None or visit.kind is VisitKind.BREAK:
                    continue
                if visit.kind is VisitKind.PICKUP:
                    source = next((s for s in job.pickup_sources if s.site == visit.site), None)
                    if source is None:
                        fits = False
                        break
                    stops.append(
                        Stop(
                            VisitKind.PICKUP,
                            job,
                            source.place,
                            source.service_s,
                            _pickup_windows(source),
                            source,
                        )
                    )
                    continue
                # Both ends of a dependency keep their times: the clip that placed the later
                # one is not in its windows any more.
                fixed = job.crew_size >= 2 or job.id in tied or bool(job.after)
                vehicle = builder.routes[r].vehicle
                if fixed:
                    windows: tuple[TimeWindow, ...] = (TimeWindow(visit.start_s, visit.start_s),)
                elif job.days > 1 and vehicle.day > first_day.get(job.id, vehicle.day):
                    # A later day of a multi-day job: its windows held for the first day only.
                    windows = (
                        TimeWindow(
                            vehicle.shift.start_s, vehicle.shift.end_s + vehicle.max_overtime_s
                        ),
                    )
                else:
                    windows = job.windows or (TimeWindow(0, problem.horizon_days * DAY_S),)
                stops.append(
                    Stop(
                        VisitKind.JOB,
                        job,
                        job.place,
                        job.duration_s,
                        windows,
                        second_person=visit.second_person,
                    )
                )
            state = builder.routes[r]
            schedule = as_stored(problem, state.vehicle, stops) if fits else None
            if schedule is None:
                if lenient:
                    builder.blocked.add(r)
                    continue
                return None
            builder.set_route(r, stops, schedule)
        unplaced = {j.id for j in problem.jobs if j.id not in builder.placed}
        return builder, unplaced

    def set_route(self, r: int, stops: list[Stop], schedule: Schedule) -> None:
        """Route `r` as `stops` with their `schedule`, and where its jobs now start and end."""
        state = self.routes[r]
        state.stops, state.schedule = stops, schedule
        lunch_s = state.vehicle.lunch.duration_s if state.vehicle.lunch else 0
        for k, (stop, start) in enumerate(zip(stops, schedule.starts, strict=True)):
            if stop.kind is VisitKind.JOB and not stop.second_person:
                end = schedule.stop_end(k, stop.service_s, lunch_s)
                self.placed[stop.job.id] = (r, start, end)

    def fork(self) -> Builder:
        """A builder that may change its routes without changing this one's. Stop lists and
        schedules are replaced whole, never edited in place, so the twins share them."""
        twin = copy.copy(self)
        twin.routes = [replace(state) for state in self.routes]
        twin.placed = dict(self.placed)
        twin.frozen = set(self.frozen)
        twin.blocked = set(self.blocked)
        return twin

    def cost(self, index: int) -> int:
        schedule = self.routes[index].schedule
        return schedule.cost if schedule is not None else 0

    def eligible(self, job: Job) -> list[int]:
        found = []
        for i, state in enumerate(self.routes):
            vehicle = state.vehicle
            if not job.skills <= vehicle.skills:
                continue
            reach = TimeWindow(vehicle.shift.start_s, vehicle.shift.end_s + vehicle.max_overtime_s)
            if job.windows and not any(w.overlaps(reach) for w in job.windows):
                continue
            found.append(i)
        return found

    def job_windows(self, job: Job) -> tuple[TimeWindow, ...] | None:
        """The job's windows narrowed by its pin and by prerequisites already placed."""
        windows = job.windows or (TimeWindow(0, self.problem.horizon_days * DAY_S),)
        if job.pin is not None and job.pin.start_s is not None:
            windows = tuple(w for w in windows if w.contains(job.pin.start_s))
            windows = tuple(TimeWindow(job.pin.start_s, job.pin.start_s) for _ in windows[:1])
        earliest = 0
        for dependency in job.after:
            if dependency.job_id not in {j.id for j in self.problem.jobs}:
                continue
            placed = self.placed.get(dependency.job_id)
            if placed is None:
                return None
            _, start, end = placed
            earliest = max(earliest, end)
            if dependency.lag_days:
                earliest = max(earliest, (start // DAY_S + dependency.lag_days) * DAY_S)
        clipped = tuple(
            TimeWindow(max(w.start_s, earliest), w.end_s) for w in windows if w.end_s >= earliest
        )
        return clipped or None

    def best_single(
        self, job: Job, windows: tuple[TimeWindow, ...], vehicles: list[int]
    ) -> Candidate | None:
        """The cheapest feasible position on `vehicles`, ties to the earlier vehicle and
        position."""
        if job.needs_pickup:
            return self._best_single_with_pickup(job, windows, vehicles)
        lead = Stop(VisitKind.JOB, job, job.place, job.duration_s, windows)
        found = self._cheapest(lead, vehicles)
        return None if found is None else Candidate(found[0], [found[1:]])

    def _cheapest(
        self, stop: Stop, vehicles: list[int], below: int | None = None
    ) -> tuple[int, int, list[Stop], Schedule] | None:
        """The cheapest feasible position for `stop` (a job's visit without pickup) on
        `vehicles`, ties to the earlier vehicle and position, as (cost added, route, its stops,
        its schedule); with `below`, only one that adds less than that.

        Positions are simulated in order of a lower bound on what they add
        (`_insertion_bounds`) until the bound passes the best found, and not at all where the
        stop would arrive after its windows, so on long routes and over a hundred technicians
        most positions are never simulated. The plans are the same as with every position
        simulated (`tests/test_construction.py`); the first plan of Solomon's R208 (25 jobs a
        route) took 0.23 s before and takes 0.03 s, that of the 1,000-job field-service day
        14.3 s before and 6.6 s.
        """
        bounds, order, positions, arrival = self._insertion_bounds(stop, vehicles)
        # Arriving after the last window closes is hopeless whatever comes after.
        hopeful = np.flatnonzero(arrival <= max((w.end_s for w in stop.windows), default=-1))
        ranked = hopeful[np.lexsort((positions[hopeful], order[hopeful], bounds[hopeful]))]
        best: tuple[int, int, list[Stop], Schedule] | None = None
        best_key = (0, 0)
        for k in ranked.tolist():
            bound = int(bounds[k])
            if (best is not None and bound > best[0]) or (below is not None and bound >= below):
                break
            r, i = vehicles[order[k]], int(positions[k])
            state = self.routes[r]
            stops = [*state.stops[:i], stop, *state.stops[i:]]
            schedule = simulate(self.problem, state.vehicle, stops)
            if schedule is None:
                continue
            added = schedule.cost - self.cost(r)
            key = (int(order[k]), i)
            if below is not None and added >= below:
                continue
            if best is None or (added, key) < (best[0], best_key):
                best, best_key = (added, r, stops, schedule), key
        return best

    def _insertion_bounds(
        self, stop: Stop, vehicles: list[int]
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
    ]:
        """For every position on `vehicles` (as vehicle order and position): no less than the
        cost `stop` adds there, and no later than it could arrive there.

        Travel and distance change by exactly the detour; a day used for the first time adds
        its fixed cost and a communicated job moved adds its stability cost. Overtime and
        preferred windows can only make it dearer, except that the stops after the new one
        shift and might lose lateness or earliness they are charged now, and the day might lose
        its overtime: the bound subtracts all of that, so it holds for any travel matrix. The
        arrival is the drive from the stop before, which leaves no earlier than its start plus
        its service (lunch only adds).
        """
        problem, weights = self.problem, self.problem.weights
        before: list[int] = []
        after: list[int] = []
        offset: list[int] = []
        order: list[int] = []
        positions: list[int] = []
        leaves: list[int] = []
        moved_from = None if stop.second_person else stop.job.previous_technician_day
        for k, r in enumerate(vehicles):
            state = self.routes[r]
            vehicle, schedule = state.vehicle, state.schedule
            places = [vehicle.start_place, *(s.place for s in state.stops), vehicle.end_place]
            size = len(places) - 1
            before += places[:-1]
            after += places[1:]
            order += [k] * size
            positions += range(size)
            fixed = 0 if state.stops else weights.technician_day_fixed
            if moved_from is not None and moved_from != vehicle.id:
                fixed += weights.moved_from_previous
            if schedule is None:  # no schedule to bound by: simulate these positions first
                offset += [-(2**40)] * size
                leaves += [-(2**40)] * size
                continue
            leaves.append(vehicle.shift.start_s)
            leaves += [
                t + held.service_s for held, t in zip(state.stops, schedule.starts, strict=True)
            ]
            overtime = _overtime_cost(vehicle, schedule.end_s, weights)
            # The preferred-window cost of the stops from each position on.
            charged = [0] * size
            for index in range(len(state.stops) - 1, -1, -1):
                held, start = state.stops[index], schedule.starts[index]
                charged[index] = _outside_preferred_cost(held, start, weights) + charged[index + 1]
            offset += [fixed - overtime - c for c in charged]
        prev, nxt = np.asarray(before, dtype=np.int64), np.asarray(after, dtype=np.int64)
        duration, distance = problem.duration_s, problem.distance_m
        place = stop.place
        detour_s = duration[prev, place] + duration[place, nxt] - duration[prev, nxt]
        detour_m = distance[prev, place] + distance[place, nxt] - distance[prev, nxt]
        # floor(a + b) >= floor(a) + floor(b): the distance term's rounding keeps the bound.
        bounds = (
            detour_s * weights.travel_per_s
            + detour_m * weights.per_km // 1000
            + np.asarray(offset, dtype=np.int64)
        )
        arrival = np.asarray(leaves, dtype=np.int64) + duration[prev, place]
        return (
            bounds,
            np.asarray(order, dtype=np.int64),
            np.asarray(positions, dtype=np.int64),
            arrival,
        )

    def _best_single_with_pickup(
        self, job: Job, windows: tuple[TimeWindow, ...], vehicles: list[int]
    ) -> Candidate | None:
        best: Candidate | None = None
        lead = Stop(VisitKind.JOB, job, job.place, job.duration_s, windows)
        for r in vehicles:
            state = self.routes[r]
            base = self.cost(r)
            for source in self._pickup_options(job, state):
                for stops in self._insertions(state.stops, lead, source):
                    schedule = simulate(self.problem, state.vehicle, stops)
                    if schedule is None:
                        continue
                    added = schedule.cost - base
                    if best is None or added < best.added_cost:
                        best = Candidate(added, [(r, stops, schedule)])
        return best

    def _pickup_options(self, job: Job, state: RouteState) -> list[PickupSource]:
        day = TimeWindow(state.vehicle.shift.start_s, state.vehicle.shift.end_s)
        return [s for s in job.pickup_sources if any(w.overlaps(day) for w in s.open_windows)]

    @staticmethod
    def _insertions(stops: list[Stop], lead: Stop, source: PickupSource) -> list[list[Stop]]:
        """Every position of a job with its pickup at `source` anywhere before it."""
        pickup = Stop(
            VisitKind.PICKUP,
            lead.job,
            source.place,
            source.service_s,
            _pickup_windows(source),
            source,
        )
        n = len(stops)
        return [
            [*stops[:i], pickup, *stops[i:j], lead, *stops[j:]]
            for i in range(n + 1)
            for j in range(i, n + 1)
        ]

    def best_pair(
        self, job: Job, windows: tuple[TimeWindow, ...], leads: list[int], vehicles: list[int]
    ) -> Candidate | None:
        """Two technicians of the same day, starting together: one of `leads` and another."""
        best: Candidate | None = None
        for r in leads:
            single = self.best_single(job, windows, [r])
            if single is None:
                continue
            _, stops, schedule = single.changes[0]
            lead_at = next(
                i for i, s in enumerate(stops) if s.kind is VisitKind.JOB and s.job is job
            )
            start = schedule.starts[lead_at]
            fixed = (TimeWindow(start, start),)
            day = self.routes[r].vehicle.day
            helper = Stop(VisitKind.JOB, job, job.place, job.duration_s, fixed, second_person=True)
            frozen_lead = [replace(s, windows=fixed) if s is stops[lead_at] else s for s in stops]
            lead_schedule = simulate(self.problem, self.routes[r].vehicle, frozen_lead)
            if lead_schedule is None:
                continue
            helpers = [h for h in vehicles if h != r and self.routes[h].vehicle.day == day]
            # Only a helper's position that beats the best pair so far is worth simulating.
            below = None if best is None else best.added_cost - single.added_cost
            found = self._cheapest(helper, helpers, below)
            if found is not None:
                added, h, candidate_stops, helper_schedule = found
                best = Candidate(
                    single.added_cost + added,
                    [(r, frozen_lead, lead_schedule), (h, candidate_stops, helper_schedule)],
                )
        return best

    def best_multi_day(
        self, job: Job, windows: tuple[TimeWindow, ...], leads: list[int], vehicles: list[int]
    ) -> Candidate | None:
        """The same technician on `job.days` consecutive horizon days, cheapest in total,
        starting on one of `leads`."""
        if job.crew_size >= 2:
            return None  # two-person multi-day jobs are not modelled yet (explain says so)
        by_key = {(s.vehicle.technician, s.vehicle.day): i for i, s in enumerate(self.routes)}
        allowed = set(vehicles)
        best: Candidate | None = None
        for first in leads:
            technician, day = self.routes[first].vehicle.technician, self.routes[first].vehicle.day
            chain = [by_key.get((technician, day + k)) for k in range(job.days)]
            if any(r is None or r not in allowed for r in chain):
                continue
            changes = []
            added = 0
            for k, r in enumerate(chain):
                assert r is not None
                vehicle = self.routes[r].vehicle
                part_windows = (
                    windows
                    if k == 0
                    else (
                        TimeWindow(
                            vehicle.shift.start_s, vehicle.shift.end_s + vehicle.max_overtime_s
                        ),
                    )
                )
                part = self.best_single(
                    replace(job, needs_pickup=job.needs_pickup and k == 0), part_windows, [r]
                )
                if part is None:
                    break
                added += part.added_cost
                changes.extend(part.changes)
            else:
                if best is None or added < best.added_cost:
                    best = Candidate(added, changes)
        return best

    def best_for(
        self, job: Job, windows: tuple[TimeWindow, ...], vehicles: list[int]
    ) -> Candidate | None:
        """The cheapest way to place the job on `vehicles`; a pin fixes where its first (or
        only) visit goes, while a second person or the later days may go elsewhere."""
        pin = job.pin
        leads = [
            r for r in vehicles if pin is None or self.routes[r].vehicle.id == pin.technician_day
        ]
        if job.days > 1:
            return self.best_multi_day(job, windows, leads, vehicles)
        if job.crew_size >= 2:
            return self.best_pair(job, windows, leads, vehicles)
        return self.best_single(job, windows, leads)

    def place(self, job: Job, candidate: Candidate, freeze: bool) -> None:
        for r, stops, schedule in candidate.changes:
            state = self.routes[r]
            if freeze:
                stops = [
                    replace(s, windows=(TimeWindow(t, t),))
                    if s.job.id == job.id and s.kind is VisitKind.JOB
                    else s
                    for s, t in zip(stops, schedule.starts, strict=True)
                ]
            state.stops = stops
            state.schedule = schedule
            lunch_s = state.vehicle.lunch.duration_s if state.vehicle.lunch else 0
            for k, (s, t) in enumerate(zip(stops, schedule.starts, strict=True)):
                if s.job.id == job.id and s.kind is VisitKind.JOB and not s.second_person:
                    first = self.placed.get(job.id)
                    if first is None or t < first[1]:
                        self.placed[job.id] = (r, t, schedule.stop_end(k, s.service_s, lunch_s))


def _order(problem: Problem) -> list[Job]:
    """Prerequisites first; then promised and high-penalty jobs; then the hardest to place."""
    weights = problem.weights
    ids = {j.id for j in problem.jobs}
    depth: dict[str, int] = {}

    def level(job: Job, seen: frozenset[str] = frozenset()) -> int:
        if job.id in depth:
            return depth[job.id]
        parents = [d.job_id for d in job.after if d.job_id in ids and d.job_id not in seen]
        value = 1 + max((level(problem.job(p), seen | {job.id}) for p in parents), default=-1)
        depth[job.id] = value
        return value

    return sorted(
        problem.jobs,
        key=lambda j: (
            level(j),
            -weights.unplanned_penalty(j),
            -j.crew_size,
            -(j.duration_s + (1800 if j.needs_pickup else 0)),
            j.id,
        ),
    )


def build_greedy(problem: Problem) -> tuple[Builder, set[str]]:
    """Every job, hardest first, at its cheapest feasible place; returns what did not fit."""
    builder = Builder(problem)
    dependents = {d.job_id for j in problem.jobs for d in j.after}
    unplaced: set[str] = set()
    # A job pinned to position k can only go in once k jobs are ahead of it: it is tried
    # again after every placement, and what is still out at the end stays out.
    waiting: list[Job] = []

    def placed(job: Job) -> bool:
        windows = builder.job_windows(job)
        vehicles = builder.eligible(job)
        candidate = None
        if windows is not None and vehicles:
            candidate = builder.best_for(job, windows, vehicles)
        if candidate is None or candidate.added_cost >= problem.weights.unplanned_penalty(job):
            return False
        builder.place(job, candidate, freeze=job.id in dependents or job.crew_size >= 2)
        return True

    for job in _order(problem):
        if placed(job):
            waiting = [j for j in waiting if not placed(j)]
        elif job.pin is not None and job.pin.position:
            waiting.append(job)
        else:
            unplaced.add(job.id)
    unplaced.update(j.id for j in waiting)
    return builder, unplaced


def construct(problem: Problem) -> Plan:
    builder, unplaced = build_greedy(problem)
    return to_plan(problem, builder, sorted(unplaced))


def to_plan(problem: Problem, builder: Builder, unplaced: list[str]) -> Plan:
    from optimizer.explain import explain_unplanned

    routes = []
    objective = 0
    for state in builder.routes:
        schedule = state.schedule
        if not state.stops or schedule is None:
            continue
        objective += schedule.cost
        routes.append(_route(problem, state.vehicle, state.stops, schedule))
    reasons = explain_unplanned(problem, unplaced)
    objective += sum(problem.weights.unplanned_penalty(problem.job(j)) for j in unplaced)
    return Plan(
        routes=tuple(routes),
        unplanned=tuple(Unplanned(j, reasons[j]) for j in unplaced),
        objective=objective,
        status="constructed",
    )


def _route(
    problem: Problem, vehicle: TechnicianDay, stops: list[Stop], schedule: Schedule
) -> Route:
    visits: list[Visit] = []
    lunch = vehicle.lunch
    lunch_visit = (
        Visit(
            VisitKind.BREAK,
            schedule.lunch_start,
            schedule.lunch_start,
            schedule.lunch_start + lunch.duration_s,
        )
        if lunch is not None and schedule.lunch_start is not None
        else None
    )
    lunch_s = lunch.duration_s if lunch is not None else 0
    for index, (stop, start, arrival) in enumerate(
        zip(stops, schedule.starts, schedule.arrivals, strict=True)
    ):
        if lunch_visit is not None and lunch_visit.start_s < start and lunch_visit not in visits:
            visits.append(lunch_visit)
        kind = stop.kind
        visits.append(
            Visit(
                kind,
                arrival,
                start,
                schedule.stop_end(index, stop.service_s, lunch_s),
                stop.job.id,
                stop.source.site if stop.source else None,
                stop.place,
                stop.second_person,
            )
        )
    if lunch_visit is not None and lunch_visit not in visits:
        visits.append(lunch_visit)
    return Route(
        vehicle.id,
        tuple(visits),
        vehicle.shift.start_s,
        schedule.end_s,
        schedule.travel_s,
        schedule.distance_m,
    )
