"""Every customer message, per event and language, against its golden file.

A change to a template shows up here as a diff a reviewer reads in the words the customer
gets. After a deliberate change: `FIELDPLAN_UPDATE_GOLDEN=1 pytest tests/test_golden_messages.py`
rewrites the files, and the diff goes into review with the change. The technician's feed is
here too: what the crew reads of a day.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from calendars.feeds import FeedContext, technician_feed
from calendars.invites import invite
from calendars.messages import render
from fieldplan.appointments import AppointmentChange, AppointmentStatus
from fieldplan.catalogue import Part
from fieldplan.jobs import JobPart
from fieldplan.locations import Location, OpeningHours
from fieldplan.notices import CustomerNotice, NoticeKind
from fieldplan.plans import Plan, Route, Stop, StopKind
from fieldplan.technicians import Technician
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


def _technician_day() -> tuple[Technician, Plan, Route, FeedContext]:
    """A technician's Wednesday: a part fetched at the store, a promised installation that
    needs it, lunch."""
    store = Location(
        id=7,
        code="S-UTR",
        kind="store",
        name="Bouwmarkt Utrecht",
        street="Europalaan 2",
        postcode="3526 KS",
        city="Utrecht",
        latitude=52.07,
        longitude=5.11,
        phone="+31 30 2000000",
        email="service.s-utr@bouwmarkt.example.nl",
    )
    store.opening_hours = [OpeningHours(weekday=2, opens=time(8), closes=time(21))]
    work = job()
    work.id, work.order_id, work.crew_size, work.skills = 11, 5, 1, ["flooring"]
    work.customer = customer()
    work.customer.notes = "Hond aanwezig"
    work.parts = [JobPart(part_sku="P-TRIM", quantity=2, missing=True)]
    day = datetime(2026, 12, 2, tzinfo=AMSTERDAM)

    def at(hour: int, minute: int = 0) -> datetime:
        return day.replace(hour=hour, minute=minute).astimezone(UTC)

    route = Route(technician_id=1)
    route.stops = [
        Stop(position=0, kind=StopKind.PICKUP, job_id=11, location_id=7, part_sku="P-TRIM",
             arrival=at(8, 20), start=at(8, 20), departure=at(8, 30)),
        Stop(position=1, kind=StopKind.JOB, job_id=11, arrival=at(8, 55), start=at(9, 30),
             departure=at(13, 30, )),
        Stop(position=2, kind=StopKind.BREAK, arrival=at(13, 30), start=at(13, 30),
             departure=at(14, 0)),
    ]  # fmt: skip
    plan = Plan(day=day.date(), version=3, created_at=datetime(2026, 12, 1, 18, tzinfo=UTC))
    technician = Technician(id=1, code="T04", name="Zoë Bakker")
    context = FeedContext(
        jobs={11: work},
        locations={7: store},
        parts={"P-TRIM": Part(sku="P-TRIM", name="Plint eiken 2,4 m")},
        order_numbers={5: "UTR-1"},
        promises={11: (at(9, 30), at(11, 30))},
        desks={5: DESK},
    )
    return technician, plan, route, context


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_technicians_feed(language: str) -> None:
    technician, plan, route, context = _technician_day()
    calendar = technician_feed(technician, [(plan, route)], context, language=language)
    shown = []
    for event in calendar.events:
        shown.append(
            f"{event.start:%H:%M}-{event.end:%H:%M} {event['summary']}\n"
            + (f"@ {event['location']}\n" if "location" in event else "")
            + (f"{event['description']}\n" if "description" in event else "")
        )
    _compare(f"feed.{language}", "\n".join(shown))
