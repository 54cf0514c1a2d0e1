"""Nonsense is refused with the field and the reason, and changes nothing (issue 22): days
written as numbers, absences over centuries, work reported a week early, imports of empty,
endless or oversized orders; legal but unusual dates are imported with a warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from fieldplan import importing
from fieldplan.db import make_engine, session_factory
from fieldplan.gazetteer import Gazetteer
from fieldplan.orders import Order
from fieldplan.regions import Region
from fieldplan.settings import Settings
from tests.conftest import BACKENDS, SAMPLE, TODAY, empty_database, pin_clock, seed_database


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    folder = tmp_path_factory.mktemp("bounds")
    url = f"sqlite:///{folder / 'bounds.db'}"
    api_key = seed_database(url, orders=20, password="pw", plan_days=2)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=folder)))
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        yield client, url


def fields(response: Any) -> set[str]:
    """The fields a 422 names, in FastAPI's form (loc) or ours (field)."""
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return {str(d.get("field") or d["loc"][-1]) for d in detail}


def orders(url: str) -> int:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        count = session.scalar(select(func.count()).select_from(Order)) or 0
    engine.dispose()
    return count


@pytest.mark.parametrize("day", ["0", "20261123", "1700000000", "23-11-2026", "0298-01-01"])
def test_a_day_is_written_as_a_plausible_date(world: tuple[TestClient, str], day: str) -> None:
    client, _ = world
    response = client.get("/plans", params={"day": day})
    assert response.status_code == 422, response.text
    assert fields(response) == {"day"}
    assert client.get("/plans", params={"day": "2026-11-23"}).status_code == 200


def test_a_window_is_written_as_moments_not_numbers(world: tuple[TestClient, str]) -> None:
    client, _ = world
    response = client.post("/jobs/5/appointment", json={"start": 0, "end": 7200})
    assert response.status_code == 422
    assert fields(response) == {"start", "end"}


@pytest.mark.parametrize(
    ("absence", "field"),
    [
        ({"first_day": "0298-01-01", "last_day": "8397-12-31"}, "first_day"),
        ({"first_day": "2026-12-01", "last_day": "2028-12-31"}, "body"),
        ({"first_day": "2029-06-01", "last_day": "2029-06-05"}, "last_day"),
        ({"first_day": "2024-01-08", "last_day": "2024-01-09"}, "first_day"),
    ],
)
def test_an_absence_lies_within_the_years_a_planner_plans(
    world: tuple[TestClient, str], absence: dict[str, str], field: str
) -> None:
    client, _ = world
    before = client.get("/technicians/1").json()["absences"]
    response = client.post("/technicians/1/absences", json=absence)
    assert response.status_code == 422, response.text
    assert field in fields(response) or (field == "body" and "lasts at most" in response.text)
    assert client.get("/technicians/1").json()["absences"] == before


def test_work_reported_a_week_before_its_day_is_refused(world: tuple[TestClient, str]) -> None:
    client, _ = world
    plans = client.get("/plans").json()
    later = max(plans, key=lambda p: p["day"])
    plan = client.get(f"/plans/{later['id']}").json()
    job_id = next(s["job_id"] for r in plan["routes"] for s in r["stops"] if s["job_id"])
    before = client.get(f"/jobs/{job_id}").json()["status"]
    response = client.post(f"/jobs/{job_id}/reports", json={"kind": "on_the_way"})
    assert response.status_code == 422, response.text
    assert fields(response) == {"kind"}
    assert "is planned for 2026-11-24" in response.text
    assert client.get(f"/jobs/{job_id}").json()["status"] == before


def _order(number: str, **changes: Any) -> dict[str, Any]:
    row = importing.read_rows(importing.Path("sample_data/orders.csv"))[0].values
    head = {k: row[k] for k in importing.ORDER_FIELDS}
    line = {k: row[k] for k in importing.LINE_FIELDS if row[k]}
    return {**head, "order_number": number, "lines": [line], **changes}


def _import(client: TestClient, *orders_in: dict[str, Any]) -> Any:
    return client.post("/regions/1/orders/import", json={"orders": list(orders_in)})


