from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import PlannerDep, SessionDep
from api.schemas import RowId, TimelineEventRead
from fieldplan.customers import Customer
from fieldplan.timeline import for_customer

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("/{customer_id:int}/timeline")
def customer_timeline(
    customer_id: RowId, session: SessionDep, _: PlannerDep
) -> list[TimelineEventRead]:
    """Everything that happened with one customer, oldest first."""
    if session.get(Customer, customer_id) is None:
        raise HTTPException(404, detail=f"no customer {customer_id}")
    return [TimelineEventRead.model_validate(e) for e in for_customer(session, customer_id)]
