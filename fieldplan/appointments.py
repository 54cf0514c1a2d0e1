"""Appointments: the window promised to a customer, and every change to that promise."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from fieldplan.db import Base, UTCDateTime, utcnow
from fieldplan.jobs import Job, JobStatus, change_status
from fieldplan.timeline import EventKind, record_for_job
from optimizer.reasons import Why


class AgreedVia(StrEnum):
    SELF_SERVICE = "self_service"
    PHONE = "phone"
    STORE = "store"
    PLANNER = "planner"


class AppointmentStatus(StrEnum):
    PROMISED = "promised"
    AT_RISK = "at_risk"
    KEPT = "kept"
    BROKEN = "broken"
    CANCELLED = "cancelled"


# A promise still to keep: what plans must hold and feeds and pages show as promised.
LIVE_APPOINTMENTS = (AppointmentStatus.PROMISED, AppointmentStatus.AT_RISK)


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    agreed_via: Mapped[AgreedVia] = mapped_column(String(16))
    status: Mapped[AppointmentStatus] = mapped_column(
        String(16), default=AppointmentStatus.PROMISED
    )
    # Bumped on every change; doubles as the iCalendar SEQUENCE and an optimistic lock.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    changes: Mapped[list[AppointmentChange]] = relationship(
        back_populates="appointment", cascade="all, delete-orphan", order_by="AppointmentChange.id"
    )

    __mapper_args__ = {"version_id_col": sequence}  # noqa: RUF012


class ChangeKind(StrEnum):
    """What a change of an appointment was, so that readers never parse its reason."""

    BOOKED = "booked"
    MOVED = "moved"
    CANCELLED = "cancelled"
    AT_RISK = "at_risk"


class AppointmentChange(Base):
    __tablename__ = "appointment_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[ChangeKind] = mapped_column(
        String(12), default=ChangeKind.MOVED, server_default=ChangeKind.MOVED.value
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    old_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    old_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    new_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    new_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    appointment: Mapped[Appointment] = relationship(back_populates="changes")


class AppointmentError(ValueError):
    """A change to a promise that cannot be made. The refusals a customer meets carry their
    reason as data (`why`: their page words it by its code); the others are words alone."""

    def __init__(self, reason: str | Why) -> None:
        super().__init__(str(reason))
        self.why = reason if isinstance(reason, Why) else None


def live_appointment(session: Session, job_id: int) -> Appointment | None:
    return session.scalar(
        select(Appointment).where(
            Appointment.job_id == job_id, Appointment.status != AppointmentStatus.CANCELLED
        )
    )


def check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise AppointmentError("give the window with its time zone")
    if end <= start:
        raise AppointmentError("the window must end after it starts")
    if end - start > timedelta(hours=12):
        raise AppointmentError("a window longer than 12 hours is no promise")


def promise(
    session: Session,
    job: Job,
    start: datetime,
    end: datetime,
    *,
    via: AgreedVia,
    actor: str,
    reason: str = "",
) -> Appointment:
    """Promise the customer a window for a job; one live promise per job."""
    check_window(start, end)
    if live_appointment(session, job.id) is not None:
        raise AppointmentError(f"job {job.id} already has an appointment: reschedule it instead")
    if job.status in (JobStatus.NEW, JobStatus.OFFERED):
        change_status(session, job, JobStatus.BOOKED, actor=actor, reason="window promised")
    elif job.status not in (JobStatus.BOOKED, JobStatus.PLANNED):
        raise AppointmentError(f"job {job.id} is {job.status}: nothing left to promise")
    appointment = Appointment(
        job_id=job.id,
        window_start=start,
        window_end=end,
        agreed_via=via,
        status=AppointmentStatus.PROMISED,
    )
    appointment.changes.append(
        AppointmentChange(
            actor=actor,
            kind=ChangeKind.BOOKED,
            reason=reason or "booked",
            new_start=start,
            new_end=end,
        )
    )
    session.add(appointment)
    session.flush()
    record_for_job(
        session,
        job,
        EventKind.SLOT_BOOKED,
        actor,
        f"{job.kind} promised {start.isoformat()} - {end.isoformat()}",
    )
    return appointment


def reschedule(
    session: Session,
    appointment: Appointment,
    start: datetime,
    end: datetime,
    *,
    actor: str,
    reason: str,
) -> Appointment:
    check_window(start, end)
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentError("a cancelled appointment cannot be moved: book a new one")
    appointment.changes.append(
        AppointmentChange(
            actor=actor,
            kind=ChangeKind.MOVED,
            reason=reason,
            old_start=appointment.window_start,
            old_end=appointment.window_end,
            new_start=start,
            new_end=end,
        )
    )
    appointment.window_start, appointment.window_end = start, end
    appointment.status = AppointmentStatus.PROMISED
    session.flush()
    job = session.get_one(Job, appointment.job_id)
    record_for_job(
        session,
        job,
        EventKind.APPOINTMENT_MOVED,
        actor,
        f"moved to {start.isoformat()} - {end.isoformat()}: {reason}",
    )
    return appointment


def cancel(session: Session, appointment: Appointment, *, actor: str, reason: str) -> Appointment:
    """Cancel the promise; the job itself stays open, to be booked again."""
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentError("the appointment is already cancelled")
    appointment.changes.append(
        AppointmentChange(
            actor=actor,
            kind=ChangeKind.CANCELLED,
            reason=reason,
            old_start=appointment.window_start,
            old_end=appointment.window_end,
        )
    )
    appointment.status = AppointmentStatus.CANCELLED
    session.flush()
    job = session.get_one(Job, appointment.job_id)
    if job.status in (JobStatus.BOOKED, JobStatus.PLANNED):
        change_status(session, job, JobStatus.NEW, actor=actor, reason="appointment cancelled")
    record_for_job(session, job, EventKind.APPOINTMENT_CANCELLED, actor, reason)
    return appointment


def flag_at_risk(session: Session, appointment: Appointment, *, actor: str, reason: str) -> None:
    """A promise the plan can no longer keep: flagged for a planner to renegotiate, never moved
    silently. The customer's window stays what was agreed until someone agrees a new one."""
    if appointment.status == AppointmentStatus.AT_RISK:
        return
    appointment.status = AppointmentStatus.AT_RISK
    appointment.changes.append(
        AppointmentChange(actor=actor, kind=ChangeKind.AT_RISK, reason=f"at risk: {reason}")
    )
    session.flush()
    # The customer hears it at once, with windows that would do (notices reads this module,
    # so it is imported where it is used).
    from fieldplan.notices import at_risk

    at_risk(session, appointment)
    job = session.get_one(Job, appointment.job_id)
    record_for_job(session, job, EventKind.PROMISE_AT_RISK, actor, reason)
