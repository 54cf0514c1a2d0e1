"""Planner accounts, the regions they plan, and API keys.

A planner sees and changes only the regions granted to the account (anything of another
region does not exist for them); an admin manages accounts and sees every region. Passwords are
hashed with scrypt (memory-hard, in the standard library); API keys are random 256-bit tokens,
so a fast SHA-256 of the key is enough to store them without the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    ForeignKey,
    Integer,
    SQLColumnExpression,
    String,
    Table,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.sql import false, true

from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.regions import Region

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class Role(StrEnum):
    PLANNER = "planner"
    ADMIN = "admin"


account_regions = Table(
    "account_regions",
    Base.metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("region_id", ForeignKey("regions.id", ondelete="CASCADE"), primary_key=True),
)


@dataclass(frozen=True)
class Scope:
    """The regions an account may see and change: every one for an admin."""

    everything: bool
    region_ids: frozenset[int]

    def allows(self, region_id: int) -> bool:
        return self.everything or region_id in self.region_ids

    def where(self, region_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
        """A condition on a query's region column that keeps only rows in scope."""
        if self.everything:
            return true()
        if not self.region_ids:
            return false()
        return region_id.in_(sorted(self.region_ids))


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[Role] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    regions: Mapped[list[Region]] = relationship(
        secondary=account_regions, lazy="selectin", order_by=Region.id
    )

    @property
    def scope(self) -> Scope:
        return Scope(self.role == Role.ADMIN, frozenset(r.id for r in self.regions))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    scheme, salt_hex, digest_hex = stored.split("$")
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_account(
    session: Session,
    username: str,
    role: Role,
    password: str,
    regions: Iterable[Region] = (),
) -> tuple[Account, str]:
    """A new account with its password and the regions it plans; returns it with a fresh API
    key (shown only once)."""
    api_key = "fpk_" + secrets.token_urlsafe(32)
    account = Account(
        username=username,
        role=role,
        password_hash=hash_password(password),
        api_key_hash=key_hash(api_key),
        active=True,
        regions=list(regions),
    )
    session.add(account)
    session.flush()
    return account, api_key


def grant(account: Account, regions: Iterable[Region]) -> None:
    """Let the account plan exactly these regions (an admin sees all of them regardless)."""
    account.regions = sorted(set(regions), key=lambda r: r.id)


def by_api_key(session: Session, api_key: str) -> Account | None:
    account = session.scalar(select(Account).where(Account.api_key_hash == key_hash(api_key)))
    return account if account is not None and account.active else None


def authenticate(session: Session, username: str, password: str) -> Account | None:
    if "\x00" in username:  # no account's name holds one; PostgreSQL refuses it even in WHERE
        account = None
    else:
        account = session.scalar(select(Account).where(Account.username == username))
    if account is None or not account.active:
        hash_password(password)  # same work either way: no timing hint that the name exists
        return None
    return account if verify_password(password, account.password_hash) else None


# Sign-in throttling: a few mistakes are free, then each further attempt on that username
# waits twice as long as the one before, up to a quarter of an hour; a success (or a day
# without failures) starts afresh. Kept in the database, so every API process agrees.
FREE_FAILURES = 5
FIRST_WAIT_S = 30
LONGEST_WAIT_S = 15 * 60
FORGET_AFTER = timedelta(days=1)


class SignInFailures(Base):
    """Failed sign-ins in a row for one username (whether or not such an account exists, so
    the answer tells nobody which names are real)."""

    __tablename__ = "sign_in_failures"

    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SignInThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def wait_after(failures: int) -> int:
    """Seconds the next attempt waits after `failures` failed sign-ins in a row."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES)))


def sign_in(session: Session, username: str, password: str, *, now: datetime) -> Account | None:
    """`authenticate`, throttled per username: raises `SignInThrottled` while the last
    failures still make the caller wait (the password is not even tried then). The caller
    must commit a failed attempt too, so it counts."""
    # Throttled under the name as a database can store it (no NUL, at most 80 characters):
    # a name with a NUL is no account's, and still counts as a failure of its own.
    name = username.replace("\x00", "\N{REPLACEMENT CHARACTER}")[:80]
    record = session.get(SignInFailures, name)
    if record is not None and now - record.last_failure_at > FORGET_AFTER:
        record.failures = 0
    if record is not None:
        until = record.last_failure_at + timedelta(seconds=wait_after(record.failures))
        if now < until:
            raise SignInThrottled(math.ceil((until - now).total_seconds()))
    account = authenticate(session, username, password)
    if account is not None:
        if record is not None:
            session.delete(record)
        return account
    if record is None:
        record = SignInFailures(username=name, failures=0, last_failure_at=now)
        session.add(record)
    record.failures += 1
    record.last_failure_at = now
    session.flush()
    return None
