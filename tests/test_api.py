"""The API and the board page: planners authenticate, pages render from bundled assets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from fieldplan.accounts import Account
from fieldplan.customers import Customer
from fieldplan.db import unit_of_work
from fieldplan.jobs import Job
from fieldplan.orders import Order
from fieldplan.settings import Settings
from tests.conftest import pin_clock, seed_database

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
    api_key = seed_database(url, orders=60, password=PASSWORD, plan_days=1)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="test-secret")))
    with TestClient(app) as client:
        yield client, api_key


def token(client: TestClient) -> str:
    response = client.post("/auth/token", data={"username": "planner", "password": PASSWORD})
    assert response.status_code == 200
    return str(response.json()["access_token"])


def test_health_and_openapi_are_public(world: tuple[TestClient, str]) -> None:
    client, _ = world
    assert client.get("/health").json() == {"status": "ok"}
    assert "/plans" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("path", ["/plans", "/regions", "/plans/1", "/customers/1/timeline"])
def test_planner_endpoints_refuse_anonymous_callers(
    world: tuple[TestClient, str], path: str
) -> None:
    client, _ = world
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("bad", ["nonsense", "fpk_not-a-key", "eyJzdWIiOjF9.deadbeef"])
def test_forged_tokens_are_refused(world: tuple[TestClient, str], bad: str) -> None:
    client, _ = world
    assert client.get("/plans", headers={"Authorization": f"Bearer {bad}"}).status_code == 401


def test_wrong_password_gets_no_token(world: tuple[TestClient, str]) -> None:
    client, _ = world
    response = client.post("/auth/token", data={"username": "planner", "password": "guess"})
    assert response.status_code == 401


def test_a_planner_reads_the_plan_with_a_token_or_an_api_key(world: tuple[TestClient, str]) -> None:
    client, api_key = world
    for credential in (token(client), api_key):
        headers = {"Authorization": f"Bearer {credential}"}
        plans = client.get("/plans", headers=headers).json()
        assert [p["day"] for p in plans] == ["2026-11-23"]
        plan = client.get(f"/plans/{plans[0]['id']}", headers=headers).json()
        assert plan["routes"]
        assert plan["routes"][0]["stops"]
        assert all(s["arrival"] <= s["departure"] for r in plan["routes"] for s in r["stops"])


def test_unknown_ids_get_404(world: tuple[TestClient, str]) -> None:
    client, api_key = world
    headers = {"Authorization": f"Bearer {api_key}"}
    assert client.get("/plans/99999", headers=headers).status_code == 404
    assert client.get("/customers/99999/timeline", headers=headers).status_code == 404
    # Ids in paths are digits: a word there names no plan at all.
    assert client.get("/plans/not-a-number", headers=headers).status_code == 404
    assert client.get("/plans/0", headers=headers).status_code == 422  # a number, not an id


def test_the_customer_timeline_starts_with_the_order(world: tuple[TestClient, str]) -> None:
    client, api_key = world
    events = client.get(
        "/customers/1/timeline", headers={"Authorization": f"Bearer {api_key}"}
    ).json()
    assert events[0]["kind"] == "order_placed"
    assert any(e["kind"] == "job_created" for e in events)


def test_the_board_needs_a_signed_in_planner(world: tuple[TestClient, str]) -> None:
    client, _ = world
    client.cookies.clear()
    response = client.get("/board", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    refused = client.post("/login", data={"username": "planner", "password": "nope"})
    assert refused.status_code == 401
    assert "Gebruikersnaam of wachtwoord klopt niet" in refused.text
    page = client.post("/login", data={"username": "planner", "password": PASSWORD})
    assert page.status_code == 200
    assert "Niet gepland" in page.text
    assert page.text.count("<h1") == 1  # one heading names the page (issue 19)
    assert "fieldplan.css" in page.text
    assert "http" not in page.text.split("<main>")[0].lower()
    assert client.get("/static/fieldplan.css").status_code == 200
    client.post("/logout")
    client.cookies.clear()
    assert client.get("/board", follow_redirects=False).status_code == 303


def test_a_deactivated_account_loses_access(world: tuple[TestClient, str]) -> None:
    client, api_key = world
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with unit_of_work(sessions) as session:
        session.scalars(select(Account)).one().active = False
    try:
        assert (
            client.get("/plans", headers={"Authorization": f"Bearer {api_key}"}).status_code == 401
        )
    finally:
        with unit_of_work(sessions) as session:
            session.scalars(select(Account)).one().active = True


def test_customer_rows_are_not_exposed_without_a_planner(world: tuple[TestClient, str]) -> None:
    client, _ = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        name = session.scalars(select(Customer)).first().name  # type: ignore[union-attr]
    client.cookies.clear()
    for path in ("/plans", "/board", "/customers/1/timeline"):
        assert name not in client.get(path, follow_redirects=True).text


def test_the_board_opens_on_today_or_the_next_planned_day_not_the_first_ever() -> None:
    from datetime import date

    from api.routers.pages import _opening_day

    days = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 12, 2), date(2026, 12, 4)]
    assert _opening_day(days, date(2026, 12, 2)) == date(2026, 12, 2)
    assert _opening_day(days, date(2026, 12, 3)) == date(2026, 12, 4)
    assert _opening_day(days, date(2026, 12, 20)) == date(2026, 12, 4)  # all past: the last
    assert _opening_day([], date(2026, 12, 2)) is None


def test_the_board_opens_a_customer_whole_as_a_page(world: tuple[TestClient, str]) -> None:
    client, _ = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        job = session.scalars(select(Job).order_by(Job.id)).first()
        assert job is not None
        customer, number = job.customer, session.get_one(Order, job.order_id).number
        name, phone = customer.name, customer.phone
    client.cookies.clear()
    assert (
        client.get(f"/board/customers/{job.customer_id}", follow_redirects=False).status_code == 303
    )
    client.post("/login", data={"username": "planner", "password": PASSWORD})
    page = client.get(f"/board/customers/{job.customer_id}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{escape(name)}</h1>" in page.text
    assert f'href="tel:{phone}"' in page.text
    assert f"Order {number}" in page.text
    assert f'id="job-{job.id}"' in page.text
    board = client.get("/board").text
    assert "/board/customers/" in board
    gone = client.get("/board/customers/999999", follow_redirects=False)
    assert gone.status_code == 303
    assert "deze+klant+bestaat+niet" in gone.headers["location"]


def test_the_board_tells_each_job_and_the_map_in_the_planners_words(
    world: tuple[TestClient, str],
) -> None:
    client, _ = world
    client.cookies.clear()
    client.post("/login", data={"username": "planner", "password": PASSWORD})
    board = client.get("/board", params={"day": "2026-11-23"}).text
    assert any(kind in board for kind in ("Inmeten ·", "Levering ·", "Montage ·"))
    assert "installation ·" not in board
    # The pop-over says whose job it is, where, and what was promised; a day to move it to.
    assert "<dt>Klant</dt>" in board
    assert "<dt>Belofte</dt>" in board
    assert '<select name="day">' in board
    # A lunch inside a long job is a stripe under it, not a block over its label.
    assert 'class="block break inside"' in board
    assert 'class="legend"' in board
    assert "winkel of magazijn" in board


def test_the_demo_clock_starts_on_the_sample_week_and_the_pages_say_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    seed_database(url, orders=5, password=PASSWORD)
    start = datetime(2026, 11, 23, 7, 30)
    settings = Settings(database_url=url, secret_key="k", outbox_dir=tmp_path, demo_start=start)
    app = create_app(settings)
    with TestClient(app) as client:
        now = app.state.now()
        local = start.replace(tzinfo=ZoneInfo("Europe/Amsterdam"))
        assert local <= now < local + timedelta(minutes=5)
        assert app.state.today() == start.date()
        client.post("/login", data={"username": "planner", "password": PASSWORD})
        assert "de klok van deze omgeving staat op ma 23 nov 07:3" in client.get("/board").text
    real = create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp_path))
    with TestClient(real) as client:
        client.post("/login", data={"username": "planner", "password": PASSWORD})
        assert "demo-clock" not in client.get("/board").text