def test_an_order_without_lines_fails_the_whole_file(world: tuple[TestClient, str]) -> None:
    client, url = world
    before = orders(url)
    response = _import(client, _order("B-OK-1"), _order("B-EMPTY", lines=[]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "orders", 1, "lines"]
    with pytest.raises(importing.UnreadableFile, match="needs at least one line"):  # the CLI's
        importing.rows_from_json(json.dumps({"orders": [_order("B-EMPTY", lines=[])]}))
    assert orders(url) == before


def test_overlong_text_is_refused_with_its_field(world: tuple[TestClient, str]) -> None:
    client, url = world
    before = orders(url)
    response = _import(client, _order("B-LONG", notes="n" * 2001, customer_name="c" * 201))
    assert response.status_code == 422
    assert fields(response) == {"notes", "customer_name"}
    assert orders(url) == before


def test_more_lines_than_a_file_may_hold_are_refused_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = json.dumps({"orders": [_order(f"B-MANY-{k}") for k in range(4)]})
    monkeypatch.setattr(importing, "MAX_ROWS", 3)
    with pytest.raises(importing.UnreadableFile, match="more than 3 order lines"):
        importing.rows_from_json(text)


def test_unusual_but_legal_dates_are_imported_with_a_warning(
    world: tuple[TestClient, str],
) -> None:
    client, url = world
    before = orders(url)
    response = _import(client, _order("B-OLD", order_date="2020-03-02", wanted_from="2020-03-09"))
    assert response.status_code == 201, response.text
    warned = {w["field"]: w["reason"] for w in response.json()["warnings"]}
    assert set(warned) == {"order_date", "wanted_from"}
    assert "more than a year ago" in warned["order_date"]
    assert "in the past" in warned["wanted_from"]
    assert orders(url) == before + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nul_character_anywhere_is_refused_with_its_field_on_every_database(
    backend: str, tmp_path: Path
) -> None:
    """PostgreSQL cannot store a NUL (nor compare one): every text a client sends is checked
    at the edge, so none reaches the driver as a 500 (the contract check found the import)."""
    with empty_database(backend, tmp_path) as url:
        api_key = seed_database(url, orders=5, password="pw")
        app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp_path)))
        planner = {"Authorization": f"Bearer {api_key}"}
        with TestClient(app, raise_server_exceptions=False) as client:
            refused = {
                "import": _import_as(client, planner, _order("NUL-1", customer_name="A\x00B")),
                "report": client.post(
                    "/jobs/1/reports", json={"kind": "not_home", "note": "x\x00"}, headers=planner
                ),
                "absence": client.post(
                    "/technicians/1/absences",
                    json={"first_day": "2026-12-10", "last_day": "2026-12-10", "reason": "\x00"},
                    headers=planner,
                ),
                "cancel": client.delete("/appointments/1?reason=a%00b", headers=planner),
            }
            for what, response in refused.items():
                assert response.status_code == 422, (what, response.text)
                assert "NUL" in response.text, what
            token = client.post("/auth/token", data={"username": "x\x00", "password": "pw"})
            assert token.status_code == 401
            page = client.post("/login", data={"username": "x\x00", "password": "pw"})
            assert page.status_code < 500
        with session_factory(make_engine(url))() as session:
            assert session.scalar(select(Order).where(Order.number == "NUL-1")) is None
            # The command line's files meet the same rule, row by row.
            row = importing.read_rows(importing.Path("sample_data/orders.csv"))[0]
            row.values["customer_name"] = "A\x00B"
            region = session.scalars(select(Region)).one()
            gazetteer = Gazetteer.from_directory(SAMPLE)
            with pytest.raises(importing.ImportFailed) as failed:
                importing.import_rows(
                    session, [row], region=region, gazetteer=gazetteer, today=TODAY
                )
            errors = {(e.field, e.reason) for e in failed.value.report.errors}
            assert ("customer_name", "contains a NUL character") in errors


def _import_as(client: TestClient, headers: dict[str, str], order: dict[str, Any]) -> Any:
    return client.post("/regions/1/orders/import", json={"orders": [order]}, headers=headers)
