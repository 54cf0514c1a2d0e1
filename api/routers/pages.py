"""Server-rendered pages; everything they need is bundled under api/static (no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.board import (
    COLOURS,
    DAY_END,
    DAY_START,
    MAP_H,
    MAP_W,
    NARROW_PCT,
    Block,
    Projection,
    outline,
    position,
)
from api.deps import SESSION_COOKIE, CommittedInThread, MaybePlannerDep, SessionDep
from api.i18n import status_text
from api.routers.resources import AppointmentBrief, JobRead, customer_view
from api.schemas import MAX_ID, Day, PlanDay, RowId
from fieldplan import runs, steering
from fieldplan.accounts import Account, SignInThrottled, sign_in
from fieldplan.appointments import LIVE_APPOINTMENTS, Appointment, AppointmentError
from fieldplan.callbacks import CallbackRequest, due, mark_done, waiting
from fieldplan.catalogue import Part, Product
from fieldplan.dates import short_day
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.orders import Order
from fieldplan.plans import Plan, Stop, UnassignedJob, latest_plan
from fieldplan.regions import Region
from fieldplan.runs import OptimisationRun, RunStatus
from fieldplan.technicians import Technician

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
templates.env.globals["short_day"] = short_day


def _demo_moment(request: Request) -> str | None:
    """Under the demo's clock, the moment it shows, for the banner that says so."""
    state = request.app.state
    if not getattr(state, "demo_clock", False):
        return None
    now = state.now().astimezone(ZoneInfo(state.settings.timezone))
    return f"{short_day(now.date(), 'nl')} {now:%H:%M}"


templates.env.globals["demo_moment"] = _demo_moment

# Who made a plan version, as the board says it: a booking, a planner's change, or the search
# that found it (`optimizer.Search`).
_PLANNERS = {
    "booking": "een boeking",
    "construction": "het eerste plan",
    "ruin-and-recreate": "herplannen",
    "routing": "optimaliseren",
    "compiled": "optimaliseren",
}
templates.env.globals["planner_label"] = lambda planner: _PLANNERS.get(planner, planner)

_KINDS = {
    "measure": "Inmeten",
    "delivery": "Levering",
    "installation": "Montage",
    "repair": "Reparatie",
}
_CHANNELS = {"email": "e-mail", "phone": "bellen", "sms": "sms"}
_APPOINTMENT_STATUSES = {
    "promised": "beloofd",
    "at_risk": "in gevaar",
    "kept": "nagekomen",
    "broken": "niet nagekomen",
    "cancelled": "geannuleerd",
}
router = APIRouter(route_class=CommittedInThread, include_in_schema=False)


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
    try:
        account = sign_in(session, username, password, now=request.app.state.now())
    except SignInThrottled as throttled:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": f"Te vaak mislukt: probeer het over {throttled.retry_after_s} s opnieuw."},
            status_code=429,
            headers={"Retry-After": str(throttled.retry_after_s)},
        )
    if account is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "Gebruikersnaam of wachtwoord klopt niet."},
            status_code=401,
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


