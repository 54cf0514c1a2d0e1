"""Jobs: the work an order creates, with their dependencies, parts and status history."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from fieldplan.catalogue import JobKind
from fieldplan.customers import Customer
from fieldplan.db import Base, UTCDateTime, utcnow


class JobStatus(StrEnum):
    NEW = "new"
    OFFERED = "offered"
    BOOKED = "booked"
    PLANNED = "planned"
    EN_ROUTE = "en_route"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    FOLLOW_UP_NEEDED = "follow_up_needed"
    CANCELLED = "cancelled"


# Which status may follow which. A failed or follow-up job stays as it is: the work that is
# still owed becomes a new job, so the history of the first visit is never rewritten.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.NEW: frozenset(
        {JobStatus.OFFERED, JobStatus.BOOKED, JobStatus.PLANNED, JobStatus.CANCELLED}
    ),
    JobStatus.OFFERED: frozenset({JobStatus.NEW, JobStatus.BOOKED, JobStatus.CANCELLED}),
    JobStatus.BOOKED: frozenset(
        {JobStatus.NEW, JobStatus.OFFERED, JobStatus.PLANNED, JobStatus.CANCELLED}
    ),
    JobStatus.PLANNED: frozenset(
        {
            JobStatus.BOOKED,
            JobStatus.NEW,
            JobStatus.EN_ROUTE,
            JobStatus.IN_PROGRESS,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.EN_ROUTE: frozenset({JobStatus.PLANNED, JobStatus.IN_PROGRESS, JobStatus.FAILED}),
    JobStatus.IN_PROGRESS: frozenset(
        {JobStatus.DONE, JobStatus.FAILED, JobStatus.FOLLOW_UP_NEEDED}
    ),
    JobStatus.DONE: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.FOLLOW_UP_NEEDED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, job_id: int, current: JobStatus, wanted: JobStatus) -> None:
        super().__init__(f"job {job_id}: cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"), nullable=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    kind: Mapped[JobKind] = mapped_column(String(20))
    status: Mapped[JobStatus] = mapped_column(String(20), default=JobStatus.NEW, index=True)
    duration_min: Mapped[int] = mapped_column(Integer)
    days: Mapped[int] = mapped_column(Integer, default=1)
    crew_size: Mapped[int] = mapped_column(Integer, default=1)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    volume_m3: Mapped[float] = mapped_column(Float, default=0.0)
    weight_kg: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    earliest_date: Mapped[date] = mapped_column(Date)
    latest_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What a planner fixed: the technician and day, optionally the start (local wall time).
    pinned_technician_id: Mapped[int | None] = mapped_column(
        ForeignKey("technicians.id"), nullable=True
    )
    pinned_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    pinned_start: Mapped[time | None] = mapped_column(Time, nullable=True)
    # 0: the technician's first job of that day (see optimizer.Pin).
    pinned_position: Mapped[int | None] = mapped_column(Integer, nullable=True)

    customer: Mapped[Customer] = relationship()
    parts: Mapped[list[JobPart]] = relationship(back_populates="job", cascade="all, delete-orphan")
    depends_on: Mapped[list[JobDependency]] = relationship(
        foreign_keys="JobDependency.job_id", back_populates="job", cascade="all, delete-orphan"
    )
    history: Mapped[list[JobStatusChange]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="JobStatusChange.id"
    )

    @property
    def missing_parts(self) -> list[JobPart]:
        return [part for part in self.parts if part.missing]


class JobDependency(Base):
    """`job` may start only after `prerequisite` plus a lag in working days.

    With `lag_working_days = 0` and `same_day_allowed`, both may happen on one day (delivery in
    the morning, installation after it); without it the job waits for the next working day.
    """

    __tablename__ = "job_dependencies"
    __table_args__ = (UniqueConstraint("job_id", "prerequisite_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    prerequisite_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    lag_working_days: Mapped[int] = mapped_column(Integer, default=0)
    same_day_allowed: Mapped[bool] = mapped_column(Boolean, default=True)

    job: Mapped[Job] = relationship(foreign_keys=[job_id], back_populates="depends_on")
    prerequisite: Mapped[Job] = relationship(foreign_keys=[prerequisite_id])


class JobPart(Base):
    """A part the job needs; a missing one must be picked up on the way (see locations)."""

    __tablename__ = "job_parts"
    __table_args__ = (UniqueConstraint("job_id", "part_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    part_sku: Mapped[str] = mapped_column(ForeignKey("parts.sku"))
    quantity: Mapped[int] = mapped_column(Integer)
    missing: Mapped[bool] = mapped_column(Boolean, default=False)

    job: Mapped[Job] = relationship(back_populates="parts")


class JobStatusChange(Base):
    __tablename__ = "job_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[JobStatus | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[JobStatus] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text, default="")

    job: Mapped[Job] = relationship(back_populates="history")


def record_created(job: Job, *, actor: str, at: datetime | None = None) -> None:
    job.history.append(
        JobStatusChange(from_status=None, to_status=job.status, actor=actor, at=at or utcnow())
    )


def change_status(
    session: Session, job: Job, wanted: JobStatus, *, actor: str, reason: str = ""
) -> JobStatusChange:
    current = JobStatus(job.status)
    if wanted not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransition(job.id, current, wanted)
    change = JobStatusChange(from_status=current, to_status=wanted, actor=actor, reason=reason)
    job.status = wanted
    job.history.append(change)
    session.flush()
    return change
