"""The domain's resources for planners and integrations: one customer whole, orders (import
with the same validation as the CLI), jobs, technicians and their absences, stores and parts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.schemas import (
    CallbackRead,
    ClockTime,
    Day,
    Incoming,
    PlanDay,
    Read,
    RegionFilter,
    RouteRead,
    RowId,
    TimelineEventRead,
)
from fieldplan import durations, importing
from fieldplan.appointments import Appointment
from fieldplan.callbacks import CallbackRequest
from fieldplan.catalogue import JobKind, Part, ServiceRule
from fieldplan.day_events import ReportRefused, report_absent
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.orders import Order
from fieldplan.plans import latest_plan
from fieldplan.regions import lock_region
from fieldplan.technicians import Technician
from fieldplan.timeline import for_customer

router = APIRouter(route_class=CommittedInThread, tags=["resources"])


class CustomerRead(Read):
    id: int
    name: str
    address: str
    postcode: str
    city: str
    phone: str
    email: str
    contact_channel: str
    language: str
    notes: str


class OrderLineRead(Read):
    line_number: int
    product_sku: str
    quantity: int
    services: list[str]


class OrderRead(Read):
    id: int
    number: str
    customer_id: int
    region_id: int
    ordered_on: date
    wanted_from: date
    lines: list[OrderLineRead]


class JobPartRead(Read):
    part_sku: str
    quantity: int
    missing: bool


class StatusChangeRead(Read):
    from_status: str | None
    to_status: str
    at: datetime
    actor: str
    reason: str


class AppointmentBrief(Read):
    id: int
    window_start: datetime
    window_end: datetime
    status: str
    sequence: int


class JobRead(Read):
    id: int
    order_id: int
    customer_id: int
    kind: str
    status: str
    duration_min: int
    days: int
    crew_size: int
    skills: list[str]
    priority: int
    earliest_date: date
    latest_date: date | None
    description: str
    parts: list[JobPartRead]
    history: list[StatusChangeRead]
    appointments: list[AppointmentBrief] = Field(default_factory=list)


class CustomerView(BaseModel):
    """Everything about one customer, so nobody asks them to repeat it."""

    customer: CustomerRead
    orders: list[OrderRead]
    jobs: list[JobRead]
    callbacks: list[CallbackRead]
    timeline: list[TimelineEventRead]


def _job_read(session: SessionDep, job: Job) -> JobRead:
    read = JobRead.model_validate(job)
    read.appointments = [
        AppointmentBrief.model_validate(a)
        for a in session.scalars(
            select(Appointment).where(Appointment.job_id == job.id).order_by(Appointment.id)
        )
    ]
    return read


@router.get("/customers/{customer_id:int}", tags=["customers"])
def customer_view(customer_id: RowId, session: SessionDep, planner: PlannerDep) -> CustomerView:
    """Everything the customer bought and asked for in the regions this planner plans."""
    customer = scoped.customer(session, planner, customer_id)
    scope = planner.scope
    orders = session.scalars(
        select(Order)
        .where(Order.customer_id == customer_id, scope.where(Order.region_id))
        .order_by(Order.id)
        .options(selectinload(Order.lines))
    )
    jobs = session.scalars(
        select(Job)
        .where(Job.customer_id == customer_id, scope.where(Job.region_id))
        .order_by(Job.id)
        .options(selectinload(Job.parts), selectinload(Job.history))
    )
    callbacks = session.scalars(
        select(CallbackRequest)
        .join(Order, Order.id == CallbackRequest.order_id)
        .where(CallbackRequest.customer_id == customer_id, scope.where(Order.region_id))
        .order_by(CallbackRequest.id)
    )
    return CustomerView(
        customer=CustomerRead(
            id=customer.id,
            name=customer.name,
            address=customer.address,
            postcode=customer.postcode,
            city=customer.city,
            phone=customer.phone,
            email=customer.email,
            contact_channel=customer.contact_channel,
            language=customer.language,
            notes=customer.notes,
        ),
        orders=[OrderRead.model_validate(o) for o in orders],
        jobs=[_job_read(session, j) for j in jobs],
        callbacks=[CallbackRead.model_validate(c) for c in callbacks],
        timeline=[
            TimelineEventRead.model_validate(e) for e in for_customer(session, customer_id, scope)
        ],
    )


@router.get("/orders/{order_id:int}", tags=["orders"])
def read_order(order_id: RowId, session: SessionDep, planner: PlannerDep) -> OrderRead:
    return OrderRead.model_validate(scoped.order(session, planner, order_id))


class ImportErrorRead(BaseModel):
    row: str
    field: str
    reason: str


# The JSON import file: the CSV's columns, an order's once and its lines' per line. The
# document states its shape and which keys an order and a line must have; what the values
# mean (a known product, a postcode of the region, a plausible date) is checked by the same
# validator as the CLI's, which names row and field.
Text = str | int | float


class ImportLine(Incoming):
    sku: Text
    quantity: Text
    services: Text | list[str] = Field(description='"measure;installation" or a list')
    line_number: Text | None = None
    missing_parts: Text | list[str] | dict[str, int] | None = Field(
        None, description='"P-SKU:1;P-OTHER:2", a list of those or {sku: quantity}'
    )


class ImportOrder(Incoming):
    order_number: Text
    order_date: Text = Field(description="YYYY-MM-DD")
    store: Text
    customer_name: Text
    email: Text
    phone: Text
    street: Text
    house_number: Text
    postcode: Text
    wanted_from: Text | None = None
    contact_channel: Text | None = None
    language: Text | None = None
    notes: Text | None = None
    lines: list[ImportLine] = Field(min_length=1)


class ImportFile(Incoming):
    orders: list[ImportOrder]


class ImportRead(BaseModel):
    orders_created: int
    orders_unchanged: int
    jobs_created: int
    # Imported, but worth a look (an order more than a year old, a wish date in the past).
    warnings: list[ImportErrorRead] = []


@lru_cache(maxsize=2)
def _gazetteer(folder: Path) -> Gazetteer:
    return Gazetteer.from_directory(folder)


# 100,000 order lines (the import's row limit) are about 20 MB of JSON.
IMPORT_MAX_BYTES = 32 * 1024 * 1024


@router.post(
    "/regions/{region_id:int}/orders/import",
    tags=["orders"],
    status_code=201,
    max_body_size=IMPORT_MAX_BYTES,
)
def import_orders(
    region_id: RowId,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
    body: ImportFile,
) -> ImportRead:
    """Orders as in the JSON import file (`{"orders": [...]}`), validated like the CLI does:
    all or nothing, every error with its row and field (422)."""
    region = scoped.region(session, planner, region_id)
    try:
        rows = importing.rows_from_data(body.model_dump(exclude_none=True))
    except importing.UnreadableFile as unreadable:
        raise HTTPException(
            422, detail=[{"row": "", "field": "body", "reason": str(unreadable)}]
        ) from None
    lock_region(session, region.id)
    try:
        report = importing.import_rows(
            session,
            rows,
            region=region,
            gazetteer=_gazetteer(request.app.state.settings.sample_data_dir),
            today=request.app.state.today(),
            actor=f"planner:{planner.username}",
        )
    except importing.ImportFailed as failed:
        raise HTTPException(
            422,
            detail=[
                ImportErrorRead(row=e.row, field=e.field, reason=e.reason).model_dump()
                for e in failed.report.errors
            ],
        ) from None
    return ImportRead(
        orders_created=report.orders_created,
        orders_unchanged=report.orders_unchanged,
        jobs_created=report.jobs_created,
        warnings=[
            ImportErrorRead(row=w.row, field=w.field, reason=w.reason) for w in report.warnings
        ],
    )


@router.get("/jobs/{job_id:int}", tags=["jobs"])
def read_job(job_id: RowId, session: SessionDep, planner: PlannerDep) -> JobRead:
    return _job_read(session, scoped.job(session, planner, job_id))


class ShiftRead(Read):
    weekday: int
    start: ClockTime
    end: ClockTime


class AbsenceRead(Read):
    id: int
    first_day: date
    last_day: date
    reason: str


class TechnicianRead(Read):
    id: int
    code: str
    name: str
    region_id: int
    skills: list[str]
    home_address: str
    van_volume_m3: float
    van_weight_kg: float
    max_overtime_min: int
    lunch_minutes: int
    shifts: list[ShiftRead]
    absences: list[AbsenceRead]


@router.get("/technicians", tags=["technicians"])
def list_technicians(
    session: SessionDep, planner: PlannerDep, region_id: RegionFilter = None
) -> list[TechnicianRead]:
    scoped.optional_region(session, planner, region_id)
    query = (
        select(Technician)
        .where(planner.scope.where(Technician.region_id))
        .order_by(Technician.code)
    )
    if region_id is not None:
        query = query.where(Technician.region_id == region_id)
    return [TechnicianRead.model_validate(t) for t in session.scalars(query)]


@router.get("/technicians/{technician_id:int}", tags=["technicians"])
def read_technician(
    technician_id: RowId, session: SessionDep, planner: PlannerDep
) -> TechnicianRead:
    return TechnicianRead.model_validate(scoped.technician(session, planner, technician_id))


class AbsenceIn(Incoming):
    first_day: Day
    last_day: Day
    reason: str = Field("", max_length=80)

    @model_validator(mode="after")
    def _ordered(self) -> AbsenceIn:
        if self.last_day < self.first_day:
            raise ValueError("last_day must not be before first_day")
        if (self.last_day - self.first_day).days >= ABSENCE_MAX_DAYS:
            raise ValueError(f"an absence lasts at most {ABSENCE_MAX_DAYS} days")
        return self


# Leave is entered for the coming two years at most, and recorded at most a year late.
ABSENCE_MAX_DAYS = 366
ABSENCE_AHEAD = timedelta(days=2 * 365)
ABSENCE_BEHIND = timedelta(days=365)


@router.post("/technicians/{technician_id:int}/absences", tags=["technicians"], status_code=201)
def add_absence(
    technician_id: RowId,
    body: AbsenceIn,
    request: Request,
    session: SessionDep,
    planner: PlannerDep,
) -> AbsenceRead:
    """Planned leave: the days already planned are re-planned around it, and every promise
    that cannot be kept is flagged at risk (listed with proposals at /appointments/at-risk).
    Illness on the day goes through /technicians/{id}/ill."""
    technician = scoped.technician(session, planner, technician_id)
    today = request.app.state.today()
    if body.last_day > today + ABSENCE_AHEAD or body.first_day < today - ABSENCE_BEHIND:
        raise HTTPException(
            422,
            detail=[
                {
                    "field": "first_day" if body.first_day < today - ABSENCE_BEHIND else "last_day",
                    "reason": f"absences lie between {today - ABSENCE_BEHIND} and "
                    f"{today + ABSENCE_AHEAD}",
                }
            ],
        )
    lock_region(session, technician.region_id)
    try:
        report_absent(
            session,
            technician,
            body.first_day,
            body.last_day,
            request.app.state.travel,
            reason=body.reason,
            actor=f"planner:{planner.username}",
            today=today,
        )
    except ReportRefused as refused:
        raise HTTPException(409, detail=str(refused)) from None
    absence = technician.absences[-1]
    return AbsenceRead.model_validate(absence)


class StockRead(Read):
    part_sku: str
    quantity: int
    available_from: date | None


class OpeningRead(Read):
    weekday: int
    opens: ClockTime
    closes: ClockTime


class LocationRead(Read):
    id: int
    code: str
    kind: str
    name: str
    street: str
    postcode: str
    city: str
    phone: str
    email: str
    opening_hours: list[OpeningRead]
    stock: list[StockRead]


@router.get("/locations", tags=["stores and parts"])
def list_locations(
    session: SessionDep, planner: PlannerDep, region_id: RegionFilter = None
) -> list[LocationRead]:
    scoped.optional_region(session, planner, region_id)
    query = select(Location).where(planner.scope.where(Location.region_id)).order_by(Location.code)
    if region_id is not None:
        query = query.where(Location.region_id == region_id)
    return [LocationRead.model_validate(loc) for loc in session.scalars(query)]


class PartRead(Read):
    sku: str
    name: str
    volume_m3: float
    weight_kg: float


@router.get("/parts", tags=["stores and parts"])
def list_parts(session: SessionDep, _: PlannerDep) -> list[PartRead]:
    return [PartRead.model_validate(p) for p in session.scalars(select(Part).order_by(Part.sku))]


class DurationRead(BaseModel):
    """How long one kind of work for one product category takes: what is planned, and within
    how long 80 % of such jobs are done (learnt from reports, else the documented prior)."""

    kind: str
    category: str
    planned_min: int
    reports: int = Field(description="reports of such work started and done it learnt from")
    log_sd: float = Field(description="log-normal spread of the duration")
    done_within_80_pct_min: int


@router.get("/durations", tags=["stores and parts"])
def list_durations(session: SessionDep, _: PlannerDep) -> list[DurationRead]:
    known = durations.spreads(session)
    rules = session.scalars(select(ServiceRule).order_by(ServiceRule.category, ServiceRule.kind))
    found = []
    for rule in rules:
        spread = durations.spread_for(known, JobKind(rule.kind), rule.category)
        found.append(
            DurationRead(
                kind=rule.kind,
                category=rule.category,
                planned_min=rule.base_minutes,
                reports=spread.reports,
                log_sd=round(spread.log_sd, 3),
                done_within_80_pct_min=spread.within(rule.base_minutes),
            )
        )
    return found


class TechnicianDayRead(BaseModel):
    day: date
    plan_id: int
    plan_version: int
    route: RouteRead


@router.get("/technicians/{technician_id:int}/routes", tags=["technicians"])
def technician_routes(
    technician_id: RowId,
    session: SessionDep,
    planner: PlannerDep,
    first_day: PlanDay,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
) -> list[TechnicianDayRead]:
    """One technician's days from the newest plan of each day: the plan per technician."""
    technician = scoped.technician(session, planner, technician_id)
    found = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        plan = latest_plan(session, technician.region_id, day)
        route = (
            next((r for r in plan.routes if r.technician_id == technician.id), None)
            if plan
            else None
        )
        if plan is not None and route is not None:
            found.append(
                TechnicianDayRead(
                    day=day,
                    plan_id=plan.id,
                    plan_version=plan.version,
                    route=RouteRead.model_validate(route),
                )
            )
    return found
