"""A seeded generator of realistic sample regions.

The bundled region (`sample_data/region.json`, `sample_data/orders.csv`) is this generator's
output for `SampleSpec()`; a test regenerates it and compares, so the shipped files never drift
from the code. Bigger specs make regions for benchmarks.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fieldplan.gazetteer import Gazetteer
from fieldplan.importing import CSV_COLUMNS

FIRST_NAMES = [
    "Anouk",
    "Bram",
    "Daan",
    "Emma",
    "Fenna",
    "Floor",
    "Sem",
    "Lotte",
    "Lucas",
    "Julia",
    "Noah",
    "Sanne",
    "Thijs",
    "Eva",
    "Jesse",
    "Iris",
    "Ruben",
    "Femke",
    "Lars",
    "Noor",
    "Stijn",
    "Marloes",
    "Bas",
    "Ilse",
    "Joost",
    "Saskia",
    "Wouter",
    "Mirjam",
    "Pieter",
    "Yara",
    "Mohamed",
    "Fatima",
    "Zoë",
    "René",
    "Ingrid",
    "Hüseyin",
    "Chloé",
    "Björn",
    "Gijs",
    "Marieke",
]
SURNAMES = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "Vermeulen",
    "van den Heuvel",
    "Yılmaz",
    "El Amrani",
    "Öztürk",
    "van IJzendoorn",
    "Ruijs",
    "Prins",
    "Huisman",
    "Kuijpers",
]
STREETS = [
    "Kerkstraat",
    "Dorpsstraat",
    "Schoolstraat",
    "Molenweg",
    "Julianalaan",
    "Beatrixstraat",
    "Stationsweg",
    "Prins Bernhardlaan",
    "Wilhelminastraat",
    "Lindelaan",
    "Eikenlaan",
    "Vondellaan",
    "Rembrandtlaan",
    "Oranjestraat",
    "Burgemeester Grothestraat",
    "Nieuwegracht",
    "Amsterdamsestraatweg",
    "Biltstraat",
    "Kanaalweg",
    "Zonnebloemstraat",
    "Tulpstraat",
    "Parkweg",
    "Hoofdstraat",
    "Achterweg",
    "Brinkweg",
    "Leeuweriklaan",
]

# (code, kind, name, street, postcode, weekday hours) of the bundled stores and warehouse.
STORE_SITES = (
    ("S-UTR", "store", "Bouwmarkt Utrecht Kanaleneiland", "Europalaan 2", "3526 KS"),
    ("S-AMF", "store", "Bouwmarkt Amersfoort Calveen", "Hogeweg 65", "3814 CE"),
    ("S-NWG", "store", "Bouwmarkt Nieuwegein Plettenburg", "Newtonbaan 4", "3439 NK"),
    ("S-ZST", "store", "Bouwmarkt Zeist", "Steynlaan 9", "3701 EA"),
)
WAREHOUSE_SITE = ("W-HTN", "warehouse", "Distributiecentrum Houten", "Meidoornkade 20", "3992 AG")

# Skill sets of the bundled technicians, chosen so every job kind has several candidates.
SKILL_SETS = (
    ("measure", "kitchen", "plumbing"),
    ("kitchen", "plumbing", "electrical"),
    ("kitchen", "plumbing", "carpentry"),
    ("flooring", "carpentry"),
    ("flooring", "measure"),
    ("flooring",),
    ("blinds", "measure"),
    ("blinds", "carpentry", "measure"),
    ("carpentry", "flooring"),
    ("plumbing", "electrical"),
    ("measure", "blinds"),
    ("carpentry", "kitchen", "plumbing"),
    ("delivery",),
    ("delivery", "carpentry"),
    ("delivery",),
    ("delivery", "flooring"),
)
CATEGORY_MIX = (
    ("kitchen", 0.09),
    ("flooring", 0.28),
    ("blinds", 0.22),
    ("shed", 0.09),
    ("doors", 0.12),
    ("bathroom", 0.08),
    ("repair", 0.07),
    ("mixed", 0.05),
)
PRODUCTS_BY_CATEGORY = {
    "kitchen": ("KIT-ESSENTIAL", "KIT-CORNER"),
    "flooring": ("FLR-LAMINATE", "FLR-PVC-CLICK"),
    "blinds": ("BLD-ROLLER", "BLD-VENETIAN"),
    "shed": ("SHD-GARDEN", "SHD-TOOL"),
    "doors": ("DR-INTERIOR",),
    "bathroom": ("BTH-VANITY",),
}
PARTS_BY_CATEGORY = {
    "kitchen": ("P-HINGE-SET", "P-WORKTOP-JOINT", "P-SINK-TAP", "P-PLINTH"),
    "flooring": ("P-FLOOR-TRIM", "P-UNDERLAY"),
    "blinds": ("P-BLIND-BRACKET",),
    "shed": ("P-SHED-ANCHOR",),
    "doors": ("P-DOOR-HANDLE",),
    "bathroom": ("P-SILICONE",),
}


@dataclass(frozen=True)
class SampleSpec:
    seed: int = 20261123
    technicians: int = 16
    orders: int = 400
    first_order_day: date = date(2026, 11, 9)
    order_days: int = 10  # working days of orders: two weeks
    missing_part_share: float = 0.25  # of installation/repair lines that have parts
    region_code: str = "UTR"
    region_name: str = "Utrecht en omstreken"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def planning_start(self) -> date:
        """The first working day after the orders came in: where the demo starts planning."""
        return working_days(self.first_order_day, self.order_days + 1)[-1]


def working_days(start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _opening_hours(kind: str) -> dict[str, list[str]]:
    if kind == "warehouse":
        return {str(d): ["06:30", "17:00"] for d in range(5)}
    hours = {str(d): ["08:00", "21:00"] for d in range(5)}
    hours["5"] = ["08:00", "18:00"]
    hours["6"] = ["10:00", "17:00"]
    return hours


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    local = f"{first}.{last}".lower().replace(" ", "")
    ascii_local = local.encode("ascii", "ignore").decode() or "klant"
    return f"{first} {last}", f"{ascii_local}{rng.randint(1, 99)}@example.nl"


def _postcode(rng: random.Random, pc4_numbers: list[int]) -> str:
    letters = "ABCEGHJKLMNPRTVWXZ"
    return f"{rng.choice(pc4_numbers)} {rng.choice(letters)}{rng.choice(letters)}"


def build_region(spec: SampleSpec, gazetteer: Gazetteer) -> dict[str, Any]:
    rng = random.Random(spec.seed)
    locations: list[dict[str, Any]] = []
    all_parts = sorted({p for parts in PARTS_BY_CATEGORY.values() for p in parts})
    horizon_start = spec.planning_start
    for code, kind, name, street, postcode in (*STORE_SITES, WAREHOUSE_SITE):
        stock = []
        for part in all_parts:
            if kind == "warehouse":
                stock.append({"part_sku": part, "quantity": 200, "available_from": None})
            elif rng.random() < 0.55:
                stock.append(
                    {"part_sku": part, "quantity": rng.randint(2, 12), "available_from": None}
                )
            elif rng.random() < 0.5:
                arrives = horizon_start + timedelta(days=rng.randint(1, 6))
                stock.append(
                    {
                        "part_sku": part,
                        "quantity": rng.randint(4, 10),
                        "available_from": arrives.isoformat(),
                    }
                )
        locations.append(
            {
                "code": code,
                "kind": kind,
                "name": name,
                "street": street,
                "postcode": postcode,
                "city": gazetteer.place_of(postcode).name,
                "phone": "+31 30 " + str(2000000 + len(locations)),
                "email": f"service.{code.lower()}@bouwmarkt.example.nl",
                "opening_hours": _opening_hours(kind),
                "stock": stock,
            }
        )
    pc4 = gazetteer.pc4_numbers()
    technicians = []
    for index in range(spec.technicians):
        skills = SKILL_SETS[index % len(SKILL_SETS)]
        name, _ = _person(rng)
        start = rng.choice(("07:30", "08:00", "08:00", "08:30"))
        end = {"07:30": "16:00", "08:00": "16:30", "08:30": "17:00"}[start]
        weekdays = range(5) if index % 5 else (0, 1, 2, 3)  # every fifth works four days
        technicians.append(
            {
                "code": f"T{index + 1:02d}",
                "name": name,
                "skills": list(skills),
                "home_postcode": _postcode(rng, pc4),
                "van_volume_m3": 12.0 if "delivery" in skills else 6.0,
                "van_weight_kg": 1100.0 if "delivery" in skills else 700.0,
                "cost_per_hour_eur": float(rng.choice((38, 42, 45, 48))),
                "lunch_minutes": 30,
                "shifts": {str(d): [start, end] for d in weekdays},
                "absences": [],
            }
        )
    return {
        "region": {
            "code": spec.region_code,
            "name": spec.region_name,
            "timezone": "Europe/Amsterdam",
        },
        "locations": locations,
        "technicians": technicians,
    }


def _services(category: str, rng: random.Random) -> list[str]:
    if category == "kitchen":
        return ["measure", "delivery", "installation"]
    if category == "flooring":
        return (["measure"] if rng.random() < 0.5 else []) + ["delivery", "installation"]
    if category in ("blinds", "doors"):
        return ["measure", "installation"]
    if category in ("shed", "bathroom"):
        return ["delivery", "installation"] if rng.random() < 0.8 else ["delivery"]
    raise ValueError(category)


def _line(category: str, rng: random.Random) -> tuple[str, int]:
    sku = rng.choice(PRODUCTS_BY_CATEGORY[category])
    quantity = {
        "flooring": rng.randint(8, 30),
        "blinds": rng.randint(1, 6),
        "doors": rng.randint(1, 4),
    }.get(category, 1)
    return sku, quantity


def build_orders(spec: SampleSpec, gazetteer: Gazetteer) -> list[dict[str, str]]:
    rng = random.Random(spec.seed + 1)
    days = working_days(spec.first_order_day, spec.order_days)
    stores = [code for code, *_ in STORE_SITES]
    pc4 = gazetteer.pc4_numbers()
    categories = [c for c, _ in CATEGORY_MIX]
    weights = [w for _, w in CATEGORY_MIX]
    rows: list[dict[str, str]] = []
    for number in range(1, spec.orders + 1):
        ordered = days[(number - 1) * len(days) // spec.orders]
        wanted = ordered + timedelta(days=rng.choice((2, 3, 4, 7, 10)))
        name, email = _person(rng)
        channel = rng.choice(("email", "email", "sms", "phone"))
        customer = {
            "order_number": f"UTR-{ordered:%y%m}-{number:05d}",
            "order_date": ordered.isoformat(),
            "wanted_from": wanted.isoformat(),
            "store": rng.choice(stores),
            "customer_name": name,
            "email": email,
            "phone": f"+31 6 {rng.randint(10000000, 99999999)}",
            "contact_channel": channel,
            "language": "en" if rng.random() < 0.08 else "nl",
            "street": rng.choice(STREETS),
            "house_number": str(rng.randint(1, 180)) + rng.choice(("", "", "", "a", "-2")),
            "postcode": _postcode(rng, pc4),
            "notes": rng.choice(
                (
                    "",
                    "",
                    "",
                    "Bel 30 min van tevoren",
                    "Hond aanwezig",
                    "Parkeren achter het huis",
                    "Derde verdieping, geen lift",
                )
            ),
        }
        category = rng.choices(categories, weights)[0]
        if category == "repair":
            base = rng.choice(list(PRODUCTS_BY_CATEGORY))
            lines = [(base, *_line(base, rng), ["repair"])]
        elif category == "mixed":
            a, b = rng.sample(["flooring", "doors", "blinds", "bathroom"], 2)
            lines = [(c, *_line(c, rng), _services(c, rng)) for c in (a, b)]
        else:
            lines = [(category, *_line(category, rng), _services(category, rng))]
        for line_number, (cat, sku, quantity, services) in enumerate(lines, start=1):
            missing = ""
            needs_parts = "installation" in services or "repair" in services
            if needs_parts and rng.random() < spec.missing_part_share:
                part = rng.choice(PARTS_BY_CATEGORY[cat])
                missing = f"{part}:{rng.randint(1, 2)}"
            rows.append(
                {
                    **customer,
                    "line_number": str(line_number),
                    "sku": sku,
                    "quantity": str(quantity),
                    "services": ";".join(services),
                    "missing_parts": missing,
                }
            )
    return rows


def orders_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_sample(spec: SampleSpec, gazetteer: Gazetteer, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    region_path = directory / "region.json"
    orders_path = directory / "orders.csv"
    region = build_region(spec, gazetteer)
    region_path.write_text(json.dumps(region, indent=1, ensure_ascii=False) + "\n", "utf-8")
    orders_path.write_text(orders_csv(build_orders(spec, gazetteer)), encoding="utf-8")
    return region_path, orders_path
