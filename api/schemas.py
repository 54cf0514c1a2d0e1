"""Pydantic models of the API edge (the domain underneath uses ORM rows and dataclasses)."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from fieldplan.booking import Windows


class Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


NUL = "\x00"
NO_NUL = "contains a NUL character, which no text may hold"


def _without_nul(value: Any) -> Any:
    """Every text a client sends, however deep in lists and mappings: PostgreSQL cannot store
    a NUL character (a 500 deep in the driver), and no real name or note holds one."""
    if isinstance(value, str):
        if NUL in value:
            raise ValueError(NO_NUL)
    elif isinstance(value, list | tuple | set):
        for item in value:
            _without_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _without_nul(key)
            _without_nul(item)
    return value


# The same rule in the document, so that clients (and schemathesis) know it.
WITHOUT_NUL = "^[^\\u0000]*$"


def _state_no_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema:
        schema["pattern"] = WITHOUT_NUL
    for key in ("properties", "$defs"):
        for sub in schema.get(key, {}).values():
            _state_no_nul(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _state_no_nul(schema[key])
    for sub in schema.get("anyOf", []):
        _state_no_nul(sub)


class Incoming(BaseModel):
    """The base of every request body: no field of any of them takes a NUL character."""

    model_config = ConfigDict(json_schema_extra=_state_no_nul)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _without_nul(value)


# A text in a query or a form (bodies are `Incoming`).
Words = Annotated[
    str, AfterValidator(_without_nul), Field(json_schema_extra={"pattern": WITHOUT_NUL})
]


class FieldReason(BaseModel):
    """One field of a refused request and why (an import's errors name their row too)."""

    field: str
    reason: str
    row: str | None = None


class ValidationEntry(BaseModel):
    """One of FastAPI's own validation errors: where in the request (`loc`) and why."""

    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """422: the request is well-formed but some of its fields are not acceptable."""

    detail: list[FieldReason | ValidationEntry]


class DefectRead(BaseModel):
    """Why the plan-writing gate refused a change: the promise or rule it would break."""

    day: date
    kind: str
    job_id: int | None
    why: str


class Refusal(BaseModel):
    """Every other refusal (400, 401, 404, 409, 413, 429, 503): the reason as a sentence.
    A window that went meanwhile comes with the windows free now; a change the plan gate
    refuses comes with the promises it would break."""

    detail: str
    windows: WindowsRead | None = None
    defects: list[DefectRead] | None = None


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
    reason_code: str  # empty for plans stored before reasons had codes


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
    # The reason's code: what a client decides on (the words may change).
    reason_code: str | None = None
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
            reason=str(found.reason) if found.reason else None,
            reason_code=found.reason.reason.value if found.reason else None,
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
Id = Annotated[int, Field(ge=1, le=MAX_ID)]  # a row's id in a body
RegionFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# A day fieldplan can plan: anything outside these years is a typo, not a plan.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)
_WRITTEN_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_WRITTEN_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")
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


def _clock_time(value: object) -> object:
    """Wall-clock times of the region, without an offset: a shift starts at 08:00 all year."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, str) and _WRITTEN_CLOCK.fullmatch(value):
        return time.fromisoformat(value)
    raise ValueError("a time of day is written HH:MM, the region's own clock, no offset")


def _plausible_moment(value: datetime) -> datetime:
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise ValueError(f"outside the years fieldplan plans ({FIRST_DAY.year}-{LAST_DAY.year})")
    return value


# JSON Schema has no bounds for dates: the years (and the written form) are stated as a
# pattern beside the format, so a client or schemathesis sees which days the API accepts.
_DATE = "2[01][0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_CLOCK = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?"
_OFFSET = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
# Every day and moment a client sends is one of these.
Day = Annotated[
    date,
    BeforeValidator(_written_day),
    Field(ge=FIRST_DAY, le=LAST_DAY),
    WithJsonSchema({"type": "string", "format": "date", "pattern": f"^{_DATE}$"}),
]
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_written_moment),
    AfterValidator(_plausible_moment),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": f"^{_DATE}T{_CLOCK}{_OFFSET}$"}
    ),
]
PlanDay = Annotated[Day, Query()]
# A time of day on the region's clock (shifts, opening hours, a pinned start), "HH:MM".
# Declared as a pattern: OpenAPI's `format: time` is RFC 3339's full-time, with an offset.
ClockTime = Annotated[
    time,
    BeforeValidator(_clock_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": f"^{_WRITTEN_CLOCK.pattern}$", "examples": ["08:00"]}
    ),
]


Refusal.model_rebuild()
