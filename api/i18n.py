"""The customer page's words in Dutch (the default) and English, and local date formatting."""

from __future__ import annotations

from datetime import datetime

from fieldplan.dates import LANGUAGES, short_day
from fieldplan.reasons import PlanningReason
from optimizer.reasons import Reason, Why

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Uw bestelling {number}",
        "hello": "Hallo {name},",
        "intro": "Hier ziet u alles wat bij uw bestelling hoort, en kiest u zelf een tijdvak.",
        "job": "Klus",
        "status": "Status",
        "appointment": "Afspraak",
        "parts": "Onderdelen",
        "none": "nog geen",
        "part_missing": "{quantity}x {part}: besteld, de monteur haalt het onderweg op",
        "part_ok": "{quantity}x {part}: op voorraad",
        "choose": "Kies een tijdvak",
        "change": "Verzetten",
        "cancel": "Annuleren",
        "invite": "Agenda-uitnodiging",
        "windows_title": "Kies een tijdvak voor: {job}",
        "windows_intro": "Wij komen binnen het tijdvak dat u kiest. Tijdvakken met "
        "'aanbevolen' passen het best in de route van onze monteurs.",
        "recommended": "aanbevolen",
        "book": "Bevestigen",
        "back": "Terug naar uw bestelling",
        "no_windows": "Er is nu geen tijdvak vrij: {reason}.",
        "first_dates": "De eerste dagen waarop het wel kan: {dates}.",
        "taken": "Dit tijdvak is net niet meer beschikbaar ({reason}). Kies een ander tijdvak.",
        "booked": "Uw afspraak staat vast. U ontvangt een agenda-uitnodiging per e-mail.",
        "cancelled": "Uw afspraak is geannuleerd. U kunt een nieuw tijdvak kiezen.",
        "callback_sent": "Wij bellen u terug. Uw verzoek staat bij onze planners.",
        "callback_pending": "Wij bellen u terug op {phone}, uiterlijk {when}.",
        "eta": "Verwachte aankomst",
        "other_days": "Andere dagen",
        "desk_intro": "vragen over uw bestelling of afspraak? Wij helpen u graag.",
        "eta_at": "rond {time}",
        "callback_pending_soon": "Wij bellen u zo snel mogelijk terug op {phone}.",
        "callback": "Liever even bellen?",
        "callback_intro": "Laat uw nummer achter; wij bellen u terug.",
        "phone": "Telefoonnummer",
        "preferred_time": "Wanneer schikt het?",
        "note": "Waar gaat het over?",
        "send": "Bel mij terug",
        "bad_phone": "Vul een geldig telefoonnummer in.",
        "language": "English",
        "locked": "Deze afspraak is binnen 24 uur: verzetten of annuleren kan nu alleen nog via "
        "de winkel. Vraag hieronder of wij u terugbellen.",
        "current": "Uw afspraak staat nu op {window}. Kies hieronder een ander tijdvak om hem "
        "te verzetten.",
        "now": "uw afspraak nu",
        "gone_title": "Deze link werkt niet (meer)",
        "gone": "De link is onvolledig of verlopen. In elke e-mail over uw afspraak staat een "
        "nieuwe link; of bel de winkel waar u kocht, dan sturen wij hem opnieuw.",
        "measure": "Inmeten",
        "delivery": "Bezorgen",
        "installation": "Installatie",
        "repair": "Reparatie",
        "new": "nog in te plannen",
        "offered": "tijdvak aangeboden",
        "booked_status": "afspraak gemaakt",
        "planned": "ingepland",
        "en_route": "monteur onderweg",
        "in_progress": "bezig",
        "done": "klaar",
        "failed": "niet gelukt",
        "follow_up_needed": "vervolgafspraak nodig",
        "cancelled_status": "geannuleerd",
        "at_risk": "Wij kunnen dit tijdvak helaas niet waarmaken. Kies een nieuw tijdvak of laat "
        "u terugbellen; tot dan blijft uw afspraak staan zoals hij is.",
    },
    "en": {
        "title": "Your order {number}",
        "hello": "Hello {name},",
        "intro": "Everything that belongs to your order, and windows you can pick yourself.",
        "job": "Job",
        "status": "Status",
        "appointment": "Appointment",
        "parts": "Parts",
        "none": "none yet",
        "part_missing": "{quantity}x {part}: ordered, the technician picks it up on the way",
        "part_ok": "{quantity}x {part}: in stock",
        "choose": "Pick a window",
        "change": "Reschedule",
        "cancel": "Cancel",
        "invite": "Calendar invite",
        "windows_title": "Pick a window for: {job}",
        "windows_intro": "We arrive within the window you pick. Windows marked 'recommended' "
        "fit our technicians' routes best.",
        "recommended": "recommended",
        "book": "Confirm",
        "back": "Back to your order",
        "no_windows": "No window is free right now: {reason}.",
        "first_dates": "The first days that would work: {dates}.",
        "taken": "This window has just gone ({reason}). Please pick another one.",
        "booked": "Your appointment is confirmed. A calendar invite is on its way by e-mail.",
        "cancelled": "Your appointment is cancelled. You can pick a new window.",
        "callback_sent": "We will call you back. Your request is with our planners.",
        "callback_pending": "We will call you back on {phone} by {when}.",
        "eta": "Expected arrival",
        "other_days": "Other days",
        "desk_intro": "questions about your order or appointment? We are glad to help.",
        "eta_at": "around {time}",
        "callback_pending_soon": "We will call you back on {phone} as soon as we can.",
        "callback": "Rather talk to us?",
        "callback_intro": "Leave your number and we will call you back.",
        "phone": "Phone number",
        "preferred_time": "When suits you?",
        "note": "What is it about?",
        "send": "Call me back",
        "bad_phone": "Please enter a valid phone number.",
        "language": "Nederlands",
        "locked": "This appointment is within 24 hours: it can now only be moved or cancelled "
        "through the store. Ask us below to call you back.",
        "current": "Your appointment is now {window}. Pick another window below to move it.",
        "now": "your appointment now",
        "gone_title": "This link does not work (any more)",
        "gone": "The link is incomplete or has expired. Every e-mail about your appointment "
        "carries a fresh one; or call the store where you bought, and we send it again.",
        "measure": "Measuring",
        "delivery": "Delivery",
        "installation": "Installation",
        "repair": "Repair",
        "new": "to be planned",
        "offered": "window offered",
        "booked_status": "appointment made",
        "planned": "planned",
        "en_route": "technician on the way",
        "in_progress": "in progress",
        "done": "done",
        "failed": "not completed",
        "follow_up_needed": "follow-up needed",
        "cancelled_status": "cancelled",
        "at_risk": "We are sorry: we cannot keep this window. Please pick a new one or ask us to "
        "call you back; until then your appointment stays as it is.",
    },
}


