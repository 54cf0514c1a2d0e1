"""Invites as e-mail: plain text, HTML and the calendar part that mail apps act on.

By default a message is written to an outbox folder (one .eml file each), so nothing leaves the
machine until SMTP is configured; with `FIELDPLAN_SMTP_HOST` set it is sent.
"""

from __future__ import annotations

import html
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from icalendar import Calendar


@dataclass(frozen=True)
class Mailer:
    outbox: Path
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str = "service@fieldplan.local"

    def send(self, message: EmailMessage) -> Path | None:
        """Send over SMTP when configured; otherwise write to the outbox and return the file."""
        if self.smtp_host:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
                smtp.send_message(message)
            return None
        self.outbox.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("@", "_at_") + ".eml"
        path: Path = self.outbox / name
        path.write_bytes(bytes(message))
        return path


def invite_email(calendar: Calendar, *, sender: str, recipient: str) -> EmailMessage:
    """The invite as a mail from its ORGANIZER (the store's desk): mail apps trust an
    invitation whose From matches its organizer, and replies reach the desk. The sending
    system is named as Sender."""
    event = next(iter(calendar.walk("VEVENT")))
    method = str(calendar.get("method", "REQUEST"))
    summary = str(event.get("summary", ""))
    description = str(event.get("description", ""))
    organizer = event["organizer"]
    desk = formataddr((str(organizer.params.get("cn", "")), str(organizer).removeprefix("mailto:")))
    message = EmailMessage()
    message["Subject"] = summary
    message["From"] = desk
    message["Sender"] = sender
    message["Reply-To"] = desk
    message["To"] = recipient
    message["Message-ID"] = make_msgid(domain="fieldplan.local")
    message["Date"] = format_datetime(event.decoded("dtstamp"))
    message.set_content(f"{summary}\n\n{description}\n")
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in description.splitlines())
    message.add_alternative(
        f"<html><body><h1>{html.escape(summary)}</h1>{paragraphs}</body></html>", subtype="html"
    )
    message.add_alternative(
        calendar.to_ical(),
        maintype="text",
        subtype="calendar",
        params={"method": method, "charset": "utf-8"},
    )
    return message
