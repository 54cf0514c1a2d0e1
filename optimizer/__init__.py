"""The planning engine: pure functions from a `Problem` to a `Plan`, built on OR-Tools routing.

No database, no web and no clock: everything, time included, comes in as data.
"""

from optimizer.check import Violation, check
from optimizer.model import (
    Break,
    Job,
    PickupSource,
    Pin,
    Plan,
    Problem,
    Route,
    Search,
    TechnicianDay,
    TimeWindow,
    Unplanned,
    Visit,
    VisitKind,
    Weights,
)
from optimizer.reasons import Explained, Reason, Why
from optimizer.solve import Limits, Progress, solve

__all__ = [
    "Break",
    "Explained",
    "Job",
    "Limits",
    "PickupSource",
    "Pin",
    "Plan",
    "Problem",
    "Progress",
    "Reason",
    "Route",
    "Search",
    "TechnicianDay",
    "TimeWindow",
    "Unplanned",
    "Violation",
    "Visit",
    "VisitKind",
    "Weights",
    "Why",
    "check",
    "solve",
]
