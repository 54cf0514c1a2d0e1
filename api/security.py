"""Who is calling: planners by bearer token (signed session token or API key) or cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Signer:
    """Stateless session tokens: `payload.signature`, HMAC-SHA256 over the payload."""

    key: bytes
    lifetime_s: int

    @classmethod
    def from_setting(cls, secret: str, minutes: int) -> Signer:
        return cls(secret.encode() if secret else secrets.token_bytes(32), minutes * 60)

    def issue(self, account_id: int, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.lifetime_s)
        payload = (
            base64.urlsafe_b64encode(json.dumps({"sub": account_id, "exp": expires}).encode())
            .decode()
            .rstrip("=")
        )
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: float | None = None) -> int | None:
        payload, _, signature = token.partition(".")
        # Bytes, not str: compare_digest refuses str with non-ASCII characters (a TypeError,
        # so a 500) and a token arrives straight from a URL or cookie.
        expected = self._sign(payload).encode()
        if not payload or not hmac.compare_digest(signature.encode(), expected):
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
        key = hmac.new(self.key, purpose.encode(), hashlib.sha256).digest()
        return Signer(key, lifetime_s)

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()
