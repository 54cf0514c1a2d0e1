"""A database of its own for one benchmark run, on SQLite or PostgreSQL, gone afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url, text

from fieldplan.db import make_engine

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def work_folder(prefix: str) -> Path:
    """A new folder under TMPDIR for a run's files (its SQLite database, its server log)."""
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"fieldplan-{prefix}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


@contextmanager
def scratch_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database: a file in `folder` for SQLite; for PostgreSQL a new
    database on the server of FIELDPLAN_TEST_POSTGRES_URL, dropped when the run ends."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin_url = os.environ.get("FIELDPLAN_TEST_POSTGRES_URL", ADMIN_URL)
    name = f"fieldplan_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
