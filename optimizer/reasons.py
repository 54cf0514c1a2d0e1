"""Why a job is not planned or a window not offered: a code with its parameters, as data.

Callers decide on the code (group unplanned jobs in the KPIs, pick the customer's words in
their language) and never on the wording, which may change; `str()` gives the English
sentence for logs, planners and the API. Each layer that has reasons of its own (the booking's
cut-off, a horizon a job does not fit in) declares them the same way, on `Explained`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Explained(StrEnum):
    """A reason's stable code (its value) and the English sentence it stands for, with
    `{placeholders}` filled from a `Why`'s parameters."""

    text: str

    def __new__(cls, code: str, text: str) -> Explained:
        member = str.__new__(cls, code)
        member._value_ = code
        member.text = text
        return member


class Reason(Explained):
    """The engine's reasons."""

    NO_SKILL = "no_skill", "no technician has the skill(s) {skills}"
    NO_TECHNICIAN = "no_technician", "no technician works in this period"
    PIN_CANNOT_TAKE = (
        "pin_cannot_take",
        "pinned to {technician_day}, which cannot take it (skills or absence)",
    )
    LONGER_THAN_SHIFTS = (
        "longer_than_shifts",
        "longer than any shift of a technician with the skills, overtime included",
    )
    NO_SHIFT_IN_WINDOWS = (
        "no_shift_in_windows",
        "no technician with the skills works during any of its allowed windows",
    )
    CREW_OVER_DAYS = (
        "crew_over_days",
        "a two-person job over several days: not planned by the engine yet",
    )
    NO_CONSECUTIVE_DAYS = (
        "no_consecutive_days",
        "no technician with the skills works {days} consecutive days in this horizon from "
        "an allowed start",
    )
    NO_TWO_ON_A_DAY = (
        "no_two_on_a_day",
        "needs two technicians with the skills on one day; no day has two",
    )
    NO_SECOND_TECHNICIAN = "no_second_technician", "no second technician free at the same time"
    PART_NOWHERE = (
        "part_nowhere",
        "missing part is not available at any store or warehouse in the horizon",
    )
    PART_NOT_BEFORE = "part_not_before", "missing part is not available before {available}"
    PART_LATER = "part_later", "the part can be picked up from {available} on"
    PART_NOT_IN_PERIOD = "part_not_in_period", "the part is not available in this period"
    WAITS_FOR = "waits_for", "waits for job {job}, which is not planned yet"
    WAITS_FOR_FIRST = "waits_for_first", "waits for job {job} to be planned first"
    PIN_POSITION = (
        "pin_position",
        "pinned as job {position} of {technician_day}: no plan found with that many jobs "
        "before it that keeps every rule",
    )
    NO_CAPACITY = "no_capacity", "no capacity left in any technician-day that could take it"
    NOT_IN_STORED_PLAN = "not_in_stored_plan", "not in the stored plan"
    # Window offers and bookings.
    TOO_EARLY = "too_early", "too early: it comes after another job of this order"
    TOO_LATE = "too_late", "too late: another job of this order depends on it"
    OUTSIDE_DATES = "outside_dates", "outside the dates this job can be done"
    NO_ROOM_BETWEEN = (
        "no_room_between",
        "its prerequisites and the jobs after it leave no room",
    )
    WINDOW_FULL = "window_full", "no capacity left in this window"
    PERIOD_FULL = "period_full", "no capacity left in this period"
    WINDOW_GONE = "window_gone", "this window is no longer available"
    ALREADY_PLACED = "already_placed", "job {job} is already in the plan"
    NO_WINDOW_GIVEN = "no_window_given", "no window given"


@dataclass(frozen=True)
class Why:
    """A reason and its parameters (hashable: offers collect the distinct ones)."""

    reason: Explained
    params: tuple[tuple[str, str | int], ...] = ()

    @classmethod
    def of(cls, reason: Explained, **params: str | int) -> Why:
        return cls(reason, tuple(sorted(params.items())))

    def __str__(self) -> str:
        return self.reason.text.format(**dict(self.params))

    def param(self, name: str) -> str | int | None:
        return dict(self.params).get(name)
