"""Technician calendar feeds: secret, revocable, rotatable links, stored only as hashes.

A feed link is a bearer secret (anyone with it sees that technician's coming stops), so it is
a 256-bit random token; the database keeps its SHA-256 only, which is enough for a value that
cannot be guessed and means a leaked database does not leak working links.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.plans import Plan, Route, newest_versions
from fieldplan.technicians import Technician

TOKEN_PREFIX = "tfd_"


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed(session: Session, technician: Technician) -> str:
    """A new feed link for the technician; any older link stops working (rotation)."""
    revoke_feeds(session, technician)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(CalendarFeed(technician_id=technician.id, token_hash=_hash(token)))
    session.flush()
    return token


def revoke_feeds(session: Session, technician: Technician) -> int:
    active = session.scalars(
        select(CalendarFeed).where(
            CalendarFeed.technician_id == technician.id, CalendarFeed.revoked_at.is_(None)
        )
    ).all()
    for feed in active:
        feed.revoked_at = utcnow()
    session.flush()
    return len(active)


def technician_for_token(session: Session, token: str) -> Technician | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    feed = session.scalar(
        select(CalendarFeed).where(
            CalendarFeed.token_hash == _hash(token), CalendarFeed.revoked_at.is_(None)
        )
    )
    return session.get(Technician, feed.technician_id) if feed is not None else None


def _feed_days(first_day: date, days: int) -> tuple[ColumnElement[bool], ...]:
    return Plan.day >= first_day, Plan.day < first_day + timedelta(days=days)


def feed_changed_at(
    session: Session, technician: Technician, first_day: date, days: int
) -> datetime | None:
    """The last write into any plan of the feed's days in the technician's region: a route
    that left the feed (its last job cancelled, the technician ill) changed the feed too."""
    changed = func.coalesce(Plan.changed_at, Plan.created_at, type_=UTCDateTime())
    return session.scalar(
        select(func.max(changed)).where(
            Plan.region_id == technician.region_id, *_feed_days(first_day, days)
        )
    )


def upcoming_routes(
    session: Session, technician: Technician, first_day: date, days: int
) -> list[tuple[Plan, Route]]:
    """The technician's route on each of the coming days, from the newest plan of that day."""
    newest = newest_versions(technician.region_id, *_feed_days(first_day, days))
    rows = session.execute(
        select(Plan, Route)
        .join(newest, (Plan.day == newest.c.day) & (Plan.version == newest.c.version))
        .join(Route, Route.plan_id == Plan.id)
        .where(Plan.region_id == technician.region_id, Route.technician_id == technician.id)
        .order_by(Plan.day)
    )
    return [(plan, route) for plan, route in rows]
