"""Optimisation runs as rows: what any API process reads, and what the worker reports to.

A run is started by writing its row; whoever executes it (a thread of the API process by
default, a queue's worker in production) calls `execute` with its id. The executor writes its
progress (best cost over time) and a heartbeat in short transactions of their own, looks for a
cancel request between rounds of the search, and finishes the row: done with the plans it
saved, cancelled (nothing saved), or failed with the reason. The region is read in one short
transaction, the search runs with no transaction open, and the result is written in a second
one that checks the region's revision. A run whose executor stopped beating is reported
failed, so no run stays "running" for ever after its process died.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

import optimizer
from fieldplan.db import Base, UTCDateTime, reading, unit_of_work, utcnow
from fieldplan.optimisation import PlanOutdated, plan_region
from fieldplan.regions import Region
from fieldplan.travel import TravelTimes

HEARTBEAT_S = 1.0  # how often a running search reports and looks for a cancel request
STALE_AFTER = timedelta(seconds=60)  # no beat for this long: its process stopped
STEADY_BEAT_S = 10.0  # the beat a run keeps whatever it is doing
# A run whose worker died is delivered again: carried out once more from scratch, then failed.
MAX_ATTEMPTS = 2


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class OptimisationRun(Base):
    __tablename__ = "optimisation_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    time_limit_s: Mapped[float] = mapped_column(Float)
    today: Mapped[date] = mapped_column(Date)
    started_by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The region's revision the run read: a change after it makes the save refuse.
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[RunStatus] = mapped_column(String(16), default=RunStatus.RUNNING)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # [[seconds since the start, best cost], ...]: how the cost fell.
    best_costs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    plan_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    unplanned: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # How many times an executor took it up (`claim`).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at or utcnow()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def outcome(self) -> tuple[RunStatus, str | None]:
        """Status and error as they stand: a run whose executor stopped beating has failed
        (its process died), whatever its row last said. A run no executor has taken up yet
        is waiting on the queue for a worker, however long that takes."""
        if self.status == RunStatus.RUNNING and self.attempts > 0 and _stale(self):
            return RunStatus.FAILED, "the process running it stopped: start it again"
        return self.status, self.error

    @property
    def progress(self) -> float:
        if self.outcome[0] != RunStatus.RUNNING:
            return 1.0
        if self.attempts == 0:
            return 0.0  # waiting for a worker
        return min(0.99, self.elapsed_s / max(self.time_limit_s, 0.001))

    @property
    def best_cost(self) -> int | None:
        return min(int(cost) for _, cost in self.best_costs) if self.best_costs else None


def start(
    session: Session,
    region: Region,
    first_day: date,
    days: int,
    time_limit_s: float,
    *,
    today: date,
    started_by: str,
) -> OptimisationRun:
    run = OptimisationRun(
        id=uuid.uuid4().hex,
        region_id=region.id,
        first_day=first_day,
        days=days,
        time_limit_s=time_limit_s,
        today=today,
        started_by=started_by,
        status=RunStatus.RUNNING,
        cancel_requested=False,
        best_costs=[],
        plan_ids=[],
    )
    session.add(run)
    session.flush()
    return run


def _stale(run: OptimisationRun) -> bool:
    return utcnow() - run.beat_at > STALE_AFTER


def claim(sessions: sessionmaker[Session], run_id: str) -> bool:
    """Take up a run to carry it out; False when there is nothing to do. A run that has
    ended (the queue delivered it again after it finished, or it was cancelled) is left as
    it is. A run taken up before was begun by an executor that died: it starts again from
    scratch, once; the time after that it is failed with the reason, so a run that kills its
    worker cannot go round the workers for ever."""
    with unit_of_work(sessions) as session:
        run = session.get(OptimisationRun, run_id)
        if run is None or run.status != RunStatus.RUNNING:
            return False
        run.attempts += 1
        run.beat_at = utcnow()
        if run.attempts > MAX_ATTEMPTS:
            run.status = RunStatus.FAILED
            run.error = f"the worker carrying it out stopped {MAX_ATTEMPTS} times: start it again"
            run.finished_at = run.beat_at
            return False
        run.best_costs = []  # what a dead attempt reported is no part of this one
        return True


def request_cancel(session: Session, run: OptimisationRun) -> None:
    """Ask the executor to stop; it looks between rounds and saves nothing. A run no
    executor has taken up yet ends here (one that takes it up later finds it ended)."""
    if run.status == RunStatus.RUNNING:
        run.cancel_requested = True
        if run.attempts == 0:
            run.status = RunStatus.CANCELLED
            run.finished_at = utcnow()
        session.flush()


@dataclass
class _Reporter:
    """The executor's side: progress and heartbeats written in transactions of their own,
    at most every HEARTBEAT_S, and the cancel request read back at the same pace."""

    sessions: sessionmaker[Session]
    run_id: str
    started: float
    pending: list[list[float]]
    last_beat: float = 0.0
    cancelled: bool = False
    revision: int | None = None  # of the region, as the run read it
    guard: threading.Lock = field(default_factory=threading.Lock)

    def progress(self, found: optimizer.Progress) -> None:
        self.pending.append([round(time.monotonic() - self.started, 2), found.objective])
        self.beat()

    def beat(self, *, force: bool = False) -> None:
        with self.guard:  # the search's thread and the steady beat's
            now = time.monotonic()
            if not force and now - self.last_beat < HEARTBEAT_S:
                return
            self.last_beat = now
            with unit_of_work(self.sessions) as session:
                run = session.get_one(OptimisationRun, self.run_id)
                run.beat_at = utcnow()
                # Taken before it is read: a point the search adds meanwhile goes to the next.
                reported, self.pending = self.pending, []
                if reported:
                    run.best_costs = [*run.best_costs, *reported]
                self.cancelled = self.cancelled or run.cancel_requested

    def keep_beating(self, stop: threading.Event) -> None:
        """Beat on while the run reads, builds its first plan and saves, when the search
        calls nobody: a big region spends minutes there, longer than `STALE_AFTER`."""
        while not stop.wait(STEADY_BEAT_S):
            self.beat(force=True)

    def clock(self) -> float:
        """The search's clock: it jumps to infinity once a cancel was asked for, so every
        deadline of the search has passed and it stops at its next look."""
        self.beat()
        return float("inf") if self.cancelled else time.monotonic()


def execute(
    sessions: sessionmaker[Session],
    run_id: str,
    travel: TravelTimes,
) -> None:
    """Carry out a started run to its end; every outcome is written on the run's row."""
    reporter = _Reporter(sessions, run_id, time.monotonic(), [])
    outcome: dict[str, Any] = {}
    stop = threading.Event()
    steady = threading.Thread(target=reporter.keep_beating, args=(stop,), daemon=True)
    steady.start()
    try:
        with unit_of_work(sessions) as session:
            reading(session)
            run = session.get_one(OptimisationRun, run_id)
            region = session.get_one(Region, run.region_id)
            reporter.revision = region.revision
            limits = optimizer.Limits(
                time_limit_s=run.time_limit_s, clock=reporter.clock, workers=1
            )
            saved = plan_region(
                session,
                region,
                run.first_day,
                run.days,
                travel,
                limits,
                actor=f"{run.started_by} (optimisation)",
                on_progress=reporter.progress,
                today=run.today,
                solve_outside_transaction=True,
                before_save=lambda: _refuse_if_cancelled(reporter),
            )
            outcome = {
                "status": RunStatus.DONE,
                "plan_ids": [p.id for p in saved.plans],
                "unplanned": len(saved.unplanned),
            }
    except _Cancelled:
        outcome = {"status": RunStatus.CANCELLED}
    except PlanOutdated as outdated:
        # A cancelled run that a change overtook is still just cancelled: it saved nothing
        # either way.
        reporter.beat(force=True)
        outcome = (
            {"status": RunStatus.CANCELLED}
            if reporter.cancelled
            else {"status": RunStatus.FAILED, "error": str(outdated)}
        )
    except Exception as exc:  # reported on the run, never lost in a thread
        outcome = {"status": RunStatus.FAILED, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        stop.set()
        steady.join()
    _finish(sessions, run_id, reporter, outcome)


class _Cancelled(Exception):
    pass


def _refuse_if_cancelled(reporter: _Reporter) -> None:
    reporter.beat(force=True)
    if reporter.cancelled:
        raise _Cancelled  # nothing of a cancelled run is saved


def _finish(
    sessions: sessionmaker[Session],
    run_id: str,
    reporter: _Reporter,
    outcome: dict[str, Any],
) -> None:
    with unit_of_work(sessions) as session:
        run = session.get_one(OptimisationRun, run_id)
        run.best_costs = [*run.best_costs, *reporter.pending]
        run.status = outcome["status"]
        run.plan_ids = outcome.get("plan_ids", [])
        run.unplanned = outcome.get("unplanned", 0)
        run.error = outcome.get("error")
        run.revision = reporter.revision
        run.finished_at = run.beat_at = utcnow()
