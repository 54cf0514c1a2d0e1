"""Technician feeds: the coming days' stops as a subscribable calendar.

Every stop keeps a UID derived from what it is (this job, this pickup, this lunch, this day), so
a replan moves the event instead of duplicating it, and a stop that left the plan is simply no
longer in the feed: at the next refresh it disappears from the phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from icalendar.enums import TRANSP

from calendars.invites import new_calendar
from calendars.timezones import vtimezone
from fieldplan.catalogue import Part
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.plans import Plan, Route, StopKind
from fieldplan.technicians import Technician

REFRESH = "PT15M"  # phones poll every 15 minutes; with ETags an unchanged feed costs a 304


@dataclass(frozen=True)
class FeedContext:
    """What the stops refer to, looked up once for the whole feed."""

    jobs: dict[int, Job]
    locations: dict[int, Location]
    parts: dict[str, Part]
    order_numbers: dict[int, str]


def navigation_url(latitude: float, longitude: float) -> str:
    return f"https://www.openstreetmap.org/directions?to={quote(f'{latitude},{longitude}')}"


def _opening(location: Location, day: datetime) -> str:
    hours = next((h for h in location.opening_hours if h.weekday == day.weekday()), None)
    return f"opens {hours.opens:%H:%M}, closes {hours.closes:%H:%M}" if hours else "closed today"


def _feed_calendar(name: str, timezone: str) -> Calendar:
    calendar = new_calendar(method="PUBLISH")
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", timezone)
    calendar.add("color", "steelblue")
    calendar.add("x-apple-calendar-color", "#4682B4")
    calendar.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH)
    calendar.add_component(vtimezone(timezone))
    return calendar


def _route_events(
    technician: Technician,
    plan: Plan,
    route: Route,
    context: FeedContext,
    zone: ZoneInfo,
    domain: str,
) -> list[Event]:
    return [
        _stop_event(
            technician,
            plan,
            stop.kind,
            stop.job_id,
            stop.location_id,
            stop.part_sku,
            stop.arrival,
            stop.departure,
            context,
            zone,
            domain,
        )
        for stop in route.stops
    ]


def technician_feed(
    technician: Technician,
    routes: Sequence[tuple[Plan, Route]],
    context: FeedContext,
    *,
    timezone: str = "Europe/Amsterdam",
    domain: str = "fieldplan.local",
) -> Calendar:
    calendar = _feed_calendar(f"fieldplan · {technician.name}", timezone)
    for plan, route in routes:
        for event in _route_events(technician, plan, route, context, ZoneInfo(timezone), domain):
            calendar.add_component(event)
    return calendar


def plan_day_feed(
    plan: Plan,
    routes: Sequence[tuple[Technician, Route]],
    context: FeedContext,
    *,
    timezone: str = "Europe/Amsterdam",
    domain: str = "fieldplan.local",
) -> Calendar:
    """A planner's view of one day: every technician's stops, each titled with who does it."""
    calendar = _feed_calendar(f"fieldplan · plan {plan.day.isoformat()} v{plan.version}", timezone)
    for technician, route in routes:
        for event in _route_events(technician, plan, route, context, ZoneInfo(timezone), domain):
            event["summary"] = f"{technician.code} {technician.name}: {event['summary']}"
            calendar.add_component(event)
    return calendar


def _stop_event(
    technician: Technician,
    plan: Plan,
    kind: str,
    job_id: int | None,
    location_id: int | None,
    part_sku: str | None,
    arrival: datetime,
    departure: datetime,
    context: FeedContext,
    zone: ZoneInfo,
    domain: str,
) -> Event:
    start, end = arrival.astimezone(zone), departure.astimezone(zone)
    day = plan.day.isoformat()
    job = context.jobs.get(job_id) if job_id is not None else None
    if kind == StopKind.JOB and job is not None:
        uid = f"job-{job.id}-{technician.code}-{day}@{domain}"
    elif kind == StopKind.PICKUP:
        uid = f"pickup-{job_id}-{technician.code}-{day}@{domain}"
    else:
        uid = f"break-{technician.code}-{day}@{domain}"
    event = Event.new(
        uid=uid,
        start=start,
        end=end,
        stamp=plan.created_at,
        sequence=plan.version,
        transparency=TRANSP.OPAQUE if kind != StopKind.BREAK else TRANSP.TRANSPARENT,
    )
    if kind == StopKind.JOB and job is not None:
        customer = job.customer
        event.add("summary", f"{job.kind.capitalize()}: {customer.name}, {customer.city}")
        event.add("location", customer.address)
        event.add("geo", (customer.latitude, customer.longitude))
        event.add("url", navigation_url(customer.latitude, customer.longitude))
        bring = [
            f"{p.quantity}x {context.parts[p.part_sku].name}"
            + (" (pick up on the way)" if p.missing else "")
            for p in job.parts
        ]
        lines = [
            f"Customer: {customer.name}, phone {customer.phone}",
            f"Address: {customer.address}",
            f"Work: {job.description} ({job.duration_min} min)",
            f"Skills: {', '.join(job.skills) or 'none'}",
            f"Parts: {'; '.join(bring) or 'none'}",
            f"Order: {context.order_numbers.get(job.order_id, '')}",
        ]
        if job.crew_size > 1:
            lines.append("Two-person job: start together with your colleague.")
        if customer.notes:
            lines.append(f"Notes: {customer.notes}")
        event.add("description", "\n".join(lines))
    elif kind == StopKind.PICKUP and location_id is not None:
        site = context.locations[location_id]
        part = job.missing_parts if job is not None else []
        what = ", ".join(f"{p.quantity}x {context.parts[p.part_sku].name}" for p in part) or (
            part_sku or "parts"
        )
        event.add("summary", f"Pick up {what} at {site.name}")
        event.add("location", f"{site.name}, {site.street}, {site.postcode} {site.city}")
        event.add("geo", (site.latitude, site.longitude))
        event.add("url", navigation_url(site.latitude, site.longitude))
        event.add(
            "description",
            f"Pick up {what} at {site.name} ({_opening(site, start)}), "
            f"for job {job_id}. Phone {site.phone}.",
        )
    else:
        event.add("summary", "Lunch break")
    return event
