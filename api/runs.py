"""Optimisations that run in the background: progress, best cost so far, cancel.

A run plans a region's days in a thread of this process with its own database session; the
engine's clock is wrapped so that cancelling makes every deadline pass at once. Runs live in
memory: a restart forgets them (the plans they saved stay).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

import optimizer
from fieldplan.db import reading, unit_of_work
from fieldplan.optimisation import PlanOutdated, plan_region
from fieldplan.regions import Region
from fieldplan.travel import TravelTimes


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class _Cancelled(Exception):
    pass


class CancellableClock:
    """Monotonic time that jumps to infinity once cancelled, so every deadline has passed."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def __call__(self) -> float:
        return float("inf") if self.cancelled.is_set() else time.monotonic()


@dataclass
class Run:
    id: str
    region_id: int
    first_day: date
    days: int
    time_limit_s: float
    today: date
    started: float = field(default_factory=time.monotonic)
    status: RunStatus = RunStatus.RUNNING
    best_costs: list[int] = field(default_factory=list)
    plan_ids: list[int] = field(default_factory=list)
    unplanned: int = 0
    error: str | None = None
    clock: CancellableClock = field(default_factory=CancellableClock)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def progress(self) -> float:
        if self.status is not RunStatus.RUNNING:
            return 1.0
        return min(0.99, self.elapsed_s / max(self.time_limit_s, 0.001))


class Runs:
    def __init__(self, sessions: sessionmaker[Session], travel: TravelTimes) -> None:
        self.sessions = sessions
        self.travel = travel
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def start(
        self, region_id: int, first_day: date, days: int, time_limit_s: float, today: date
    ) -> Run:
        run = Run(uuid.uuid4().hex, region_id, first_day, days, time_limit_s, today)
        with self._lock:
            self._runs[run.id] = run
        threading.Thread(target=self._work, args=(run,), daemon=True).start()
        return run

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def cancel(self, run_id: str) -> Run | None:
        run = self.get(run_id)
        if run is not None and run.status is RunStatus.RUNNING:
            run.clock.cancelled.set()
        return run

    def _work(self, run: Run) -> None:
        limits = optimizer.Limits(time_limit_s=run.time_limit_s, clock=run.clock, workers=1)
        try:
            with unit_of_work(self.sessions) as session:
                # Not holding SQLite's write lock through the solve: a change meanwhile makes
                # the save refuse (PlanOutdated), as on PostgreSQL.
                reading(session)
                region = session.get_one(Region, run.region_id)
                saved = plan_region(
                    session,
                    region,
                    run.first_day,
                    run.days,
                    self.travel,
                    limits,
                    actor="planner:optimisation",
                    on_progress=lambda p: run.best_costs.append(p.objective),
                    today=run.today,
                )
                if run.clock.cancelled.is_set():
                    raise _Cancelled  # nothing of a cancelled run is saved
                run.plan_ids = [p.id for p in saved.plans]
                run.unplanned = len(saved.unplanned)
            run.status = RunStatus.DONE
        except _Cancelled:
            run.status = RunStatus.CANCELLED
        except PlanOutdated as outdated:
            # A cancelled run that a change overtook is still just cancelled: it saved nothing
            # either way (on SQLite any write meanwhile, the cancel's own request included,
            # makes the save refuse before the cancellation is looked at).
            if run.clock.cancelled.is_set():
                run.status = RunStatus.CANCELLED
            else:
                run.status, run.error = RunStatus.FAILED, str(outdated)
        except Exception as exc:  # reported on the run, never lost in a thread
            run.status, run.error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
