"""Loads a region file (stores, warehouse, stock, technicians) into the database.

Loading is idempotent on codes: a second load updates rows in place instead of adding twins.
"""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldplan.gazetteer import Gazetteer
from fieldplan.locations import Location, LocationKind, OpeningHours, StockItem
from fieldplan.regions import Region
from fieldplan.technicians import Absence, Shift, Technician


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def load_region(session: Session, path: Path, gazetteer: Gazetteer) -> Region:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    spec = data["region"]
    region = session.scalar(select(Region).where(Region.code == spec["code"]))
    if region is None:
        region = Region(code=spec["code"], name=spec["name"], timezone=spec["timezone"])
        session.add(region)
        session.flush()
    region.name = spec["name"]
    region.timezone = spec["timezone"]
    for item in data["locations"]:
        _load_location(session, region, item, gazetteer)
    for item in data["technicians"]:
        _load_technician(session, region, item, gazetteer)
    session.flush()
    return region


def _load_location(
    session: Session, region: Region, item: dict[str, Any], gazetteer: Gazetteer
) -> None:
    located = gazetteer.locate(item["postcode"])
    location = session.scalar(select(Location).where(Location.code == item["code"]))
    if location is None:
        location = Location(code=item["code"])
        session.add(location)
    location.region_id = region.id
    location.kind = LocationKind(item["kind"])
    location.name = item["name"]
    location.street = item["street"]
    location.postcode = located.postcode
    location.city = item.get("city", located.place.name)
    location.latitude = located.latitude
    location.longitude = located.longitude
    location.phone = item.get("phone", "")
    location.email = item.get("email", "")
    # Old rows go first: replacing the list in one flush would insert before it deletes and
    # trip the (location, weekday) uniqueness.
    location.opening_hours.clear()
    location.stock.clear()
    session.flush()
    location.opening_hours = [
        OpeningHours(weekday=int(day), opens=_hhmm(hours[0]), closes=_hhmm(hours[1]))
        for day, hours in sorted(item["opening_hours"].items())
    ]
    location.stock = [
        StockItem(
            part_sku=s["part_sku"],
            quantity=s["quantity"],
            available_from=date.fromisoformat(s["available_from"]) if s["available_from"] else None,
        )
        for s in item["stock"]
    ]
    session.flush()


def _load_technician(
    session: Session, region: Region, item: dict[str, Any], gazetteer: Gazetteer
) -> None:
    home = gazetteer.locate(item["home_postcode"])
    technician = session.scalar(select(Technician).where(Technician.code == item["code"]))
    if technician is None:
        technician = Technician(code=item["code"])
        session.add(technician)
    technician.region_id = region.id
    technician.name = item["name"]
    technician.skills = sorted(item["skills"])
    technician.home_address = f"{home.postcode} {home.place.name}"
    technician.home_latitude = home.latitude
    technician.home_longitude = home.longitude
    technician.van_volume_m3 = item["van_volume_m3"]
    technician.van_weight_kg = item["van_weight_kg"]
    technician.cost_per_hour_eur = item["cost_per_hour_eur"]
    technician.lunch_minutes = item.get("lunch_minutes", 30)
    technician.shifts.clear()
    technician.absences.clear()
    session.flush()
    technician.shifts = [
        Shift(weekday=int(day), start=_hhmm(hours[0]), end=_hhmm(hours[1]))
        for day, hours in sorted(item["shifts"].items())
    ]
    technician.absences = [
        Absence(
            first_day=date.fromisoformat(a["first_day"]),
            last_day=date.fromisoformat(a["last_day"]),
            reason=a.get("reason", ""),
        )
        for a in item.get("absences", [])
    ]
    session.flush()
