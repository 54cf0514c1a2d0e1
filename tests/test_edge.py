"""The API's outer edge: security headers, cache rules, body limits, offline docs, logs
without secrets (issue 22)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import MAX_BODY_BYTES, create_app
from api.redaction import redact
from api.routers.resources import IMPORT_MAX_BYTES
from fieldplan.accounts import (
    FIRST_WAIT_S,
    FREE_FAILURES,
    LONGEST_WAIT_S,
    Role,
    create_account,
    wait_after,
)
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.settings import Settings
from tests.conftest import NOW, pin_clock, seed_database


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, str]]:
    folder = tmp_path_factory.mktemp("edge")
    url = f"sqlite:///{folder / 'edge.db'}"
    api_key = seed_database(url, orders=20, password="pw", plan_days=1)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=folder)))
    with TestClient(app) as client:
        yield client, api_key, url


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_pages_and_api_carry_the_security_headers(world: tuple[TestClient, str, str]) -> None:
    client, _, _ = world
    for path in ("/login", "/health", "/plans", "/nowhere"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy, path
        assert "script-src" not in policy, path  # pages run no script at all
        assert "frame-ancestors 'none'" in policy, path
        assert response.headers["cache-control"] == "no-store", path


def test_feeds_may_be_kept_by_the_calendar_app_only_and_statics_by_anyone(
    world: tuple[TestClient, str, str],
) -> None:
    client, api_key, _ = world
    link = client.post("/technicians/1/feed", headers=auth(api_key)).json()["url"]
    feed = client.get(httpx.URL(link).path)
    assert feed.status_code == 200
    assert feed.headers["cache-control"].startswith("private")  # never a shared cache
    assert client.get("/static/fieldplan.css").headers["cache-control"].startswith("public")


def test_the_api_docs_load_nothing_from_outside(world: tuple[TestClient, str, str]) -> None:
    client, _, _ = world
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assert "http://" not in page.text.replace("http://www.w3.org", "")
        assert "https://" not in page.text
        for asset in ("/static-offline-docs/swagger-ui-bundle.js", "/static-offline-docs/"):
            assert asset in page.text or path == "/redoc"
    bundle = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000


def test_an_oversized_body_gets_413_and_books_nothing(world: tuple[TestClient, str, str]) -> None:
    client, api_key, _ = world
    padding = "x" * (MAX_BODY_BYTES + 1)
    window = '"start": "2026-12-08T09:00:00+01:00", "end": "2026-12-08T11:00:00+01:00"'
    body = f'{{{window}, "junk": "{padding}"}}'
    before = client.get("/jobs/3", headers=auth(api_key)).json()
    response = client.post(
        "/jobs/3/appointment",
        content=body,
        headers={**auth(api_key), "content-type": "application/json"},
    )
    assert response.status_code == 413

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted while it is read
        yield body.encode()

    response = client.post(
        "/jobs/3/appointment",
        content=streamed(),
        headers={**auth(api_key), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert client.get("/jobs/3", headers=auth(api_key)).json() == before


def test_the_import_takes_a_large_file_but_not_an_endless_one(
    world: tuple[TestClient, str, str],
) -> None:
    client, api_key, _ = world
    huge = b'{"orders": [' + b" " * IMPORT_MAX_BYTES + b"]}"
    response = client.post(
        "/regions/1/orders/import",
        content=huge,
        headers={**auth(api_key), "content-type": "application/json"},
    )
    assert response.status_code == 413
    sizeable = b'{"orders": [' + b" " * (2 * MAX_BODY_BYTES) + b"]}"
    response = client.post(
        "/regions/1/orders/import",
        content=sizeable,
        headers={**auth(api_key), "content-type": "application/json"},
    )
    assert response.status_code != 413  # past the general limit, inside the import's own


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('GET /feeds/technicians/tfd_AbCdEfGh12345678.ics HTTP/1.1" 200', "tfd_AbCdEfGh"),
        ("POST /feeds/technicians/tfd_AbCdEfGh12345678/jobs/4/reports", "AbCdEfGh1234"),
        ("GET /o/eyJzdWIiOjF9.c2lnbmF0dXJlLWhlcmU HTTP/1.1", "eyJzdWIiOjF9"),
        ("GET /c/invites/eyJzdWIiOjF9.c2lnbmF0dXJl.ics", "c2lnbmF0dXJl"),
        ("GET /feeds?token=s3cr3tvalue1234", "s3cr3tvalue"),
        ("Authorization: Bearer fpk_abcdefghijklmnop", "abcdefghijkl"),
    ],
)
def test_tokens_are_cut_from_log_lines(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert "[token]" in cleaned


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_access_log_of_a_real_server_holds_no_feed_token(
    world: tuple[TestClient, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, api_key, url = world
    link = client.post("/technicians/2/feed", headers=auth(api_key)).json()["url"]
    path = httpx.URL(link).path
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    app = create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp_path))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, access_log=True, log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()  # uvicorn's own logging set-up: its handler writes the access log out
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    served = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    server.should_exit = True
    thread.join(10)
    assert served.status_code == 200
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert any("/feeds/technicians/[token].ics" in line for line in lines), lines
    assert not any(token in line for line in lines)


def test_wrong_passwords_in_a_row_slow_the_next_attempts_down(
    world: tuple[TestClient, str, str],
) -> None:
    client, _, url = world
    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        create_account(session, "guessed", Role.PLANNER, "the-right-one")
    engine.dispose()
    app = client.app
    assert isinstance(app, FastAPI)
    start = NOW
    for _ in range(FREE_FAILURES):
        wrong = client.post("/auth/token", data={"username": "guessed", "password": "nope"})
        assert wrong.status_code == 401
    right = {"username": "guessed", "password": "the-right-one"}
    throttled = client.post("/auth/token", data=right)
    assert throttled.status_code == 429  # even the right password waits its turn
    assert int(throttled.headers["retry-after"]) == FIRST_WAIT_S
    page = client.post("/login", data=right, follow_redirects=False)
    assert page.status_code == 429
    assert "opnieuw" in page.text
    try:
        app.state.now = lambda: start + timedelta(seconds=FIRST_WAIT_S + 1)
        wrong = client.post("/auth/token", data={"username": "guessed", "password": "nope"})
        assert wrong.status_code == 401
        again = client.post("/auth/token", data=right)
        assert again.status_code == 429
        assert int(again.headers["retry-after"]) == 2 * FIRST_WAIT_S  # doubled
        app.state.now = lambda: start + timedelta(seconds=4 * FIRST_WAIT_S)
        assert client.post("/auth/token", data=right).status_code == 200
        app.state.now = lambda: start + timedelta(seconds=4 * FIRST_WAIT_S + 1)
        wrong = client.post("/auth/token", data={"username": "guessed", "password": "nope"})
        assert wrong.status_code == 401  # the success started afresh
    finally:
        app.state.now = lambda: start


def test_the_wait_doubles_up_to_a_quarter_of_an_hour() -> None:
    waits = [wait_after(n) for n in range(12)]
    assert waits[:FREE_FAILURES] == [0] * FREE_FAILURES
    assert waits[FREE_FAILURES : FREE_FAILURES + 3] == [30, 60, 120]
    assert max(waits) == LONGEST_WAIT_S
