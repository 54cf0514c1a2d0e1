"""What customers are told about their visit, written in the transaction that makes it true.

A notice is a row: the day before (a reminder with the window), when the technician sets off
("on our way, expected around 10:40") and whenever that estimate moves by more than
`ESTIMATE_MOVES_MIN`. Writing the notice with the report that causes it means a report that
rolls back tells nobody, and one that commits is told even if the process stops before the
message leaves: senders (`calendars.messages`) take the unsent notices after the commit,
render them in the customer's language for their channel and mark them sent.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.appointments import LIVE_APPOINTMENTS, Appointment, live_appointment
from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.jobs import Job
from fieldplan.plans import Plan, Route, StopKind, latest_plan
from fieldplan.regions import Region

ESTIMATE_MOVES_MIN = 15  # a new estimate is sent when the last one told is this far off
WRITTEN = "fieldplan.notices.written"  # in a session's info: it wrote a notice to send


class NoticeKind(StrEnum):
    REMINDER = "reminder"
    ON_THE_WAY = "on_the_way"
    NEW_ESTIMATE = "new_estimate"
    AT_RISK = "at_risk"  # the promise cannot be kept as planned: new windows to choose


class CustomerNotice(Base):
    __tablename__ = "customer_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    kind: Mapped[NoticeKind] = mapped_column(String(20))
    eta: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    # How it went out: "email", "sms", or why not ("no address").
    channel: Mapped[str] = mapped_column(String(40), default="")


def _latest(session: Session, appointment_id: int) -> CustomerNotice | None:
    return session.scalar(
        select(CustomerNotice)
        .where(
            CustomerNotice.appointment_id == appointment_id,
            CustomerNotice.kind.in_([NoticeKind.ON_THE_WAY, NoticeKind.NEW_ESTIMATE]),
        )
        .order_by(CustomerNotice.id.desc())
        .limit(1)
    )


def estimate(session: Session, appointment_id: int) -> datetime | None:
    """The arrival the customer was last told, if they were told one."""
    latest = _latest(session, appointment_id)
    return latest.eta if latest is not None else None


def on_the_way(
    session: Session, job: Job, *, now: datetime, today: date, eta: datetime | None = None
) -> CustomerNotice | None:
    """The technician left for this job: the customer hears when to expect them (the
    technician's own estimate, else now plus the planned drive from the stop before)."""
    appointment = live_appointment(session, job.id)
    if appointment is None:
        return None
    notice = CustomerNotice(
        appointment_id=appointment.id,
        kind=NoticeKind.ON_THE_WAY,
        eta=eta or _expected(session, job, now, today),
    )
    session.add(notice)
    session.flush()
    session.info[WRITTEN] = True
    return notice


def moved_estimate(session: Session, job: Job, eta: datetime) -> CustomerNotice | None:
    """A new estimate for a customer already told one, when it moved by more than
    `ESTIMATE_MOVES_MIN`; the customer of the job a technician is late for is told too."""
    appointment = live_appointment(session, job.id)
    if appointment is None:
        return None
    told = estimate(session, appointment.id)
    if told is not None and abs(eta - told) <= timedelta(minutes=ESTIMATE_MOVES_MIN):
        return None
    notice = CustomerNotice(appointment_id=appointment.id, kind=NoticeKind.NEW_ESTIMATE, eta=eta)
    session.add(notice)
    session.flush()
    session.info[WRITTEN] = True
    return notice


def at_risk(session: Session, appointment: Appointment) -> CustomerNotice:
    """The promise is in danger: the customer is told at once, with windows that would do
    (worked out when the message is sent, after the change that caused it has committed)."""
    notice = CustomerNotice(appointment_id=appointment.id, kind=NoticeKind.AT_RISK)
    session.add(notice)
    session.flush()
    session.info[WRITTEN] = True
    return notice


def remind(session: Session, region: Region, day: date) -> list[CustomerNotice]:
    """A reminder for every live promise of the region on `day`, once each."""
    zone = ZoneInfo(region.timezone)
    opens = datetime.combine(day, time(0), zone)
    appointments = session.scalars(
        select(Appointment)
        .join(Job, Job.id == Appointment.job_id)
        .where(
            Job.region_id == region.id,
            Appointment.status.in_(LIVE_APPOINTMENTS),
            Appointment.window_start >= opens,
            Appointment.window_start < opens + timedelta(days=1),
        )
        .order_by(Appointment.window_start, Appointment.id)
    ).all()
    reminded = set(
        session.scalars(
            select(CustomerNotice.appointment_id).where(
                CustomerNotice.kind == NoticeKind.REMINDER,
                CustomerNotice.appointment_id.in_([a.id for a in appointments]),
            )
        )
    )
    made = [
        CustomerNotice(appointment_id=a.id, kind=NoticeKind.REMINDER)
        for a in appointments
        if a.id not in reminded
    ]
    session.add_all(made)
    session.flush()
    if made:
        session.info[WRITTEN] = True
    return made


def unsent(session: Session, limit: int = 200) -> list[CustomerNotice]:
    return list(
        session.scalars(
            select(CustomerNotice)
            .where(CustomerNotice.sent_at.is_(None))
            .order_by(CustomerNotice.id)
            .limit(limit)
        )
    )


def mark_sent(notice: CustomerNotice, channel: str) -> None:
    notice.sent_at, notice.channel = utcnow(), channel


def _expected(session: Session, job: Job, now: datetime, today: date) -> datetime | None:
    plan: Plan | None = latest_plan(session, job.region_id, today)
    route: Route | None = None
    if plan is not None:
        route = next((r for r in plan.routes if any(s.job_id == job.id for s in r.stops)), None)
    if route is None:
        return None
    stops = list(route.stops)
    at = next(
        (i for i, s in enumerate(stops) if s.job_id == job.id and s.kind == StopKind.JOB), None
    )
    if at is None:
        return None
    stop = stops[at]
    if at == 0:  # from home: as planned, unless already later than that
        return max(stop.arrival, now)
    return now + max(stop.arrival - stops[at - 1].departure, timedelta(0))
