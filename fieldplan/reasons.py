"""The reasons of the planning around the engine, as data: why a job is not in a horizon's
problem, and why a window is not offered or booked. Codes are stable; the words are English
for planners and the API, and the customer's page picks its own by code (`api.i18n`)."""

from __future__ import annotations

from optimizer.reasons import Explained


class PlanningReason(Explained):
    ALREADY_PLANNED = "already_planned", "already planned on {day}"
    TOO_MANY_DAYS = (
        "too_many_days",
        "a {days}-day installation does not fit in a {horizon}-day horizon",
    )
    PROMISE_OUTSIDE = "promise_outside", "its appointment lies outside this horizon"
    PINNED_OUTSIDE = "pinned_outside", "pinned to {day}, outside this horizon"
    WAITS_FOR_PREREQUISITE = (
        "waits_for_prerequisite",
        "waits for job {job} ({kind}), not plannable yet",
    )
    STARTS_AFTER = "starts_after", "cannot start before {day}, after this horizon"
    DUE_BEFORE_DEPENDANT = (
        "due_before_dependant",
        "must be done by {day} for the jobs that wait for it",
    )
    DAYS_DO_NOT_FIT = "days_do_not_fit", "its {days} days do not fit in this horizon"
    # Offering and booking windows.
    JOB_STATUS = "job_status", "the job is {status}"
    NOT_PLANNABLE = "not_plannable", "not plannable yet"
    FREE_WINDOWS_IN_CUTOFF = (
        "free_windows_in_cutoff",
        "the free windows start within {hours} hours",
    )
    WINDOW_IN_CUTOFF = (
        "window_in_cutoff",
        "windows within {hours} hours could not be changed afterwards: please pick a later "
        "one, or ask for a callback",
    )
    CHANGE_IN_CUTOFF = (
        "change_in_cutoff",
        "changes less than {hours} hours before the appointment go through the service desk: "
        "please ask for a callback",
    )
    BEFORE_FIRST_DAY = "before_first_day", "windows can be booked from the next working day on"
    TOO_FAR_AHEAD = "too_far_ahead", "windows can be booked up to {days} days ahead"
    NOT_A_WORKING_DAY = "not_a_working_day", "this window is not a working day"
