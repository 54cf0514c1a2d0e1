"""The planners' callback queue: customers who asked to be called."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import PlannerDep, SessionDep
from api.openapi import link
from api.schemas import CallbackRead, RegionFilter, RowId
from fieldplan.callbacks import CallbackRequest, CallbackStatus, waiting

router = APIRouter(tags=["callbacks"])


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
def queue(session: SessionDep, _: PlannerDep, region_id: RegionFilter = None) -> list[CallbackRead]:
    """Waiting callback requests, oldest first."""
    return [CallbackRead.model_validate(c) for c in waiting(session, region_id)]


@router.post("/callbacks/{callback_id:int}/done")
def done(callback_id: RowId, session: SessionDep, planner: PlannerDep) -> CallbackRead:
    callback = session.get(CallbackRequest, callback_id)
    if callback is None:
        raise HTTPException(404, detail=f"no callback request {callback_id}")
    callback.status = CallbackStatus.DONE
    callback.handled_by = f"planner:{planner.username}"
    session.flush()
    return CallbackRead.model_validate(callback)
