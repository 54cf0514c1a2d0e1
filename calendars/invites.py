"""Customer invites: one iCalendar object per appointment, updated in place on every change.

The UID never changes, SEQUENCE is the appointment's version (it grows with every change), a
reschedule is a new REQUEST and a cancellation a CANCEL with the same UID: that is what makes a
customer's calendar update itself instead of collecting stale copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText
from icalendar.enums import STATUS, TRANSP

from calendars.timezones import vtimezone
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.catalogue import JobKind
from fieldplan.customers import Customer
from fieldplan.dates import long_day
from fieldplan.jobs import Job
from fieldplan.locations import Location

PRODID = "-//fieldplan//after-sales planning//EN"
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]


@dataclass(frozen=True)
class ServiceDesk:
    """Who the customer can reach: a real desk with a phone and a mailbox that is read."""

    name: str
    email: str
    phone: str
    address: str

    @classmethod
    def of_store(cls, store: Location) -> ServiceDesk:
        return cls(
            name=store.name,
            email=store.email,
            phone=store.phone,
            address=f"{store.street}, {store.postcode} {store.city}",
        )

    def organizer(self) -> vCalAddress:
        """The desk as an event's ORGANIZER: who the customer and the technician call."""
        address = vCalAddress(f"mailto:{self.email}")
        address.params["cn"] = vText(self.name)
        return address


TEXTS = {
    "nl": {
        JobKind.MEASURE: (
            "Inmeten",
            "Wij meten alles nauwkeurig op voor uw bestelling.",
            "Zorg dat de ruimte vrij toegankelijk is.",
        ),
        JobKind.DELIVERY: (
            "Levering",
            "Wij leveren uw bestelling af.",
            "Maak een vrije looproute naar de plek waar het moet komen.",
        ),
        JobKind.INSTALLATION: (
            "Montage",
            "Onze monteur installeert uw aankoop.",
            "Maak de ruimte leeg en zorg voor stroom en water.",
        ),
        JobKind.REPAIR: (
            "Reparatie",
            "Wij komen het probleem verhelpen.",
            "Houd de aankoopbon en eventuele foto's bij de hand.",
        ),
        "duration": "Duur: ongeveer {minutes} minuten per dag",
        "days": "Dit werk duurt {days} werkdagen achter elkaar.",
        "window": "De monteur komt op {day} tussen {start} en {end}.",
        "moved": "Uw afspraak is verzet: niet meer op {day} tussen {start} en {end}.",
        "prepare": "Voorbereiding: {text}",
        "order": "Ordernummer: {number}",
        "manage": "Afspraak verzetten of annuleren: {url}",
        "contact": "Vragen? {desk}, {phone}, {email} ({address})",
        "cancelled_title": "Geannuleerd",
        "cancelled": "Uw afspraak op {day} tussen {start} en {end} is geannuleerd.",
        "rebook": "Een nieuw tijdvak kiest u op uw pagina: {url}",
    },
    "en": {
        JobKind.MEASURE: (
            "Measuring",
            "We take exact measurements for your order.",
            "Please make sure the room is accessible.",
        ),
        JobKind.DELIVERY: (
            "Delivery",
            "We deliver your order.",
            "Please clear a path to where the goods are going.",
        ),
        JobKind.INSTALLATION: (
            "Installation",
            "Our technician installs your purchase.",
            "Please empty the room and make sure power and water are on.",
        ),
        JobKind.REPAIR: (
            "Repair",
            "We come to fix the problem.",
            "Please have your receipt and any photos at hand.",
        ),
        "duration": "Duration: about {minutes} minutes a day",
        "days": "This work takes {days} working days in a row.",
        "window": "The technician comes on {day} between {start} and {end}.",
        "moved": "Your appointment has moved: no longer on {day} between {start} and {end}.",
        "prepare": "To prepare: {text}",
        "order": "Order number: {number}",
        "manage": "Reschedule or cancel: {url}",
        "contact": "Questions? {desk}, {phone}, {email} ({address})",
        "cancelled_title": "Cancelled",
        "cancelled": "Your appointment on {day} between {start} and {end} is cancelled.",
        "rebook": "Pick a new window on your page: {url}",
    },
}


