"""Technician feeds through the API: secret links, caching, updates, revocation, real clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import caldav
import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select

import optimizer
from api.main import create_app
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.optimisation import plan_region
from fieldplan.plans import Route
from fieldplan.regions import Region
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from fieldplan.travel import GeodesicTravelTimes
from tests.calendar_clients import icaljs, radicale_server
from tests.conftest import seed_database

FIRST_DAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, int]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('feeds') / 'feeds.db'}"
    api_key = seed_database(url, orders=90, password="pw-for-feeds", plan_days=2)
    with session_factory(make_engine(url))() as session:
        busiest = session.scalars(select(Route)).all()
        technician_id = max(busiest, key=lambda r: len(r.stops)).technician_id
    app = create_app(Settings(database_url=url, secret_key="k", public_url="https://plan.example"))
    app.state.today = lambda: FIRST_DAY
    with TestClient(app) as client:
        yield client, api_key, technician_id


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def new_link(client: TestClient, api_key: str, technician_id: int) -> str:
    response = client.post(f"/technicians/{technician_id}/feed", headers=auth(api_key))
    assert response.status_code == 201
    links = response.json()
    assert links["webcal_url"].startswith("webcal://plan.example/feeds/technicians/tfd_")
    return str(links["url"]).removeprefix("https://plan.example")


def test_issuing_a_feed_needs_a_planner(world: tuple[TestClient, str, int]) -> None:
    client, _, technician_id = world
    assert client.post(f"/technicians/{technician_id}/feed").status_code == 401


def test_the_feed_lists_the_technicians_stops_with_everything_needed(
    world: tuple[TestClient, str, int], tmp_path: Path
) -> None:
    client, api_key, technician_id = world
    response = client.get(new_link(client, api_key, technician_id))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in response.text
    assert str(calendar["x-published-ttl"]) == "PT15M"
    assert str(calendar["x-wr-calname"]).startswith("fieldplan · ")
    jobs = [e for e in calendar.events if str(e["uid"]).startswith("job-")]
    assert jobs
    for event in jobs:
        text = str(event["description"])
        assert "tel. " in text
        assert "Werk: " in text
        assert "Meenemen: " in text
        assert event.get("geo") is not None
        assert str(event["url"]).startswith("https://www.openstreetmap.org/directions?to=")
    uids = [str(e["uid"]) for e in calendar.events]
    assert len(uids) == len(set(uids))
    path = tmp_path / "feed.ics"
    path.write_bytes(response.content)
    parsed = icaljs([path])
    by_uid = {e["uid"]: e for e in parsed}
    for event in calendar.events:
        assert by_uid[str(event["uid"])]["start"] == int(event.start.timestamp())


def test_pickups_say_what_where_and_when_the_store_opens(
    world: tuple[TestClient, str, int],
) -> None:
    client, api_key, _ = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        from fieldplan.plans import Stop

        pickup = session.scalars(select(Stop).where(Stop.kind == "pickup")).first()
        if pickup is None:
            pytest.skip("the quick plan of this small sample made no pickup stop")
        technician_id = pickup.route.technician_id
    calendar = Calendar.from_ical(client.get(new_link(client, api_key, technician_id)).content)
    pickups = [e for e in calendar.events if str(e["uid"]).startswith("pickup-")]
    assert pickups
    assert str(pickups[0]["summary"]).startswith("Ophalen: ")
    assert "(open " in str(pickups[0]["description"])  # the store's hours that day


def test_an_unchanged_feed_answers_304(world: tuple[TestClient, str, int]) -> None:
    client, api_key, technician_id = world
    link = new_link(client, api_key, technician_id)
    first = client.get(link)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert client.get(link, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(link, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(link, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(link).content == first.content  # deterministic body


def test_a_replan_changes_the_feed_and_removed_stops_disappear(
    world: tuple[TestClient, str, int],
) -> None:
    client, api_key, technician_id = world
    link = new_link(client, api_key, technician_id)
    before = client.get(link)
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with unit_of_work(sessions) as session:
        technician = session.get_one(Technician, technician_id)
        technician.shifts = [s for s in technician.shifts if s.weekday != FIRST_DAY.weekday()]
        region = session.scalars(select(Region)).one()
        plan_region(
            session,
            region,
            FIRST_DAY,
            1,
            GeodesicTravelTimes(),
            optimizer.Limits(time_limit_s=0.3),
            today=FIRST_DAY,
        )
    after = client.get(link, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    days = {str(e["uid"]).rsplit("-", 3)[-3:][0] for e in Calendar.from_ical(after.content).events}
    events = Calendar.from_ical(after.content).events
    assert all(e.start.date() != FIRST_DAY for e in events), days


def test_rotated_and_revoked_links_get_the_same_404_as_unknown_ones(
    world: tuple[TestClient, str, int],
) -> None:
    client, api_key, technician_id = world
    old = new_link(client, api_key, technician_id)
    new = new_link(client, api_key, technician_id)
    assert client.get(new).status_code == 200
    rotated = client.get(old)
    assert (
        client.delete(f"/technicians/{technician_id}/feed", headers=auth(api_key)).status_code
        == 204
    )
    revoked = client.get(new)
    unknown = client.get("/feeds/technicians/tfd_" + uuid.uuid4().hex + ".ics")
    garbage = client.get("/feeds/technicians/nothing.ics")
    for response in (rotated, revoked, unknown, garbage):
        assert response.status_code == 404
        assert response.content == unknown.content


def test_feed_events_store_in_a_caldav_server(
    world: tuple[TestClient, str, int], tmp_path: Path
) -> None:
    client, api_key, technician_id = world
    feed = Calendar.from_ical(client.get(new_link(client, api_key, technician_id)).content)
    for url in radicale_server(tmp_path):
        principal = caldav.DAVClient(url=url, username="t", password="x").principal()
        remote = principal.make_calendar(name="technician")
        for event in feed.events:
            one = Calendar()
            one.add("prodid", "-//fieldplan test//EN")
            one.add("version", "2.0")
            for zone in feed.timezones:
                one.add_component(zone)
            one.add_component(event)
            resource = caldav.Event(client=remote.client, parent=remote, data=one.to_ical())
            resource.save(increase_seqno=False)
        stored = {str(e.icalendar_component["uid"]): e.icalendar_component for e in remote.events()}
        assert len(stored) == len(feed.events)
        for event in feed.events:
            assert stored[str(event["uid"])].start == event.start


def test_the_feed_round_trips_through_icalendar(world: tuple[TestClient, str, int]) -> None:
    client, api_key, technician_id = world
    body = client.get(new_link(client, api_key, technician_id)).content
    assert Calendar.from_ical(body).to_ical() == body


def test_planners_get_a_whole_day_as_a_calendar(
    world: tuple[TestClient, str, int], tmp_path: Path
) -> None:
    client, api_key, _ = world
    plan = client.get("/plans", headers=auth(api_key)).json()[0]
    assert client.get(f"/plans/{plan['id']}/calendar.ics").status_code == 401
    response = client.get(f"/plans/{plan['id']}/calendar.ics", headers=auth(api_key))
    assert response.status_code == 200
    calendar = Calendar.from_ical(response.content)
    detail = client.get(f"/plans/{plan['id']}", headers=auth(api_key)).json()
    assert len(calendar.events) == sum(len(r["stops"]) for r in detail["routes"])
    assert all(str(e["summary"])[0] == "T" for e in calendar.events)
    path = tmp_path / "day.ics"
    path.write_bytes(response.content)
    assert len(icaljs([path])) == len(calendar.events)
