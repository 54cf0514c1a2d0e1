"""What every response carries: the API's outer edge.

A pure ASGI middleware, so it sees every response, errors and static files included. Pages
may not be framed, sniffed into another type, leak their address as a referrer (customer
links and feed tokens live in the path), or run scripts from anywhere. Personal data is never
stored by a cache; a calendar feed may be kept by the calendar app that asked for it only,
and revalidated every time. (Body sizes are limited by FastAPI's own `max_body_size`.)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Pages run no script at all; their only inline styles are the board's bar positions.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI and ReDoc come from the package (never a CDN) and start with an inline script.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
STATIC_PREFIXES = ("/static/", "/static-offline-docs/")
FEED_PREFIXES = ("/feeds/", "/c/invites/")
RECEIVED = "fieldplan.received"  # in a request's scope: when it came in (time.monotonic)


def cache_policy(path: str) -> str:
    if path.startswith(STATIC_PREFIXES):
        return "public, max-age=3600"
    if path.startswith(FEED_PREFIXES) or path.endswith(".ics"):
        # A calendar app keeps its copy and asks again with If-None-Match; nobody between.
        return "private, no-cache"
    return "no-store"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[RECEIVED] = time.monotonic()
        path: str = scope["path"]
        policy = DOCS_POLICY if path.startswith(DOCS_PATHS) else PAGE_POLICY
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", policy.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        cache = (b"cache-control", cache_policy(path).encode())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in extra if h[0] not in present]
                if cache[0] not in present:
                    headers.append(cache)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
