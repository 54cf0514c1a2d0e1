"""What a planner may see: the objects of the regions granted to the account, nothing else.

Every planner endpoint loads what its path or body names through these functions, so an id of
another region is answered exactly as an id that does not exist (404, the same words): an id
from the client is never trusted, and the answer tells nothing about other regions. Lists
filter with `Scope.where` on their region column.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldplan.accounts import Account
from fieldplan.appointments import Appointment
from fieldplan.callbacks import CallbackRequest
from fieldplan.customers import Customer
from fieldplan.jobs import Job
from fieldplan.orders import Order
from fieldplan.plans import Plan
from fieldplan.regions import Region
from fieldplan.technicians import Technician


def _missing(what: str, key: int) -> HTTPException:
    return HTTPException(404, detail=f"no {what} {key}")


def region(session: Session, planner: Account, region_id: int) -> Region:
    found = session.get(Region, region_id)
    if found is None or not planner.scope.allows(found.id):
        raise _missing("region", region_id)
    return found


def optional_region(session: Session, planner: Account, region_id: int | None) -> None:
    """A list's `region_id` filter: a region out of scope is one that does not exist."""
    if region_id is not None:
        region(session, planner, region_id)


class _InRegion(Protocol):
    @property
    def region_id(self) -> int: ...


InRegion = TypeVar("InRegion", bound=_InRegion)


def _of_region(
    session: Session, planner: Account, model: type[InRegion], row_id: int, what: str
) -> InRegion:
    found = session.get(model, row_id)
    if found is None or not planner.scope.allows(found.region_id):
        raise _missing(what, row_id)
    return found


def job(session: Session, planner: Account, job_id: int) -> Job:
    return _of_region(session, planner, Job, job_id, "job")


def appointment(session: Session, planner: Account, appointment_id: int) -> Appointment:
    found = session.get(Appointment, appointment_id)
    if found is None or not planner.scope.allows(session.get_one(Job, found.job_id).region_id):
        raise _missing("appointment", appointment_id)
    return found


def technician(session: Session, planner: Account, technician_id: int) -> Technician:
    return _of_region(session, planner, Technician, technician_id, "technician")


def plan(session: Session, planner: Account, plan_id: int) -> Plan:
    return _of_region(session, planner, Plan, plan_id, "plan")


def order(session: Session, planner: Account, order_id: int) -> Order:
    return _of_region(session, planner, Order, order_id, "order")


def customer(session: Session, planner: Account, customer_id: int) -> Customer:
    """A customer is in scope through any order of theirs in a region the planner plans."""
    found = session.get(Customer, customer_id)
    if found is None:
        raise _missing("customer", customer_id)
    ordered_here = session.scalar(
        select(Order.id)
        .where(Order.customer_id == found.id, planner.scope.where(Order.region_id))
        .limit(1)
    )
    if ordered_here is None:
        raise _missing("customer", customer_id)
    return found


def callback(session: Session, planner: Account, callback_id: int) -> CallbackRequest:
    found = session.get(CallbackRequest, callback_id)
    if found is None or not planner.scope.allows(session.get_one(Order, found.order_id).region_id):
        raise _missing("callback", callback_id)
    return found
