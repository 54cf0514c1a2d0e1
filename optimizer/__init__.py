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
    TechnicianDay,
    TimeWindow,
    Unplanned,
    Visit,
    VisitKind,
    Weights,
)
from optimizer.solve import Limits, Progress, solve

__all__ = [
    "Break",
    "Job",
    "Limits",
    "PickupSource",
    "Pin",
    "Plan",
    "Problem",
    "Progress",
    "Route",
    "TechnicianDay",
    "TimeWindow",
    "Unplanned",
    "Violation",
    "Visit",
    "VisitKind",
    "Weights",
    "check",
    "solve",
]
