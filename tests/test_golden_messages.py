"""Every customer message, per event and language, against its golden file.

A change to a template shows up here as a diff a reviewer reads in the words the customer
gets. After a deliberate change: `FIELDPLAN_UPDATE_GOLDEN=1 pytest tests/test_golden_messages.py`
rewrites the files, and the diff goes into review with the change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calendars.invites import invite
from calendars.messages import render
from fieldplan.appointments import AppointmentChange, AppointmentStatus
from fieldplan.notices import CustomerNotice, NoticeKind
from tests.test_calendars import AMSTERDAM, DESK, appointment, customer, job

GOLDEN = Path(__file__).parent / "golden"
PAGE = "https://plan.example/o/abc"
LANGUAGES = ("nl", "en")


def _compare(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("FIELDPLAN_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with FIELDPLAN_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def _invite_text(status: str, language: str) -> str:
    booked = appointment(datetime(2026, 12, 2, 9, 30))
    if status == "booked":
        shown = booked
    else:
        shown = appointment(datetime(2026, 12, 3, 13, 0), sequence=2)
        shown.changes = [
            AppointmentChange(
                at=datetime(2026, 11, 20, tzinfo=UTC),
                actor="customer",
                old_start=booked.window_start,
                old_end=booked.window_end,
                new_start=shown.window_start,
                new_end=shown.window_end,
            )
        ]
        if status == "cancelled":
            shown.status = AppointmentStatus.CANCELLED
    event = invite(shown, job(), customer(language), "UTR-1", DESK, manage_url=PAGE).events[0]
    return f"Subject: {event['summary']}\n\n{event['description']}\n"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", ["booked", "moved", "cancelled"])
def test_invites(status: str, language: str) -> None:
    _compare(f"invite-{status}.{language}", _invite_text(status, language))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(NoticeKind))
def test_notices(kind: NoticeKind, language: str) -> None:
    promised = appointment(datetime(2026, 12, 2, 9, 30))
    eta = datetime(2026, 12, 2, 10, 40, tzinfo=AMSTERDAM).astimezone(UTC)
    timed = kind in (NoticeKind.ON_THE_WAY, NoticeKind.NEW_ESTIMATE)
    notice = CustomerNotice(kind=kind, eta=eta if timed else None)
    instead = [
        (
            appointment(datetime(2026, 12, d, 13, 0)).window_start,
            appointment(datetime(2026, 12, d, 13, 0)).window_end,
        )
        for d in (4, 7)
    ]
    subject, text = render(
        notice, promised, job(), customer(language), DESK, AMSTERDAM, PAGE, instead
    )
    _compare(f"notice-{kind}.{language}", f"Subject: {subject}\n\n{text}\n")
