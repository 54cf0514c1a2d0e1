"""Days driven event by event, with and without the product's re-planning of a late day.

`benchmarks.promises` drives every route on its own (vectorised over executions); re-planning
moves jobs between routes while the day goes, so here each execution is simulated in time
order over all technicians of a day. The re-planning is the product's rule
(`fieldplan.day_events`): when a technician finishes a job, the rest of their day is projected
with planned durations; the first promise it would miss goes to the colleague who can still
start it inside its window (and no earlier than now) for the least extra driving without
pushing any of their own promises out, and the projection is made again. Two-person jobs,
multi-day jobs and jobs with a part to pick up stay where they are, as in the product.

Both modes draw the same noise: a job's factor per execution, and a leg's per execution and
pair of places, so the difference between them is the re-planning alone.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

from optimizer import Job, Plan, Problem, TechnicianDay, Visit, VisitKind

NEAREST_COLLEAGUES = 8  # asked in order of distance to the job


@dataclass
class Step:
    kind: VisitKind
    job_id: str
    place: int
    planned_s: int  # on site as planned (a lunch taken inside included)
    work_s: int  # of which work that varies
    opens: int  # may not start before (a window, opening hours, lunch's earliest)
    closes: int | None  # the promise's end, for a promised job's lead visit
    crew: bool = False
    movable: bool = False  # may be handed to a colleague


@dataclass
class Technician:
    vehicle: TechnicianDay
    steps: list[Step]
    t: float
    place: int
    waiting_for: str | None = None  # a two-person job, until the other arrives
    done: bool = False


@dataclass
class Noise:
    duration_log_sd: float
    leg_log_sd: float
    common_share: float
    holdup_rate: float
    holdup_s: tuple[float, float]


@dataclass
class Outcome:
    kept: int = 0
    promised: int = 0
    handed: int = 0
    late_by_job: dict[str, float] = field(default_factory=dict)


def steps_of(problem: Problem, plan: Plan) -> dict[str, list[Step]]:
    jobs = {j.id: j for j in problem.jobs}
    vehicles = {v.id: v for v in problem.technician_days}
    first_day = {
        job_id: min(vehicles[t].day for t, _ in served)
        for job_id, served in plan.job_visits().items()
    }
    routes: dict[str, list[Step]] = {}
    for route in plan.routes:
        vehicle = vehicles[route.technician_day]
        steps: list[Step] = []
        previous = None
        for v in route.visits:
            if v.kind is VisitKind.BREAK:
                inside = previous is not None and previous.start_s <= v.start_s < previous.end_s
                if not inside and vehicle.lunch is not None:
                    steps.append(
                        Step(
                            VisitKind.BREAK,
                            "",
                            -1,
                            vehicle.lunch.duration_s,
                            0,
                            vehicle.lunch.earliest_start_s,
                            None,
                        )
                    )
                continue
            job = jobs[v.job_id or ""]
            previous = v
            if v.kind is VisitKind.PICKUP:
                opens = pickup_opens(job, v)
                on_site = v.end_s - v.start_s
                steps.append(Step(v.kind, job.id, v.place or 0, on_site, on_site, opens, None))
                continue
            window = next((w for w in job.windows if w.start_s <= v.start_s <= w.end_s), None)
            lead = not v.second_person and first_day.get(job.id) == vehicle.day
            steps.append(
                Step(
                    v.kind,
                    job.id,
                    v.place or 0,
                    v.end_s - v.start_s,
                    job.duration_s,
                    window.start_s if window is not None else 0,
                    window.end_s if window is not None and lead and job.promised else None,
                    crew=job.crew_size >= 2,
                    movable=_movable(job) and lead,
                )
            )
        routes[route.technician_day] = steps
    return routes


def pickup_opens(job: Job, visit: Visit) -> int:
    """When the site of a planned pickup opened that day: the pickup cannot start before."""
    return min(
        w.start_s
        for s in job.pickup_sources
        if s.site == visit.site
        for w in s.open_windows
        if w.start_s <= visit.start_s <= w.end_s
    )


def _movable(job: Job) -> bool:
    return job.promised and job.crew_size == 1 and job.days == 1 and not job.needs_pickup


class _Day:
    """One execution of one day: every technician of it, event by event."""

    def __init__(
        self,
        problem: Problem,
        technicians: list[Technician],
        job_factor: dict[str, float],
        leg_seed: int,
        noise: Noise,
        replan: bool,
    ) -> None:
        self.problem, self.technicians = problem, technicians
        self.job_factor, self.leg_seed, self.noise = job_factor, leg_seed, noise
        self.leg: dict[tuple[int, int], tuple[float, float]] = {}
        self.replan = replan
        self.crew_arrivals: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.outcome = Outcome()

    def drive(self, a: int, b: int) -> float:
        planned = float(self.problem.duration_s[a, b])
        key = (a, b)
        if key not in self.leg:  # the same leg draws the same in both modes
            noise, rng = self.noise, random.Random(hash((self.leg_seed, a, b)))
            held = rng.uniform(*noise.holdup_s) if rng.random() < noise.holdup_rate else 0.0
            self.leg[key] = math.exp(rng.gauss(0, noise.leg_log_sd)), held
        factor, held = self.leg[key]
        return planned * factor + held

    def run(self) -> Outcome:
        queue = [(tech.t, k) for k, tech in enumerate(self.technicians)]
        heapq.heapify(queue)
        while queue:
            _, k = heapq.heappop(queue)
            tech = self.technicians[k]
            if tech.done or tech.waiting_for is not None:
                continue
            if not tech.steps:
                tech.done = True
                continue
            self._step(k, tech, queue)
        return self.outcome

    def _step(self, k: int, tech: Technician, queue: list[tuple[float, int]]) -> None:
        step = tech.steps[0]
        if step.kind is VisitKind.BREAK:
            tech.steps.pop(0)
            tech.t = max(tech.t, step.opens) + step.planned_s
            heapq.heappush(queue, (tech.t, k))
            return
        arrival = tech.t + self.drive(tech.place, step.place)
        tech.place = step.place
        start = max(arrival, step.opens)
        if step.crew:
            arrivals = self.crew_arrivals[step.job_id]
            arrivals.append((k, arrival))
            if len(arrivals) < 2:
                tech.t, tech.waiting_for = arrival, step.job_id
                return  # until the other one comes
            (other, other_arrival), _ = arrivals
            start = max(start, other_arrival)
            partner = self.technicians[other]
            partner.waiting_for = None
            self._finish(other, partner, partner.steps[0], start, queue)
        self._finish(k, tech, step, start, queue)

    def _finish(
        self, k: int, tech: Technician, step: Step, start: float, queue: list[tuple[float, int]]
    ) -> None:
        tech.steps.pop(0)
        if step.closes is not None:
            self.outcome.promised += 1
            late = start - step.closes
            self.outcome.late_by_job[step.job_id] = late
            self.outcome.kept += late <= 0
        factor = self.job_factor.get(step.job_id, 1.0)
        tech.t = start + step.work_s * factor + (step.planned_s - step.work_s)
        if self.replan:
            self._save(k, tech)
        heapq.heappush(queue, (tech.t, k))

    def _projected(self, steps: list[Step], t: float, place: int) -> list[float]:
        """Planned starts of `steps` from `t` at `place` (planned legs and durations)."""
        starts = []
        for step in steps:
            if step.kind is VisitKind.BREAK:
                starts.append(t)
                t = max(t, step.opens) + step.planned_s
                continue
            t += float(self.problem.duration_s[place, step.place])
            place = step.place
            t = max(t, step.opens)
            starts.append(t)
            t += step.planned_s
        return starts

    def _missed(self, steps: list[Step], t: float, place: int) -> list[int]:
        starts = self._projected(steps, t, place)
        return [
            i
            for i, (step, start) in enumerate(zip(steps, starts, strict=True))
            if step.closes is not None and start > step.closes
        ]

    def _save(self, k: int, tech: Technician) -> None:
        tried: set[str] = set()
        while True:
            saveable = [
                i
                for i in self._missed(tech.steps, tech.t, tech.place)
                if tech.steps[i].movable and tech.steps[i].job_id not in tried
            ]
            if not saveable:
                return  # what is still missed stays, and is flagged
            step = tech.steps[saveable[0]]
            tried.add(step.job_id)
            if self._hand(k, tech, step):
                tech.steps.remove(step)
                self.outcome.handed += 1

    def _hand(self, k: int, tech: Technician, step: Step) -> bool:
        duration = self.problem.duration_s
        colleagues = sorted(
            (float(duration[c.place, step.place]), m)
            for m, c in enumerate(self.technicians)
            if m != k and not c.done and c.waiting_for is None
        )
        best: tuple[float, int, int] | None = None
        for _, m in colleagues[:NEAREST_COLLEAGUES]:
            other = self.technicians[m]
            for at in range(len(other.steps) + 1):
                trial = [*other.steps[:at], step, *other.steps[at:]]
                begins = self._projected(trial, other.t, other.place)[at]
                if not tech.t <= begins <= (step.closes or 0):
                    continue
                if self._missed(trial, other.t, other.place):
                    continue
                prev = next(
                    (s.place for s in reversed(other.steps[:at]) if s.place >= 0), other.place
                )
                nxt = next((s.place for s in other.steps[at:] if s.place >= 0), None)
                extra = float(duration[prev, step.place])
                if nxt is not None:
                    extra += float(duration[step.place, nxt]) - float(duration[prev, nxt])
                if best is None or extra < best[0]:
                    best = (extra, m, at)
        if best is None:
            return False
        _, m, at = best
        self.technicians[m].steps.insert(at, step)
        return True


def drive_days(
    problem: Problem, plan: Plan, noise: Noise, runs: int, seed: int, *, replan: bool
) -> Outcome:
    """Every day of the plan, `runs` times; the outcome summed over all of them."""
    steps = steps_of(problem, plan)
    vehicles = {v.id: v for v in problem.technician_days}
    days: dict[int, list[str]] = defaultdict(list)
    for route_id in steps:
        days[vehicles[route_id].day].append(route_id)
    total = Outcome()
    sd_common = noise.duration_log_sd * math.sqrt(noise.common_share)
    sd_own = noise.duration_log_sd * math.sqrt(1 - noise.common_share)
    lead_route = {
        s.job_id: route_id
        for route_id, route in steps.items()
        for s in route
        if s.kind is not VisitKind.BREAK and s.closes is not None
    }
    for run in range(runs):
        rng = random.Random(seed * 100_003 + run)
        common = {route_id: rng.gauss(0, sd_common) for route_id in sorted(steps)}
        job_factor = {
            j.id: math.exp(rng.gauss(0, sd_own) + common.get(lead_route.get(j.id, ""), 0.0))
            for j in problem.jobs
        }
        for day in sorted(days):
            technicians = [
                Technician(
                    vehicles[r],
                    list(steps[r]),
                    float(vehicles[r].shift.start_s),
                    vehicles[r].start_place,
                )
                for r in sorted(days[day])
            ]
            leg_seed = seed * 7_919 + run * 31 + day
            outcome = _Day(problem, technicians, job_factor, leg_seed, noise, replan).run()
            total.kept += outcome.kept
            total.promised += outcome.promised
            total.handed += outcome.handed
    return total
