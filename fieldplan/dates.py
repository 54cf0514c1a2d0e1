"""Days in the words of the reader (customers, crews, planners), from the CLDR via Babel.

One place for it, so the customer page, the board, the invites and the feeds name a day the
same way: "wo 2 dec" where space is short, "woensdag 2 december" in a sentence.
"""

from __future__ import annotations

from datetime import date

from babel.dates import format_date

LANGUAGES = ("nl", "en")


def _locale(language: str) -> str:
    return language if language in LANGUAGES else "nl"


def short_day(day: date, language: str) -> str:
    return str(format_date(day, "EEE d MMM", locale=_locale(language)))


def long_day(day: date, language: str) -> str:
    return str(format_date(day, "EEEE d MMMM", locale=_locale(language)))
