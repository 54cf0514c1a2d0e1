"""Products and the service catalogue: which jobs an order line creates, and their rules.

The catalogue is data (sample_data/catalogue.json, loaded into these tables), so a retailer
changes durations, skills or lead times without touching code.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fieldplan.db import Base


class JobKind(StrEnum):
    MEASURE = "measure"
    DELIVERY = "delivery"
    INSTALLATION = "installation"
    REPAIR = "repair"


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), index=True)
    volume_m3: Mapped[float] = mapped_column(Float, default=0.0)
    weight_kg: Mapped[float] = mapped_column(Float, default=0.0)
    # Parts an installation of this product consumes (sku -> quantity per unit).
    parts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class Part(Base):
    __tablename__ = "parts"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    volume_m3: Mapped[float] = mapped_column(Float, default=0.0)
    weight_kg: Mapped[float] = mapped_column(Float, default=0.0)


class ServiceRule(Base):
    """How one service bought for a product category becomes a job."""

    __tablename__ = "service_rules"
    __table_args__ = (UniqueConstraint("category", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    kind: Mapped[JobKind] = mapped_column(String(20))
    base_minutes: Mapped[int] = mapped_column(Integer)
    minutes_per_unit: Mapped[int] = mapped_column(Integer, default=0)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    crew_size: Mapped[int] = mapped_column(Integer, default=1)
    # Deliveries heavier than this need a second person, whatever crew_size says.
    two_person_above_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Working days of a multi-day installation; 1 for a job inside one day.
    days: Mapped[int] = mapped_column(Integer, default=1)
    # Delivery of made-to-measure goods waits this many working days after measuring.
    lead_working_days_after_measure: Mapped[int] = mapped_column(Integer, default=0)
    installation_same_day_as_delivery: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)


class CatalogueError(ValueError):
    pass


def load_catalogue(session: Session, path: Path) -> int:
    """Insert or update products, parts and rules from a catalogue file; returns rows touched."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    touched = 0
    for part in data.get("parts", []):
        session.merge(Part(**part))
        touched += 1
    for product in data.get("products", []):
        session.merge(Product(**product))
        touched += 1
    existing = {(r.category, r.kind): r for r in session.scalars(select(ServiceRule))}
    for category, services in data.get("services", {}).items():
        for kind_name, rule in services.items():
            kind = JobKind(kind_name)
            row = existing.get((category, kind))
            if row is None:
                row = ServiceRule(category=category, kind=kind)
                session.add(row)
            for key, value in rule.items():
                if not hasattr(ServiceRule, key):
                    raise CatalogueError(f"{path.name}: {category}.{kind_name}: unknown rule {key}")
                setattr(row, key, value)
            touched += 1
    session.flush()
    return touched


def services_for(session: Session, category: str) -> dict[JobKind, ServiceRule]:
    rules = session.scalars(select(ServiceRule).where(ServiceRule.category == category))
    return {JobKind(rule.kind): rule for rule in rules}


def part_rows(session: Session) -> dict[str, Part]:
    return {part.sku: part for part in session.scalars(select(Part))}
