"""Imports every mapped module so `Base.metadata` is complete (for Alembic and tests)."""

from fieldplan import (
    accounts,
    appointments,
    booking,
    callbacks,
    catalogue,
    customers,
    durations,
    feeds,
    jobs,
    live_plans,
    locations,
    notices,
    orders,
    plans,
    regions,
    runs,
    signing_keys,
    technicians,
    timeline,
    webhooks,
)
from fieldplan.db import Base

metadata = Base.metadata

__all__ = [
    "accounts",
    "appointments",
    "booking",
    "callbacks",
    "catalogue",
    "customers",
    "durations",
    "feeds",
    "jobs",
    "live_plans",
    "locations",
    "metadata",
    "notices",
    "orders",
    "plans",
    "regions",
    "runs",
    "signing_keys",
    "technicians",
    "timeline",
    "webhooks",
]
