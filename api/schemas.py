"""Pydantic models of the API edge (the domain underneath uses ORM rows and dataclasses)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from fieldplan.booking import Windows


class Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """The body of every refusal: what was wrong, as a sentence or as fields with reasons
    (`[{"field": ..., "reason": ...}]`, or FastAPI's validation entries)."""

    detail: str | list[dict[str, Any]]


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"


class RegionRead(Read):
    id: int
    code: str
    name: str
    timezone: str


class StopRead(Read):
    position: int
    kind: str
    job_id: int | None
    location_id: int | None
    part_sku: str | None
    second_person: bool
    arrival: datetime
    start: datetime | None
    departure: datetime


class RouteRead(Read):
    technician_id: int
    start_at: datetime
    end_at: datetime
    travel_s: int
    distance_m: int
    stops: list[StopRead]


class UnassignedRead(Read):
    job_id: int
    reason: str


class PlanSummary(Read):
    id: int
    region_id: int
    day: date
    version: int
    planner: str
    created_at: datetime
    kpis: dict[str, Any]


class PlanRead(PlanSummary):
    routes: list[RouteRead]
    unassigned: list[UnassignedRead]


class TimelineEventRead(Read):
    id: int
    kind: str
    at: datetime
    actor: str
    text: str
    order_id: int | None
    job_id: int | None
    data: dict[str, Any]


class WindowRead(BaseModel):
    start: datetime
    end: datetime
    recommended: bool
    added_travel_min: int


class WindowsRead(BaseModel):
    job_id: int
    windows: list[WindowRead]
    reason: str | None
    first_dates: list[date]

    @classmethod
    def of(cls, found: Windows) -> WindowsRead:
        return cls(
            job_id=found.job_id,
            windows=[
                WindowRead(
                    start=c.start,
                    end=c.end,
                    recommended=c.recommended,
                    added_travel_min=c.added_travel_min,
                )
                for c in found.choices
            ],
            reason=found.reason,
            first_dates=found.first_dates,
        )


class CallbackRead(Read):
    id: int
    customer_id: int
    order_id: int
    phone: str
    preferred_time: str
    note: str
    status: str
    created_at: datetime


# Row ids are 32-bit integers in the database: anything outside is "not found" (422), not an
# overflow deep in the driver.
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
RegionFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# A day fieldplan can plan: anything outside these years is a typo, not a plan.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)
_WRITTEN_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_WRITTEN_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")


def _written_day(value: object) -> object:
    """Days only as YYYY-MM-DD: pydantic alone reads `0` as 1970-01-01 (a Unix time)."""
    if isinstance(value, date) or (isinstance(value, str) and _WRITTEN_DAY.fullmatch(value)):
        return value
    raise ValueError("a day is written YYYY-MM-DD")


def _written_moment(value: object) -> object:
    """Moments only as ISO 8601 text with an offset, never a bare number of seconds."""
    if isinstance(value, datetime) or (isinstance(value, str) and _WRITTEN_MOMENT.fullmatch(value)):
        return value
    raise ValueError("a moment is written YYYY-MM-DDTHH:MM with its offset, e.g. +01:00")


def _plausible_moment(value: datetime) -> datetime:
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise ValueError(f"outside the years fieldplan plans ({FIRST_DAY.year}-{LAST_DAY.year})")
    return value


# Every day and moment a client sends is one of these.
Day = Annotated[date, BeforeValidator(_written_day), Field(ge=FIRST_DAY, le=LAST_DAY)]
Moment = Annotated[
    AwareDatetime, BeforeValidator(_written_moment), AfterValidator(_plausible_moment)
]
PlanDay = Annotated[Day, Query()]
