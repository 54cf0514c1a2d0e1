"""Telling customers: the notices of `fieldplan.notices` as mail or text message.

A notice goes out over the customer's channel (mail for e-mail customers, a text message for
the others) in their language, from their store's service desk: replies reach people who read
them, never a "no-reply" box. Transports are small and swappable: mail goes through `Mailer`
(the outbox folder or SMTP); text messages go to an outbox folder of their own until an SMS
gateway is configured, with the same interface.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from calendars.invites import TEXTS as INVITE_TEXTS
from calendars.invites import ServiceDesk
from calendars.mail import Mailer
from fieldplan.appointments import Appointment
from fieldplan.customers import ContactChannel, Customer
from fieldplan.dates import long_day
from fieldplan.db import utcnow
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.notices import CustomerNotice, NoticeKind, mark_sent, unsent
from fieldplan.orders import Order
from fieldplan.regions import Region

TEXTS: dict[str, dict[NoticeKind, tuple[str, str]]] = {
    "nl": {
        NoticeKind.REMINDER: (
            "Herinnering: {kind} op {day}",
            "Morgen, {day}, komt onze monteur tussen {start} en {end} voor: {kind}.",
        ),
        NoticeKind.ON_THE_WAY: (
            "We zijn onderweg",
            "Onze monteur is onderweg naar u voor: {kind}. Verwacht rond {eta}.",
        ),
        NoticeKind.NEW_ESTIMATE: (
            "Nieuwe verwachte aankomst",
            "Onze monteur komt later dan gedacht voor: {kind}. Verwacht nu rond {eta}.",
        ),
        NoticeKind.AT_RISK: (
            "Uw afspraak van {day} kan niet doorgaan zoals beloofd",
            "Het spijt ons: uw afspraak voor {kind} op {day} tussen {start} en {end} kunnen "
            "wij niet nakomen. Kies een nieuw tijdvak op uw pagina of bel ons.",
        ),
    },
    "en": {
        NoticeKind.REMINDER: (
            "Reminder: {kind} on {day}",
            "Tomorrow, {day}, our technician comes between {start} and {end} for: {kind}.",
        ),
        NoticeKind.ON_THE_WAY: (
            "We're on our way",
            "Our technician is on the way to you for: {kind}. Expected around {eta}.",
        ),
        NoticeKind.NEW_ESTIMATE: (
            "New expected arrival",
            "Our technician is later than expected for: {kind}. Now expected around {eta}.",
        ),
        NoticeKind.AT_RISK: (
            "Your appointment of {day} cannot go ahead as promised",
            "We are sorry: we cannot keep your appointment for {kind} on {day} between "
            "{start} and {end}. Please pick a new window on your page or call us.",
        ),
    },
}
LINES = {
    "nl": {
        "later": "Wordt het {end} zonder monteur? Bel ons: {phone}.",
        "call": "Bel ons: {phone}.",
        "options": "Deze tijdvakken zijn nog vrij: {options}.",
        "manage": "Uw afspraken: {url}",
        "reply": "Antwoorden kan gewoon: {desk} leest mee.",
    },
    "en": {
        "later": "No technician by {end}? Call us: {phone}.",
        "call": "Call us: {phone}.",
        "options": "These windows are still free: {options}.",
        "manage": "Your appointments: {url}",
        "reply": "Just reply: {desk} reads it.",
    },
}


@dataclass(frozen=True)
class Outgoing:
    """One message as a transport sends it."""

    to: str
    subject: str
    text: str
    desk: ServiceDesk


class Transport(Protocol):
    def send(self, message: Outgoing) -> None: ...


@dataclass(frozen=True)
class MailTransport:
    mailer: Mailer
    sender: str  # the sending system, named as Sender; From is the desk

    def send(self, message: Outgoing) -> None:
        mail = EmailMessage()
        desk = formataddr((message.desk.name, message.desk.email))
        mail["Subject"] = message.subject
        mail["From"] = desk
        mail["Sender"] = self.sender
        mail["Reply-To"] = desk
        mail["To"] = message.to
        mail["Message-ID"] = make_msgid(domain="fieldplan.local")
        mail["Date"] = format_datetime(utcnow())
        mail.set_content(message.text + "\n")
        self.mailer.send(mail)


@dataclass(frozen=True)
class SmsOutbox:
    """Text messages as files (one JSON object each) until an SMS gateway takes them."""

    folder: Path

    def send(self, message: Outgoing) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = make_msgid(domain="fieldplan.local").strip("<>").replace("@", "_at_")
        body = {"to": message.to, "from": message.desk.phone, "text": message.text}
        (self.folder / f"{name}.sms.json").write_text(json.dumps(body, ensure_ascii=False))


def render(
    notice: CustomerNotice,
    appointment: Appointment,
    job: Job,
    customer: Customer,
    desk: ServiceDesk,
    zone: ZoneInfo,
    manage_url: str | None,
    options: Sequence[tuple[datetime, datetime]] = (),
) -> tuple[str, str]:
    """Subject and text of a notice in the customer's language; `options`: windows that
    would do instead, for a promise at risk."""
    lang = customer.language if customer.language in TEXTS else "nl"
    texts = TEXTS[lang]
    kind = INVITE_TEXTS[lang][job.kind][0].lower()
    start, end = appointment.window_start.astimezone(zone), appointment.window_end.astimezone(zone)
    eta = notice.eta.astimezone(zone) if notice.eta is not None else start
    facts = {
        "kind": kind,
        "day": long_day(start.date(), lang),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "eta": f"{eta:%H:%M}",
        "phone": desk.phone,
        "desk": desk.name,
        "url": manage_url or "",
    }
    kind_of = NoticeKind(notice.kind)
    subject, first = texts[kind_of]
    more = LINES[lang]
    lines = [first.format(**facts)]
    if kind_of is NoticeKind.AT_RISK:
        if options:
            shown = [
                f"{long_day(s.astimezone(zone).date(), lang)} {s.astimezone(zone):%H:%M}"
                f"–{e.astimezone(zone):%H:%M}"
                for s, e in options[:3]
            ]
            lines.append(more["options"].format(options="; ".join(shown)))
        lines.append(more["call"].format(**facts))
    else:
        lines.append(more["later"].format(**facts))
    if manage_url:
        lines.append(more["manage"].format(**facts))
    lines.append(more["reply"].format(**facts))
    return subject.format(**facts), "\n".join(lines)


def dispatch(
    session: Session,
    transports: Mapping[str, Transport],
    manage_url: Callable[[int], str] | None = None,
    options: Callable[[Job], Sequence[tuple[datetime, datetime]]] | None = None,
) -> int:
    """Send every notice not sent yet, committing each as it goes (the session is the
    dispatcher's own), so a failure part-way sends nothing twice; returns how many went out.
    `manage_url` signs the customer page's link for an order."""
    sent = 0
    for notice in unsent(session):
        appointment = session.get_one(Appointment, notice.appointment_id)
        job = session.get_one(Job, appointment.job_id)
        order = session.get_one(Order, job.order_id)
        store = session.get(Location, order.store_id) if order.store_id else None
        customer = job.customer
        channel = "email" if customer.contact_channel == ContactChannel.EMAIL else "sms"
        to = customer.email if channel == "email" else customer.phone
        transport = transports.get(channel)
        if store is None or not to or transport is None:
            mark_sent(notice, "not sent: no store" if store is None else f"not sent: no {channel}")
            session.commit()
            continue
        desk = ServiceDesk.of_store(store)
        zone = ZoneInfo(session.get_one(Region, job.region_id).timezone)
        url = manage_url(order.id) if manage_url is not None else None
        instead = options(job) if options is not None and notice.kind == NoticeKind.AT_RISK else ()
        subject, text = render(notice, appointment, job, customer, desk, zone, url, instead)
        transport.send(Outgoing(to, subject, text, desk))
        mark_sent(notice, channel)
        session.commit()
        sent += 1
    session.commit()
    return sent
