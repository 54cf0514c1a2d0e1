"""The keys that sign planner sessions and customer links, kept in the database.

Links mailed to customers must open after a restart and on every process behind the load
balancer, so without `FIELDPLAN_SECRET_KEY` the first process to start makes a key and
stores it here; every later process reads the same one. `rotate` makes a new current key and
keeps the old ones for verifying only, until the longest-lived link signed with them has
expired (`retire_after`): a rotation never breaks a link a customer already has, and
`drop_retired` ends them at once when a key leaked.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.db import Base, UTCDateTime, utcnow

CURRENT = "current"


class SigningKey(Base):
    __tablename__ = "signing_keys"

    # "current" signs; a rotated key is renamed "retired-<time>" and only verifies.
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def keys(session: Session, *, retire_after: timedelta) -> list[bytes]:
    """The current key first (made when there is none), then the retired keys whose links
    may still be alive."""
    current = session.get(SigningKey, CURRENT)
    if current is None:
        current = _make_current(session)
    cutoff = utcnow() - retire_after
    retired = session.scalars(
        select(SigningKey)
        .where(SigningKey.name != CURRENT, SigningKey.retired_at >= cutoff)
        .order_by(SigningKey.retired_at.desc())
    )
    return [bytes.fromhex(current.secret), *(bytes.fromhex(k.secret) for k in retired)]


def _make_current(session: Session) -> SigningKey:
    """Insert the first key; when another process got there first, read its key instead."""
    try:
        with session.begin_nested():
            session.add(SigningKey(name=CURRENT, secret=secrets.token_hex(32)))
    except IntegrityError:
        pass
    found = session.get(SigningKey, CURRENT, populate_existing=True)
    assert found is not None
    return found


def rotate(session: Session) -> None:
    """A new current key; the old one verifies until its links have expired."""
    current = session.get(SigningKey, CURRENT, with_for_update=True)
    now = utcnow()
    if current is not None:
        session.add(
            SigningKey(
                name=f"retired-{now:%Y%m%dT%H%M%S%f}",
                secret=current.secret,
                created_at=current.created_at,
                retired_at=now,
            )
        )
        current.secret = secrets.token_hex(32)
        current.created_at = now
    else:
        session.add(SigningKey(name=CURRENT, secret=secrets.token_hex(32)))
    session.flush()


def drop_retired(session: Session) -> int:
    """Forget every retired key: links signed with them stop working now."""
    retired = list(session.scalars(select(SigningKey).where(SigningKey.name != CURRENT)))
    for key in retired:
        session.delete(key)
    session.flush()
    return len(retired)
