"""Migrations: up, down and up again on both backends, and in step with the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from fieldplan.db import make_engine
from fieldplan.migrate import downgrade, upgrade
from fieldplan.tables import metadata
from tests.conftest import drop_postgres_database, make_postgres_database, require_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    require_postgres()
    engine, name = make_postgres_database()
    yield engine
    engine.dispose()
    drop_postgres_database(name)


def test_upgrade_downgrade_upgrade(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    tables = set(inspect(empty_engine).get_table_names())
    assert set(metadata.tables) <= tables
    downgrade(empty_engine)
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_engine)
    assert set(metadata.tables) <= set(inspect(empty_engine).get_table_names())


def test_migrations_match_the_models(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_planners_from_before_regions_keep_every_region(empty_engine: Engine) -> None:
    """Before 0010 every planner saw every region: upgrading grants them all of them, so
    nobody is locked out; administrators see all regions anyway and are granted none."""
    upgrade(empty_engine, "0009")
    with empty_engine.begin() as connection:
        for code in ("A", "B"):
            connection.execute(
                text(
                    "INSERT INTO regions (code, name, timezone, revision) VALUES (:c, :c, 'UTC', 0)"
                ),
                {"c": code},
            )
        for name, role in (("old-planner", "planner"), ("old-admin", "admin")):
            connection.execute(
                text(
                    "INSERT INTO accounts (username, role, password_hash, active, created_at) "
                    "VALUES (:n, :r, 'x', true, CURRENT_TIMESTAMP)"
                ),
                {"n": name, "r": role},
            )
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        granted = connection.execute(
            text(
                "SELECT accounts.username, regions.code FROM account_regions "
                "JOIN accounts ON accounts.id = account_id JOIN regions ON regions.id = region_id "
                "ORDER BY 1, 2"
            )
        ).all()
    assert [tuple(g) for g in granted] == [("old-planner", "A"), ("old-planner", "B")]


def test_changes_from_before_their_kinds_are_told_apart_by_what_they_hold(
    empty_engine: Engine,
) -> None:
    """0015 gives each appointment change its kind; rows written before it get theirs from
    their windows and, for the at-risk flag, the reason's words (its only mark until then)."""
    from sqlalchemy.orm import Session

    from fieldplan.appointments import AppointmentChange, ChangeKind, flag_at_risk
    from tests.test_booking import MONDAY, at, book, cancel, tiny_region

    upgrade(empty_engine)
    with Session(empty_engine, expire_on_commit=False) as session:
        _, jobs = tiny_region(session, 2)
        kept = book(session, jobs[0], at(MONDAY, 9))
        flag_at_risk(session, kept, actor="planner:test", reason="van broke down")
        cancel(session, book(session, jobs[1], at(MONDAY, 11)), "no longer needed")
        session.commit()
    downgrade(empty_engine, "0014")
    upgrade(empty_engine)
    with Session(empty_engine) as session:
        kinds = sorted(
            (change.appointment_id, change.id, change.kind)
            for change in session.query(AppointmentChange)
        )
    assert [kind for _, _, kind in kinds] == [
        ChangeKind.BOOKED,
        ChangeKind.AT_RISK,
        ChangeKind.BOOKED,
        ChangeKind.CANCELLED,
    ]
