"""A region is the unit a planner plans: its own technicians, stores and time zone."""

from __future__ import annotations

import threading

from sqlalchemy import Integer, String, event, text, update
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from fieldplan.db import LOCK_WAIT_S, Base


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    # Bumped by every booking and every saved re-plan: a long optimisation that started from
    # an older revision must not overwrite what was booked meanwhile.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


def lock_region(session: Session, region_id: int) -> int:
    """Serialise the region's plan changes and return its new revision. The UPDATE takes
    PostgreSQL's row lock and SQLite's write lock before anything is read, so the next writer
    waits and then reads what this one wrote, at most `LOCK_WAIT_S` (then the database
    refuses and the API answers 503 with Retry-After)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"))
    revision = session.scalar(
        update(Region)
        .where(Region.id == region_id)
        .values(revision=Region.revision + 1)
        .returning(Region.revision)
    )
    if revision is None:
        raise LookupError(f"no region {region_id}")
    locked = session.info.setdefault(_LOCKED, {})
    if not locked:
        with _holders:
            _holders.count += 1
    if region_id in locked:
        session.info.setdefault(_RELOCKED, set()).add(region_id)
    locked[region_id] = int(revision)
    return int(revision)


class _Holders(threading.Condition):
    """How many transactions of this process hold a region's lock (see `while_unlocked`)."""

    count = 0


_holders = _Holders()


def while_unlocked(wait_s: float) -> None:
    """Wait (at most `wait_s`) until no transaction of this process holds a region's lock.
    Work that may wait, such as working out windows, goes after the one that holds the lock:
    the process's threads share one interpreter, and every booking of the region waits for
    the holder's commit."""
    with _holders:
        _holders.wait_for(lambda: _holders.count == 0, timeout=wait_s)


_LOCKED = "fieldplan.locked_regions"
_RELOCKED = "fieldplan.relocked_regions"


def locked_revision(session: Session, region_id: int) -> int | None:
    """The revision this session's transaction moved the region to (None: it holds no lock
    on it). Forgotten when the transaction ends, as the lock is."""
    found = session.info.get(_LOCKED, {}).get(region_id)
    return int(found) if found is not None else None


def locked_again(session: Session, region_id: int) -> bool:
    """Whether this transaction locked the region more than once: what it read after the
    second lock includes what it wrote after the first, which no committed revision holds."""
    return region_id in session.info.get(_RELOCKED, ())


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    """Committed, rolled back or closed with the session: the lock is gone either way."""
    if transaction.parent is not None:
        return  # a savepoint, or a subtransaction of the one that holds the lock
    session.info.pop(_RELOCKED, None)
    if session.info.pop(_LOCKED, None):
        with _holders:
            _holders.count -= 1
            _holders.notify_all()
