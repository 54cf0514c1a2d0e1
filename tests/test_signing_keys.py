"""Links that last: without FIELDPLAN_SECRET_KEY the signing key lives in the database, so a
customer's link opens after a restart and on every worker; rotation keeps old links alive
until they expire, unless the old keys are dropped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from fieldplan import signing_keys
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.orders import Order
from fieldplan.settings import Settings
from tests.conftest import BACKENDS, empty_database, pin_clock, seed_database


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path) as url:
        seed_database(url, orders=3, password="pw")
        yield url


def process(url: str, tmp_path: Path) -> FastAPI:
    """One API process with no FIELDPLAN_SECRET_KEY, as the demo runs."""
    return pin_clock(create_app(Settings(database_url=url, outbox_dir=tmp_path / "out")))


def order_id(url: str) -> int:
    with session_factory(make_engine(url))() as session:
        return session.scalars(select(Order.id).order_by(Order.id)).first() or 0


def opens(app: FastAPI, token: str) -> int:
    with TestClient(app) as client:
        return client.get(f"/o/{token}").status_code


def test_a_link_issued_before_a_restart_opens_after_it_and_on_another_worker(
    database: str, tmp_path: Path
) -> None:
    first = process(database, tmp_path)
    token = first.state.order_links.issue(order_id(database))
    assert opens(first, token) == 200
    second = process(database, tmp_path)  # a restart, or the worker next to it
    assert opens(second, token) == 200
    assert opens(second, token[:-2] + ("00" if token[-2:] != "00" else "11")) == 404


def test_workers_starting_together_agree_on_one_key(database: str) -> None:
    sessions = session_factory(make_engine(database))
    found: list[bytes] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            with unit_of_work(sessions) as session:
                found.append(signing_keys.keys(session, retire_after=timedelta(days=1))[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(found)) == 1


def test_rotation_keeps_old_links_until_the_old_keys_are_dropped(
    database: str, tmp_path: Path
) -> None:
    before = process(database, tmp_path)
    old = before.state.order_links.issue(order_id(database))
    sessions = session_factory(make_engine(database))
    with unit_of_work(sessions) as session:
        signing_keys.rotate(session)
    after = process(database, tmp_path)
    new = after.state.order_links.issue(order_id(database))
    assert new != old
    assert opens(after, old) == 200
    assert opens(after, new) == 200
    with unit_of_work(sessions) as session:
        assert signing_keys.drop_retired(session) == 1
    dropped = process(database, tmp_path)
    assert opens(dropped, old) == 404
    assert opens(dropped, new) == 200