def language(wanted: str | None, fallback: str) -> str:
    for candidate in (wanted, fallback):
        if candidate in LANGUAGES:
            return candidate
    return "nl"


def day_label(moment: datetime, lang: str) -> str:
    return short_day(moment.date(), lang)


def window_label(start: datetime, end: datetime, lang: str) -> str:
    return f"{day_label(start, lang)} {start:%H:%M}–{end:%H:%M}"


def status_text(status: str, lang: str) -> str:
    """Status words; booked and cancelled share their key with other texts."""
    key = f"{status}_status" if status in ("booked", "cancelled") else status
    return TEXTS[lang].get(key, status)


_WAITS = (
    "eerst moet de stap ervoor (inmeten of bezorgen) zijn ingepland",
    "the step before it (measuring or delivery) has to be planned first",
)
_FULL = ("alle tijdvakken in deze periode zijn vol", "every window in this period is taken")
_PART = ("het onderdeel is nog niet binnen", "the part has not arrived yet")
_BEFORE_NEXT = (
    "dit moet gebeuren voor de stap erna, en daarvoor is geen tijdvak meer vrij",
    "this has to happen before the next step, and no window is free before it",
)
# The reasons a customer meets, by code, in their words: (Dutch, English).
_REASONS: dict[str, tuple[str, str]] = {
    PlanningReason.ALREADY_PLANNED: ("deze klus staat al ingepland", "this job is already planned"),
    PlanningReason.WAITS_FOR_PREREQUISITE: _WAITS,
    Reason.WAITS_FOR_FIRST: _WAITS,
    Reason.WAITS_FOR: _WAITS,
    Reason.WINDOW_FULL: _FULL,
    Reason.PERIOD_FULL: _FULL,
    Reason.NO_CAPACITY: _FULL,
    Reason.WINDOW_GONE: ("dit tijdvak is net vergeven", "this window has just been taken"),
    Reason.PART_LATER: _PART,
    Reason.PART_NOT_IN_PERIOD: _PART,
    Reason.PART_NOWHERE: _PART,
    Reason.PART_NOT_BEFORE: _PART,
    Reason.TOO_EARLY: ("het kan pas na de stap ervoor", "it can only follow the step before it"),
    Reason.TOO_LATE: _BEFORE_NEXT,
    PlanningReason.DUE_BEFORE_DEPENDANT: _BEFORE_NEXT,
    PlanningReason.FREE_WINDOWS_IN_CUTOFF: (
        "de vrije tijdvakken liggen binnen 24 uur, en die kunt u daarna niet meer wijzigen: "
        "vraag hieronder of wij u terugbellen",
        "the free windows are within 24 hours, which you could not change afterwards: "
        "please ask us below to call you back",
    ),
    PlanningReason.WINDOW_IN_CUTOFF: (
        "een tijdvak binnen 24 uur kunt u daarna niet meer wijzigen: kies een later tijdvak",
        "a window within 24 hours could not be changed afterwards: please pick a later one",
    ),
    PlanningReason.CHANGE_IN_CUTOFF: (
        "zo kort voor de afspraak wijzigen wij die graag samen met u: "
        "vraag hieronder of wij u terugbellen",
        "this close to the appointment we change it together with you: "
        "please ask us below to call you back",
    ),
}


def reason_text(why: Why | None, lang: str) -> str:
    """A reason in the customer's words, chosen by its code; one without words of its own
    here is shown as the engine words it."""
    if why is None:
        return "-"
    words = _REASONS.get(why.reason.value)
    if words is None:
        return str(why)
    return words[0] if lang == "nl" else words[1]
