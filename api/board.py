"""The planner board's geometry: timeline blocks and an offline map, computed on the server.

The map needs no tiles: routes are drawn as SVG over the region's outline, the convex hull of
the places the project ships (sample_data/places.csv), projected equirectangularly, which is
accurate enough at the scale of one region.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from math import cos, radians
from pathlib import Path
from zoneinfo import ZoneInfo

DAY_START, DAY_END = time(7, 0), time(19, 0)
COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22",
)  # fmt: skip
MAP_W, MAP_H, MARGIN = 640, 420, 16


@dataclass(frozen=True)
class Block:
    kind: str  # job, pickup, break, travel
    left_pct: float
    width_pct: float
    label: str
    job_id: int | None = None
    promise_left_pct: float | None = None
    promise_width_pct: float | None = None
    pinned: bool = False
    short: str = ""  # what a block too narrow for its label shows
    inside: bool = False  # a lunch taken on site, inside the job it interrupts


NARROW_PCT = 7.0  # below this width a job block shows its short label


def _minutes(moment: datetime, zone: ZoneInfo) -> float:
    local = moment.astimezone(zone)
    return local.hour * 60 + local.minute + local.second / 60


def position(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[float, float]:
    """Left and width in percent of the board's day (07:00 to 19:00)."""
    first = DAY_START.hour * 60
    span = (DAY_END.hour - DAY_START.hour) * 60
    a = max(0.0, min(span, _minutes(start, zone) - first))
    b = max(0.0, min(span, _minutes(end, zone) - first))
    return round(100 * a / span, 2), round(max(0.4, 100 * (b - a) / span), 2)


@lru_cache(maxsize=4)
def outline(places_csv: Path) -> tuple[tuple[float, float], ...]:
    """The convex hull (lat, lon) of the bundled places: the region's outline on the map."""
    with places_csv.open(newline="", encoding="utf-8") as handle:
        points = sorted(
            {(float(r["longitude"]), float(r["latitude"])) for r in csv.DictReader(handle)}
        )
    if len(points) < 3:
        return tuple((lat, lon) for lon, lat in points)

    def turn(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in points:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(points):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return tuple((lat, lon) for lon, lat in hull)


@dataclass(frozen=True)
class Projection:
    """Latitude/longitude to SVG coordinates for a bounding box with a margin."""

    south: float
    west: float
    scale: float
    height: float

    @classmethod
    def fit(cls, points: list[tuple[float, float]]) -> Projection:
        lats = [p[0] for p in points] or [52.0]
        lons = [p[1] for p in points] or [5.0]
        pad = 0.03
        south, north = min(lats) - pad, max(lats) + pad
        west, east = min(lons) - pad, max(lons) + pad
        squeeze = cos(radians((south + north) / 2))
        scale = min(
            (MAP_W - 2 * MARGIN) / ((east - west) * squeeze),
            (MAP_H - 2 * MARGIN) / (north - south),
        )
        return cls(south, west, scale, (north - south) * scale)

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        squeeze = cos(radians(self.south))
        x = MARGIN + (lon - self.west) * squeeze * self.scale
        y = MARGIN + self.height - (lat - self.south) * self.scale
        return round(x, 1), round(y, 1)

    def path(self, points: list[tuple[float, float]]) -> str:
        return " ".join(f"{x},{y}" for x, y in (self.xy(lat, lon) for lat, lon in points))
