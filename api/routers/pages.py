"""Server-rendered pages; everything they need is bundled under api/static (no CDN)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select

from api.deps import SESSION_COOKIE, MaybePlannerDep, SessionDep
from fieldplan.accounts import authenticate
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.plans import Plan
from fieldplan.technicians import Technician

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/board", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    account = authenticate(session, username, password)
    if account is None:
        return templates.TemplateResponse(
            request, "login.html", {"error": "Wrong username or password."}, status_code=401
        )
    response = RedirectResponse("/board", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, request.app.state.signer.issue(account.id), httponly=True, samesite="strict"
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request, session: SessionDep, planner: MaybePlannerDep, day: date | None = None
) -> Response:
    if planner is None:
        return RedirectResponse("/login", status_code=303)
    days = list(session.scalars(select(Plan.day).distinct().order_by(Plan.day)))
    chosen = day or (days[0] if days else None)
    plan = None
    if chosen is not None:
        plan = session.scalar(
            select(Plan).where(Plan.day == chosen).order_by(Plan.version.desc()).limit(1)
        )
    technicians = {t.id: t for t in session.scalars(select(Technician))}
    locations = {loc.id: loc for loc in session.scalars(select(Location))}
    job_ids = {s.job_id for r in (plan.routes if plan else []) for s in r.stops if s.job_id}
    job_ids |= {u.job_id for u in (plan.unassigned if plan else [])}
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    open_jobs = session.scalar(select(func.count()).select_from(Job))
    return templates.TemplateResponse(
        request,
        "board.html",
        {
            "planner": planner,
            "days": days,
            "day": chosen,
            "plan": plan,
            "technicians": technicians,
            "locations": locations,
            "jobs": jobs,
            "open_jobs": open_jobs,
            "tz": ZoneInfo(plan.region.timezone if plan else "Europe/Amsterdam"),
        },
    )
