"""Fifty customers booking at once through `uvicorn --workers 2` on each database: no 5xx,
nothing acknowledged lost or doubled, nothing wrong in the stored plans afterwards. (How
long they waited is the benchmark's business: `python -m benchmarks.booking_load`.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.booking_load import run, seed
from tests.conftest import BACKENDS, empty_database


@pytest.mark.load
@pytest.mark.parametrize("backend", BACKENDS)
def test_fifty_clients_booking_at_once_get_no_5xx_and_lose_nothing(
    backend: str, tmp_path: Path
) -> None:
    with empty_database(backend, tmp_path) as url:
        api_key = seed(url)
        result = run(url, api_key, clients=50, workers=2, log=tmp_path / "server.log")
    assert result.server_errors == 0, (tmp_path / "server.log").read_text()[-3000:]
    assert result.lost == []
    assert result.defects == []
    assert len(result.acknowledged) >= 40, result.statuses


@pytest.mark.parametrize("backend", BACKENDS)
def test_bookings_waiting_for_the_lock_never_hold_up_the_one_holding_it(
    backend: str, tmp_path: Path
) -> None:
    """More bookings at once than the API process has threads: each one's transaction begins
    and ends in its handler's thread, so the booking that holds the region's lock never waits
    for a thread that a booking waiting for that lock holds (before, every thread could be
    such a waiter: nothing moved until the lock wait ran out, then 503s)."""
    import threading

    from anyio import to_thread
    from fastapi.testclient import TestClient

    from api.main import create_app
    from fieldplan.settings import Settings
    from tests.conftest import pin_clock

    with empty_database(backend, tmp_path) as url:
        api_key = seed(url, orders=60, plan_days=1)
        settings = Settings(database_url=url, secret_key="k", outbox_dir=tmp_path / "out")
        headers = {"Authorization": f"Bearer {api_key}"}
        with TestClient(pin_clock(create_app(settings)), headers=headers) as client:

            def two_threads() -> None:
                to_thread.current_default_thread_limiter().total_tokens = 2

            assert client.portal is not None
            client.portal.call(two_threads)
            offered = []
            for job_id in range(1, 80):
                windows = client.get(f"/jobs/{job_id}/windows")
                if windows.status_code == 200 and windows.json()["windows"]:
                    offered.append((job_id, windows.json()["windows"][0]))
                if len(offered) == 8:
                    break
            assert len(offered) == 8
            statuses: list[int] = []

            def book(job_id: int, window: dict[str, str]) -> None:
                made = client.post(
                    f"/jobs/{job_id}/appointment",
                    json={"start": window["start"], "end": window["end"]},
                )
                statuses.append(made.status_code)

            bookers = [threading.Thread(target=book, args=pair) for pair in offered]
            for booker in bookers:
                booker.start()
            for booker in bookers:
                booker.join()
    assert sorted(set(statuses)) <= [201, 409], statuses
    assert statuses.count(201) >= 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_booking_that_cannot_get_the_lock_in_time_answers_503_and_the_log_says_why(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another transaction holds the region longer than a request waits: 503 with
    Retry-After, nothing written (the same request goes through once the lock is free), and
    the operator's log names the route (its template: no token) and the database's words."""
    import logging

    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from api.main import create_app
    from fieldplan import db, regions
    from fieldplan.db import make_engine, session_factory
    from fieldplan.jobs import Job
    from fieldplan.settings import Settings
    from tests.conftest import pin_clock

    monkeypatch.setattr(db, "LOCK_WAIT_S", 1)
    monkeypatch.setattr(regions, "LOCK_WAIT_S", 1)
    with empty_database(backend, tmp_path) as url:
        api_key = seed(url, orders=30, plan_days=1)
        settings = Settings(database_url=url, secret_key="k", outbox_dir=tmp_path / "out")
        headers = {"Authorization": f"Bearer {api_key}"}
        engine = make_engine(url)
        with TestClient(pin_clock(create_app(settings)), headers=headers) as client:
            job_id, window = _first_offer(client)
            body = {"start": window["start"], "end": window["end"]}
            holder = session_factory(engine)()
            region_id = holder.scalar(select(Job.region_id).where(Job.id == job_id))
            assert region_id is not None
            regions.lock_region(holder, region_id)
            try:
                with caplog.at_level(logging.WARNING, logger="api.main"):
                    busy = client.post(f"/jobs/{job_id}/appointment", json=body)
            finally:
                holder.rollback()
                holder.close()
            made = client.post(f"/jobs/{job_id}/appointment", json=body)
        engine.dispose()
    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "2"
    assert "nothing was written" in busy.json()["detail"]
    assert "503 busy after" in caplog.text
    assert "POST /jobs/{job_id:int}/appointment" in caplog.text
    assert made.status_code == 201, made.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_booking_through_the_api_takes_the_write_lock_once(backend: str, tmp_path: Path) -> None:
    """The request reads the job, the desk books in a transaction of its own, the request
    reads the appointment back: only the desk's transaction takes SQLite's write lock (or
    locks the region's row on PostgreSQL). Every further turn at it queued each booking
    behind all the others again."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from api.main import create_app
    from fieldplan.settings import Settings
    from tests.conftest import pin_clock

    with empty_database(backend, tmp_path) as url:
        api_key = seed(url, orders=30, plan_days=1)
        settings = Settings(database_url=url, secret_key="k", outbox_dir=tmp_path / "out")
        headers = {"Authorization": f"Bearer {api_key}"}
        with TestClient(pin_clock(create_app(settings)), headers=headers) as client:
            job_id, window = _first_offer(client)
            engine = client.app.state.sessions.kw["bind"]  # type: ignore[attr-defined]
            locks: list[str] = []
            taking = "BEGIN IMMEDIATE" if backend == "sqlite" else "UPDATE regions"

            def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
                if statement.startswith(taking):
                    locks.append(statement)

            event.listen(engine, "before_cursor_execute", seen)
            made = client.post(
                f"/jobs/{job_id}/appointment",
                json={"start": window["start"], "end": window["end"]},
            )
            event.remove(engine, "before_cursor_execute", seen)
    assert made.status_code == 201, made.text
    assert len(locks) == 1, locks


def _first_offer(client: Any) -> tuple[int, dict[str, str]]:
    """The first job of the seeded region offered a window, and that window."""
    for job_id in range(1, 40):
        found = client.get(f"/jobs/{job_id}/windows")
        if found.status_code == 200 and found.json()["windows"]:
            return job_id, found.json()["windows"][0]
    raise AssertionError("no job of the seeded region is offered a window")