def _opening_day(days: list[date], today: date) -> date | None:
    """The board opens on today, or the next day with a plan; on the last plan when every
    planned day is past (never on the first week anybody planned)."""
    coming = [d for d in days if d >= today]
    return coming[0] if coming else (days[-1] if days else None)


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request,
    session: SessionDep,
    planner: MaybePlannerDep,
    day: PlanDay | None = None,
    region: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    msg: Annotated[str, Query(max_length=300)] = "",
    error: Annotated[str, Query(max_length=300)] = "",
    run: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
) -> Response:
    """One region's day (the first region of the planner's when none is asked for, and for a
    region the planner does not plan); with `run`, how the re-optimisation started from the
    board is going (the page refreshes itself until it has ended)."""
    if planner is None:
        return RedirectResponse("/login", status_code=303)
    running = False
    if run is not None:
        msg, error, running = _run_status(session, planner, run)
    regions = list(
        session.scalars(select(Region).where(planner.scope.where(Region.id)).order_by(Region.id))
    )
    shown = next((r for r in regions if r.id == region), regions[0] if regions else None)
    shown_id = shown.id if shown is not None else 0
    days = list(
        session.scalars(
            select(Plan.day).where(Plan.region_id == shown_id).distinct().order_by(Plan.day)
        )
    )
    today = request.app.state.today()
    chosen = day or _opening_day(days, today)
    plan = None
    if chosen is not None and shown is not None:
        plan = latest_plan(session, shown.id, chosen)
    zone = ZoneInfo(shown.timezone if shown else "Europe/Amsterdam")
    technicians = {
        t.id: t
        for t in session.scalars(
            select(Technician).where(Technician.region_id == shown_id).order_by(Technician.code)
        )
    }
    locations = {
        loc.id: loc
        for loc in session.scalars(select(Location).where(Location.region_id == shown_id))
    }
    job_ids = {s.job_id for r in (plan.routes if plan else []) for s in r.stops if s.job_id}
    job_ids |= {u.job_id for u in (plan.unassigned if plan else [])}
    jobs = {
        j.id: j
        for j in session.scalars(
            select(Job).where(Job.id.in_(job_ids)).options(selectinload(Job.customer))
        )
    }
    promises = {
        a.job_id: a
        for a in session.scalars(
            select(Appointment).where(
                Appointment.job_id.in_(job_ids),
                Appointment.status.in_(LIVE_APPOINTMENTS),
            )
        )
    }
    rows, lines, stops_xy, homes = [], [], [], []
    details: dict[int, dict[str, str]] = {}
    part_names = {p.sku: p.name for p in session.scalars(select(Part))}
    settings = request.app.state.settings
    hull = list(outline(settings.sample_data_dir / "places.csv"))
    points = list(hull)
    for route in plan.routes if plan else []:
        tech = technicians[route.technician_id]
        points.append((tech.home_latitude, tech.home_longitude))
    projection = Projection.fit(points)
    for n, route in enumerate(plan.routes if plan else []):
        tech = technicians[route.technician_id]
        colour = COLOURS[n % len(COLOURS)]
        blocks = []
        path = [(tech.home_latitude, tech.home_longitude)]
        free_at = route.start_at
        for stop in route.stops:
            if stop.arrival > free_at:
                t_left, t_width = position(free_at, stop.arrival, zone)
                blocks.append(Block("travel", t_left, t_width, "driving"))
            free_at = max(free_at, stop.departure)
            begins = stop.start or stop.arrival
            left, width = position(begins, stop.departure, zone)
            job = jobs.get(stop.job_id) if stop.job_id else None
            if stop.kind == "job" and job is not None:
                promise = promises.get(job.id)
                p_left, p_width = (
                    position(promise.window_start, promise.window_end, zone)
                    if promise
                    else (None, None)
                )
                kind = _KINDS.get(str(job.kind), str(job.kind))
                label = f"{kind} · {job.customer.city}"
                if stop.second_person:
                    label += " (2e persoon)"
                blocks.append(
                    Block(
                        "job",
                        left,
                        width,
                        label,
                        job.id,
                        p_left,
                        p_width,
                        pinned=job.pinned_technician_id is not None,
                        short=kind[:2] if width < NARROW_PCT else "",
                    )
                )
                details[job.id] = _details(job, promise, stop, zone, part_names)
                path.append((job.customer.latitude, job.customer.longitude))
                if not stop.second_person:
                    stops_xy.append(
                        (*projection.xy(job.customer.latitude, job.customer.longitude), colour)
                    )
            elif stop.kind == "pickup" and stop.location_id in locations:
                site = locations[stop.location_id]
                part = part_names.get(stop.part_sku or "", stop.part_sku or "")
                blocks.append(Block("pickup", left, width, f"ophalen: {part} · {site.name}"))
                path.append((site.latitude, site.longitude))
            else:
                host = next((b for b in reversed(blocks) if b.kind == "job"), None)
                inside = host is not None and host.left_pct <= left < host.left_pct + host.width_pct
                blocks.append(Block("break", left, width, "lunchpauze", inside=inside))
        path.append((tech.home_latitude, tech.home_longitude))
        lines.append((projection.path(path), colour, tech.code))
        homes.append((*projection.xy(tech.home_latitude, tech.home_longitude), colour, tech.code))
        rows.append({"route": route, "tech": tech, "blocks": blocks, "colour": colour})
    working = [t for t in technicians.values() if chosen is not None and t.shift_on(chosen)]
    callbacks = [] if shown is None else _callbacks(session, planner, shown, zone)
    return templates.TemplateResponse(
        request,
        "board.html",
        {
            "planner": planner,
            "callbacks": callbacks,
            "regions": regions,
            "region": shown,
            "days": days,
            "day": chosen,
            "today": today,
            "plan": plan,
            "rows": rows,
            "jobs": jobs,
            "working": working,
            "hours": list(range(DAY_START.hour, DAY_END.hour)),
            "outline": projection.path(hull),
            "lines": lines,
            "stops_xy": stops_xy,
            "homes": homes,
            "sites": [
                (*projection.xy(loc.latitude, loc.longitude), loc.name)
                for loc in sorted(locations.values(), key=lambda loc: loc.code)
            ],
            "details": details,
            "unplanned_groups": _unplanned_groups(plan),
            "kinds": _KINDS,
            "map_size": (MAP_W, MAP_H),
            "tz": zone,
            "msg": msg,
            "error": error,
            "refresh": running,
        },
    )


