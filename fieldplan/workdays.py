"""Working-day arithmetic for lead times ("delivery 10 working days after measuring")."""

from __future__ import annotations

from datetime import date, timedelta


def add_working_days(day: date, count: int) -> date:
    """The working day `count` working days after `day` (Saturdays and Sundays skipped)."""
    result = day
    while count > 0:
        result += timedelta(days=1)
        if result.weekday() < 5:
            count -= 1
    return next_working_day(result)


def working_days_before(day: date, count: int) -> date:
    """The working day `count` working days before `day` (Saturdays and Sundays skipped)."""
    result = day
    while count > 0:
        result -= timedelta(days=1)
        if result.weekday() < 5:
            count -= 1
    while result.weekday() >= 5:
        result -= timedelta(days=1)
    return result


def next_working_day(day: date) -> date:
    """`day` itself when it is a working day, else the Monday after."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def working_days_between(first: date, last: date) -> list[date]:
    days = []
    day = first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days
