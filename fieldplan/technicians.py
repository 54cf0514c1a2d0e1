"""Technicians: skills, home base, weekly pattern, breaks, absences and van."""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldplan.db import Base


class Technician(Base):
    __tablename__ = "technicians"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    home_address: Mapped[str] = mapped_column(String(200))
    home_latitude: Mapped[float] = mapped_column(Float)
    home_longitude: Mapped[float] = mapped_column(Float)
    van_volume_m3: Mapped[float] = mapped_column(Float)
    van_weight_kg: Mapped[float] = mapped_column(Float)
    cost_per_hour_eur: Mapped[float] = mapped_column(Float)
    # Lunch rule: a break of this length that starts inside [earliest, latest].
    lunch_minutes: Mapped[int] = mapped_column(Integer, default=30)
    lunch_earliest: Mapped[time] = mapped_column(Time, default=time(11, 30))
    lunch_latest: Mapped[time] = mapped_column(Time, default=time(13, 30))
    max_overtime_min: Mapped[int] = mapped_column(Integer, default=60)

    shifts: Mapped[list[Shift]] = relationship(
        back_populates="technician", cascade="all, delete-orphan", order_by="Shift.weekday"
    )
    absences: Mapped[list[Absence]] = relationship(
        back_populates="technician", cascade="all, delete-orphan"
    )

    def shift_on(self, day: date) -> Shift | None:
        if any(a.first_day <= day <= a.last_day for a in self.absences):
            return None
        return next((s for s in self.shifts if s.weekday == day.weekday()), None)


class Shift(Base):
    """The weekly working pattern: one row per weekday worked (0 = Monday)."""

    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("technician_id", "weekday"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)

    technician: Mapped[Technician] = relationship(back_populates="shifts")


class Absence(Base):
    __tablename__ = "absences"

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id", ondelete="CASCADE"))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(80), default="")

    technician: Mapped[Technician] = relationship(back_populates="absences")
