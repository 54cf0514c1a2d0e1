"""Customers: the people behind orders, with how they want to be reached."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fieldplan.db import Base, UTCDateTime, utcnow


class ContactChannel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    house_number: Mapped[str] = mapped_column(String(16))
    postcode: Mapped[str] = mapped_column(String(7), index=True)
    city: Mapped[str] = mapped_column(String(80))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(200), index=True)
    contact_channel: Mapped[ContactChannel] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def address(self) -> str:
        return f"{self.street} {self.house_number}, {self.postcode} {self.city}"
