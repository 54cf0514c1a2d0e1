"""The OpenAPI document says what the API does (issue 22); `tests/contract.py` holds the whole
document to a live server, these pin each finding of the review that started it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from fieldplan.settings import Settings
from tests.conftest import pin_clock, seed_database


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("document")
    url = f"sqlite:///{folder / 'document.db'}"
    api_key = seed_database(url, orders=20, password="pw", plan_days=1)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=folder)))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="module")
def document(world: tuple[TestClient, dict[str, str]]) -> dict[str, Any]:
    client, _ = world
    body: dict[str, Any] = client.get("/openapi.json").json()
    return body


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_times_of_day_are_documented_and_sent_as_the_regions_clock(
    world: tuple[TestClient, dict[str, str]], document: dict[str, Any]
) -> None:
    client, planner = world
    for model, names in (("OpeningRead", ("opens", "closes")), ("ShiftRead", ("start", "end"))):
        for name in names:
            declared = schema_of(document, model)["properties"][name]
            assert "format" not in declared  # not RFC 3339's full-time, which needs an offset
            assert re.fullmatch(declared["pattern"].strip("^$"), "08:00"), (model, name)
    store = next(
        loc for loc in client.get("/locations", headers=planner).json() if loc["opening_hours"]
    )
    assert re.fullmatch(r"\d{2}:\d{2}", store["opening_hours"][0]["opens"])
    shift = client.get("/technicians", headers=planner).json()[0]["shifts"][0]
    assert re.fullmatch(r"\d{2}:\d{2}", shift["start"])


def test_a_pin_takes_a_clock_time_but_not_one_with_an_offset(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, planner = world
    pin = {"technician_id": 1, "day": "2026-11-23", "start": "09:00+05:00"}
    refused = client.put("/jobs/1/pin", json=pin, headers=planner)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == "start"


def test_the_imports_refusal_is_the_documented_one(
    world: tuple[TestClient, dict[str, str]], document: dict[str, Any]
) -> None:
    client, planner = world
    operation = document["paths"]["/regions/{region_id}/orders/import"]["post"]
    declared = operation["responses"]["422"]["content"]["application/json"]["schema"]
    assert declared == {"$ref": "#/components/schemas/Invalid"}
    reason = schema_of(document, "FieldReason")
    assert set(reason["required"]) == {"field", "reason"}
    assert "row" in reason["properties"]
    body = {
        "orders": [
            {
                "order_number": "DOC-1",
                "order_date": "2026-11-20",
                "store": "S-NONE",
                "customer_name": "A",
                "email": "a@example.nl",
                "phone": "+31 6 12345678",
                "street": "Brink",
                "house_number": "1",
                "postcode": "3511 AB",
                "lines": [{"sku": "NO-SUCH", "quantity": 1, "services": ["installation"]}],
            }
        ]
    }
    refused = client.post("/regions/1/orders/import", json=body, headers=planner)
    assert refused.status_code == 422
    assert {"row", "field", "reason"} <= set(refused.json()["detail"][0])
    # The shape is in the document: an order without its required keys is refused by it.
    required = schema_of(document, "ImportOrder")["required"]
    assert {"order_number", "customer_name", "postcode", "lines"} <= set(required)
    assert set(schema_of(document, "ImportLine")["required"]) == {"sku", "quantity", "services"}


def test_every_operation_documents_the_refusals_it_can_give(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        codes = set(operation["responses"])
        assert {"422", "503"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method in ("POST", "PUT", "DELETE"):
            assert "409" in codes, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= codes, (method, path)
        if operation.get("security"):
            assert "401" in codes, (method, path)
    token = document["paths"]["/auth/token"]["post"]["responses"]
    assert "429" in token
    assert "404" not in token  # its form's client_id names no row


def test_calendars_are_documented_as_calendars_and_their_refusals_as_json(
    document: dict[str, Any],
) -> None:
    for path in (
        "/feeds/technicians/{token}.ics",
        "/plans/{plan_id}/calendar.ics",
        "/appointments/{appointment_id}/invite.ics",
        "/c/invites/{token}.ics",
    ):
        responses = document["paths"][path]["get"]["responses"]
        assert list(responses["200"]["content"]) == ["text/calendar"], path
        assert list(responses["404"]["content"]) == ["application/json"], path
        assert list(responses["422"]["content"]) == ["application/json"], path
    assert "304" in document["paths"]["/feeds/technicians/{token}.ics"]["get"]["responses"]


def test_a_calendar_is_sent_as_text_calendar(world: tuple[TestClient, dict[str, str]]) -> None:
    client, planner = world
    plan = client.get("/plans", headers=planner).json()[0]
    answer = client.get(f"/plans/{plan['id']}/calendar.ics", headers=planner)
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"


def test_a_method_the_path_lacks_answers_405_naming_every_method_it_has(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, planner = world
    for path, allowed in (
        ("/appointments/1", "DELETE, PUT"),
        ("/jobs/1/pin", "DELETE, PUT"),
        ("/technicians/1/feed", "DELETE, POST"),
        ("/plans/optimisations/x", "DELETE, GET"),
    ):
        answer = client.request("PATCH", path, headers=planner)
        assert answer.status_code == 405, path
        assert answer.headers["allow"] == allowed, path


def test_a_word_where_an_id_belongs_is_no_such_resource(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, planner = world
    # /appointments/at-risk is a list, not an appointment: no PUT there, and GET is not /plans/{id}.
    assert client.put("/appointments/at-risk", json={}, headers=planner).status_code == 405
    assert client.get("/plans/optimisations", headers=planner).status_code == 405
    assert client.get("/jobs/abc", headers=planner).status_code == 404


def test_booleans_in_bodies_are_json_booleans(world: tuple[TestClient, dict[str, str]]) -> None:
    client, planner = world
    refused = client.post("/jobs/1/unassign", json={"renegotiate": 0}, headers=planner)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == "renegotiate"


def test_days_outside_the_planned_years_are_stated_in_the_document(
    document: dict[str, Any],
) -> None:
    day = next(
        p["schema"] for p in document["paths"]["/kpis"]["get"]["parameters"] if p["name"] == "day"
    )
    pattern = re.compile(day["pattern"])
    for accepted in ("2000-01-01", "2026-12-02", "2199-12-31"):
        assert pattern.match(accepted), accepted
    for refused in ("1999-12-31", "2200-01-01", "0323-03-12"):
        assert not pattern.match(refused), refused


def test_answers_link_to_what_they_make_possible(document: dict[str, Any]) -> None:
    booked = document["paths"]["/jobs/{job_id}/appointment"]["post"]["responses"]["201"]
    links = booked["links"]
    assert links["cancel"]["parameters"] == {"appointment_id": "$response.body#/id"}
    for link in links.values():
        pointer = link["operationRef"].removeprefix("#/paths/")
        path, method = pointer.rsplit("/", 1)
        assert method in document["paths"][path.replace("~1", "/").replace("~0", "~")]
