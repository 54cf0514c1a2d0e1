"""Planners steer through the API: background optimisations with progress and cancel, pins
that the engine keeps, moves and unassignments re-checked by the validator, KPIs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from fieldplan import runs
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.db import utcnow
from fieldplan.jobs import Job
from fieldplan.plans import Plan, Stop, latest_plan
from fieldplan.regions import Region
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from tests.conftest import pin_clock, seed_database
from tests.test_booking import violations

TUESDAY = date(2026, 11, 24)


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("steering")
    url = f"sqlite:///{tmp / 'a.db'}"
    api_key = seed_database(url, orders=40, password="pw", plan_days=2)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp / "o")))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {api_key}"}


def wait(client: TestClient, headers: dict[str, str], run_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/plans/optimisations/{run_id}", headers=headers).json()
        if body["status"] != "running":
            return dict(body)
        time.sleep(0.2)
    raise AssertionError("the optimisation did not finish")


def tuesday_routes(client: TestClient) -> dict[int, list[int]]:
    """technician id -> job ids on Tuesday's newest plan."""
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        region = session.scalars(select(Region)).one()
        plan = latest_plan(session, region.id, TUESDAY)
        assert plan is not None
        return {
            r.technician_id: [s.job_id for s in r.stops if s.job_id and s.kind == "job"]
            for r in plan.routes
        }


def stored_plan_violations(client: TestClient) -> list[str]:
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        region = session.scalars(select(Region)).one()
        return violations(session, region, TUESDAY)


def plan_count(client: TestClient) -> int:
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(Plan)) or 0)


