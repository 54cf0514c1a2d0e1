"""The `fieldplan` command end to end on a fresh SQLite file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fieldplan.cli import app
from fieldplan.db import make_engine, session_factory
from fieldplan.jobs import Job, JobStatus
from fieldplan.orders import Order
from fieldplan.plans import Plan
from fieldplan.settings import get_settings
from tests.conftest import SAMPLE

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIELDPLAN_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def count(url: str, model: type) -> int:
    with session_factory(make_engine(url))() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def first_orders(tmp_path: Path, n: int, edit: dict[int, dict[str, str]] | None = None) -> Path:
    with (SAMPLE / "orders.csv").open() as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(n), reader, strict=False)]
        fields = reader.fieldnames or []
    for index, change in (edit or {}).items():
        rows[index].update(change)
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_init_import_plan(database: str, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    orders = first_orders(tmp_path, 40)
    result = runner.invoke(app, ["import", str(orders)])
    assert result.exit_code == 0, result.output
    imported = count(database, Order)
    assert imported > 30
    again = runner.invoke(app, ["import", str(orders)])
    assert "0 order(s) imported" in again.output
    assert count(database, Order) == imported
    result = runner.invoke(
        app, ["plan", "--from", "2026-11-23", "--days", "2", "--time-limit", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "2026-11-24" in result.output
    assert count(database, Plan) == 2
    with session_factory(make_engine(database))() as session:
        planned = session.scalar(
            select(func.count()).select_from(Job).where(Job.status == JobStatus.PLANNED)
        )
    assert planned
    assert planned > 0


def test_a_bad_file_imports_nothing_and_names_row_and_field(database: str, tmp_path: Path) -> None:
    runner.invoke(app, ["init"])
    orders = first_orders(tmp_path, 10, {3: {"quantity": "-2"}, 6: {"postcode": "0000 XX"}})
    result = runner.invoke(app, ["import", str(orders)], terminal_width=200)
    assert result.exit_code == 1
    assert "line 5" in result.output
    assert "quantity" in result.output
    assert "line 8" in result.output
    assert "postcode" in result.output
    assert count(database, Order) == 0


def test_skip_invalid_writes_the_rejected_rows(database: str, tmp_path: Path) -> None:
    runner.invoke(app, ["init"])
    orders = first_orders(tmp_path, 10, {3: {"sku": "NOPE"}})
    rejected = tmp_path / "rejected.csv"
    result = runner.invoke(
        app, ["import", str(orders), "--skip-invalid", "--rejected", str(rejected)]
    )
    assert result.exit_code == 0, result.output
    assert rejected.exists()
    assert "unknown product" in rejected.read_text()
    assert 0 < count(database, Order) < 10


def test_import_before_init_says_what_to_do(database: str, tmp_path: Path) -> None:
    from fieldplan.db import make_engine as engine_for
    from fieldplan.migrate import upgrade

    upgrade(engine_for(database))
    result = runner.invoke(app, ["import", str(first_orders(tmp_path, 2))])
    assert result.exit_code == 2
    assert "fieldplan init" in result.output


def test_the_sample_command_makes_a_bigger_region(database: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["sample", "--out", str(tmp_path / "big"), "--technicians", "40", "--orders", "900"]
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "big" / "orders.csv").read_text().splitlines()
    assert len({line.split(",")[0] for line in lines[1:]}) == 900


def test_demo_sets_up_the_sample_region_plans_and_prints_where_to_look(
    database: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["demo", "--no-serve", "--days", "1", "--time-limit", "1"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "planner board : http://127.0.0.1:8000/board" in result.output
    assert "sign in as    : planner / " in result.output
    assert count(database, Order) == 400
    assert count(database, Plan) == 1
    again = runner.invoke(
        app, ["demo", "--no-serve", "--days", "1", "--time-limit", "1"], terminal_width=200
    )
    assert again.exit_code == 0, again.output
    assert count(database, Order) == 400  # a second demo reuses what is there
    assert count(database, Plan) == 2  # and plans again: a new version of the day


def test_accounts_are_made_and_granted_regions(database: str) -> None:
    from fieldplan.accounts import Account, by_api_key

    assert runner.invoke(app, ["init"]).exit_code == 0
    made = runner.invoke(app, ["account", "create", "anna", "--region", "UTR"])
    assert made.exit_code == 0, made.output
    api_key = made.output.split("API key ")[1].split()[0]
    with session_factory(make_engine(database))() as session:
        anna = by_api_key(session, api_key)
        assert anna is not None
        assert [r.code for r in anna.regions] == ["UTR"]
    twin = runner.invoke(app, ["account", "create", "anna"])
    assert twin.exit_code == 2
    assert "exists already" in twin.output
    unknown = runner.invoke(app, ["account", "grant", "anna", "--region", "NOWHERE"])
    assert unknown.exit_code == 2
    assert "No region NOWHERE" in unknown.output
    assert runner.invoke(app, ["account", "create", "root", "--role", "admin"]).exit_code == 0
    with session_factory(make_engine(database))() as session:
        root = session.scalars(select(Account).where(Account.username == "root")).one()
        assert root.scope.everything
        assert root.regions == []
