"""The ASGI application: `uvicorn api.main:app` serves API, OpenAPI and pages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.routers import appointments, auth, calendars, customers, pages, plans
from api.security import Signer
from calendars.mail import Mailer
from fieldplan.appointments import AppointmentError
from fieldplan.db import make_engine, session_factory
from fieldplan.jobs import IllegalTransition
from fieldplan.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="fieldplan",
        version="0.1.0",
        description="After-sales field-service planning for DIY retail.",
    )
    app.state.sessions = session_factory(make_engine(settings.database_url))
    app.state.signer = Signer.from_setting(settings.secret_key, settings.token_minutes)
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
    # Today's date in the region, for feeds; tests replace it with a fixed day.
    app.state.today = lambda: datetime.now(ZoneInfo(settings.timezone)).date()
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static"
    )

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(AppointmentError)
    @app.exception_handler(IllegalTransition)
    def conflict(_: Request, error: Exception) -> JSONResponse:
        """A change the domain refuses (a second promise, a done job): 409 with the reason."""
        return JSONResponse(status_code=409, content={"detail": str(error)})

    routers = (
        auth.router,
        plans.router,
        customers.router,
        appointments.router,
        calendars.router,
        pages.router,
    )
    for router in routers:
        app.include_router(router)
    return app


app = create_app()