def appointment_uid(appointment: Appointment, domain: str) -> str:
    return f"appointment-{appointment.id}@{domain}"


def invite(
    appointment: Appointment,
    job: Job,
    customer: Customer,
    order_number: str,
    desk: ServiceDesk,
    *,
    timezone: str = "Europe/Amsterdam",
    manage_url: str | None = None,
    domain: str = "fieldplan.local",
) -> Calendar:
    """REQUEST for a live appointment, CANCEL for a cancelled one; same UID either way."""
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    language = customer.language if customer.language in TEXTS else "nl"
    texts = TEXTS[language]
    kind = JobKind(job.kind)
    title, what, prepare = texts[kind]
    zone = ZoneInfo(timezone)
    start = appointment.window_start.astimezone(zone)
    end = appointment.window_end.astimezone(zone)

    def window(key: str, opens: datetime, closes: datetime) -> str:
        return str(texts[key]).format(
            day=long_day(opens.date(), language), start=f"{opens:%H:%M}", end=f"{closes:%H:%M}"
        )

    if cancelled:
        # What was called off, and where to pick anew: no "comes between" any more.
        lines = [window("cancelled", start, end), job.description]
        if manage_url:
            lines.append(str(texts["rebook"]).format(url=manage_url))
    else:
        lines = []
        moved = _moved_from(appointment)
        if moved is not None:
            lines.append(window("moved", *(m.astimezone(zone) for m in moved)))
        lines += [
            window("window", start, end),
            what,
            job.description,
            str(texts["duration"]).format(minutes=job.duration_min),
        ]
        if job.days > 1:
            lines.append(str(texts["days"]).format(days=job.days))
        lines.append(str(texts["prepare"]).format(text=prepare))
        if manage_url:
            lines.append(str(texts["manage"]).format(url=manage_url))
    lines.append(str(texts["order"]).format(number=order_number))
    lines.append(
        str(texts["contact"]).format(
            desk=desk.name, phone=desk.phone, email=desk.email, address=desk.address
        )
    )
    event = Event.new(
        uid=appointment_uid(appointment, domain),
        sequence=appointment.sequence,
        stamp=_stamp(appointment),
        start=start,
        end=end,
        summary=(f"{texts['cancelled_title']}: " if cancelled else "") + f"{title} · {desk.name}",
        description="\n".join(lines),
        location=customer.address,
        status=STATUS.CANCELLED if cancelled else STATUS.CONFIRMED,
        transparency=TRANSP.OPAQUE,
    )
    event.add("organizer", desk.organizer())
    attendee = vCalAddress(f"mailto:{customer.email}")
    attendee.params["cn"] = vText(customer.name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("ACCEPTED")
    event.add("attendee", attendee)
    event.add("geo", (customer.latitude, customer.longitude))
    if manage_url:
        event.add("url", manage_url)
    if job.days > 1:
        event.add("rrule", {"freq": "daily", "count": job.days, "byday": WEEKDAYS})
    calendar = new_calendar(method="CANCEL" if cancelled else "REQUEST")
    calendar.add_component(vtimezone(timezone))
    calendar.add_component(event)
    return calendar


def new_calendar(**properties: object) -> Calendar:
    """A VCALENDAR without the random UID `Calendar.new` adds, so output is reproducible."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    for name, value in properties.items():
        calendar.add(name.replace("_", "-"), value)
    return calendar


def _moved_from(appointment: Appointment) -> tuple[datetime, datetime] | None:
    """The window before the latest move, if the appointment was ever moved."""
    for change in reversed(appointment.changes):
        if change.old_start and change.old_end and change.new_start != change.old_start:
            return change.old_start, change.old_end
    return None


def _stamp(appointment: Appointment) -> datetime:
    """The moment this version of the appointment came to be: stable across downloads."""
    changed = [c.at for c in appointment.changes]
    return max([appointment.created_at, *changed])
