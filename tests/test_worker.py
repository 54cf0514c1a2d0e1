"""Optimisation runs on the task queue: `fieldplan worker` processes carry them out, and a run
whose worker dies is carried out again (api/worker.py, fieldplan.runs.claim)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.worker import QueueExecutor, drop_queue, make_queue
from fieldplan import runs
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.migrate import upgrade
from fieldplan.runs import OptimisationRun, RunStatus
from fieldplan.settings import Settings
from fieldplan.travel import GeodesicTravelTimes
from tests.conftest import BACKENDS, empty_database
from tests.test_booking import MONDAY, SUNDAY, tiny_region

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("FIELDPLAN_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def require_rabbitmq() -> None:
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", 5672)) == 0:
            return
    message = "RabbitMQ is not listening on 127.0.0.1:5672 (python3 tasks.py test starts it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: a missing broker is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path) as made:
        engine = make_engine(made)
        upgrade(engine)
        engine.dispose()
        yield made


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue of the test's own on the machine's broker, deleted afterwards."""
    require_rabbitmq()
    name = f"fieldplan-test-{uuid.uuid4().hex[:10]}"
    yield name
    drop_queue(Settings(broker_url=BROKER, queue_name=name))


def _region(sessions: sessionmaker[Session]) -> str:
    with unit_of_work(sessions) as session:
        region, _ = tiny_region(session, 6, code=uuid.uuid4().hex[:8].upper())
        return region.code


def _start_run(sessions: sessionmaker[Session], time_limit_s: float) -> str:
    with unit_of_work(sessions) as session:
        region, _ = tiny_region(session, 6, code=uuid.uuid4().hex[:8].upper())
        run = runs.start(
            session, region, MONDAY, 1, time_limit_s, today=SUNDAY, started_by="planner:test"
        )
        return run.id


