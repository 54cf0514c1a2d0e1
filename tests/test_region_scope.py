"""Planners see and change only their regions (issue 20): an object of another region answers
404 with the same words as an id that does not exist, lists leave it out, and an
administrator manages accounts and regions. The planner of the seeded region is the insider;
the planner of a second, empty region the outsider, tried on every planner endpoint."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from fieldplan.accounts import Role, create_account
from fieldplan.appointments import Appointment, flag_at_risk
from fieldplan.callbacks import request_callback
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.jobs import Job, JobDependency, JobStatus
from fieldplan.orders import Order
from fieldplan.plans import Plan
from fieldplan.regions import Region
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from tests.conftest import BACKENDS, empty_database, pin_clock, seed_database


@dataclass
class World:
    client: TestClient
    url: str
    insider: dict[str, str]
    outsider: dict[str, str]
    admin: dict[str, str]
    ids: dict[str, int]
    other_region: int


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("scope")
    with empty_database(request.param, folder) as url:
        insider = seed_database(url, orders=60, password="pw", plan_days=1)
        engine = make_engine(url)
        with unit_of_work(session_factory(engine)) as session:
            other = Region(code="ELSE", name="Elders", timezone="Europe/Amsterdam")
            session.add(other)
            session.flush()
            _, outsider = create_account(session, "outsider", Role.PLANNER, "pw", [other])
            _, admin = create_account(session, "admin", Role.ADMIN, "pw")
            home = session.scalars(select(Region).where(Region.code != "ELSE")).one()
            plan = session.scalars(select(Plan).where(Plan.region_id == home.id)).first()
            assert plan is not None
            # A job nothing waits for and that waits for nothing: its promise may be flagged.
            linked = select(JobDependency.prerequisite_id).union(select(JobDependency.job_id))
            job = session.scalars(
                select(Job)
                .where(
                    Job.region_id == home.id,
                    Job.status.in_([JobStatus.NEW, JobStatus.PLANNED]),
                    Job.id.not_in(linked),
                )
                .order_by(Job.id)
            ).first()
            assert job is not None
            order = session.get_one(Order, job.order_id)
            callback = request_callback(
                session, order, phone="+31 30 1234567", preferred_time="", note="", actor="t"
            )
            ids = {
                "job": job.id,
                "order": order.id,
                "customer": order.customer_id,
                "plan": plan.id,
                "technician": plan.routes[0].technician_id,
                "callback": callback.id,
                "region": home.id,
            }
            other_id = other.id
        engine.dispose()
        settings = Settings(database_url=url, secret_key="k", outbox_dir=folder / "outbox")
        with TestClient(pin_clock(create_app(settings))) as client:
            inside = _bearer(insider)
            windows = client.get(f"/jobs/{ids['job']}/windows", headers=inside).json()
            choice = windows["windows"][0]
            booked = client.post(
                f"/jobs/{ids['job']}/appointment",
                json={"start": choice["start"], "end": choice["end"]},
                headers=inside,
            )
            assert booked.status_code == 201, booked.text
            ids["appointment"] = booked.json()["id"]
        _one_at_risk(url, ids["appointment"])
        with TestClient(pin_clock(create_app(settings))) as client:
            yield World(client, url, inside, _bearer(outsider), _bearer(admin), ids, other_id)


def _one_at_risk(url: str, appointment_id: int) -> None:
    """Something for the at-risk list to hold (or hide)."""
    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        appointment = session.get_one(Appointment, appointment_id)
        flag_at_risk(session, appointment, actor="test", reason="at risk: running late")
    engine.dispose()


# Reads: the insider gets 200 (so the path is right), the outsider 404.
READS = [
    "/plans/{plan}",
    "/plans/{plan}/calendar.ics",
    "/jobs/{job}",
    "/jobs/{job}/windows",
    "/orders/{order}",
    "/orders/{order}/customer-link",
    "/customers/{customer}",
    "/customers/{customer}/timeline",
    "/technicians/{technician}",
    "/technicians/{technician}/routes?first_day=2026-11-23",
    "/appointments/{appointment}/customer-link",
    "/appointments/{appointment}/invite.ics",
    "/plans?region_id={region}",
    "/technicians?region_id={region}",
    "/locations?region_id={region}",
    "/callbacks?region_id={region}",
    "/appointments/at-risk?region_id={region}",
    "/kpis?day=2026-11-23&region_id={region}",
]


@pytest.mark.parametrize("path", READS)
def test_a_planner_reads_nothing_of_another_region(world: World, path: str) -> None:
    url = path.format(**world.ids)
    assert world.client.get(url, headers=world.insider).status_code == 200
    outside = world.client.get(url, headers=world.outsider)
    assert outside.status_code == 404
    # The same words as for an id that does not exist: nothing tells that it is there.
    absent = world.client.get(
        path.format(**dict.fromkeys(world.ids, 99999)), headers=world.outsider
    )
    assert absent.status_code == 404
    assert re.sub(r"\d+", "#", outside.json()["detail"]) == re.sub(
        r"\d+", "#", absent.json()["detail"]
    )


# Changes: the outsider gets 404 and nothing changes. Every body is valid (else 422 first).
CHANGES: list[tuple[str, str, dict[str, Any] | None]] = [
    (
        "POST",
        "/jobs/{job}/appointment",
        {"start": "2026-11-26T09:00:00+01:00", "end": "2026-11-26T11:00:00+01:00"},
    ),
    (
        "PUT",
        "/appointments/{appointment}",
        {"start": "2026-11-26T09:00:00+01:00", "end": "2026-11-26T11:00:00+01:00"},
    ),
    ("DELETE", "/appointments/{appointment}", None),
    ("PUT", "/jobs/{job}/pin", {"technician_id": "{technician}", "day": "2026-11-26"}),
    ("DELETE", "/jobs/{job}/pin", None),
    ("POST", "/jobs/{job}/move", {"technician_id": "{technician}", "day": "2026-11-26"}),
    ("POST", "/jobs/{job}/unassign", {}),
    ("POST", "/jobs/{job}/reports", {"kind": "running_late"}),
    ("POST", "/technicians/{technician}/ill", {"day": "2026-11-26"}),
    (
        "POST",
        "/technicians/{technician}/absences",
        {"first_day": "2026-11-30", "last_day": "2026-11-30"},
    ),
    ("POST", "/technicians/{technician}/feed", None),
    ("DELETE", "/technicians/{technician}/feed", None),
    ("POST", "/orders/{order}/repairs", {"description": "leaking tap"}),
    ("POST", "/callbacks/{callback}/done", None),
    ("POST", "/regions/{region}/orders/import", {"orders": []}),
    (
        "POST",
        "/plans/optimisations",
        {"region_id": "{region}", "first_day": "2026-11-26", "days": 1, "time_limit_s": 1},
    ),
]


def _filled(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value


def _state(url: str) -> tuple[int, ...]:
    """What any of these changes would write: appointments, pins, plans, absences, jobs."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        found = (
            session.scalar(select(func.count()).select_from(Appointment)) or 0,
            session.scalar(select(func.count()).where(Job.pinned_technician_id.is_not(None))) or 0,
            session.scalar(select(func.count()).select_from(Plan)) or 0,
            session.scalar(select(func.count()).select_from(Job)) or 0,
            sum(len(t.absences) for t in session.scalars(select(Technician))),
            session.scalar(select(func.max(Appointment.sequence))) or 0,
        )
    engine.dispose()
    return found


