"""The customer's page: one signed, expiring link per order, no account, no JavaScript.

Everything the customer can see or touch hangs off the order the link was signed for: a job,
appointment or invite id from the address bar is only honoured when it belongs to that order,
and anything else answers 404, exactly as an unknown id does.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from api import scoped
from api.deps import CommittedInThread, PlannerDep, SessionDep
from api.i18n import TEXTS, language, reason_text, status_text, window_label
from api.offers import for_customer, offering
from api.routers.appointments import order_page_url, send_invite
from api.routers.calendars import CalendarResponse, invite_for
from api.routers.pages import templates
from api.schemas import RowId, Words
from calendars.invites import ServiceDesk
from fieldplan import booking, booking_desk, notices
from fieldplan.appointments import (
    AgreedVia,
    Appointment,
    AppointmentError,
    check_window,
    live_appointment,
)
from fieldplan.booking import (
    SlotTaken,
    Windows,
    customer_cutoff,
    offer_again,
    order_jobs,
)
from fieldplan.callbacks import due, request_callback, waiting_for_order
from fieldplan.catalogue import Part
from fieldplan.dates import long_day, short_day
from fieldplan.db import reading
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.orders import Order
from fieldplan.regions import Region

router = APIRouter(route_class=CommittedInThread, tags=["customer self-service"])
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{7,20}$")


class OrderLink(BaseModel):
    url: str


@router.get("/orders/{order_id:int}/customer-link")
def order_link(
    order_id: RowId, request: Request, session: SessionDep, planner: PlannerDep
) -> OrderLink:
    """The signed, expiring link to the customer's page for this order."""
    order = scoped.order(session, planner, order_id)
    return OrderLink(url=order_page_url(request, order.id))


class LinkGone(Exception):
    """A customer link that is wrong, expired, or names another order's job: the customer
    gets a page that says so in words (404), never a JSON body."""


def link_gone(request: Request, _: Exception) -> Response:
    lang = language(request.query_params.get("lang"), "nl")
    return _page(request, "link_gone.html", lang, {}, status_code=404)


def _order(request: Request, session: SessionDep, token: str) -> Order:
    order_id = request.app.state.order_links.verify(token)
    order = session.get(Order, order_id) if order_id is not None else None
    if order is None:
        raise LinkGone
    return order


def _job(session: SessionDep, order: Order, job_id: RowId) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.order_id != order.id:
        raise LinkGone
    return job


def _appointment(session: SessionDep, order: Order, appointment_id: RowId) -> Appointment:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or session.get_one(Job, appointment.job_id).order_id != order.id:
        raise LinkGone
    return appointment


def _page(
    request: Request,
    template: str,
    lang: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        template,
        {"t": TEXTS[lang], "lang": lang, "other": "en" if lang == "nl" else "nl", **context},
        status_code=status_code,
    )


def _desk(session: SessionDep, order: Order) -> ServiceDesk | None:
    """The store the customer bought at: named, with its desk's phone and address, on every
    page of theirs."""
    store = session.get(Location, order.store_id) if order.store_id else None
    return ServiceDesk.of_store(store) if store is not None else None


def _zone(session: SessionDep, order: Order) -> ZoneInfo:
    return ZoneInfo(session.get_one(Region, order.region_id).timezone)


