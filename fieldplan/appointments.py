"""Appointments: the window promised to a customer, and every change to that promise."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldplan.db import Base, UTCDateTime, utcnow


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


class AppointmentChange(Base):
    __tablename__ = "appointment_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text, default="")
    old_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    old_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    new_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    new_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    appointment: Mapped[Appointment] = relationship(back_populates="changes")
