"""Turns a validated order into a customer, an order and the jobs its services create."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldplan.catalogue import JobKind, Product, ServiceRule, services_for
from fieldplan.customers import ContactChannel, Customer
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import Job, JobDependency, JobPart, JobStatus, record_created
from fieldplan.locations import Location
from fieldplan.orders import Order, OrderLine
from fieldplan.regions import Region
from fieldplan.timeline import EventKind, record
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


@dataclass
class Intake:
    order: Order
    jobs_created: list[Job] = field(default_factory=list)


def find_or_create_customer(session: Session, order_in: OrderIn, gazetteer: Gazetteer) -> Customer:
    """A returning customer (same e-mail and address) keeps one record and one timeline."""
    customer = session.scalar(
        select(Customer).where(
            Customer.email == order_in.email,
            Customer.postcode == order_in.postcode,
            Customer.house_number == order_in.house_number,
        )
    )
    if customer is not None:
        return customer
    located = gazetteer.locate(order_in.postcode)
    customer = Customer(
        name=order_in.customer_name,
        street=order_in.street,
        house_number=order_in.house_number,
        postcode=located.postcode,
        city=located.place.name,
        latitude=located.latitude,
        longitude=located.longitude,
        phone=order_in.phone,
        email=order_in.email,
        contact_channel=order_in.contact_channel,
        language=order_in.language,
        notes=order_in.notes,
    )
    session.add(customer)
    session.flush()
    return customer


def take_in_order(
    session: Session,
    order_in: OrderIn,
    *,
    region: Region,
    gazetteer: Gazetteer,
    content_hash: str,
    actor: str,
) -> Intake:
    customer = find_or_create_customer(session, order_in, gazetteer)
    store = session.scalar(select(Location).where(Location.code == order_in.store_code))
    order = Order(
        number=order_in.number,
        customer_id=customer.id,
        region_id=region.id,
        store_id=store.id if store else None,
        ordered_on=order_in.ordered_on,
        wanted_from=order_in.wanted_from,
        content_hash=content_hash,
        lines=[
            OrderLine(
                line_number=line.line_number,
                product_sku=line.sku,
                quantity=line.quantity,
                services=[str(s) for s in line.services],
            )
            for line in order_in.lines
        ],
    )
    session.add(order)
    session.flush()
    record(
        session,
        customer_id=customer.id,
        order_id=order.id,
        kind=EventKind.ORDER_PLACED,
        actor=actor,
        text=f"Order {order.number} placed",
    )
    intake = Intake(order)
    for line_in, line in zip(order_in.lines, order.lines, strict=True):
        product = session.get_one(Product, line_in.sku)
        rules = services_for(session, product.category)
        intake.jobs_created.extend(
            _jobs_for_line(session, order, line, line_in, product, rules, actor)
        )
    return intake


def _jobs_for_line(
    session: Session,
    order: Order,
    line: OrderLine,
    line_in: OrderLineIn,
    product: Product,
    rules: dict[JobKind, ServiceRule],
    actor: str,
) -> list[Job]:
    start = next_working_day(max(order.wanted_from, order.ordered_on))
    jobs: dict[JobKind, Job] = {}
    for kind in (JobKind.MEASURE, JobKind.DELIVERY, JobKind.INSTALLATION, JobKind.REPAIR):
        if kind not in line_in.services:
            continue
        rule = rules[kind]
        weight = product.weight_kg * line.quantity
        carries_goods = kind is JobKind.DELIVERY or (
            kind is JobKind.INSTALLATION and JobKind.DELIVERY not in line_in.services
        )
        crew = rule.crew_size
        if rule.two_person_above_kg is not None and weight > rule.two_person_above_kg:
            crew = max(crew, 2)
        job = Job(
            order_id=order.id,
            order_line_id=line.id,
            customer_id=order.customer_id,
            region_id=order.region_id,
            kind=kind,
            status=JobStatus.NEW,
            duration_min=rule.base_minutes + rule.minutes_per_unit * line.quantity,
            days=rule.days,
            crew_size=crew,
            skills=sorted(rule.skills),
            volume_m3=round(product.volume_m3 * line.quantity, 3) if carries_goods else 0.0,
            weight_kg=round(weight, 1) if carries_goods else 0.0,
            priority=rule.priority,
            earliest_date=start,
            latest_date=add_working_days(start, REPAIR_DUE_WORKING_DAYS)
            if kind is JobKind.REPAIR
            else None,
            description=f"{kind.value} {product.name} x{line.quantity}",
        )
        if kind in (JobKind.INSTALLATION, JobKind.REPAIR):
            needed = {sku: n * line.quantity for sku, n in product.parts.items()}
            for sku, count in line_in.missing_parts.items():
                needed[sku] = max(needed.get(sku, 0), count)
            job.parts = [
                JobPart(part_sku=sku, quantity=count, missing=sku in line_in.missing_parts)
                for sku, count in sorted(needed.items())
            ]
        record_created(job, actor=actor)
        session.add(job)
        jobs[kind] = job
    session.flush()
    _link(jobs, rules)
    for job in jobs.values():
        record(
            session,
            customer_id=order.customer_id,
            order_id=order.id,
            job_id=job.id,
            kind=EventKind.JOB_CREATED,
            actor=actor,
            text=job.description,
        )
        for part in job.missing_parts:
            record(
                session,
                customer_id=order.customer_id,
                order_id=order.id,
                job_id=job.id,
                kind=EventKind.PART_MISSING,
                actor=actor,
                text=f"{part.quantity}x {part.part_sku} not delivered with the goods",
                data={"part_sku": part.part_sku, "quantity": part.quantity},
            )
    session.flush()
    return list(jobs.values())


def _link(jobs: dict[JobKind, Job], rules: dict[JobKind, ServiceRule]) -> None:
    """Measure -> (lead time) -> delivery -> installation, skipping services not bought."""
    measure = jobs.get(JobKind.MEASURE)
    delivery = jobs.get(JobKind.DELIVERY)
    installation = jobs.get(JobKind.INSTALLATION)
    after_measure = delivery or installation
    if measure is not None and after_measure is not None:
        lag = rules[JobKind(after_measure.kind)].lead_working_days_after_measure
        after_measure.depends_on.append(
            JobDependency(
                prerequisite_id=measure.id, lag_working_days=lag, same_day_allowed=lag == 0
            )
        )
        after_measure.earliest_date = add_working_days(measure.earliest_date, lag)
    if delivery is not None and installation is not None:
        same_day = rules[JobKind.INSTALLATION].installation_same_day_as_delivery
        installation.depends_on.append(
            JobDependency(
                prerequisite_id=delivery.id,
                lag_working_days=0 if same_day else 1,
                same_day_allowed=same_day,
            )
        )
        installation.earliest_date = (
            delivery.earliest_date if same_day else add_working_days(delivery.earliest_date, 1)
        )
