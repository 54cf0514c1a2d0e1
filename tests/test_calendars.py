"""Invites checked by three clients nobody here wrote: ical.js, Radicale (CalDAV), icalendar.

The decisive check is the UTC instant each client reads, for summer, winter and both DST
switch days: a wrong VTIMEZONE shows up as an appointment an hour off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import caldav
import pytest
from icalendar import Calendar

from calendars.invites import ServiceDesk, invite
from calendars.mail import Mailer, invite_email
from fieldplan.appointments import Appointment, AppointmentChange, AppointmentStatus
from fieldplan.customers import Customer
from fieldplan.jobs import Job
from tests.calendar_clients import free_port, icaljs, radicale_server

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DESK = ServiceDesk(
    "Bouwmarkt Utrecht",
    "service.s-utr@bouwmarkt.example.nl",
    "+31 30 2000000",
    "Europalaan 2, 3526 KS Utrecht",
)


def customer(language: str = "nl") -> Customer:
    return Customer(
        name="Zoë van IJzendoorn-Müller",
        street="Vondellaan",
        house_number="12",
        postcode="3521 GD",
        city="Utrecht",
        email="zoe@example.nl",
        phone="+31 6 1",
        language=language,
        latitude=52.08,
        longitude=5.11,
        notes="",
    )


def appointment(
    start: datetime,
    *,
    hours: int = 2,
    sequence: int = 1,
    ident: int = 1,
    status: AppointmentStatus = AppointmentStatus.PROMISED,
) -> Appointment:
    local = start.replace(tzinfo=AMSTERDAM)
    return Appointment(
        id=ident,
        window_start=local.astimezone(UTC),
        window_end=(local + timedelta(hours=hours)).astimezone(UTC),
        sequence=sequence,
        status=status,
        created_at=datetime(2026, 1, 2, 9, 0, tzinfo=UTC),
        changes=[],
    )


def job(kind: str = "installation", days: int = 1, description: str = "") -> Job:
    return Job(
        kind=kind,
        days=days,
        duration_min=240,
        description=description or "Laminaat eiken, pack 2.2 m2 × 12",
    )


# (name, local wall-clock start): summer, winter and both DST switch Sundays of 2026.
CASES = [
    ("summer", datetime(2026, 7, 7, 9, 30)),
    ("winter", datetime(2026, 1, 13, 9, 30)),
    ("spring-forward day", datetime(2026, 3, 29, 10, 0)),
    ("fall-back day", datetime(2026, 10, 25, 10, 0)),
]


def write(tmp_path: Path, name: str, calendar: Calendar) -> Path:
    path = tmp_path / f"{name.replace(' ', '-')}.ics"
    path.write_bytes(calendar.to_ical())
    return path


@pytest.mark.parametrize(("name", "local"), CASES)
def test_icaljs_reads_the_intended_instant(tmp_path: Path, name: str, local: datetime) -> None:
    a = appointment(local)
    path = write(tmp_path, name, invite(a, job(), customer(), "UTR-2611-00001", DESK))
    (event,) = icaljs([path])
    assert event["start"] == int(a.window_start.timestamp())
    assert event["end"] == int(a.window_end.timestamp())
    assert event["method"] == "REQUEST"
    assert event["uid"] == "appointment-1@fieldplan.local"
    assert event["summary"].startswith("Montage")
    assert "Zoë" not in event["summary"]
    assert event["location"] == "Vondellaan 12, 3521 GD Utrecht"


def test_icaljs_expands_a_multi_day_installation_over_working_days(tmp_path: Path) -> None:
    a = appointment(datetime(2026, 11, 27, 8, 0))  # a Friday: the next days are Mon and Tue
    path = write(tmp_path, "kitchen", invite(a, job(days=3), customer(), "UTR-1", DESK))
    (event,) = icaljs([path])
    days = [datetime.fromtimestamp(t, AMSTERDAM) for t in event["occurrences"]]
    assert [(d.day, d.hour) for d in days] == [(27, 8), (30, 8), (1, 8)]


def test_reschedule_raises_sequence_and_cancel_keeps_the_uid(tmp_path: Path) -> None:
    first = appointment(datetime(2026, 12, 1, 8, 0), sequence=1)
    moved = appointment(datetime(2026, 12, 2, 13, 0), sequence=2)
    moved.changes = [AppointmentChange(at=datetime(2026, 11, 20, tzinfo=UTC), actor="customer")]
    cancelled = appointment(
        datetime(2026, 12, 2, 13, 0), sequence=3, status=AppointmentStatus.CANCELLED
    )
    paths = [
        write(tmp_path, str(i), invite(a, job(), customer("en"), "UTR-1", DESK))
        for i, a in enumerate((first, moved, cancelled))
    ]
    events = icaljs(paths)
    assert {e["uid"] for e in events} == {"appointment-1@fieldplan.local"}
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert [e["method"] for e in events] == ["REQUEST", "REQUEST", "CANCEL"]
    assert events[2]["status"] == "CANCELLED"
    assert events[1]["start"] == int(moved.window_start.timestamp())
    assert events[2]["summary"].startswith("Cancelled: Installation")  # the customer's language


def test_long_non_ascii_descriptions_fold_at_75_octets_and_survive(tmp_path: Path) -> None:
    long = "Montage van de keuken met ü, é en ij " * 12
    calendar = invite(
        appointment(datetime(2026, 7, 7, 9, 30)),
        job(description=long),
        customer(),
        "UTR-1",
        DESK,
        manage_url="http://127.0.0.1:8000/o/x",
    )
    raw = calendar.to_ical()
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    (event,) = icaljs([write(tmp_path, "long", calendar)])
    assert long.strip() in event["description"]
    assert DESK.phone in event["description"]
    assert DESK.email in event["description"]
    assert "no-reply" not in raw.decode().lower()


@pytest.mark.parametrize(("name", "local"), CASES)
def test_icalendar_round_trip(name: str, local: datetime) -> None:
    a = appointment(local)
    raw = invite(a, job(), customer(), "UTR-1", DESK).to_ical()
    parsed = Calendar.from_ical(raw)
    assert parsed.to_ical() == raw
    event = parsed.events[0]
    assert event.start == a.window_start
    assert event.decoded("dtstart").tzinfo is not None


@pytest.fixture(scope="module")
def caldav_calendar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[caldav.Calendar]:
    for url in radicale_server(tmp_path_factory.mktemp("radicale")):
        client = caldav.DAVClient(url=url, username="fieldplan", password="x")
        principal = client.principal()
        yield principal.make_calendar(name=f"test-{uuid.uuid4().hex[:8]}")


def stored_form(calendar: Calendar) -> str:
    """CalDAV stores resources without METHOD (RFC 4791 4.1)."""
    calendar.pop("METHOD", None)
    return calendar.to_ical().decode()


@pytest.mark.parametrize(("name", "local"), CASES)
def test_radicale_stores_and_returns_the_same_instant(
    caldav_calendar: caldav.Calendar, name: str, local: datetime
) -> None:
    ident = 100 + CASES.index((name, local))
    a = appointment(local, ident=ident)
    caldav_calendar.save_event(stored_form(invite(a, job(), customer(), "UTR-1", DESK)))
    found = caldav_calendar.event_by_uid(f"appointment-{ident}@fieldplan.local")
    event = Calendar.from_ical(found.data).events[0]
    assert event.start.astimezone(UTC) == a.window_start
    assert event.end.astimezone(UTC) == a.window_end
    assert str(event["summary"]).startswith("Montage")


def test_radicale_updates_a_rescheduled_appointment_in_place(
    caldav_calendar: caldav.Calendar,
) -> None:
    first = appointment(datetime(2026, 12, 1, 8, 0), ident=200, sequence=1)
    moved = appointment(datetime(2026, 12, 3, 15, 0), ident=200, sequence=2)
    for a in (first, moved):
        # The CalDAV client would bump SEQUENCE itself; we send the appointment's own.
        resource = caldav.Event(
            client=caldav_calendar.client,
            parent=caldav_calendar,
            data=stored_form(invite(a, job(), customer(), "UTR-1", DESK)),
        )
        resource.save(increase_seqno=False)
    matches = [e for e in caldav_calendar.events() if "appointment-200@" in e.data]
    assert len(matches) == 1
    event = Calendar.from_ical(matches[0].data).events[0]
    assert event.start.astimezone(UTC) == moved.window_start
    assert int(event["sequence"]) == 2


def test_invite_mail_has_text_html_and_calendar_parts(tmp_path: Path) -> None:
    calendar = invite(appointment(datetime(2026, 7, 7, 9, 30)), job(), customer(), "UTR-1", DESK)
    message = invite_email(calendar, sender="planning@fieldplan.local", recipient="zoe@example.nl")
    types = [part.get_content_type() for part in message.walk()]
    assert types == ["multipart/alternative", "text/plain", "text/html", "text/calendar"]
    calendar_part = list(message.walk())[-1]
    assert calendar_part.get_param("method") == "REQUEST"
    assert (
        Calendar.from_ical(calendar_part.get_content()).events[0].start == calendar.events[0].start
    )
    # From the invite's ORGANIZER (mail apps compare the two), sent by the system.
    assert message["From"] == f"{DESK.name} <{DESK.email}>"
    assert str(calendar.events[0]["organizer"]) == f"mailto:{DESK.email}"
    assert message["Reply-To"] == message["From"]
    assert message["Sender"] == "planning@fieldplan.local"
    written = Mailer(outbox=tmp_path / "outbox").send(message)
    assert written is not None
    assert written.read_bytes() == bytes(message)


def test_invite_mail_goes_out_over_smtp() -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[object] = []

    class Collect(Message):  # type: ignore[misc]
        def handle_message(self, message: object) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        calendar = invite(appointment(datetime(2026, 7, 7, 9, 30)), job(), customer(), "U-1", DESK)
        message = invite_email(
            calendar, sender="planning@fieldplan.local", recipient="zoe@example.nl"
        )
        assert (
            Mailer(outbox=Path("unused"), smtp_host="127.0.0.1", smtp_port=port).send(message)
            is None
        )
    finally:
        controller.stop()
    assert len(received) == 1
    assert "text/calendar" in str(received[0])


def test_the_instant_check_catches_a_misread_timezone(tmp_path: Path) -> None:
    """Canary: icalendar's own generated VTIMEZONE (comma-separated RDATEs) puts a summer
    appointment an hour off in ical.js. If this starts passing, the trap is gone upstream."""
    a = appointment(datetime(2026, 7, 7, 9, 30))
    calendar = invite(a, job(), customer(), "UTR-1", DESK)
    ours = calendar.timezones[0]
    calendar.subcomponents.remove(ours)
    calendar.add_missing_timezones()
    generated = calendar.to_ical().decode()
    assert "RRULE:FREQ=YEARLY" not in generated.split("BEGIN:VEVENT")[0]
    (event,) = icaljs([write(tmp_path, "generated-zone", calendar)])
    assert event["start"] != int(a.window_start.timestamp())


def test_an_invite_says_the_day_the_customers_page_and_what_changed() -> None:
    first = appointment(datetime(2026, 12, 2, 9, 30))
    page = "https://plan.example/o/abc"
    calendar = invite(first, job(), customer(), "UTR-1", DESK, manage_url=page)
    event = calendar.events[0]
    text = str(event["description"])
    assert "De monteur komt op woensdag 2 december tussen 09:30 en 11:30." in text
    assert f"Afspraak verzetten of annuleren: {page}" in text
    assert str(event["url"]) == page
    assert str(event["summary"]) == "Montage · Bouwmarkt Utrecht"
    moved = appointment(datetime(2026, 12, 3, 13, 0), sequence=2)
    moved.changes = [
        AppointmentChange(
            at=datetime(2026, 11, 20, tzinfo=UTC),
            actor="customer",
            old_start=first.window_start,
            old_end=first.window_end,
            new_start=moved.window_start,
            new_end=moved.window_end,
        )
    ]
    text = str(invite(moved, job(), customer(), "UTR-1", DESK).events[0]["description"])
    assert text.startswith("Uw afspraak is verzet: niet meer op woensdag 2 december tussen 09:30")
    assert "komt op donderdag 3 december tussen 13:00 en 15:00." in text
    moved.status = AppointmentStatus.CANCELLED
    called_off = invite(moved, job(), customer(), "UTR-1", DESK, manage_url=page).events[0]
    text = str(called_off["description"])
    assert text.startswith("Uw afspraak op donderdag 3 december tussen 13:00 en 15:00 is geannu")
    assert "komt op" not in text  # a cancellation does not read like an invitation
    assert f"Een nieuw tijdvak kiest u op uw pagina: {page}" in text
    assert str(called_off["summary"]) == "Geannuleerd: Montage · Bouwmarkt Utrecht"