def _order_page(
    request: Request,
    session: SessionDep,
    order: Order,
    token: str,
    lang: str,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    zone = _zone(session, order)
    names = {part.sku: part.name for part in session.scalars(select(Part))}
    cutoff = customer_cutoff(request.app.state.now(), request.app.state.rules)
    rows = []
    for job in order_jobs(session, order.id):
        appointment = live_appointment(session, job.id)
        rows.append(
            {
                "job": job,
                "kind": TEXTS[lang].get(str(job.kind), str(job.kind)),
                "status": status_text(str(job.status), lang),
                "appointment": appointment,
                "window": window_label(
                    appointment.window_start.astimezone(zone),
                    appointment.window_end.astimezone(zone),
                    lang,
                )
                if appointment
                else None,
                "parts": [
                    TEXTS[lang]["part_missing" if p.missing else "part_ok"].format(
                        part=names.get(p.part_sku, p.part_sku), quantity=p.quantity
                    )
                    for p in job.parts
                ],
                "can_book": str(job.status) in ("new", "offered", "booked", "planned"),
                # Inside the cut-off the customer can no longer move or cancel it themselves:
                # the page says so instead of offering buttons that would only refuse.
                "locked": appointment is not None and appointment.window_start < cutoff,
                # Told the technician's on the way: the page shows the same estimate.
                "eta": _estimate(session, appointment, job, zone, lang),
            }
        )
    pending = []
    for asked in waiting_for_order(session, order.id):
        by = due(session, asked)
        pending.append(
            TEXTS[lang]["callback_pending"].format(
                phone=asked.phone,
                when=f"{short_day(by.astimezone(zone).date(), lang)} {by.astimezone(zone):%H:%M}",
            )
            if by is not None
            else TEXTS[lang]["callback_pending_soon"].format(phone=asked.phone)
        )
    return _page(
        request,
        "order.html",
        lang,
        {
            "order": order,
            "customer": order.customer,
            "token": token,
            "rows": rows,
            "pending_callbacks": pending,
            "desk": _desk(session, order),
            "message": message,
            "error": error,
        },
        status_code,
    )


def _estimate(
    session: SessionDep, appointment: Appointment | None, job: Job, zone: ZoneInfo, lang: str
) -> str | None:
    if appointment is None or str(job.status) not in ("planned", "en_route"):
        return None
    told = notices.estimate(session, appointment.id)
    if told is None:
        return None
    return TEXTS[lang]["eta_at"].format(time=f"{told.astimezone(zone):%H:%M}")


def _day_shown(
    by_day: dict[date, list[dict[str, Any]]], asked: str | None, current: datetime | None
) -> date | None:
    try:
        wanted = date.fromisoformat(asked) if asked else None
    except ValueError:
        wanted = None  # a hand-edited link: show the usual day
    for candidate in (wanted, current.date() if current else None):
        if candidate in by_day:
            return candidate
    recommended = [d for d, options in by_day.items() if any(o["recommended"] for o in options)]
    return recommended[0] if recommended else next(iter(by_day), None)


def _sentence(text: str) -> str:
    """A refusal shown on its own starts as a sentence does."""
    return text[:1].upper() + text[1:]


def _refused(
    request: Request,
    session: SessionDep,
    order: Order,
    token: str,
    lang: str,
    refused: AppointmentError,
) -> Response:
    """Nothing of the refused change is kept; the order page says why, in the customer's words."""
    session.rollback()
    return _order_page(
        request,
        session,
        order,
        token,
        lang,
        error=_sentence(reason_text(refused.why, lang) if refused.why else str(refused)),
        status_code=409,
    )


@router.get("/o/{token}", response_class=HTMLResponse, include_in_schema=False)
def order_page(
    token: str, request: Request, session: SessionDep, lang: str | None = None, msg: str = ""
) -> Response:
    order = _order(request, session, token)
    chosen = language(lang, order.customer.language)
    message = TEXTS[chosen].get(msg) if msg in ("booked", "cancelled", "callback_sent") else None
    return _order_page(request, session, order, token, chosen, message=message)


def _windows_page(
    request: Request,
    session: SessionDep,
    order: Order,
    token: str,
    job: Job,
    lang: str,
    found: Windows | None,
    error: str | None = None,
    status_code: int = 200,
    day: str | None = None,
) -> Response:
    zone = _zone(session, order)
    # When moving, the customer sees where the appointment stands now, and that window is
    # marked if it is on offer again.
    current = live_appointment(session, job.id)
    by_day: dict[date, list[dict[str, Any]]] = {}
    if found is not None:
        for choice in found.choices:
            start, end = choice.start.astimezone(zone), choice.end.astimezone(zone)
            by_day.setdefault(start.date(), []).append(
                {
                    "value": f"{start.isoformat()}|{end.isoformat()}",
                    "label": f"{start:%H:%M}–{end:%H:%M}",
                    "recommended": choice.recommended,
                    "current": current is not None and choice.start == current.window_start,
                }
            )
    # One day's windows at a time, the days as tabs above them: on a phone the choice and
    # its button stay on one screen. The day shown: the one asked for, else the current
    # appointment's, else the first with a recommended window, else the first.
    shown = _day_shown(by_day, day, current.window_start.astimezone(zone) if current else None)
    days = [
        {
            "iso": d.isoformat(),
            "label": short_day(d, lang),
            "count": len(options),
            "recommended": any(o["recommended"] for o in options),
            "shown": d == shown,
        }
        for d, options in by_day.items()
    ]
    return _page(
        request,
        "windows.html",
        lang,
        {
            "order": order,
            "token": token,
            "job": job,
            "kind": TEXTS[lang].get(str(job.kind), str(job.kind)),
            "desk": _desk(session, order),
            "days": days,
            "shown": by_day.get(shown, []) if shown is not None else [],
            "shown_label": long_day(shown, lang) if shown is not None else "",
            "found": found,
            "first_dates": ", ".join(short_day(d, lang) for d in found.first_dates)
            if found
            else "",
            "current": window_label(
                current.window_start.astimezone(zone), current.window_end.astimezone(zone), lang
            )
            if current is not None
            else None,
            "reason": reason_text(found.reason if found else None, lang),
            "key": secrets.token_urlsafe(16),
            "error": error,
        },
        status_code,
    )


@router.get(
    "/o/{token}/jobs/{job_id:int}/windows", response_class=HTMLResponse, include_in_schema=False
)
def windows_page(
    token: str,
    job_id: RowId,
    request: Request,
    session: SessionDep,
    lang: str | None = None,
    day: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    order = _order(request, session, token)
    job = _job(session, order, job_id)
    state = request.app.state
    found = for_customer(state, session, job)
    chosen = language(lang, order.customer.language)
    return _windows_page(request, session, order, token, job, chosen, found, day=day)


@router.post("/o/{token}/jobs/{job_id:int}/book", include_in_schema=False)
def book_window(
    token: str,
    job_id: RowId,
    request: Request,
    session: SessionDep,
    tasks: BackgroundTasks,
    window: Annotated[str, Form(max_length=80)],
    key: Annotated[Words, Form(max_length=80)],
    lang: Annotated[str, Form(max_length=5)] = "nl",
) -> Response:
    """Book (or move to) the chosen window; if it just went, show what is free now."""
    order = _order(request, session, token)
    job = _job(session, order, job_id)
    chosen = language(lang, order.customer.language)
    start_text, _, end_text = window.partition("|")
    try:
        start, end = datetime.fromisoformat(start_text), datetime.fromisoformat(end_text)
        check_window(start, end)
    except ValueError:  # AppointmentError included: naive, reversed or endless windows
        raise HTTPException(422, detail="window: not a window from the list") from None
    state = request.app.state
    actor = f"customer:{order.customer_id}"
    idempotency = booking.Idempotency.of(f"page:{order.id}:{key}", job.id, window)
    done = RedirectResponse(f"/o/{token}?msg=booked&lang={chosen}", status_code=303)
    try:
        if booking.replayed(session, idempotency, job) is not None:
            return done  # the same form sent twice: booked once
    except booking.KeyReused:
        raise HTTPException(409, detail="this form was already used for another window") from None
    except AppointmentError as refused:  # what this form booked was cancelled since
        return _refused(request, session, order, token, chosen, refused)
    current = live_appointment(session, job.id)
    try:
        if current is None:
            asked = booking.Asked(
                start,
                end,
                actor,
                AgreedVia.SELF_SERVICE,
                idempotency,
                not_before=customer_cutoff(state.now(), state.rules),
            )
            appointment, made = booking_desk.book(
                session, job, asked, travel=state.travel, today=state.today(), rules=state.rules
            )
        else:
            appointment, made = (
                booking.move(
                    session,
                    current,
                    start,
                    end,
                    travel=state.travel,
                    now=state.now(),
                    today=state.today(),
                    rules=state.rules,
                    actor=actor,
                    reason="moved by the customer",
                    by_customer=True,
                    idempotency=idempotency,
                ),
                True,
            )
    except SlotTaken as taken:
        session.rollback()  # lets go of the region before the fresh offer is worked out
        reading(session)
        with offering(urgent=True):
            windows = offer_again(
                session, taken, state.travel, today=state.today(), rules=state.rules
            )
        message = TEXTS[chosen]["taken"].format(reason=reason_text(taken.why, chosen))
        return _windows_page(request, session, order, token, job, chosen, windows, message, 409)
    except AppointmentError as refused:
        return _refused(request, session, order, token, chosen, refused)
    if made:
        send_invite(request, session, appointment, tasks)
    return done


@router.post("/o/{token}/appointments/{appointment_id:int}/cancel", include_in_schema=False)
def cancel_appointment(
    token: str,
    appointment_id: RowId,
    request: Request,
    session: SessionDep,
    tasks: BackgroundTasks,
    lang: Annotated[str, Form(max_length=5)] = "nl",
) -> Response:
    order = _order(request, session, token)
    appointment = _appointment(session, order, appointment_id)
    chosen = language(lang, order.customer.language)
    state = request.app.state
    try:
        booking.call_off(
            session,
            appointment,
            now=state.now(),
            today=state.today(),
            rules=state.rules,
            actor=f"customer:{order.customer_id}",
            reason="cancelled by the customer",
            by_customer=True,
        )
    except AppointmentError as refused:
        return _refused(request, session, order, token, chosen, refused)
    send_invite(request, session, appointment, tasks)
    return RedirectResponse(f"/o/{token}?msg=cancelled&lang={chosen}", status_code=303)


@router.post("/o/{token}/callback", include_in_schema=False)
def callback(
    token: str,
    request: Request,
    session: SessionDep,
    phone: Annotated[Words, Form(max_length=32)],
    preferred_time: Annotated[Words, Form(max_length=80)] = "",
    note: Annotated[Words, Form(max_length=1000)] = "",
    lang: Annotated[str, Form(max_length=5)] = "nl",
) -> Response:
    order = _order(request, session, token)
    chosen = language(lang, order.customer.language)
    if not PHONE.match(phone.strip()):
        return _order_page(
            request,
            session,
            order,
            token,
            chosen,
            error=TEXTS[chosen]["bad_phone"],
            status_code=422,
        )
    request_callback(
        session,
        order,
        phone=phone.strip(),
        preferred_time=preferred_time.strip(),
        note=note.strip(),
        actor=f"customer:{order.customer_id}",
    )
    return RedirectResponse(f"/o/{token}?msg=callback_sent&lang={chosen}", status_code=303)


@router.get("/o/{token}/appointments/{appointment_id:int}/invite.ics", include_in_schema=False)
def invite(token: str, appointment_id: RowId, request: Request, session: SessionDep) -> Response:
    order = _order(request, session, token)
    appointment = _appointment(session, order, appointment_id)
    return CalendarResponse(
        invite_for(session, appointment),
        headers={"Content-Disposition": "attachment; filename=afspraak.ics"},
    )
