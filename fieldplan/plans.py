"""Plans: versioned per region and day, with technician-day routes and unassigned jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Integer,
    String,
    Subquery,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.regions import Region


class StopKind(StrEnum):
    JOB = "job"
    PICKUP = "pickup"
    BREAK = "break"


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("region_id", "day", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    planner: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last write into this version (a booking, a cancellation, a move): what a calendar
    # feed's Last-Modified reports. Null on versions written before it was kept.
    changed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=True
    )
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Bumped by every booking written into this version: two bookers that read the same
    # revision cannot both write (optimistic lock, on top of PostgreSQL's row lock).
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __mapper_args__ = {"version_id_col": revision}  # noqa: RUF012

    region: Mapped[Region] = relationship()
    routes: Mapped[list[Route]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="Route.technician_id"
    )
    unassigned: Mapped[list[UnassignedJob]] = relationship(
        back_populates="plan", cascade="all, delete-orphan"
    )


class Route(Base):
    """One technician-day of a plan."""

    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("plan_id", "technician_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    travel_s: Mapped[int] = mapped_column(Integer, default=0)
    distance_m: Mapped[int] = mapped_column(Integer, default=0)

    plan: Mapped[Plan] = relationship(back_populates="routes")
    stops: Mapped[list[Stop]] = relationship(
        back_populates="route", cascade="all, delete-orphan", order_by="Stop.position"
    )


class Stop(Base):
    __tablename__ = "stops"
    __table_args__ = (UniqueConstraint("route_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[StopKind] = mapped_column(String(10))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    part_sku: Mapped[str | None] = mapped_column(ForeignKey("parts.sku"), nullable=True)
    # The helper's visit of a two-person job: same job, same minute, carries no goods.
    second_person: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    arrival: Mapped[datetime] = mapped_column(UTCDateTime)
    # When work starts (after waiting for a window); a lunch taken inside a long job lies
    # between start and departure. Null on rows written before it was stored.
    start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    departure: Mapped[datetime] = mapped_column(UTCDateTime)

    route: Mapped[Route] = relationship(back_populates="stops")


class UnassignedJob(Base):
    __tablename__ = "unassigned_jobs"
    __table_args__ = (UniqueConstraint("plan_id", "job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    reason: Mapped[str] = mapped_column(Text)  # in English, for planners
    # The reason's code (`optimizer.Reason`, `fieldplan.reasons.PlanningReason`): what the
    # KPIs group by; empty for rows stored before codes were.
    reason_code: Mapped[str] = mapped_column(String(40), default="", server_default="")

    plan: Mapped[Plan] = relationship(back_populates="unassigned")


def newest_versions(region_id: int, *conditions: ColumnElement[bool]) -> Subquery:
    """(day, version) of the newest plan of each of the region's days that match."""
    return (
        select(Plan.day, func.max(Plan.version).label("version"))
        .where(Plan.region_id == region_id, *conditions)
        .group_by(Plan.day)
        .subquery()
    )


@dataclass(frozen=True)
class LeadVisit:
    """A job's own visit (not a helper's) on a route of a day's newest plan."""

    job_id: int
    technician_id: int
    day: date
    arrival: datetime
    start: datetime | None
    departure: datetime
    location_id: int | None = None  # where a pickup is made

    @property
    def begins(self) -> datetime:
        return self.start or self.arrival


def lead_visits(
    session: Session,
    region_id: int,
    *days: ColumnElement[bool],
    job_ids: Iterable[int] | None = None,
    kind: StopKind = StopKind.JOB,
) -> list[LeadVisit]:
    """Every job's visit (or its pickup, by `kind`) in the newest plans of the region's days
    that match `days`, by day and time (only `job_ids`' when given)."""
    newest = newest_versions(region_id, *days)
    query = (
        select(
            Stop.job_id,
            Route.technician_id,
            Plan.day,
            Stop.arrival,
            Stop.start,
            Stop.departure,
            Stop.location_id,
        )
        .join(Route, Stop.route_id == Route.id)
        .join(Plan, Route.plan_id == Plan.id)
        .join(newest, (Plan.day == newest.c.day) & (Plan.version == newest.c.version))
        .where(
            Plan.region_id == region_id,
            Stop.kind == kind,
            Stop.second_person.is_(False),
            Stop.job_id.is_not(None),
        )
        .order_by(Plan.day, Stop.arrival)
    )
    if job_ids is not None:
        query = query.where(Stop.job_id.in_(list(job_ids)))
    return [
        LeadVisit(job_id, technician_id, day, arrival, start, departure, location_id)
        for job_id, technician_id, day, arrival, start, departure, location_id in session.execute(
            query
        )
        if job_id is not None
    ]


def next_version(session: Session, region_id: int, day: date) -> int:
    latest = session.scalar(
        select(func.max(Plan.version)).where(Plan.region_id == region_id, Plan.day == day)
    )
    return (latest or 0) + 1


def newest_plans(session: Session, region_id: int, days: Iterable[date]) -> dict[date, Plan]:
    """The newest plan of each of these days that has one, with its routes and stops, in
    three queries whatever the number of days (a day at a time, with each route's stops
    loaded as it is read, was most of what reading a horizon's plan cost)."""
    newest = newest_versions(region_id, Plan.day.in_(sorted(set(days))))
    rows = session.scalars(
        select(Plan)
        .join(newest, (Plan.day == newest.c.day) & (Plan.version == newest.c.version))
        .where(Plan.region_id == region_id)
        .options(selectinload(Plan.routes).selectinload(Route.stops))
    )
    return {plan.day: plan for plan in rows}


def latest_plan(session: Session, region_id: int, day: date) -> Plan | None:
    return session.scalar(
        select(Plan)
        .where(Plan.region_id == region_id, Plan.day == day)
        .order_by(Plan.version.desc())
        .limit(1)
    )