def test_an_optimisation_runs_in_the_background_and_reports_progress(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    before = plan_count(client)
    started = client.post(
        "/plans/optimisations",
        json={"region_id": 1, "first_day": "2026-11-24", "days": 1, "time_limit_s": 1},
        headers=headers,
    )
    assert started.status_code == 202
    done = wait(client, headers, started.json()["id"])
    assert done["status"] == "done", done
    assert done["best_cost"] is not None
    assert done["plan_ids"]
    costs = done["costs"]
    assert isinstance(costs, list)
    assert costs
    assert min(c["cost"] for c in costs) == done["best_cost"]
    assert [c["at_s"] for c in costs] == sorted(c["at_s"] for c in costs)
    assert done["started_by"] == "planner:planner"
    assert plan_count(client) == before + 1
    assert stored_plan_violations(client) == []


def test_a_run_is_read_and_cancelled_from_another_api_process(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    """Runs are rows: a second process (another app on the same database) sees the first
    one's run and its cancel reaches the search running in the first."""
    client, headers = world
    before = plan_count(client)
    started = client.post(
        "/plans/optimisations",
        json={"region_id": 1, "first_day": "2026-11-24", "days": 2, "time_limit_s": 120},
        headers=headers,
    )
    run_id = started.json()["id"]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    with TestClient(pin_clock(create_app(settings))) as other:
        seen = other.get(f"/plans/optimisations/{run_id}", headers=headers)
        assert seen.status_code == 200
        assert seen.json()["status"] == "running"
        time.sleep(1.5)
        assert other.delete(f"/plans/optimisations/{run_id}", headers=headers).status_code == 200
        done = wait(other, headers, run_id)
    assert done["status"] == "cancelled"
    assert done["elapsed_s"] < 60  # type: ignore[operator]
    assert plan_count(client) == before


def test_a_run_whose_process_died_is_reported_failed(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        region = session.scalars(select(Region)).one()
        run = runs.start(session, region, TUESDAY, 1, 10, today=TUESDAY, started_by="planner:gone")
        run.attempts = 1  # taken up by a process that then died
        run.beat_at = utcnow() - runs.STALE_AFTER - timedelta(seconds=1)
        waiting = runs.start(
            session, region, TUESDAY, 1, 10, today=TUESDAY, started_by="planner:queued"
        )
        waiting.beat_at = run.beat_at  # no worker has taken it up yet: it waits on the queue
        session.commit()
        run_id, waiting_id = run.id, waiting.id
    found = client.get(f"/plans/optimisations/{run_id}", headers=headers).json()
    assert found["status"] == "failed"
    assert "stopped" in found["error"]
    queued = client.get(f"/plans/optimisations/{waiting_id}", headers=headers).json()
    assert (queued["status"], queued["progress"]) == ("running", 0.0)
    # Cancelled before any worker took it up: it ends at once, and no worker will run it.
    assert client.delete(f"/plans/optimisations/{waiting_id}", headers=headers).status_code == 200
    ended = client.get(f"/plans/optimisations/{waiting_id}", headers=headers).json()
    assert ended["status"] == "cancelled"
    assert not runs.claim(client.app.state.sessions, waiting_id)  # type: ignore[attr-defined]
    assert client.get("/plans/optimisations/" + "0" * 32, headers=headers).status_code == 404
    assert client.get("/plans/optimisations/not-an-id", headers=headers).status_code == 422


def test_a_cancelled_optimisation_saves_nothing(world: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = world
    before = plan_count(client)
    started = client.post(
        "/plans/optimisations",
        json={"region_id": 1, "first_day": "2026-11-24", "days": 2, "time_limit_s": 120},
        headers=headers,
    )
    time.sleep(1.0)
    cancelled = client.delete(f"/plans/optimisations/{started.json()['id']}", headers=headers)
    assert cancelled.status_code == 200
    done = wait(client, headers, started.json()["id"])
    assert done["status"] == "cancelled"
    assert done["elapsed_s"] < 60  # type: ignore[operator]
    assert plan_count(client) == before


def test_a_job_pinned_first_stays_first_with_its_technician_after_re_optimising(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    routes = tuesday_routes(client)
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        technicians = {t.id: t for t in session.scalars(select(Technician))}
        candidates = [
            (job_id, other)
            for tech_id, jobs in routes.items()
            for job_id in jobs
            for other in technicians.values()
            if other.id != tech_id
            and set(session.get_one(Job, job_id).skills) <= set(other.skills)
            and session.get_one(Job, job_id).crew_size == 1
            and other.shift_on(TUESDAY) is not None
        ]
    job_id, other = candidates[0]
    where = {"technician_id": other.id, "day": "2026-11-24"}
    refused = client.put(f"/jobs/{job_id}/pin", json={**where, "position": -1}, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "position"]
    pinned = client.put(f"/jobs/{job_id}/pin", json={**where, "position": 0}, headers=headers)
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["pinned_position"] == 0
    run = client.post(
        "/plans/optimisations",
        json={"region_id": 1, "first_day": "2026-11-24", "days": 1, "time_limit_s": 1},
        headers=headers,
    ).json()
    assert wait(client, headers, run["id"])["status"] == "done"
    assert tuesday_routes(client)[other.id][0] == job_id
    unpinned = client.delete(f"/jobs/{job_id}/pin", headers=headers)
    assert unpinned.json()["pinned_technician_id"] is None


def test_moving_a_job_is_checked_and_a_promise_is_only_broken_when_renegotiated(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    routes = tuesday_routes(client)
    (from_tech, jobs), (to_tech, _) = sorted(routes.items(), key=lambda kv: -len(kv[1]))[:2]
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        to_skills = set(session.get_one(Technician, to_tech).skills)
        movable = [
            j
            for j in jobs
            if set(session.get_one(Job, j).skills) <= to_skills
            and session.get_one(Job, j).crew_size == 1
            and session.get_one(Job, j).days == 1
        ]
    job_id = movable[0]
    moved = client.post(
        f"/jobs/{job_id}/move",
        json={"technician_id": to_tech, "day": "2026-11-24"},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    after = tuesday_routes(client)
    assert job_id in after[to_tech]
    assert job_id not in after.get(from_tech, [])
    assert stored_plan_violations(client) == []

    # Promise it a Wednesday window; moving it back to Tuesday breaks that promise.
    booked = client.post(
        f"/jobs/{job_id}/appointment",
        json={
            "start": "2026-11-25T08:00:00+01:00",
            "end": "2026-11-25T10:00:00+01:00",
        },
        headers=headers,
    )
    if booked.status_code != 201:
        pytest.skip(f"no Wednesday window for this job to promise: {booked.text}")
    back = client.post(
        f"/jobs/{job_id}/move",
        json={"technician_id": to_tech, "day": "2026-11-24"},
        headers=headers,
    )
    assert back.status_code == 409
    assert "breaks the promise" in back.json()["detail"]
    agreed = client.post(
        f"/jobs/{job_id}/move",
        json={"technician_id": to_tech, "day": "2026-11-24", "renegotiate": True},
        headers=headers,
    )
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["renegotiated"] is True
    assert agreed.json()["appointment"]["window_start"].startswith("2026-11-24")
    # The window agreed on the phone is the latest that holds the start; it may leave less
    # room for the work before it than the target (room is not a promise: the gate takes it).
    broken = stored_plan_violations(client)
    assert [v for v in broken if not v.startswith("[protection]")] == []


def test_unassigning_a_promised_job_needs_renegotiation_and_flags_the_promise(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    job_id = next(iter(j for jobs in tuesday_routes(client).values() for j in jobs))
    offered = client.get(f"/jobs/{job_id}/windows", headers=headers).json()["windows"]
    if not offered:
        pytest.skip("no window to promise")
    client.post(
        f"/jobs/{job_id}/appointment",
        json={"start": offered[-1]["start"], "end": offered[-1]["end"]},
        headers=headers,
    )
    refused = client.post(f"/jobs/{job_id}/unassign", json={}, headers=headers)
    assert refused.status_code == 409
    done = client.post(f"/jobs/{job_id}/unassign", json={"renegotiate": True}, headers=headers)
    assert done.status_code == 200
    assert done.json()["status"] == "booked"
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        appointment = session.scalars(select(Appointment).where(Appointment.job_id == job_id)).one()
        assert appointment.status == AppointmentStatus.AT_RISK
        on_plans = session.scalar(select(func.count()).where(Stop.job_id == job_id))
    assert on_plans == 0


def test_kpis_of_a_planned_day(world: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = world
    figures = client.get("/kpis", params={"day": "2026-11-24"}, headers=headers).json()
    assert len(figures) == 1
    day = figures[0]
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        plan = latest_plan(session, 1, TUESDAY)
        assert plan is not None
        assert day["jobs_planned"] == plan.kpis["jobs_planned"] > 0
    assert day["travel_min_per_job"] > 0
    assert 0 < day["utilisation_pct"] <= 150  # overtime can take it past 100
    assert day["technician_days_used"] == len(tuesday_routes(client))
    assert client.get("/kpis", params={"day": "2026-11-24"}).status_code == 401
