"""Shared fixtures: databases on SQLite always and on PostgreSQL when reachable.

Every test gets a session inside a transaction that is rolled back afterwards, so tests never
see each other's rows. PostgreSQL tests are skipped with a printed reason when no server
answers, except in CI (`CI=true`), where an unreachable server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from hypothesis import settings
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from fieldplan.catalogue import load_catalogue
from fieldplan.db import make_engine
from fieldplan.gazetteer import Gazetteer
from fieldplan.migrate import upgrade
from fieldplan.region_setup import load_region
from fieldplan.regions import Region

# `pytest --hypothesis-profile=long`: the stateful walk (tests/test_plan_walk.py) and the
# other property tests run far more examples than the normal run.
settings.register_profile("long", max_examples=40, stateful_step_count=40, deadline=None)

ROOT = Path(__file__).resolve().parent.parent
# The headless browser fixture for the page tests lives with its helpers.
pytest_plugins = ["tests.browser"]

SAMPLE = ROOT / "sample_data"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TODAY = date(2026, 11, 22)
# The moment the API's clock is pinned to in tests: Monday morning in Amsterdam.
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def postgres_admin_url() -> str:
    return os.environ.get("FIELDPLAN_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    url = make_url(postgres_admin_url())
    try:
        with psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=3,
        ):
            return None
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    message = f"PostgreSQL at {postgres_admin_url()} is not reachable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: a missing database is a failure, not a skip)")
    pytest.skip(message)


def make_postgres_database() -> tuple[Engine, str]:
    admin = make_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"fieldplan_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(postgres_admin_url()).set(database=name)
    return make_engine(url.render_as_string(hide_password=False)), name


def drop_postgres_database(name: str) -> None:
    admin = make_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_directory(SAMPLE)


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A database migrated to head, one per backend and test worker."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "fieldplan.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    require_postgres()
    engine, name = make_postgres_database()
    upgrade(engine)
    yield engine
    engine.dispose()
    drop_postgres_database(name)


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    connection = migrated_engine.connect()
    transaction = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db
    finally:
        db.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def region(session: Session, gazetteer: Gazetteer) -> Region:
    """The bundled catalogue and region (stores, warehouse, technicians), no orders."""
    load_catalogue(session, SAMPLE / "catalogue.json")
    return load_region(session, SAMPLE / "region.json", gazetteer)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def empty_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database of its own on `backend`, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'own-{uuid.uuid4().hex[:8]}.db'}"
        return
    require_postgres()
    engine, name = make_postgres_database()
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    try:
        yield url
    finally:
        drop_postgres_database(name)


def seed_database(url: str, *, orders: int, password: str, plan_days: int = 0) -> str:
    """A migrated database with the sample region, its first `orders` order lines, optionally
    `plan_days` planned from 2026-11-23, and a planner account; returns the planner's API key."""
    import optimizer
    from fieldplan import importing
    from fieldplan.accounts import Role, create_account
    from fieldplan.db import session_factory, unit_of_work
    from fieldplan.optimisation import plan_region
    from fieldplan.travel import GeodesicTravelTimes

    engine = make_engine(url)
    upgrade(engine)
    gazetteer = Gazetteer.from_directory(SAMPLE)
    with unit_of_work(session_factory(engine)) as session:
        load_catalogue(session, SAMPLE / "catalogue.json")
        region = load_region(session, SAMPLE / "region.json", gazetteer)
        rows = importing.read_rows(SAMPLE / "orders.csv")[:orders]
        importing.import_rows(session, rows, region=region, gazetteer=gazetteer, today=TODAY)
        if plan_days:
            plan_region(
                session,
                region,
                date(2026, 11, 23),
                plan_days,
                GeodesicTravelTimes(),
                optimizer.Limits(time_limit_s=0.5),
                today=TODAY,
            )
        _, api_key = create_account(session, "planner", Role.PLANNER, password, [region])
    engine.dispose()
    return api_key


def pin_clock(app: FastAPI, now: datetime = NOW) -> FastAPI:
    """Make the app's clock stand still, so windows and cut-offs do not depend on the date."""
    app.state.now = lambda: now
    return app
