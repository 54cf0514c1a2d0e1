"""Engine, sessions and the declarative base shared by every table.

Timestamps are stored as naive UTC (SQLite has no time zone type) and handed back aware, so no
code above this module ever sees a naive datetime.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass a timezone-aware value")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Requests queue for the database rather than fail: a writer waits this long for SQLite's
# write lock or PostgreSQL's region row lock before the API answers 503 with Retry-After.
# 120 s, not less, while a booking still rebuilds its problem inside the lock (~0.3-1 s each
# under load): fifty bookings at once on one region then queue for up to a minute on this
# 2-core machine (issue 21's remaining bar is to make that critical section milliseconds).
LOCK_WAIT_S = 120
# Connections per process: each API worker thread holds one for its request.
POOL_SIZE = 10
POOL_OVERFLOW = 30
DEFERRED = "fieldplan_deferred"  # execution option: this transaction reads (first)


def make_engine(url: str, **kwargs: Any) -> Engine:
    # A file database pools its connections like PostgreSQL (SQLAlchemy's default waits only
    # 30 s for one of 15: under fifty bookings at once that came before the lock's wait, as a
    # 503). An in-memory SQLite database keeps its single connection.
    in_memory = url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:")
    if not in_memory:
        kwargs = {
            "pool_size": POOL_SIZE,
            "max_overflow": POOL_OVERFLOW,
            "pool_timeout": LOCK_WAIT_S,
            "pool_pre_ping": True,
            **kwargs,
        }
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling off: `_sqlite_begin` says when one starts (and
    # SAVEPOINTs then work as documented).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_S * 1000}")
    # Readers never wait for the writer, and the writer does not wait for readers.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """A transaction takes the write lock first (BEGIN IMMEDIATE), waiting its turn: one that
    read first and then wrote would fail at once whenever another writer had committed in
    between (SQLite cannot upgrade a stale snapshot). Readers say so (`reading`) and never
    wait."""
    deferred = connection.get_execution_options().get(DEFERRED, False)
    connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def reading(session: Session) -> None:
    """Declare, before anything is read, that this session mostly reads: on SQLite it takes
    no write lock up front, and a write after another writer committed fails (PostgreSQL
    is unaffected)."""
    session.connection(execution_options={DEFERRED: True})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back otherwise."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