def _run_status(session: Session, planner: Account, run_id: str) -> tuple[str, str, bool]:
    """(message, error, still running) for a re-optimisation of one of the planner's
    regions."""
    run = session.get(OptimisationRun, run_id)
    if run is None or not planner.scope.allows(run.region_id):
        return "", "deze optimalisatie bestaat niet", False
    status, why = run.outcome
    if status == RunStatus.RUNNING:
        return f"opnieuw optimaliseren… {run.elapsed_s:.0f} van {run.time_limit_s:.0f} s", "", True
    if status == RunStatus.CANCELLED:
        return "", "de optimalisatie is afgebroken: er is niets veranderd", False
    if status == RunStatus.FAILED:
        return "", f"de optimalisatie is mislukt: {why}", False
    versions = session.scalars(
        select(Plan.version).where(Plan.id.in_(run.plan_ids)).order_by(Plan.day)
    ).all()
    shown = f": versie {versions[0]}" if versions else ""
    return f"opnieuw geoptimaliseerd{shown}", "", False


def _details(
    job: Job,
    promise: Appointment | None,
    stop: Stop,
    zone: ZoneInfo,
    part_names: dict[str, str],
) -> dict[str, str]:
    """What the job's pop-over tells the planner before they move it."""
    begins = (stop.start or stop.arrival).astimezone(zone)
    found = {
        "Klant": f"{job.customer.name}, {job.customer.phone}",
        "Adres": job.customer.address,
        "Gepland": f"{begins:%H:%M}–{stop.departure.astimezone(zone):%H:%M}",
        "Belofte": (
            f"{promise.window_start.astimezone(zone):%H:%M}–"
            f"{promise.window_end.astimezone(zone):%H:%M}"
            + (" (in gevaar)" if promise.status == "at_risk" else "")
        )
        if promise
        else "geen",
    }
    if job.parts:
        found["Onderdelen"] = "; ".join(
            f"{p.quantity} × {part_names.get(p.part_sku, p.part_sku)}"
            + (" (ophalen)" if p.missing else "")
            for p in job.parts
        )
    if job.skills:
        found["Vakmanschap"] = ", ".join(job.skills)
    return found


def _unplanned_groups(plan: Plan | None) -> list[tuple[str, list[UnassignedJob]]]:
    """The jobs left out, by reason, the largest group first: a long list stays readable."""
    groups: dict[str, list[UnassignedJob]] = {}
    for left in plan.unassigned if plan else []:
        groups.setdefault(left.reason, []).append(left)
    return sorted(groups.items(), key=lambda group: (-len(group[1]), group[0]))


@dataclass(frozen=True)
class _Callback:
    request: CallbackRequest
    customer: str
    order: str
    due: datetime | None  # in the region's time


def _callbacks(
    session: SessionDep, planner: Account, region: Region, zone: ZoneInfo
) -> list[_Callback]:
    """The region's waiting callbacks, the one due first on top."""
    found = []
    for asked in waiting(session, planner.scope, region.id):
        order = session.get_one(Order, asked.order_id)
        by = due(session, asked)
        found.append(
            _Callback(asked, order.customer.name, order.number, by.astimezone(zone) if by else None)
        )
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda c: (c.due or latest, c.request.id))


@router.post("/board/callbacks/{callback_id:int}/done")
def board_callback_done(
    callback_id: RowId,
    session: SessionDep,
    planner: MaybePlannerDep,
    day: Annotated[Day, Form()],
) -> Response:
    """The planner called the customer back: off the list."""
    if planner is None:
        return RedirectResponse("/login", status_code=303)
    asked = session.get(CallbackRequest, callback_id)
    order = session.get(Order, asked.order_id) if asked is not None else None
    if asked is None or order is None or not planner.scope.allows(order.region_id):
        return _back(None, day, error="dit terugbelverzoek bestaat niet")
    mark_done(asked, actor=f"planner:{planner.username}")
    return _back(order.region_id, day, msg=f"{order.customer.name} gebeld")


def _back(region_id: int | None, day: date, **query: str) -> Response:
    where = {"region": str(region_id)} if region_id is not None else {}
    where |= {"day": day.isoformat(), **query}
    return RedirectResponse(f"/board?{urlencode(where)}", 303)


