"""Webhooks (fieldplan.webhooks, api/routers/webhooks.py): subscribers get signed events of
what changed, delivered after the commit to a receiver on 127.0.0.1, tried again with
back-off, with a delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from fieldplan import webhooks
from fieldplan.accounts import Role, create_account
from fieldplan.db import make_engine, session_factory, unit_of_work, utcnow
from fieldplan.jobs import Job, JobDependency, JobStatus
from fieldplan.settings import Settings
from fieldplan.webhooks import DeliveryStatus, WebhookDelivery
from tests.conftest import BACKENDS, empty_database, pin_clock, seed_database


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that keeps what it was sent and answers `codes` in turn
    (then 200)."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.received.append((dict(self.headers.items()), body))
            self.send_response(found.codes.pop(0) if found.codes else 200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()


@dataclass
class Service:
    client: TestClient
    sessions: sessionmaker[Session]
    planner: dict[str, str]
    admin: dict[str, str]
    job_id: int


@pytest.fixture(params=BACKENDS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    with empty_database(request.param, tmp_path) as url:
        planner = seed_database(url, orders=30, password="pw")  # nothing planned yet
        engine = make_engine(url)
        sessions = session_factory(engine)
        with unit_of_work(sessions) as session:
            _, admin = create_account(session, "admin", Role.ADMIN, "pw")
            linked = select(JobDependency.prerequisite_id).union(select(JobDependency.job_id))
            job_id = session.scalars(
                select(Job.id)
                .where(Job.status == JobStatus.NEW, Job.id.not_in(linked))
                .order_by(Job.id)
            ).first()
            assert job_id is not None
        settings = Settings(database_url=url, secret_key="k", outbox_dir=tmp_path / "outbox")
        with TestClient(pin_clock(create_app(settings))) as client:
            yield Service(
                client,
                sessions,
                {"Authorization": f"Bearer {planner}"},
                {"Authorization": f"Bearer {admin}"},
                job_id,
            )
        engine.dispose()


def _subscribe(service: Service, url: str, events: list[str] | None = None) -> dict[str, Any]:
    made = service.client.post(
        "/webhooks", json={"url": url, "events": events or []}, headers=service.admin
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def _book(service: Service) -> int:
    client = service.client
    offered = client.get(f"/jobs/{service.job_id}/windows", headers=service.planner).json()
    window = offered["windows"][0]
    booked = client.post(
        f"/jobs/{service.job_id}/appointment",
        json={"start": window["start"], "end": window["end"]},
        headers=service.planner,
    )
    assert booked.status_code == 201, booked.text
    return int(booked.json()["id"])


def _signed_with(secret: str, parts: dict[str, str], body: bytes) -> str:
    return hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver.received]


def test_a_booking_is_told_to_subscribers_signed_and_logged(
    service: Service, receiver: Receiver
) -> None:
    subscriber = _subscribe(service, receiver.url)
    assert len(subscriber["secret"]) == 64
    listed = service.client.get("/webhooks", headers=service.admin).json()
    assert [s["url"] for s in listed] == [receiver.url]
    assert "secret" not in listed[0]  # shown once
    appointment_id = _book(service)
    events = _events(receiver)
    promised = [e for e in events if e["event"] == "appointment.changed"]
    assert [e["data"]["appointment_id"] for e in promised] == [appointment_id]
    assert promised[0]["data"]["status"] == "promised"
    assert promised[0]["data"]["job_id"] == service.job_id
    statuses = [e["data"]["status"] for e in events if e["event"] == "job.status"]
    assert statuses[-1:] == ["planned"]  # a new job, booked into the plan
    for headers, body in receiver.received:
        parts = dict(p.split("=", 1) for p in headers["Fieldplan-Signature"].split(","))
        expected = hmac.new(
            subscriber["secret"].encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(parts["v1"], expected)
        assert not hmac.compare_digest(parts["v1"], _signed_with("another secret", parts, body))
        assert headers["Fieldplan-Event"] == json.loads(body)["event"]
    log = service.client.get(
        f"/webhooks/{subscriber['id']}/deliveries", headers=service.admin
    ).json()
    assert len(log) == len(receiver.received)
    assert {d["status"] for d in log} == {"delivered"}
    assert {d["attempts"] for d in log} == {1}


def test_a_receiver_that_fails_is_tried_again_later_then_given_up(
    service: Service, receiver: Receiver
) -> None:
    subscriber = _subscribe(service, receiver.url, ["appointment.changed"])
    receiver.codes = [503]
    _book(service)
    assert len(receiver.received) == 1
    with service.sessions() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
        assert delivery.last_status_code == 503
        due = delivery.next_attempt_at
    assert due - utcnow() > timedelta(seconds=20)  # backed off, not hammered
    early = webhooks.deliver_due(service.sessions, now=due - timedelta(seconds=1))
    assert (early.delivered, len(receiver.received)) == (0, 1)
    later = webhooks.deliver_due(service.sessions, now=due)
    assert later.delivered == 1
    assert later.next_due is None
    assert receiver.received[0][1] == receiver.received[1][1]  # the same event, again
    log = service.client.get(
        f"/webhooks/{subscriber['id']}/deliveries", headers=service.admin
    ).json()
    assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 2)]
    # A receiver that never answers 2xx is given up after MAX_ATTEMPTS, each wait longer.
    _failing_until_given_up(service)


def _failing_until_given_up(service: Service) -> None:
    with unit_of_work(service.sessions) as session:
        subscriber = session.scalars(select(webhooks.WebhookSubscriber)).one()
        session.add(
            WebhookDelivery(
                subscriber_id=subscriber.id,
                event=webhooks.EventKind.APPOINTMENT_CHANGED,
                body="{}",
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
    now, waits = utcnow(), []
    for _ in range(webhooks.MAX_ATTEMPTS):
        sent = webhooks.deliver_due(service.sessions, now=now, post=lambda *_: 500)
        assert sent.failed == 1
        if sent.next_due is None:
            break
        waits.append(sent.next_due - now)
        now = sent.next_due
    with service.sessions() as session:
        gone = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()[-1]
    assert (gone.status, gone.attempts) == (DeliveryStatus.FAILED, webhooks.MAX_ATTEMPTS)
    assert waits == sorted(waits)
    assert len(waits) == webhooks.MAX_ATTEMPTS - 1


def test_subscribers_get_only_their_events_and_nothing_of_what_rolled_back(
    service: Service, receiver: Receiver
) -> None:
    _subscribe(service, receiver.url, ["plan.saved"])
    _book(service)
    # The booking wrote the day's first plan: that is all this subscriber hears of it.
    assert [e["event"] for e in _events(receiver)] == ["plan.saved"]
    with service.sessions() as session:
        before = len(session.scalars(select(WebhookDelivery)).all())
    with service.sessions() as session:
        job = session.get_one(Job, service.job_id)
        job.status = JobStatus.CANCELLED
        session.flush()
        session.rollback()
    with service.sessions() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == before


def test_only_administrators_manage_webhooks_and_bad_urls_are_refused(service: Service) -> None:
    client = service.client
    assert client.get("/webhooks", headers=service.planner).status_code == 403
    refused = client.post("/webhooks", json={"url": "ftp://x"}, headers=service.admin)
    assert refused.status_code == 422
    assert "url" in refused.text
    unknown = client.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["nope"]}, headers=service.admin
    )
    assert unknown.status_code == 422
    made = _subscribe(service, "http://127.0.0.1:9/x")
    assert client.delete(f"/webhooks/{made['id']}", headers=service.admin).status_code == 204
    assert client.get("/webhooks", headers=service.admin).json() == []
    assert (
        client.get(f"/webhooks/{made['id']}/deliveries", headers=service.admin).status_code == 404
    )
