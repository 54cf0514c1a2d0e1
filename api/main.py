"""The ASGI application: `uvicorn api.main:app` serves API, OpenAPI and pages."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from api import notify, openapi, redaction, worker
from api.edge import RECEIVED, SecurityHeaders
from api.offers import offering
from api.routers import (
    accounts,
    appointments,
    auth,
    calendars,
    callbacks,
    customers,
    day,
    pages,
    plans,
    resources,
    self_service,
    steering,
    webhooks,
)
from api.schemas import WindowsRead
from api.security import KeyRing, Signer
from calendars.mail import Mailer
from fieldplan import signing_keys
from fieldplan.accounts import SignInThrottled
from fieldplan.appointments import AppointmentError
from fieldplan.booking import BookingRules, KeyReused, SlotTaken, offer_again
from fieldplan.db import make_engine, reading, session_factory, unit_of_work
from fieldplan.jobs import IllegalTransition
from fieldplan.optimisation import PlanOutdated
from fieldplan.plan_gate import PlanRefused
from fieldplan.planning import UnreadablePlan
from fieldplan.settings import Settings, get_settings
from fieldplan.travel import travel_times

# Any request body above this is refused with 413 before it is read; the order import has
# its own, larger limit.
MAX_BODY_BYTES = 64 * 1024


def _clock(settings: Settings) -> Callable[[], datetime]:
    """Real time; or, for the demo, time that started at `demo_start` when the app did."""
    if settings.demo_start is None:
        return lambda: datetime.now(UTC)
    start = settings.demo_start
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(settings.timezone))
    began = time.monotonic()
    return lambda: start.astimezone(UTC) + timedelta(seconds=time.monotonic() - began)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Swagger UI and ReDoc served from the package's own copies: no CDN, ever.
    app = FastAPIOffline(
        title="fieldplan",
        version="0.1.0",
        description="After-sales field-service planning for DIY retail.",
        max_body_size=MAX_BODY_BYTES,
        lifespan=_keys_before_requests,
    )
    app.add_middleware(SecurityHeaders)
    redaction.install()
    app.state.sessions = session_factory(make_engine(settings.database_url))
    app.state.signer = Signer(_key_ring(settings, app.state.sessions), settings.token_minutes * 60)
    app.state.settings = settings
    app.state.customer_links = app.state.signer.derive(
        "customer-links", appointments.CUSTOMER_LINK_DAYS * 86400
    )
    app.state.mailer = Mailer(
        outbox=settings.outbox_dir,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        sender=settings.mail_sender,
    )
    app.state.transports = notify.transports(settings, app.state.mailer)
    # The clock, and today's date in the region; tests replace `now` with a fixed moment.
    app.state.now = _clock(settings)
    app.state.demo_clock = settings.demo_start is not None
    app.state.today = lambda: app.state.now().astimezone(ZoneInfo(settings.timezone)).date()
    app.state.order_links = app.state.signer.derive("order-links", settings.order_link_days * 86400)
    app.state.travel = travel_times(settings.osrm_url)
    app.state.executor = worker.executor(app, settings)
    app.state.rules = BookingRules(
        window_minutes=settings.window_minutes,
        step_minutes=settings.window_step_minutes,
        offer_days=settings.offer_days,
        customer_cutoff_hours=settings.customer_cutoff_hours,
    )
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static"
    )

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(SlotTaken)
    def slot_taken(_: Request, error: Exception) -> JSONResponse:
        """The window went (or never was): 409 with the reason and what is free now, looked
        up after the refused booking let go of the region (a reading session of its own)."""
        assert isinstance(error, SlotTaken)
        state = app.state
        with unit_of_work(state.sessions) as session, offering(urgent=True):
            reading(session)
            windows = offer_again(
                session, error, state.travel, today=state.today(), rules=state.rules
            )
        return JSONResponse(
            status_code=409,
            content={
                "detail": str(error),
                "windows": jsonable_encoder(WindowsRead.of(windows)) if windows else None,
            },
        )

    @app.exception_handler(StaleDataError)
    @app.exception_handler(IntegrityError)
    def concurrent_change(_: Request, error: Exception) -> JSONResponse:
        """Another request changed the same rows first; nothing of this one was written."""
        return JSONResponse(
            status_code=409,
            content={"detail": "changed by someone else at the same moment: please try again"},
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    def busy(request: Request, error: Exception) -> JSONResponse:
        """The database's locks or connections stayed taken too long under load: nothing was
        written; try again shortly. Anything else the database says is a real error. The
        operator is told which it was and how long the request had waited."""
        if isinstance(error, OperationalError) and not _lock_wait(error):
            raise error
        logging.getLogger(__name__).warning(
            "503 busy after %.1f s: %s %s: %s",
            time.monotonic() - request.scope.get(RECEIVED, time.monotonic()),
            request.method,
            getattr(request.scope.get("route"), "path", "?"),  # the template: no token
            getattr(error, "orig", None) or error,
        )
        return JSONResponse(
            status_code=503,
            content={"detail": "busy: many changes at once, nothing was written; try again"},
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(PlanRefused)
    def plan_refused(_: Request, error: Exception) -> JSONResponse:
        """The change would lose or break a promise: nothing was written, here is why."""
        assert isinstance(error, PlanRefused)
        return JSONResponse(
            status_code=409,
            content={
                "detail": str(error),
                "defects": [
                    {"day": d.day.isoformat(), "kind": d.kind, "job_id": d.job_id, "why": d.message}
                    for d in error.defects
                ],
            },
        )

    @app.exception_handler(SignInThrottled)
    def throttled(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, SignInThrottled)
        return JSONResponse(
            status_code=429,
            content={"detail": str(error)},
            headers={"Retry-After": str(error.retry_after_s)},
        )

    @app.exception_handler(KeyReused)
    def key_reused(_: Request, error: Exception) -> JSONResponse:
        """An idempotency key sent with a different request than the first: nothing done."""
        return JSONResponse(
            status_code=422,
            content={"detail": [{"field": "Idempotency-Key", "reason": str(error)}]},
        )

    @app.exception_handler(PlanOutdated)
    @app.exception_handler(UnreadablePlan)
    @app.exception_handler(AppointmentError)
    @app.exception_handler(IllegalTransition)
    def conflict(_: Request, error: Exception) -> JSONResponse:
        """A change the domain refuses (a second promise, a done job): 409 with the reason."""
        return JSONResponse(status_code=409, content={"detail": str(error)})

    routers = (
        auth.router,
        accounts.router,
        plans.router,
        customers.router,
        appointments.router,
        calendars.router,
        callbacks.router,
        self_service.router,
        steering.router,
        day.router,
        resources.router,
        pages.router,
        webhooks.router,
    )
    app.add_exception_handler(self_service.LinkGone, self_service.link_gone)
    openapi.document_refusals(app.router, *routers)
    for router in routers:
        app.include_router(router)
    openapi.install_allow(app, *routers)
    return app


@asynccontextmanager
async def _keys_before_requests(app: FastAPI) -> AsyncIterator[None]:
    """The signing keys are read (on a new database: made) as the process starts, in a
    transaction of their own, never by a request that already holds the write lock (a
    booking mailing its customer's link would wait for itself on SQLite)."""
    await run_in_threadpool(app.state.signer.ring.current)
    yield


def _lock_wait(error: OperationalError) -> bool:
    """SQLite's busy timeout, or PostgreSQL's lock timeout (55P03) or deadlock (40P01)."""
    code = getattr(error.orig, "sqlstate", None)
    return code in ("55P03", "40P01") or "database is locked" in str(error.orig)


def _key_ring(settings: Settings, sessions: sessionmaker[Session]) -> KeyRing:
    """`FIELDPLAN_SECRET_KEY` when set; else the keys kept in the database, made by the first
    process that needs one, so links survive restarts and every worker agrees."""
    if settings.secret_key:
        return KeyRing.fixed(settings.secret_key.encode())
    longest = timedelta(days=max(settings.order_link_days, appointments.CUSTOMER_LINK_DAYS))

    def load() -> list[bytes]:
        with unit_of_work(sessions) as session:
            return signing_keys.keys(session, retire_after=longest)

    return KeyRing(load)


app = create_app()
