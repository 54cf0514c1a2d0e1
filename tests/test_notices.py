"""The customer knows: a reminder the day before, "on our way" with an estimate, a new estimate
when it moves by more than a quarter of an hour, by mail or text message from their store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fieldplan import plan_gate
from fieldplan.appointments import AgreedVia, promise
from fieldplan.customers import ContactChannel
from fieldplan.jobs import Job
from fieldplan.notices import CustomerNotice, NoticeKind
from fieldplan.plans import StopKind, latest_plan
from fieldplan.regions import Region
from tests.conftest import BACKENDS, NOW
from tests.test_plan_gate import _served

TUESDAY = NOW.date() + timedelta(days=1)


@pytest.fixture(params=BACKENDS)
def monday_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The planned week's Monday morning, its routes out."""
    yield from _served(request, tmp_path_factory, NOW)


def _promise_planned(client: TestClient, day_offset: int, channel: ContactChannel) -> int:
    """Promise the customer of a job planned that day the two hours around its start (the
    second stop of a route, so it has a drive from a job before it)."""
    state = client.app.state  # type: ignore[attr-defined]
    with state.sessions() as session:
        region = session.scalars(select(Region)).one()
        plan = latest_plan(session, region.id, NOW.date() + timedelta(days=day_offset))
        assert plan is not None
        stop = next(
            r.stops[1]
            for r in plan.routes
            if len(r.stops) > 1 and r.stops[1].kind == StopKind.JOB and not r.stops[1].second_person
        )
        job = session.get_one(Job, stop.job_id)
        begins = stop.start or stop.arrival
        promise(
            session,
            job,
            begins - timedelta(hours=1),
            begins + timedelta(hours=1),
            via=AgreedVia.PHONE,
            actor="planner:test",
        )
        job.customer.contact_channel = channel
        plan_gate.judge_with(session, today=state.today(), travel=state.travel)
        session.commit()
        return job.id


def _mails(outbox: Path) -> list[Message]:
    return [message_from_bytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]


def _text(mail: Message) -> str:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_on_the_way_and_a_new_estimate_reach_the_customer_and_their_page(
    monday_world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = monday_world
    state = client.app.state  # type: ignore[attr-defined]
    outbox = Path(state.settings.outbox_dir)
    job_id = _promise_planned(client, 0, ContactChannel.EMAIL)
    left = client.post(f"/jobs/{job_id}/reports", json={"kind": "on_the_way"}, headers=headers)
    assert left.status_code == 200, left.text
    (mail,) = _mails(outbox)
    assert mail["Subject"] == "We zijn onderweg"
    assert "noreply" not in mail["From"].replace("-", "").lower()
    assert mail["Reply-To"] == mail["From"]
    assert "Verwacht rond" in _text(mail)
    with state.sessions() as session:
        job = session.get_one(Job, job_id)
        notice = session.scalars(select(CustomerNotice)).one()
        assert notice.kind == NoticeKind.ON_THE_WAY
        assert notice.sent_at is not None
        told = notice.eta
        order_id = job.order_id
    assert told is not None
    page = client.get(f"/o/{state.order_links.issue(order_id)}")
    assert page.status_code == 200
    assert "Verwachte aankomst" in page.text
    assert f"rond {told.astimezone(ZoneInfo('Europe/Amsterdam')):%H:%M}" in page.text
    # Forty minutes later than told: a new estimate; five minutes more: no new message.
    later = told + timedelta(minutes=40)
    late = client.post(
        f"/jobs/{job_id}/reports",
        json={"kind": "running_late", "eta": later.isoformat()},
        headers=headers,
    )
    assert late.status_code == 200, late.text
    mails = _mails(outbox)
    assert sorted(m["Subject"] for m in mails) == ["Nieuwe verwachte aankomst", "We zijn onderweg"]
    again = client.post(
        f"/jobs/{job_id}/reports",
        json={"kind": "running_late", "eta": (later + timedelta(minutes=5)).isoformat()},
        headers=headers,
    )
    assert again.status_code == 200, again.text
    assert len(_mails(outbox)) == 2


def test_the_day_before_every_promise_is_reminded_once_over_its_channel(
    monday_world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = monday_world
    state = client.app.state  # type: ignore[attr-defined]
    _promise_planned(client, 1, ContactChannel.SMS)
    sent = client.post("/regions/1/reminders", params={"day": TUESDAY.isoformat()}, headers=headers)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"day": TUESDAY.isoformat(), "reminders": 1}
    (sms,) = sorted((Path(state.settings.outbox_dir) / "sms").glob("*.sms.json"))
    body = json.loads(sms.read_text())
    assert body["to"].startswith("+")
    assert "Morgen" in body["text"]
    assert "/o/" in body["text"]  # their page, to move or cancel
    again = client.post(
        "/regions/1/reminders", params={"day": TUESDAY.isoformat()}, headers=headers
    )
    assert again.json()["reminders"] == 0
    assert client.post("/regions/1/reminders").status_code == 401


def test_a_promise_at_risk_is_told_at_once_with_windows_that_would_do(
    monday_world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = monday_world
    state = client.app.state  # type: ignore[attr-defined]
    job_id = _promise_planned(client, 1, ContactChannel.EMAIL)
    taken_off = client.post(f"/jobs/{job_id}/unassign", json={"renegotiate": True}, headers=headers)
    assert taken_off.status_code == 200, taken_off.text
    (mail,) = _mails(Path(state.settings.outbox_dir))
    assert "kan niet doorgaan zoals beloofd" in mail["Subject"]
    text = _text(mail)
    assert "Deze tijdvakken zijn nog vrij:" in text  # what their page would offer them
    assert "/o/" in text