def _env(url: str, queue_name: str | None, tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "FIELDPLAN_DATABASE_URL": url,
        "FIELDPLAN_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.pop("FIELDPLAN_BROKER_URL", None)
    if queue_name is not None:
        env |= {"FIELDPLAN_BROKER_URL": BROKER, "FIELDPLAN_QUEUE_NAME": queue_name}
    return env


def _worker(url: str, queue_name: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = _env(url, queue_name, tmp_path)
    log = (tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "fieldplan", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its pool's processes die with it
    )


def _stop(worker: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, how)
    worker.wait(30)


def _run(engine: Engine, run_id: str) -> OptimisationRun:
    with session_factory(engine)() as session:
        return session.get_one(OptimisationRun, run_id)


def _until(test: Callable[[], bool], seconds: float, what: str, tmp_path: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.2)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("worker-*.log"))
    pytest.fail(f"{what} within {seconds} s; the workers said:\n{logs}")


def test_a_worker_carries_out_a_run_from_the_queue(
    url: str, queue_name: str, tmp_path: Path
) -> None:
    engine = make_engine(url)
    run_id = _start_run(session_factory(engine), time_limit_s=1.0)
    queue = make_queue(Settings(database_url=url, broker_url=BROKER, queue_name=queue_name))
    QueueExecutor(queue).submit(run_id)  # queued before any worker runs: it waits for one
    worker = _worker(url, queue_name, tmp_path)
    try:
        _until(
            lambda: _run(engine, run_id).status != RunStatus.RUNNING,
            60,
            "the run was not carried out",
            tmp_path,
        )
    finally:
        _stop(worker)
    run = _run(engine, run_id)
    engine.dispose()
    assert (run.status, run.error) == (RunStatus.DONE, None)
    assert run.plan_ids  # the plan it saved
    assert run.attempts == 1


def test_a_run_whose_worker_dies_is_carried_out_again_by_another(
    url: str, queue_name: str, tmp_path: Path
) -> None:
    engine = make_engine(url)
    run_id = _start_run(session_factory(engine), time_limit_s=6.0)
    queue = make_queue(Settings(database_url=url, broker_url=BROKER, queue_name=queue_name))
    first = _worker(url, queue_name, tmp_path)
    try:
        QueueExecutor(queue).submit(run_id)
        _until(
            lambda: bool(_run(engine, run_id).best_costs),
            60,
            "the first worker did not start the run",
            tmp_path,
        )
    finally:
        _stop(first, signal.SIGKILL)  # the machine it ran on went away mid-search
    assert _run(engine, run_id).status == RunStatus.RUNNING
    second = _worker(url, queue_name, tmp_path)
    try:
        _until(
            lambda: _run(engine, run_id).status != RunStatus.RUNNING,
            90,
            "the run was not carried out again",
            tmp_path,
        )
    finally:
        _stop(second)
    run = _run(engine, run_id)
    engine.dispose()
    assert (run.status, run.error) == (RunStatus.DONE, None)
    assert run.attempts == 2
    assert run.plan_ids


def test_a_run_is_taken_up_twice_at_most_and_never_after_it_ended(url: str) -> None:
    engine = make_engine(url)
    sessions = session_factory(engine)
    run_id = _start_run(sessions, time_limit_s=1.0)
    assert runs.claim(sessions, run_id)
    assert runs.claim(sessions, run_id)  # its first worker died: once more, from scratch
    assert not runs.claim(sessions, run_id)
    failed = _run(engine, run_id)
    assert failed.status == RunStatus.FAILED
    assert "stopped 2 times" in (failed.error or "")
    done_id = _start_run(sessions, time_limit_s=1.0)
    assert runs.claim(sessions, done_id)
    runs.execute(sessions, done_id, GeodesicTravelTimes())
    assert _run(engine, done_id).status == RunStatus.DONE
    assert not runs.claim(sessions, done_id)  # delivered again after it ended: left as it is
    assert _run(engine, done_id).attempts == 1
    engine.dispose()


def _plan_all_regions(url: str, queue_name: str | None, tmp_path: Path) -> str:
    # The command plans from today on: the test region's technician works the next Monday.
    today = date.today()
    monday = today + timedelta(days=7 - today.weekday())
    command = [sys.executable, "-m", "fieldplan", "plan", "--all-regions"]
    done = subprocess.run(
        [*command, "--from", monday.isoformat(), "--days", "1", "--time-limit", "1"],
        cwd=ROOT,
        env=_env(url, queue_name, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _runs_by_region(engine: Engine) -> dict[int, list[OptimisationRun]]:
    with session_factory(engine)() as session:
        found: dict[int, list[OptimisationRun]] = {}
        for run in session.scalars(select(OptimisationRun)):
            found.setdefault(run.region_id, []).append(run)
        return found


def test_planning_every_region_fans_out_one_run_per_region_to_the_workers(
    url: str, queue_name: str, tmp_path: Path
) -> None:
    engine = make_engine(url)
    codes = [_region(session_factory(engine)) for _ in range(2)]
    workers = [_worker(url, queue_name, tmp_path) for _ in range(2)]  # on one machine

    def logs() -> list[str]:
        return [p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log"))]

    try:
        _until(
            lambda: all(" ready." in log or "Error" in log for log in logs()),
            60,
            "the workers did not start",
            tmp_path,
        )
        printed = _plan_all_regions(url, queue_name, tmp_path)
        assert [w.poll() for w in workers] == [None, None], logs()  # neither stopped
        assert all(" ready." in log for log in logs()), logs()
    finally:
        for worker in workers:
            _stop(worker)
    found = _runs_by_region(engine)
    engine.dispose()
    assert len(found) == 2
    assert all(len(r) == 1 and r[0].status == RunStatus.DONE for r in found.values())
    assert all(r[0].attempts == 1 and r[0].plan_ids for r in found.values())
    assert all(code in printed for code in codes)


def test_planning_every_region_without_a_queue_runs_them_in_the_process(
    url: str, tmp_path: Path
) -> None:
    engine = make_engine(url)
    for _ in range(2):
        _region(session_factory(engine))
    _plan_all_regions(url, None, tmp_path)
    found = _runs_by_region(engine)
    engine.dispose()
    assert sorted(len(r) for r in found.values()) == [1, 1]
    assert all(r[0].status == RunStatus.DONE and r[0].plan_ids for r in found.values())


def test_a_run_keeps_beating_while_no_search_reports(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big region reads, builds its first plan and saves for minutes without the search
    calling back: the run beats on, so nobody takes it for one whose process died."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    run_id = _start_run(sessions, time_limit_s=1.0)
    monkeypatch.setattr(runs, "STALE_AFTER", timedelta(seconds=1))
    monkeypatch.setattr(runs, "STEADY_BEAT_S", 0.2)
    quiet = runs.plan_region

    def slow_and_silent(*args: object, **kwargs: object) -> object:
        time.sleep(3.0)  # longer than STALE_AFTER, and no progress reported
        kwargs.pop("on_progress", None)
        return quiet(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runs, "plan_region", slow_and_silent)
    assert runs.claim(sessions, run_id)
    seen: list[RunStatus] = []
    watcher = threading.Thread(
        target=lambda: [
            (seen.append(_run(engine, run_id).outcome[0]), time.sleep(0.25)) for _ in range(10)
        ]
    )
    watcher.start()
    runs.execute(sessions, run_id, GeodesicTravelTimes())
    watcher.join()
    assert RunStatus.FAILED not in seen, seen
    assert _run(engine, run_id).status == RunStatus.DONE
    engine.dispose()