@pytest.mark.parametrize(
    ("method", "path", "body"), CHANGES, ids=[f"{m} {p}" for m, p, _ in CHANGES]
)
def test_a_planner_changes_nothing_of_another_region(
    world: World, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = _state(world.url)
    response = world.client.request(
        method,
        path.format(**world.ids),
        json=_filled(body, world.ids) if body is not None else None,
        headers=world.outsider,
    )
    assert response.status_code == 404, response.text
    assert _state(world.url) == before


def test_lists_hold_only_the_planners_regions(world: World) -> None:
    client = world.client
    assert [r["id"] for r in client.get("/regions", headers=world.outsider).json()] == [
        world.other_region
    ]
    for path in ("/plans", "/technicians", "/locations", "/callbacks", "/appointments/at-risk"):
        assert client.get(path, headers=world.insider).json(), path
        assert client.get(path, headers=world.outsider).json() == [], path
    kpis = client.get("/kpis?day=2026-11-23", headers=world.outsider).json()
    assert [k["region_id"] for k in kpis] == [world.other_region]
    assert kpis[0]["callbacks_waiting"] == 0  # the other region's callback is not counted
    ours = client.get("/kpis?day=2026-11-23", headers=world.insider).json()
    assert ours[0]["callbacks_waiting"] >= 1


def test_the_board_shows_only_the_planners_region(world: World) -> None:
    client = world.client
    inside = client.get("/board?day=2026-11-23", headers=world.insider)
    assert "Elders" not in inside.text
    assert "planversie" in inside.text
    outside = client.get(
        f"/board?day=2026-11-23&region={world.ids['region']}", headers=world.outsider
    )
    assert outside.status_code == 200
    assert "planversie" not in outside.text  # the other region's plan is not shown
    moved = client.post(
        f"/board/jobs/{world.ids['job']}/move",
        data={"day": "2026-11-26", "technician_id": str(world.ids["technician"])},
        headers=world.outsider,
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert "deze+klus+of+monteur+bestaat+niet" in moved.headers["location"]
    again = client.post(
        "/board/reoptimise",
        data={"day": "2026-11-23", "region_id": str(world.ids["region"])},
        headers=world.outsider,
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert "deze+regio+bestaat+niet" in again.headers["location"]


def test_an_admin_sees_every_region_and_grants_them(world: World) -> None:
    client = world.client
    assert len(client.get("/regions", headers=world.admin).json()) == 2
    assert client.get("/accounts", headers=world.insider).status_code == 403
    accounts = {a["username"]: a for a in client.get("/accounts", headers=world.admin).json()}
    outsider = accounts["outsider"]
    assert outsider["region_ids"] == [world.other_region]
    granted = client.patch(
        f"/accounts/{outsider['id']}",
        json={"region_ids": [world.other_region, world.ids["region"]]},
        headers=world.admin,
    )
    assert granted.status_code == 200
    try:
        assert client.get(f"/jobs/{world.ids['job']}", headers=world.outsider).status_code == 200
    finally:
        client.patch(
            f"/accounts/{outsider['id']}",
            json={"region_ids": [world.other_region]},
            headers=world.admin,
        )
    assert client.get(f"/jobs/{world.ids['job']}", headers=world.outsider).status_code == 404
    unknown = client.patch(
        f"/accounts/{outsider['id']}", json={"region_ids": [99999]}, headers=world.admin
    )
    assert unknown.status_code == 422
    assert "99999" in unknown.text


def test_an_admin_makes_regions_and_planners(world: World) -> None:
    client = world.client
    made = client.post("/regions", json={"code": "NEW-1", "name": "Nieuw"}, headers=world.admin)
    assert made.status_code == 201
    assert (
        client.post(
            "/regions", json={"code": "NEW-1", "name": "Twin"}, headers=world.admin
        ).status_code
        == 409
    )
    bad_zone = client.post(
        "/regions",
        json={"code": "NEW-2", "name": "X", "timezone": "Mars/Olympus"},
        headers=world.admin,
    )
    assert bad_zone.status_code == 422
    assert "timezone" in bad_zone.text
    planner = client.post(
        "/accounts",
        json={
            "username": "newbie",
            "password": "a long enough secret",
            "region_ids": [made.json()["id"]],
        },
        headers=world.admin,
    )
    assert planner.status_code == 201
    key = planner.json()["api_key"]
    assert [r["code"] for r in client.get("/regions", headers=_bearer(key)).json()] == ["NEW-1"]
    assert (
        client.post(
            "/regions", json={"code": "NEW-3", "name": "Y"}, headers=_bearer(key)
        ).status_code
        == 403
    )
    me = next(
        a for a in client.get("/accounts", headers=world.admin).json() if a["username"] == "admin"
    )
    locked = client.patch(f"/accounts/{me['id']}", json={"active": False}, headers=world.admin)
    assert locked.status_code == 409


def test_a_reoptimisation_from_the_board_is_a_run_the_board_follows(world: World) -> None:
    """The board starts a run (a worker's, where there is a queue) and follows it on the
    page; another region's planner cannot follow it."""
    client = world.client
    started = client.post(
        "/board/reoptimise",
        data={"day": "2026-11-23", "region_id": str(world.ids["region"]), "seconds": "1"},
        headers=world.insider,
        follow_redirects=False,
    )
    assert started.status_code == 303
    location = started.headers["location"]
    run_id = parse_qs(urlsplit(location).query)["run"][0]
    deadline = time.monotonic() + 60
    page = client.get(location, headers=world.insider)
    while 'role="status">opnieuw optimaliseren' in page.text and time.monotonic() < deadline:
        assert 'http-equiv="refresh"' in page.text  # the page follows the run by itself
        time.sleep(0.3)
        page = client.get(location, headers=world.insider)
    assert "opnieuw geoptimaliseerd: versie" in page.text, page.text[-2000:]
    assert 'http-equiv="refresh"' not in page.text
    assert (
        client.get(f"/plans/optimisations/{run_id}", headers=world.insider).json()["status"]
        == "done"
    )
    outside = client.get(f"/board?run={run_id}", headers=world.outsider)
    assert "deze optimalisatie bestaat niet" in outside.text
    assert "opnieuw geoptimaliseerd" not in outside.text
