from __future__ import annotations

from fastapi import APIRouter

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.schemas import RowId, TimelineEventRead
from fieldplan.timeline import for_customer

router = APIRouter(route_class=CommittedInThread, prefix="/customers", tags=["customers"])


@router.get("/{customer_id:int}/timeline")
def customer_timeline(
    customer_id: RowId, session: SessionDep, planner: PlannerDep
) -> list[TimelineEventRead]:
    """Everything that happened with one customer in the planner's regions, oldest first."""
    scoped.customer(session, planner, customer_id)
    events = for_customer(session, customer_id, planner.scope)
    return [TimelineEventRead.model_validate(e) for e in events]
