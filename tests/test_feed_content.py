"""What a technician's feed says (issue 19): the work's own start and end on the minute, the
promised window, who to call, the crew's language, and caching that follows every change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.main import create_app
from calendars.feeds import FeedContext, technician_feed
from fieldplan.appointments import live_appointment
from fieldplan.plans import Plan, Route, Stop, StopKind
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from tests.conftest import pin_clock, seed_database

TUESDAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("feed-content")
    url = f"sqlite:///{folder / 'feed.db'}"
    api_key = seed_database(url, orders=60, password="pw", plan_days=2)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=folder)))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {api_key}"}


def tuesday_job(client: TestClient) -> tuple[int, int]:
    """(job id, technician id) of the first job on Tuesday's plan that has no promise yet
    (each test books one of its own)."""
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        stops = session.scalars(
            select(Stop)
            .join(Route)
            .join(Plan)
            .where(Plan.day == TUESDAY, Stop.kind == StopKind.JOB, Stop.second_person.is_(False))
            .order_by(Stop.id)
        )
        for stop in stops:
            if stop.job_id is not None and live_appointment(session, stop.job_id) is None:
                return stop.job_id, stop.route.technician_id
    raise AssertionError("no job on Tuesday left to book")


def newest_stop(client: TestClient, job_id: int) -> Stop:
    """The job's own stop (not the pickup of its part) on the newest plan version that has it
    (bookings write new ones)."""
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        stop = session.scalars(
            select(Stop)
            .join(Route)
            .join(Plan)
            .where(
                Stop.job_id == job_id,
                Stop.kind == StopKind.JOB,
                Stop.second_person.is_(False),
            )
            .order_by(Plan.version.desc())
            .options(selectinload(Stop.route))
        ).first()
        assert stop is not None
        return stop


def feed_of(client: TestClient, planner: dict[str, str], technician_id: int) -> str:
    links = client.post(f"/technicians/{technician_id}/feed", headers=planner).json()
    return "/" + str(links["url"]).split("://", 1)[1].split("/", 1)[1]


def events(response: Any) -> list[Event]:
    return list(Calendar.from_ical(response.content).events)


def book_tuesday(client: TestClient, planner: dict[str, str], job_id: int) -> dict[str, Any]:
    offer = client.get(f"/jobs/{job_id}/windows", headers=planner).json()
    window = next(w for w in offer["windows"] if w["start"].startswith(TUESDAY.isoformat()))
    booked = client.post(
        f"/jobs/{job_id}/appointment",
        json={"start": window["start"], "end": window["end"]},
        headers=planner,
    )
    assert booked.status_code == 201, booked.text
    body: dict[str, Any] = booked.json()
    return body


def test_a_promised_job_shows_its_work_its_window_and_its_desk_in_dutch(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, planner = world
    job_id, _ = tuesday_job(client)
    appointment = book_tuesday(client, planner, job_id)
    stop = newest_stop(client, job_id)
    assert stop.start is not None
    technician_id, service_start = stop.route.technician_id, stop.start
    departure, arrival = stop.departure, stop.arrival
    feed = client.get(feed_of(client, planner, technician_id))
    event = next(e for e in events(feed) if str(e["uid"]).startswith(f"job-{job_id}-"))
    # The work's start, not the arrival (which may be long before the window opens).
    assert event.start == service_start.replace(second=0, microsecond=0)
    assert event.start.second == 0
    assert event.end.second == 0
    assert event.end >= departure
    assert event.end - departure < timedelta(minutes=1)
    assert arrival <= service_start
    text = str(event["description"])
    opens = datetime.fromisoformat(appointment["window_start"]).astimezone(event.start.tzinfo)
    assert f"Beloofd: tussen {opens:%H:%M} en " in text
    assert "Klant: " in text
    assert "tel. " in text
    assert "Meenemen: " in text
    assert str(event["summary"]).split(":")[0] in {"Inmeten", "Levering", "Montage", "Reparatie"}
    assert str(event["organizer"]).startswith("mailto:service.")
    assert str(event["organizer"].params["cn"]).startswith("Bouwmarkt ")  # the order's store


def test_a_cancellation_moves_last_modified_and_a_weak_etag_still_revalidates(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, planner = world
    job_id, _ = tuesday_job(client)
    appointment = book_tuesday(client, planner, job_id)
    technician_id = newest_stop(client, job_id).route.technician_id
    link = feed_of(client, planner, technician_id)
    before = client.get(link)
    weak = "W/" + before.headers["etag"]
    assert client.get(link, headers={"If-None-Match": weak}).status_code == 304
    time.sleep(1.1)  # Last-Modified counts whole seconds
    cancelled = client.delete(f"/appointments/{appointment['id']}", headers=planner)
    assert cancelled.status_code == 200, cancelled.text
    after = client.get(link, headers={"If-Modified-Since": before.headers["last-modified"]})
    assert after.status_code == 200
    assert after.headers["last-modified"] != before.headers["last-modified"]
    assert after.headers["etag"] != before.headers["etag"]


def test_head_answers_the_feeds_headers_without_its_body(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, planner = world
    _, technician_id = tuesday_job(client)
    link = feed_of(client, planner, technician_id)
    full = client.get(link)
    head = client.head(link)
    assert head.status_code == 200
    assert head.headers["etag"] == full.headers["etag"]
    assert head.headers["content-type"] == "text/calendar; charset=utf-8"
    assert head.content == b""
    assert client.head("/feeds/technicians/tfd_nothing.ics").status_code == 404


def test_a_day_left_with_only_its_lunch_shows_nothing() -> None:
    technician = Technician(id=1, code="T01", name="Thijs")
    at = datetime(2026, 11, 24, 11, 30, tzinfo=UTC)
    plan = Plan(day=TUESDAY, version=2, created_at=at)
    lunch = Stop(kind=StopKind.BREAK, position=0, arrival=at, start=at, departure=at)
    route = Route(technician_id=1, stops=[lunch], start_at=at, end_at=at)
    context = FeedContext(jobs={}, locations={}, parts={}, order_numbers={})
    assert list(technician_feed(technician, [(plan, route)], context).events) == []
