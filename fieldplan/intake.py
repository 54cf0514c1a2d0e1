"""Turns a validated order into a customer, an order and the jobs its services create."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldplan.bulk import insert_rows
from fieldplan.catalogue import JobKind, Product, ServiceRule
from fieldplan.customers import ContactChannel, Customer
from fieldplan.db import utcnow
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import Job, JobDependency, JobPart, JobStatus, JobStatusChange
from fieldplan.locations import Location
from fieldplan.orders import Order, OrderLine
from fieldplan.regions import Region
from fieldplan.timeline import EventKind, TimelineEvent
from fieldplan.workdays import add_working_days, next_working_day

REPAIR_DUE_WORKING_DAYS = 5


@dataclass(frozen=True)
class OrderLineIn:
    line_number: int
    sku: str
    quantity: int
    services: list[JobKind]
    missing_parts: dict[str, int]


@dataclass(frozen=True)
class OrderIn:
    number: str
    ordered_on: date
    wanted_from: date
    store_code: str
    customer_name: str
    email: str
    phone: str
    contact_channel: ContactChannel
    language: str
    street: str
    house_number: str
    postcode: str
    notes: str
    lines: list[OrderLineIn]


@dataclass(frozen=True)
class Intake:
    orders_created: int
    jobs_created: int


# Rows per IN (...) query: well inside SQLite's and PostgreSQL's limits on parameters.
CHUNK = 2000


@dataclass(frozen=True)
class _Known:
    """The catalogue and stores an intake needs, read once per batch."""

    products: dict[str, Product]
    rules: dict[str, dict[JobKind, ServiceRule]]  # product category -> its service rules
    stores: dict[str, Location]


def _known(session: Session, skus: set[str]) -> _Known:
    products = {
        p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(sorted(skus))))
    }
    rules: dict[str, dict[JobKind, ServiceRule]] = {}
    for rule in session.scalars(select(ServiceRule)):
        rules.setdefault(rule.category, {})[JobKind(rule.kind)] = rule
    stores = {loc.code: loc for loc in session.scalars(select(Location))}
    return _Known(products, rules, stores)


def _customer_key(email: str, postcode: str, house_number: str) -> tuple[str, str, str]:
    return (email, postcode, house_number)


def _customer_ids(
    session: Session, orders_in: list[OrderIn], gazetteer: Gazetteer
) -> dict[tuple[str, str, str], int]:
    """Each order's customer: a returning customer (same e-mail and address) keeps one
    record and one timeline, within the batch as across imports."""
    emails = sorted({o.email for o in orders_in})
    found: dict[tuple[str, str, str], int] = {}
    for k in range(0, len(emails), CHUNK):
        rows = session.execute(
            select(Customer.email, Customer.postcode, Customer.house_number, Customer.id)
            .where(Customer.email.in_(emails[k : k + CHUNK]))
            .order_by(Customer.id)
        )
        for email, postcode, house_number, customer_id in rows:
            found.setdefault(_customer_key(email, postcode, house_number), customer_id)
    new: dict[tuple[str, str, str], dict[str, Any]] = {}
    for order_in in orders_in:
        key = _customer_key(order_in.email, order_in.postcode, order_in.house_number)
        if key in found or key in new:
            continue
        located = gazetteer.locate(order_in.postcode)
        new[key] = {
            "name": order_in.customer_name,
            "street": order_in.street,
            "house_number": order_in.house_number,
            "postcode": located.postcode,
            "city": located.place.name,
            "latitude": located.latitude,
            "longitude": located.longitude,
            "phone": order_in.phone,
            "email": order_in.email,
            "contact_channel": order_in.contact_channel,
            "language": order_in.language,
            "notes": order_in.notes,
        }
    found.update(
        zip(new, insert_rows(session, Customer, list(new.values()), ids=True), strict=True)
    )
    return found


@dataclass
class _NewJob:
    row: dict[str, Any]
    parts: list[dict[str, Any]]
    after: list[tuple[int, int, bool]]  # (index of the prerequisite in the batch, lag, same day)


def take_in_orders(
    session: Session,
    orders_in: list[tuple[OrderIn, str]],
    *,
    region: Region,
    gazetteer: Gazetteer,
    actor: str,
) -> Intake:
    """Validated orders (each with its content hash) into customers, orders and jobs, with
    their timelines. Rows of one kind are written together in multi-row INSERTs (SQLAlchemy's
    bulk INSERT ... RETURNING), never one object at a time, so a nightly file of tens of
    thousands of lines takes seconds; none of this touches a plan, so the plan gate has
    nothing to judge."""
    plain = [order_in for order_in, _ in orders_in]
    known = _known(session, {line.sku for o in plain for line in o.lines})
    customers = _customer_ids(session, plain, gazetteer)
    now = utcnow()
    order_rows: list[dict[str, Any]] = []
    for order_in, content_hash in orders_in:
        store = known.stores.get(order_in.store_code)
        order_rows.append(
            {
                "number": order_in.number,
                "customer_id": customers[
                    _customer_key(order_in.email, order_in.postcode, order_in.house_number)
                ],
                "region_id": region.id,
                "store_id": store.id if store else None,
                "ordered_on": order_in.ordered_on,
                "wanted_from": order_in.wanted_from,
                "content_hash": content_hash,
                "created_at": now,
            }
        )
    order_ids = insert_rows(session, Order, order_rows, ids=True)
    line_rows = [
        {
            "order_id": order_id,
            "line_number": line.line_number,
            "product_sku": line.sku,
            "quantity": line.quantity,
            "services": [str(s) for s in line.services],
        }
        for order_id, order_in in zip(order_ids, plain, strict=True)
        for line in order_in.lines
    ]
    line_ids = iter(insert_rows(session, OrderLine, line_rows, ids=True))
    events: list[dict[str, Any]] = []
    new_jobs: list[_NewJob] = []
    for order_id, order_row, order_in in zip(order_ids, order_rows, plain, strict=True):
        customer_id = order_row["customer_id"]
        events.append(
            _event(customer_id, order_id, None, EventKind.ORDER_PLACED, actor, now)
            | {"text": f"Order {order_in.number} placed"}
        )
        for line_in in order_in.lines:
            product = known.products[line_in.sku]
            context = {
                "order_id": order_id,
                "order_line_id": next(line_ids),
                "customer_id": customer_id,
                "region_id": region.id,
                "created_at": now,
            }
            new_jobs += _jobs_for_line(
                order_row, context, line_in, product, known.rules[product.category], len(new_jobs)
            )
    job_ids = insert_rows(session, Job, [j.row for j in new_jobs], ids=True)
    parts, links, history = [], [], []
    for job_id, job in zip(job_ids, new_jobs, strict=True):
        parts += [p | {"job_id": job_id} for p in job.parts]
        links += [
            {
                "job_id": job_id,
                "prerequisite_id": job_ids[before],
                "lag_working_days": lag,
                "same_day_allowed": same_day,
            }
            for before, lag, same_day in job.after
        ]
        history.append(
            {"job_id": job_id, "to_status": JobStatus.NEW, "at": now, "actor": actor, "reason": ""}
        )
        row = job.row
        events.append(
            _event(row["customer_id"], row["order_id"], job_id, EventKind.JOB_CREATED, actor, now)
            | {"text": row["description"]}
        )
        events += [
            _event(row["customer_id"], row["order_id"], job_id, EventKind.PART_MISSING, actor, now)
            | {
                "text": f"{p['quantity']}x {p['part_sku']} not delivered with the goods",
                "data": {"part_sku": p["part_sku"], "quantity": p["quantity"]},
            }
            for p in job.parts
            if p["missing"]
        ]
    for model, rows in (
        (JobPart, parts),
        (JobDependency, links),
        (JobStatusChange, history),
        (TimelineEvent, events),
    ):
        insert_rows(session, model, rows)
    return Intake(orders_created=len(order_ids), jobs_created=len(job_ids))


def _event(
    customer_id: int,
    order_id: int,
    job_id: int | None,
    kind: EventKind,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "job_id": job_id,
        "kind": kind,
        "actor": actor,
        "at": at,
        "text": "",
        "data": {},
    }


def _jobs_for_line(
    order: dict[str, Any],
    context: dict[str, Any],
    line_in: OrderLineIn,
    product: Product,
    rules: dict[JobKind, ServiceRule],
    first_index: int,
) -> list[_NewJob]:
    """The jobs the line's services create, in the order they happen, linked measure ->
    (lead time) -> delivery -> installation, skipping services not bought."""
    start = next_working_day(max(order["wanted_from"], order["ordered_on"]))
    jobs: dict[JobKind, _NewJob] = {}
    for kind in (JobKind.MEASURE, JobKind.DELIVERY, JobKind.INSTALLATION, JobKind.REPAIR):
        if kind not in line_in.services:
            continue
        rule = rules[kind]
        weight = product.weight_kg * line_in.quantity
        carries_goods = kind is JobKind.DELIVERY or (
            kind is JobKind.INSTALLATION and JobKind.DELIVERY not in line_in.services
        )
        crew = rule.crew_size
        if rule.two_person_above_kg is not None and weight > rule.two_person_above_kg:
            crew = max(crew, 2)
        parts: list[dict[str, Any]] = []
        if kind in (JobKind.INSTALLATION, JobKind.REPAIR):
            needed = {sku: n * line_in.quantity for sku, n in product.parts.items()}
            for sku, count in line_in.missing_parts.items():
                needed[sku] = max(needed.get(sku, 0), count)
            parts = [
                {"part_sku": sku, "quantity": count, "missing": sku in line_in.missing_parts}
                for sku, count in sorted(needed.items())
            ]
        row = context | {
            "kind": kind,
            "status": JobStatus.NEW,
            "duration_min": rule.base_minutes + rule.minutes_per_unit * line_in.quantity,
            "days": rule.days,
            "crew_size": crew,
            "skills": sorted(rule.skills),
            "volume_m3": round(product.volume_m3 * line_in.quantity, 3) if carries_goods else 0.0,
            "weight_kg": round(weight, 1) if carries_goods else 0.0,
            "priority": rule.priority,
            "earliest_date": start,
            "latest_date": add_working_days(start, REPAIR_DUE_WORKING_DAYS)
            if kind is JobKind.REPAIR
            else None,
            # What is worked on, in the words of the catalogue: the kind of work is the job's
            # kind, said in each reader's language where the job is shown.
            "description": f"{product.name} × {line_in.quantity}",
        }
        jobs[kind] = _NewJob(row, parts, [])
    index = {kind: first_index + k for k, kind in enumerate(jobs)}
    measure = jobs.get(JobKind.MEASURE)
    delivery = jobs.get(JobKind.DELIVERY)
    installation = jobs.get(JobKind.INSTALLATION)
    after_measure = delivery or installation
    if measure is not None and after_measure is not None:
        kind = JobKind.DELIVERY if delivery is not None else JobKind.INSTALLATION
        lag = rules[kind].lead_working_days_after_measure
        after_measure.after.append((index[JobKind.MEASURE], lag, lag == 0))
        after_measure.row["earliest_date"] = add_working_days(measure.row["earliest_date"], lag)
    if delivery is not None and installation is not None:
        same_day = rules[JobKind.INSTALLATION].installation_same_day_as_delivery
        installation.after.append((index[JobKind.DELIVERY], 0 if same_day else 1, same_day))
        first = delivery.row["earliest_date"]
        installation.row["earliest_date"] = first if same_day else add_working_days(first, 1)
    return list(jobs.values())