@router.post("/board/jobs/{job_id:int}/move")
def board_move(
    job_id: RowId,
    request: Request,
    session: SessionDep,
    planner: MaybePlannerDep,
    day: Annotated[Day, Form()],
    technician_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    action: Annotated[str, Form(pattern="^(move|pin|unassign)$")] = "move",
    renegotiate: Annotated[bool, Form()] = False,
    # For a pin: the n-th job of the technician's day (1 is the first); empty: any.
    position: Annotated[str, Form(pattern=r"^([1-9][0-9]{0,2})?$")] = "",
) -> Response:
    """The board's job actions; the same domain services as the API, results on the board."""
    if planner is None:
        return RedirectResponse("/login", status_code=303)
    job = session.get(Job, job_id)
    technician = session.get(Technician, technician_id)
    if (
        job is None
        or technician is None
        or technician.region_id != job.region_id
        or not planner.scope.allows(job.region_id)
    ):
        return _back(None, day, error="deze klus of monteur bestaat niet")
    back = job.region_id
    actor = f"planner:{planner.username}"
    state = request.app.state
    index = int(position) - 1 if position else None
    try:
        if action == "pin":
            steering.pin(session, job, technician, day, None, actor=actor, position=index)
            where = f" als klus {position}" if position else ""
            pinned = (
                f"klus {job.id} vastgezet bij {technician.code} op {short_day(day, 'nl')}{where}"
            )
            return _back(back, day, msg=pinned)
        if action == "unassign":
            steering.unassign(
                session, job, actor=actor, renegotiate=renegotiate, today=state.today()
            )
            return _back(back, day, msg=f"klus {job.id} uit de planning")
        steering.move(
            session,
            job,
            technician,
            day,
            None,
            travel=state.travel,
            rules=state.rules,
            today=state.today(),
            actor=actor,
            renegotiate=renegotiate,
        )
    except AppointmentError as refused:
        session.rollback()
        return _back(back, day, error=str(refused))
    return _back(back, day, msg=f"klus {job.id} verplaatst naar {technician.code}")


@router.post("/board/reoptimise")
def board_reoptimise(
    request: Request,
    session: SessionDep,
    planner: MaybePlannerDep,
    tasks: BackgroundTasks,
    day: Annotated[Day, Form()],
    region_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    seconds: Annotated[float, Form(gt=0, le=60)] = 3.0,
) -> Response:
    """Re-plan the region's day around what planners fixed (pins and promises stay)."""
    if planner is None:
        return RedirectResponse("/login", status_code=303)
    region = session.get(Region, region_id)
    if region is None or not planner.scope.allows(region.id):
        return _back(None, day, error="deze regio bestaat niet")
    if latest_plan(session, region.id, day) is None:
        return _back(region.id, day, error="geen planning voor deze dag")
    started = runs.start(
        session,
        region,
        day,
        1,
        seconds,
        today=request.app.state.today(),
        started_by=f"planner:{planner.username}",
    )
    # A run like any other (a worker's, where there is a queue), handed over once this
    # request has committed its row; the board follows it.
    tasks.add_task(request.app.state.executor.submit, started.id)
    return _back(region.id, day, run=started.id)


@router.get("/board/customers/{customer_id:int}", response_class=HTMLResponse)
def board_customer(
    customer_id: RowId, request: Request, session: SessionDep, planner: MaybePlannerDep
) -> Response:
    """Everything about one customer on one page (the planner's regions), so nobody asks
    them to repeat it: contact, what they bought, every job with its appointments and parts,
    callbacks waiting and what happened."""
    if planner is None:
        return RedirectResponse("/login", status_code=303)
    try:
        view = customer_view(customer_id, session, planner)
    except HTTPException:
        return _back(None, request.app.state.today(), error="deze klant bestaat niet")
    zone = ZoneInfo(request.app.state.settings.timezone)

    def local_window(appointment: AppointmentBrief) -> str:
        start = appointment.window_start.astimezone(zone)
        end = appointment.window_end.astimezone(zone)
        return f"{short_day(start.date(), 'nl')} {start:%H:%M}–{end:%H:%M}"

    def local_moment(moment: datetime) -> str:
        at = moment.astimezone(zone)
        return f"{short_day(at.date(), 'nl')} {at:%H:%M}"

    jobs_of: dict[int, list[JobRead]] = {}
    for job in view.jobs:
        jobs_of.setdefault(job.order_id, []).append(job)
    products = {p.sku: p.name for p in session.scalars(select(Product))}
    parts = {p.sku: p.name for p in session.scalars(select(Part))}
    return templates.TemplateResponse(
        request,
        "board_customer.html",
        {
            "planner": planner,
            "view": view,
            "jobs_of": jobs_of,
            "waiting": [c for c in view.callbacks if c.status == "waiting"],
            "products": products,
            "parts": parts,
            "kinds": _KINDS,
            "statuses": {s: status_text(s, "nl") for s in {j.status for j in view.jobs}},
            "channels": _CHANNELS,
            "appointment_statuses": _APPOINTMENT_STATUSES,
            "local_window": local_window,
            "local_moment": local_moment,
        },
    )
