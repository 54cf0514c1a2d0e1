"""How long work really takes: the spread of every planned duration, learnt from the day's
reports, and the promise protection the engine plans with.

A planned duration is one number from the catalogue; the work it stands for takes longer on
some days and less on others. The engine protects promises against that spread
(`optimizer.protection`), so each job goes to the engine with the log-normal spread of its
kind and product. Each report of work done (after a report of it started) adds a sample
`ln(actual / planned)` to its group; the group's spread is re-estimated robustly from its
latest samples (median and median absolute deviation, so that a job left running over a
weekend does not make every day look uncertain) and drawn towards the documented prior of its
kind by `PRIOR_REPORTS` pseudo-reports, so a few dozen reports are enough and none is needed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.catalogue import JobKind, Product
from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.jobs import Job, JobStatus, JobStatusChange
from fieldplan.orders import OrderLine
from fieldplan.settings import get_settings
from optimizer.protection import Protection

# Log-normal spread of a duration before any report (documented in README: Promises): a
# measuring visit varies least, repairs most (what is broken is found on site).
PRIOR_LOG_SD = {
    JobKind.MEASURE: 0.20,
    JobKind.DELIVERY: 0.25,
    JobKind.INSTALLATION: 0.30,
    JobKind.REPAIR: 0.35,
}
PRIOR_REPORTS = 12  # the prior weighs as much as this many reports
SAMPLES = 200  # the latest reports of a group that its estimate reads
_MAD_TO_SD = 1.4826  # a normal distribution's standard deviation per median absolute deviation
_Z80 = 0.8416


class DurationSpread(Base):
    """The learnt spread of one kind of work for one product category ("" for any)."""

    __tablename__ = "duration_spreads"
    __table_args__ = (UniqueConstraint("kind", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40), default="")
    reports: Mapped[int] = mapped_column(Integer, default=0)
    median_log_ratio: Mapped[float] = mapped_column(Float, default=0.0)
    log_sd: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class Spread:
    """A group's spread as the engine uses it, and what a planner reads of it."""

    kind: JobKind
    category: str
    reports: int
    median_log_ratio: float
    log_sd: float

    def within(self, planned_min: int, share: float = 0.8) -> int:
        """Minutes within which `share` of such jobs are done."""
        z = statistics.NormalDist().inv_cdf(share)
        return round(planned_min * math.exp(self.median_log_ratio + z * self.log_sd))


def prior(kind: JobKind, category: str = "") -> Spread:
    return Spread(kind, category, 0, 0.0, PRIOR_LOG_SD[kind])


def estimate(kind: JobKind, category: str, log_ratios: list[float]) -> Spread:
    """The robust spread of these samples, drawn towards the kind's prior."""
    n = len(log_ratios)
    if n == 0:
        return prior(kind, category)
    median = statistics.median(log_ratios)
    mad = statistics.median(abs(r - median) for r in log_ratios)
    observed = _MAD_TO_SD * mad
    k, sd0 = PRIOR_REPORTS, PRIOR_LOG_SD[kind]
    log_sd = math.sqrt((n * observed**2 + k * sd0**2) / (n + k))
    return Spread(kind, category, n, n * median / (n + k), log_sd)


def category_of(session: Session, job: Job) -> str:
    if job.order_line_id is None:
        return ""
    line = session.get(OrderLine, job.order_line_id)
    product = session.get(Product, line.product_sku) if line is not None else None
    return product.category if product is not None else ""


def record_done(session: Session, job: Job) -> Spread | None:
    """Re-estimate the spread of the job's group now that it is done (None: its work was
    never reported started, or it lasted days)."""
    if job.days != 1:
        return None
    category = category_of(session, job)
    samples = _samples(session, job.kind, category)
    if not samples:
        return None
    spread = estimate(job.kind, category, samples)
    row = session.scalar(
        select(DurationSpread).where(
            DurationSpread.kind == job.kind, DurationSpread.category == category
        )
    )
    if row is None:
        row = DurationSpread(kind=job.kind, category=category, log_sd=spread.log_sd)
        session.add(row)
    row.reports, row.median_log_ratio, row.log_sd = (
        spread.reports,
        spread.median_log_ratio,
        spread.log_sd,
    )
    row.updated_at = utcnow()
    session.flush()
    return spread


def _samples(session: Session, kind: JobKind, category: str) -> list[float]:
    """`ln(actual / planned)` of the group's latest jobs reported started and then done."""
    started, done = JobStatusChange.__table__.alias("started"), JobStatusChange.__table__.alias()
    rows = session.execute(
        select(Job.id, Job.duration_min, started.c.at, done.c.at)
        .join(started, started.c.job_id == Job.id)
        .join(done, done.c.job_id == Job.id)
        .outerjoin(OrderLine, OrderLine.id == Job.order_line_id)
        .outerjoin(Product, Product.sku == OrderLine.product_sku)
        .where(
            Job.kind == kind,
            Job.days == 1,
            Job.duration_min > 0,
            func.coalesce(Product.category, "") == category,
            started.c.to_status == JobStatus.IN_PROGRESS,
            done.c.to_status == JobStatus.DONE,
        )
        .order_by(done.c.at.desc(), Job.id)
        .limit(SAMPLES * 2)
    ).all()
    samples: list[float] = []
    seen: set[int] = set()
    for job_id, planned_min, began, ended in rows:
        if job_id in seen:
            continue  # reported started twice: its first pairing is its latest
        seen.add(job_id)
        actual_s = (_aware(ended) - _aware(began)).total_seconds()
        if actual_s > 0:
            samples.append(math.log(actual_s / (planned_min * 60)))
    return samples[:SAMPLES]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


def spreads(session: Session) -> dict[tuple[JobKind, str], Spread]:
    """Every learnt group; a job whose group has no row takes its kind's prior."""
    return {
        (JobKind(r.kind), r.category): Spread(
            JobKind(r.kind), r.category, r.reports, r.median_log_ratio, r.log_sd
        )
        for r in session.scalars(select(DurationSpread))
    }


def spread_for(known: dict[tuple[JobKind, str], Spread], kind: JobKind, category: str) -> Spread:
    return known.get((kind, category)) or prior(kind, category)


def protection() -> Protection | None:
    """What the engine protects promises with: `FIELDPLAN_PROMISE_TARGET` (0 turns it off)
    and the documented leg spread (legs are not reported yet, so it is the prior alone)."""
    target = get_settings().promise_target
    return Protection(target=target) if target > 0 else None
