"""Travel times and distances between coordinates.

The default provider needs no road network: geodesic distance (great circle on geopy's mean
Earth radius; within 0.5 % of geopy's ellipsoidal `geodesic` at regional distances, which a test
checks) times a road-detour factor, driven at a speed that depends on how far the trip is.

Where the factors come from:
- Detour (circuity): Ballou, Rahardja and Sakai (2002, Transportation Research A 36) report
  road-to-straight-line ratios near 1.2 for Western European countries; short urban hops detour
  more (one-way streets, canals, bridges), so fieldplan takes 1.35 for the first 5 km of
  straight line and 1.2 for the rest.
- Speeds: Dutch limits are 30-50 km/h in towns, 80 km/h on provincial roads and 100-130 km/h on
  motorways; with junctions, lights and congestion, fieldplan drives the first 3 road-km at
  25 km/h, the next 12 at 50 km/h and everything beyond at 85 km/h. Each band only covers its
  own stretch, so time grows smoothly and monotonically with distance.
- Every trip between two different addresses costs 3 minutes more to park and walk to the
  door; two jobs at one address cost nothing to go between.
A user with a road network plugs in `OsrmTravelTimes` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
from geopy.distance import EARTH_RADIUS

Coordinate = tuple[float, float]  # (latitude, longitude) in degrees
IntMatrix = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TravelMatrices:
    """Square matrices over the given points: seconds and metres from row to column."""

    duration_s: IntMatrix
    distance_m: IntMatrix


class TravelTimes(Protocol):
    def matrices(self, points: Sequence[Coordinate]) -> TravelMatrices: ...


@dataclass(frozen=True)
class SpeedBand:
    up_to_km: float  # road kilometres this band reaches to (inf for the last band)
    speed_kmh: float


DEFAULT_BANDS = (
    SpeedBand(3.0, 25.0),
    SpeedBand(15.0, 50.0),
    SpeedBand(float("inf"), 85.0),
)


def great_circle_m(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pairwise great-circle distances in metres (haversine, vectorised)."""
    lat = np.radians(points[:, 0])
    lon = np.radians(points[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    radius_m = float(EARTH_RADIUS) * 1000.0
    distance: npt.NDArray[np.float64] = 2 * radius_m * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance


class GeodesicTravelTimes:
    def __init__(
        self,
        *,
        urban_detour: float = 1.35,
        regional_detour: float = 1.2,
        urban_straight_km: float = 5.0,
        bands: Sequence[SpeedBand] = DEFAULT_BANDS,
        parking_s: int = 180,
    ) -> None:
        self.urban_detour = urban_detour
        self.regional_detour = regional_detour
        self.urban_straight_km = urban_straight_km
        self.bands = tuple(bands)
        self.parking_s = parking_s
        self._cached = lru_cache(maxsize=32)(self._compute)

    def matrices(self, points: Sequence[Coordinate]) -> TravelMatrices:
        key = tuple((round(lat, 6), round(lon, 6)) for lat, lon in points)
        return self._cached(key)

    def road_km(self, straight_km: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        urban = np.minimum(straight_km, self.urban_straight_km)
        rest = np.maximum(straight_km - self.urban_straight_km, 0.0)
        return urban * self.urban_detour + rest * self.regional_detour

    def drive_s(self, road_km: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        seconds = np.zeros_like(road_km)
        lower = 0.0
        for band in self.bands:
            stretch = np.clip(road_km - lower, 0.0, band.up_to_km - lower)
            seconds += stretch / band.speed_kmh * 3600.0
            lower = band.up_to_km
        return seconds

    def _compute(self, key: tuple[Coordinate, ...]) -> TravelMatrices:
        if not key:
            empty = np.zeros((0, 0), dtype=np.int64)
            return TravelMatrices(empty, empty)
        points = np.asarray(key, dtype=np.float64)
        straight_km = great_circle_m(points) / 1000.0
        road_km = self.road_km(straight_km)
        seconds = self.drive_s(road_km) + np.where(straight_km > 0.001, self.parking_s, 0)
        distance = np.rint(road_km * 1000.0).astype(np.int64)
        duration = np.rint(seconds).astype(np.int64)
        distance.setflags(write=False)
        duration.setflags(write=False)
        return TravelMatrices(duration_s=duration, distance_m=distance)


class OsrmError(RuntimeError):
    pass


class OsrmTravelTimes:
    """Matrices from an OSRM server's `table` service (for a user who runs OSRM).

    OSRM refuses tables above its `--max-table-size` (100 by default), so larger sets are asked
    for in blocks of sources x destinations and stitched together.
    """

    def __init__(
        self,
        base_url: str,
        *,
        profile: str = "driving",
        max_table_size: int = 100,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.block = max(1, max_table_size // 2)
        self.client = client or httpx.Client(timeout=30.0)

    def matrices(self, points: Sequence[Coordinate]) -> TravelMatrices:
        n = len(points)
        duration = np.zeros((n, n), dtype=np.int64)
        distance = np.zeros((n, n), dtype=np.int64)
        for src in range(0, n, self.block):
            for dst in range(0, n, self.block):
                sources = list(range(src, min(src + self.block, n)))
                destinations = list(range(dst, min(dst + self.block, n)))
                d, m = self._table(points, sources, destinations)
                duration[np.ix_(sources, destinations)] = d
                distance[np.ix_(sources, destinations)] = m
        return TravelMatrices(duration_s=duration, distance_m=distance)

    def _table(
        self, points: Sequence[Coordinate], sources: list[int], destinations: list[int]
    ) -> tuple[IntMatrix, IntMatrix]:
        wanted = sorted(set(sources) | set(destinations))
        position = {index: i for i, index in enumerate(wanted)}
        coordinates = ";".join(f"{points[i][1]:.6f},{points[i][0]:.6f}" for i in wanted)
        params = {
            "annotations": "duration,distance",
            "sources": ";".join(str(position[i]) for i in sources),
            "destinations": ";".join(str(position[i]) for i in destinations),
        }
        url = f"{self.base_url}/table/v1/{self.profile}/{coordinates}"
        response = self.client.get(url, params=params)
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("code") != "Ok":
            raise OsrmError(f"OSRM table failed: {body.get('code')}: {body.get('message', '')}")
        return _as_matrix(body, "durations"), _as_matrix(body, "distances")


def _as_matrix(body: dict[str, Any], field: str) -> IntMatrix:
    rows = body.get(field)
    if rows is None:
        raise OsrmError(f"OSRM answer has no {field}: start osrm-routed with annotations")
    if any(value is None for row in rows for value in row):
        raise OsrmError(f"OSRM found no route between some points ({field} has null)")
    return np.rint(np.asarray(rows, dtype=np.float64)).astype(np.int64)


def travel_times(osrm_url: str | None) -> TravelTimes:
    """The configured provider: OSRM when a server is named, else the geodesic estimate."""
    return OsrmTravelTimes(osrm_url) if osrm_url else GeodesicTravelTimes()
