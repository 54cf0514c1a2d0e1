"""Promising, moving and cancelling appointments through the API, with the invites they send."""

from __future__ import annotations

import email
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select

from api.main import create_app
from fieldplan.jobs import Job, JobStatus
from fieldplan.settings import Settings
from fieldplan.timeline import EventKind, TimelineEvent
from tests.conftest import pin_clock, seed_database

WINDOW = {"start": "2026-11-24T09:00:00+01:00", "end": "2026-11-24T11:00:00+01:00"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    api_key = seed_database(url, orders=5, password="pw")
    outbox = tmp_path / "outbox"
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=outbox)))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {api_key}"}, outbox


def sent(outbox: Path) -> list[Calendar]:
    calendars = []
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes())
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        calendars.append(Calendar.from_ical(part.get_payload(decode=True)))
    return calendars


def test_book_move_cancel_sends_request_request_cancel_with_one_uid(
    world: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, headers, outbox = world
    booked = client.post("/jobs/1/appointment", json=WINDOW, headers=headers)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    moved = client.put(
        f"/appointments/{appointment['id']}",
        headers=headers,
        json={
            "start": "2026-11-25T13:00:00+01:00",
            "end": "2026-11-25T15:00:00+01:00",
            "reason": "customer asked",
        },
    )
    assert moved.status_code == 200
    assert moved.json()["sequence"] > appointment["sequence"]
    cancelled = client.delete(f"/appointments/{appointment['id']}", headers=headers)
    assert cancelled.status_code == 200
    invites = sent(outbox)
    assert [str(c["method"]) for c in invites] == ["REQUEST", "REQUEST", "CANCEL"]
    events = [c.events[0] for c in invites]
    assert len({str(e["uid"]) for e in events}) == 1
    sequences = [int(e["sequence"]) for e in events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 3
    assert events[1].start.isoformat() == "2026-11-25T13:00:00+01:00"
    # Every mail links the customer's own page, and that link opens it.
    page = str(events[0]["url"])
    assert page in str(events[0]["description"])
    assert client.get("/" + page.split("://", 1)[1].split("/", 1)[1]).status_code == 200
    assert str(events[1]["description"]).startswith("Uw afspraak is verzet: niet meer op dinsdag")
    assert "is geannuleerd" in str(events[2]["description"])
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        job = session.get_one(Job, 1)
        assert job.status == JobStatus.NEW  # open again, to be booked anew
        kinds = [
            e.kind
            for e in session.scalars(
                select(TimelineEvent).where(TimelineEvent.job_id == 1).order_by(TimelineEvent.id)
            )
        ]
    assert kinds[-3:] == [
        EventKind.SLOT_BOOKED,
        EventKind.APPOINTMENT_MOVED,
        EventKind.APPOINTMENT_CANCELLED,
    ]


def test_a_job_gets_one_live_promise(world: tuple[TestClient, dict[str, str], Path]) -> None:
    client, headers, outbox = world
    assert client.post("/jobs/1/appointment", json=WINDOW, headers=headers).status_code == 201
    again = client.post("/jobs/1/appointment", json=WINDOW, headers=headers)
    assert again.status_code == 409
    assert "reschedule" in again.json()["detail"]
    assert len(sent(outbox)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-11-24T09:00:00", "end": "2026-11-24T11:00:00+01:00"}, "start"),
        ({"start": "2026-11-24T11:00:00+01:00", "end": "2026-11-24T09:00:00+01:00"}, ""),
        ({"start": "tomorrow", "end": "2026-11-24T09:00:00+01:00"}, "start"),
        ({"end": "2026-11-24T09:00:00+01:00"}, "start"),
    ],
)
def test_bad_windows_get_422_with_the_field(
    world: tuple[TestClient, dict[str, str], Path], body: dict[str, str], field: str
) -> None:
    client, headers, outbox = world
    response = client.post("/jobs/1/appointment", json=body, headers=headers)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(field in d["loc"] or not field for d in detail)
    assert not outbox.exists() or not list(outbox.iterdir())


def test_the_customer_downloads_the_invite_through_a_signed_link(
    world: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, headers, _ = world
    appointment = client.post("/jobs/1/appointment", json=WINDOW, headers=headers).json()
    link = client.get(f"/appointments/{appointment['id']}/customer-link", headers=headers).json()
    path = link["invite_url"].split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 200
    assert Calendar.from_ical(response.content).events[0].start.isoformat() == WINDOW["start"]
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert client.get(f"/c/invites/{forged}.ics").status_code == 404
    planner_token = client.post("/auth/token", data={"username": "planner", "password": "pw"})
    as_planner = planner_token.json()["access_token"]
    assert client.get(f"/c/invites/{as_planner}.ics").status_code == 404
    # Found by the schema fuzzer: a signature with a non-ASCII character was a 500.
    assert client.get("/c/invites/0.%C2%80.ics").status_code == 404


def test_anonymous_callers_cannot_touch_appointments(
    world: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, _, _ = world
    assert client.post("/jobs/1/appointment", json=WINDOW).status_code == 401
    assert client.delete("/appointments/1").status_code == 401
    assert client.get("/appointments/1/invite.ics").status_code == 401


def test_unknown_ids_get_404(world: tuple[TestClient, dict[str, str], Path]) -> None:
    client, headers, _ = world
    assert client.post("/jobs/999/appointment", json=WINDOW, headers=headers).status_code == 404
    assert client.put("/appointments/999", json=WINDOW, headers=headers).status_code == 404


def test_an_idempotency_key_replays_its_own_request_and_refuses_any_other(
    world: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, headers, outbox = world
    keyed = {**headers, "Idempotency-Key": "K-1"}
    first = client.post("/jobs/1/appointment", json=WINDOW, headers=keyed)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = client.post("/jobs/1/appointment", json=WINDOW, headers=keyed)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(sent(outbox)) == 1  # the replay mails nothing
    other = {"start": "2026-11-24T13:00:00+01:00", "end": "2026-11-24T15:00:00+01:00"}
    refused = client.post("/jobs/1/appointment", json=other, headers=keyed)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "Idempotency-Key"
    assert "K-1" in refused.json()["detail"][0]["reason"]
    elsewhere = client.post("/jobs/2/appointment", json=WINDOW, headers=keyed)
    assert elsewhere.status_code == 422
    assert client.delete(f"/appointments/{first.json()['id']}", headers=headers).status_code == 200
    replay = client.post("/jobs/1/appointment", json=WINDOW, headers=keyed)
    assert replay.status_code == 409
    assert "cancelled since" in replay.json()["detail"]


def test_a_taken_window_answers_with_fresh_ones_worked_out_after_the_lock(
    world: tuple[TestClient, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, headers, _ = world
    from fieldplan import booking

    reading_sessions: list[bool] = []
    real_offer = booking.offer_windows

    def offer(session: Any, *args: Any, **kwargs: Any) -> Any:
        # The refused booking's transaction has ended: the offer runs in a session that took
        # no write lock (on PostgreSQL the region's row lock went with the rollback).
        reading_sessions.append(_reads_only(session))
        return real_offer(session, *args, **kwargs)

    monkeypatch.setattr(booking, "offer_windows", offer)
    sunday = {"start": "2026-11-29T09:00:00+01:00", "end": "2026-11-29T11:00:00+01:00"}
    refused = client.post("/jobs/1/appointment", json=sunday, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["windows"]["windows"], refused.json()  # what can be booked instead
    assert reading_sessions == [True]


def _reads_only(session: Any) -> bool:
    from fieldplan.db import DEFERRED

    return bool(session.connection().get_execution_options().get(DEFERRED, False))
