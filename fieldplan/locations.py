"""Stores and warehouses: where parts wait and where technicians can pick them up."""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Time, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from fieldplan.db import Base


class LocationKind(StrEnum):
    STORE = "store"
    WAREHOUSE = "warehouse"


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    kind: Mapped[LocationKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    street: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(7))
    city: Mapped[str] = mapped_column(String(80))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(120), default="")

    opening_hours: Mapped[list[OpeningHours]] = relationship(
        back_populates="location", cascade="all, delete-orphan", order_by="OpeningHours.weekday"
    )
    stock: Mapped[list[StockItem]] = relationship(
        back_populates="location", cascade="all, delete-orphan"
    )


class OpeningHours(Base):
    """Opening hours on one weekday (0 = Monday); a missing weekday means closed."""

    __tablename__ = "opening_hours"
    __table_args__ = (UniqueConstraint("location_id", "weekday"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)

    location: Mapped[Location] = relationship(back_populates="opening_hours")


class StockItem(Base):
    """Parts on the shelf at a location, or expected there from `available_from`."""

    __tablename__ = "stock_items"
    __table_args__ = (UniqueConstraint("location_id", "part_sku", "available_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    part_sku: Mapped[str] = mapped_column(ForeignKey("parts.sku"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    available_from: Mapped[date | None] = mapped_column(Date, nullable=True)

    location: Mapped[Location] = relationship(back_populates="stock")


def pickup_sources(
    session: Session, part_sku: str, quantity: int, on_day: date
) -> list[tuple[Location, date | None]]:
    """Locations that have `quantity` of a part on `on_day` (with the date it arrives there)."""
    rows = session.execute(
        select(StockItem, Location)
        .join(Location, StockItem.location_id == Location.id)
        .where(StockItem.part_sku == part_sku, StockItem.quantity >= quantity)
        .order_by(Location.code)
    )
    return [
        (location, item.available_from)
        for item, location in rows
        if item.available_from is None or item.available_from <= on_day
    ]
