"""Technician feeds: the coming days' stops as a subscribable calendar.

Every stop keeps a UID derived from what it is (this job, this pickup, this lunch, this day), so
a replan moves the event instead of duplicating it, and a stop that left the plan is simply no
longer in the feed: at the next refresh it disappears from the phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from icalendar.enums import TRANSP

from calendars.invites import TEXTS as INVITE_TEXTS
from calendars.invites import ServiceDesk, new_calendar
from calendars.timezones import vtimezone
from fieldplan.catalogue import JobKind, Part
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.plans import Plan, Route, Stop, StopKind
from fieldplan.technicians import Technician

REFRESH = "PT15M"  # phones poll every 15 minutes; with ETags an unchanged feed costs a 304


@dataclass(frozen=True)
class FeedContext:
    """What the stops refer to, looked up once for the whole feed."""

    jobs: dict[int, Job]
    locations: dict[int, Location]
    parts: dict[str, Part]
    order_numbers: dict[int, str]
    # The promised window of each job that has one, and the desk of each order's store
    # (the ORGANIZER of its events: whom the technician and the customer call).
    promises: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    desks: dict[int, ServiceDesk] = field(default_factory=dict)


# What the technician reads, in the crew's language. Times are minutes: a technician plans
# with 08:55, not 08:55:31.
TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "customer": "Klant: {name}, tel. {phone}",
        "address": "Adres: {address}",
        "window": "Beloofd: tussen {start} en {end}",
        "work": "Werk: {description} ({minutes} min)",
        "skills": "Vaardigheden: {skills}",
        "bring": "Meenemen: {parts}",
        "none": "geen",
        "on_the_way": " (onderweg ophalen)",
        "order": "Order: {number}",
        "crew": "Tweemansklus: begin samen met je collega.",
        "notes": "Let op: {notes}",
        "pickup": "Ophalen: {what} bij {site}",
        "pickup_for": "Ophalen: {what} bij {site} ({opening}), voor {customer}. Tel. {phone}.",
        "opening": "open {opens}-{closes}",
        "closed": "vandaag gesloten",
        "parts": "onderdelen",
        "lunch": "Lunchpauze",
    },
    "en": {
        "customer": "Customer: {name}, phone {phone}",
        "address": "Address: {address}",
        "window": "Promised: between {start} and {end}",
        "work": "Work: {description} ({minutes} min)",
        "skills": "Skills: {skills}",
        "bring": "Bring: {parts}",
        "none": "none",
        "on_the_way": " (pick up on the way)",
        "order": "Order: {number}",
        "crew": "Two-person job: start together with your colleague.",
        "notes": "Note: {notes}",
        "pickup": "Pick up {what} at {site}",
        "pickup_for": "Pick up {what} at {site} ({opening}), for {customer}. Phone {phone}.",
        "opening": "open {opens}-{closes}",
        "closed": "closed today",
        "parts": "parts",
        "lunch": "Lunch break",
    },
}


def navigation_url(latitude: float, longitude: float) -> str:
    return f"https://www.openstreetmap.org/directions?to={quote(f'{latitude},{longitude}')}"


def _opening(location: Location, day: datetime, texts: dict[str, str]) -> str:
    hours = next((h for h in location.opening_hours if h.weekday == day.weekday()), None)
    if hours is None:
        return texts["closed"]
    return texts["opening"].format(opens=f"{hours.opens:%H:%M}", closes=f"{hours.closes:%H:%M}")


def _minute(moment: datetime, *, up: bool = False) -> datetime:
    """On the minute: down for a start, up for an end, so the event covers the work."""
    floor = moment.replace(second=0, microsecond=0)
    return floor + timedelta(minutes=1) if up and floor != moment else floor


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
    language: str,
    domain: str,
) -> list[Event]:
    # A day whose every job went (cancelled, moved) has nothing left worth a lunch break.
    if not any(stop.kind == StopKind.JOB for stop in route.stops):
        return []
    return [
        _stop_event(technician, plan, stop, context, zone, language, domain) for stop in route.stops
    ]


def technician_feed(
    technician: Technician,
    routes: Sequence[tuple[Plan, Route]],
    context: FeedContext,
    *,
    timezone: str = "Europe/Amsterdam",
    language: str = "nl",
    domain: str = "fieldplan.local",
) -> Calendar:
    calendar = _feed_calendar(f"fieldplan · {technician.name}", timezone)
    zone = ZoneInfo(timezone)
    for plan, route in routes:
        for event in _route_events(technician, plan, route, context, zone, language, domain):
            calendar.add_component(event)
    return calendar


def plan_day_feed(
    plan: Plan,
    routes: Sequence[tuple[Technician, Route]],
    context: FeedContext,
    *,
    timezone: str = "Europe/Amsterdam",
    language: str = "nl",
    domain: str = "fieldplan.local",
) -> Calendar:
    """A planner's view of one day: every technician's stops, each titled with who does it."""
    calendar = _feed_calendar(f"fieldplan · plan {plan.day.isoformat()} v{plan.version}", timezone)
    zone = ZoneInfo(timezone)
    for technician, route in routes:
        for event in _route_events(technician, plan, route, context, zone, language, domain):
            event["summary"] = f"{technician.code} {technician.name}: {event['summary']}"
            calendar.add_component(event)
    return calendar


def _stop_event(
    technician: Technician,
    plan: Plan,
    stop: Stop,
    context: FeedContext,
    zone: ZoneInfo,
    language: str,
    domain: str,
) -> Event:
    """One stop as the technician needs it: from the start of the work (not the arrival,
    which may be long before a window opens) to its end, on the minute."""
    texts = TEXTS.get(language, TEXTS["nl"])
    start = _minute((stop.start or stop.arrival).astimezone(zone))
    end = max(_minute(stop.departure.astimezone(zone), up=True), start)
    day = plan.day.isoformat()
    job = context.jobs.get(stop.job_id) if stop.job_id is not None else None
    if stop.kind == StopKind.JOB and job is not None:
        uid = f"job-{job.id}-{technician.code}-{day}@{domain}"
    elif stop.kind == StopKind.PICKUP:
        uid = f"pickup-{stop.job_id}-{technician.code}-{day}@{domain}"
    else:
        uid = f"break-{technician.code}-{day}@{domain}"
    event = Event.new(
        uid=uid,
        start=start,
        end=end,
        stamp=plan.created_at,
        sequence=plan.version,
        transparency=TRANSP.TRANSPARENT if stop.kind == StopKind.BREAK else TRANSP.OPAQUE,
    )
    if stop.kind == StopKind.JOB and job is not None:
        _describe_job(event, job, context, zone, language, texts)
    elif stop.kind == StopKind.PICKUP and stop.location_id is not None:
        site = context.locations[stop.location_id]
        missing = job.missing_parts if job is not None else []
        what = ", ".join(f"{p.quantity}x {context.parts[p.part_sku].name}" for p in missing) or (
            stop.part_sku or texts["parts"]
        )
        event.add("summary", texts["pickup"].format(what=what, site=site.name))
        event.add("location", f"{site.name}, {site.street}, {site.postcode} {site.city}")
        event.add("geo", (site.latitude, site.longitude))
        event.add("url", navigation_url(site.latitude, site.longitude))
        customer = job.customer.name if job is not None else ""
        event.add(
            "description",
            texts["pickup_for"].format(
                what=what,
                site=site.name,
                opening=_opening(site, start, texts),
                customer=customer,
                phone=site.phone,
            ),
        )
    else:
        event.add("summary", texts["lunch"])
    return event


def _describe_job(
    event: Event,
    job: Job,
    context: FeedContext,
    zone: ZoneInfo,
    language: str,
    texts: dict[str, str],
) -> None:
    customer = job.customer
    kinds = INVITE_TEXTS.get(language, INVITE_TEXTS["nl"])
    title = kinds[JobKind(job.kind)][0]
    event.add("summary", f"{title}: {customer.name}, {customer.city}")
    event.add("location", customer.address)
    event.add("geo", (customer.latitude, customer.longitude))
    event.add("url", navigation_url(customer.latitude, customer.longitude))
    bring = [
        f"{p.quantity}x {context.parts[p.part_sku].name}"
        + (texts["on_the_way"] if p.missing else "")
        for p in job.parts
    ]
    lines = [texts["customer"].format(name=customer.name, phone=customer.phone)]
    lines.append(texts["address"].format(address=customer.address))
    promise = context.promises.get(job.id)
    if promise is not None:
        opens, closes = (moment.astimezone(zone) for moment in promise)
        lines.append(texts["window"].format(start=f"{opens:%H:%M}", end=f"{closes:%H:%M}"))
    lines += [
        texts["work"].format(description=job.description, minutes=job.duration_min),
        texts["skills"].format(skills=", ".join(job.skills) or texts["none"]),
        texts["bring"].format(parts="; ".join(bring) or texts["none"]),
        texts["order"].format(number=context.order_numbers.get(job.order_id, "")),
    ]
    if job.crew_size > 1:
        lines.append(texts["crew"])
    if customer.notes:
        lines.append(texts["notes"].format(notes=customer.notes))
    event.add("description", "\n".join(lines))
    desk = context.desks.get(job.order_id)
    if desk is not None:
        event.add("organizer", desk.organizer())
