"""The planners' callback queue: customers who asked to be called."""

from __future__ import annotations

from fastapi import APIRouter

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.openapi import link
from api.schemas import CallbackRead, RegionFilter, RowId
from fieldplan.callbacks import mark_done, waiting

router = APIRouter(route_class=CommittedInThread, tags=["callbacks"])


@router.get(
    "/callbacks",
    responses={
        200: {
            "links": {
                "done": link(
                    "POST", "/callbacks/{callback_id}/done", callback_id="$response.body#/0/id"
                )
            }
        }
    },
)
def queue(
    session: SessionDep, planner: PlannerDep, region_id: RegionFilter = None
) -> list[CallbackRead]:
    """Waiting callback requests, oldest first."""
    scoped.optional_region(session, planner, region_id)
    return [CallbackRead.model_validate(c) for c in waiting(session, planner.scope, region_id)]


@router.post("/callbacks/{callback_id:int}/done")
def done(callback_id: RowId, session: SessionDep, planner: PlannerDep) -> CallbackRead:
    callback = scoped.callback(session, planner, callback_id)
    mark_done(callback, actor=f"planner:{planner.username}")
    session.flush()
    return CallbackRead.model_validate(callback)
