from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.schemas import PlanDay, PlanRead, PlanSummary, RegionFilter, RegionRead, RowId
from fieldplan.plans import Plan
from fieldplan.regions import Region

router = APIRouter(route_class=CommittedInThread, tags=["plans"])


@router.get("/regions")
def list_regions(session: SessionDep, planner: PlannerDep) -> list[RegionRead]:
    """The regions this account plans."""
    query = select(Region).where(planner.scope.where(Region.id)).order_by(Region.id)
    return [RegionRead.model_validate(r) for r in session.scalars(query)]


@router.get("/plans")
def list_plans(
    session: SessionDep,
    planner: PlannerDep,
    region_id: RegionFilter = None,
    day: PlanDay | None = None,
    latest_only: bool = Query(True, description="only the newest version of each day"),
) -> list[PlanSummary]:
    scoped.optional_region(session, planner, region_id)
    query = (
        select(Plan)
        .where(planner.scope.where(Plan.region_id))
        .order_by(Plan.day, Plan.version.desc())
    )
    if region_id is not None:
        query = query.where(Plan.region_id == region_id)
    if day is not None:
        query = query.where(Plan.day == day)
    if latest_only:
        newest = (
            select(Plan.region_id, Plan.day, func.max(Plan.version).label("version"))
            .group_by(Plan.region_id, Plan.day)
            .subquery()
        )
        query = query.join(
            newest,
            (Plan.region_id == newest.c.region_id)
            & (Plan.day == newest.c.day)
            & (Plan.version == newest.c.version),
        )
    return [PlanSummary.model_validate(p) for p in session.scalars(query)]


@router.get("/plans/{plan_id:int}")
def read_plan(plan_id: RowId, session: SessionDep, planner: PlannerDep) -> PlanRead:
    return PlanRead.model_validate(scoped.plan(session, planner, plan_id))
