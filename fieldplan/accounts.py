"""Planner accounts and API keys.

Passwords are hashed with scrypt (memory-hard, in the standard library); API keys are random
256-bit tokens, so a fast SHA-256 of the key is enough to store them without the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.db import Base, UTCDateTime, utcnow

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class Role(StrEnum):
    PLANNER = "planner"
    ADMIN = "admin"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[Role] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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
    session: Session, username: str, role: Role, password: str
) -> tuple[Account, str]:
    """A new account with its password; returns it with a fresh API key (shown only once)."""
    api_key = "fpk_" + secrets.token_urlsafe(32)
    account = Account(
        username=username,
        role=role,
        password_hash=hash_password(password),
        api_key_hash=key_hash(api_key),
        active=True,
    )
    session.add(account)
    session.flush()
    return account, api_key


def by_api_key(session: Session, api_key: str) -> Account | None:
    account = session.scalar(select(Account).where(Account.api_key_hash == key_hash(api_key)))
    return account if account is not None and account.active else None


def authenticate(session: Session, username: str, password: str) -> Account | None:
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None or not account.active:
        hash_password(password)  # same work either way: no timing hint that the name exists
        return None
    return account if verify_password(password, account.password_hash) else None
