"""Customers' notices leave after the transaction that wrote them has committed.

The domain writes what to tell (`fieldplan.notices`) with the change that makes it true; this
sends what is unsent, in a session of its own, once the request's own work is done. A notice
that a crash kept from going out is sent by the next dispatch (any report or reminder run).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from api.offers import for_customer
from calendars.mail import Mailer
from calendars.messages import MailTransport, SmsOutbox, Transport, dispatch
from fieldplan.db import unit_of_work
from fieldplan.jobs import Job
from fieldplan.settings import Settings


def transports(settings: Settings, mailer: Mailer) -> dict[str, Transport]:
    return {
        "email": MailTransport(mailer, settings.mail_sender),
        "sms": SmsOutbox(Path(settings.outbox_dir) / "sms"),
    }


def send_notices(app: FastAPI) -> int:
    state = app.state
    base = state.settings.base_url

    def manage_url(order_id: int) -> str:
        return f"{base}/o/{state.order_links.issue(order_id)}"

    with unit_of_work(state.sessions) as session:

        def options(job: Job) -> list[tuple[datetime, datetime]]:
            """What the customer could pick instead, as their own page would offer it."""
            found = for_customer(state, session, job)
            return [(c.start, c.end) for c in found.choices if c.recommended]

        return dispatch(session, state.transports, manage_url, options)
