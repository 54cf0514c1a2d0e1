"""Who is calling: planners by bearer token (signed session token or API key) or cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class KeyRing:
    """Where the signing keys come from: read once per process, on first use (so importing
    the application needs no database). The first key signs, every key verifies."""

    def __init__(self, load: Callable[[], list[bytes]]) -> None:
        self._load = load
        self._keys: list[bytes] | None = None
        self._lock = threading.Lock()

    @classmethod
    def fixed(cls, secret: bytes) -> KeyRing:
        return cls(lambda: [secret])

    def current(self) -> list[bytes]:
        with self._lock:
            if self._keys is None:
                self._keys = self._load()
            return self._keys


@dataclass(frozen=True)
class Signer:
    """Stateless tokens: `payload.signature`, HMAC-SHA256 over the payload, with a key derived
    for each purpose so a customer link is useless as a planner session and vice versa."""

    ring: KeyRing
    lifetime_s: int
    purposes: tuple[str, ...] = ()

    def _keys(self) -> list[bytes]:
        found = []
        for key in self.ring.current():
            for purpose in self.purposes:
                key = hmac.new(key, purpose.encode(), hashlib.sha256).digest()
            found.append(key)
        return found

    def issue(self, account_id: int, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.lifetime_s)
        payload = (
            base64.urlsafe_b64encode(json.dumps({"sub": account_id, "exp": expires}).encode())
            .decode()
            .rstrip("=")
        )
        return f"{payload}.{self._sign(payload, self._keys()[0])}"

    def verify(self, token: str, now: float | None = None) -> int | None:
        payload, _, signature = token.partition(".")
        # Bytes, not str: compare_digest refuses str with non-ASCII characters (a TypeError,
        # so a 500) and a token arrives straight from a URL or cookie.
        given = signature.encode()
        if not payload or not any(
            hmac.compare_digest(given, self._sign(payload, key).encode()) for key in self._keys()
        ):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sub"), int):
            return None
        if data.get("exp", 0) < (now if now is not None else time.time()):
            return None
        return int(data["sub"])

    def derive(self, purpose: str, lifetime_s: int) -> Signer:
        """A signer for another purpose: its tokens are useless for this one and vice versa."""
        return Signer(self.ring, lifetime_s, (*self.purposes, purpose))

    @staticmethod
    def _sign(payload: str, key: bytes) -> str:
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
