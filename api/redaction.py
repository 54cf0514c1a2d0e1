"""Secrets never reach a log: tokens in paths and queries are cut from every log line.

Calendar apps need the feed token in the URL itself (`/feeds/technicians/tfd_….ics`), and a
customer's link carries its token in the path (`/o/…`, `/c/invites/….ics`); the access log
would otherwise hold every one of them whole, so that anyone reading logs could read a
technician's day or change a customer's appointment. The filter rewrites the record before
any handler formats it, whatever the handler or format.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[token]"
# The path segment after a prefix that carries a token (signed tokens hold a '.'), up to the
# next '/', '?', the end, or the '.ics' a calendar app needs to see.
_IN_PATH = re.compile(r"(/(?:feeds/technicians|c/invites|o)/)[^/?\s\"]+?(?=\.ics|[/?\s\"]|$)")
_IN_QUERY = re.compile(r"([?&](?:token|key|access_token|api_key)=)[^&\s\"]+", re.IGNORECASE)
_BEARER = re.compile(r"((?:Bearer|fpk_|tfd_)\s*)[A-Za-z0-9_\-.=]{8,}")


def redact(text: str) -> str:
    text = _IN_PATH.sub(rf"\1{REDACTED}", text)
    text = _IN_QUERY.sub(rf"\1{REDACTED}", text)
    return _BEARER.sub(rf"\1{REDACTED}", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


_FILTER = RedactTokens()
LOGGERS = ("uvicorn.access", "uvicorn.error")  # where uvicorn writes request lines


def install() -> None:
    """Put the filter on every logger that may carry a request's path (idempotent)."""
    for name in LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)
