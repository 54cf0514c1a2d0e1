"""Seeded points in the sample region for the generated benchmark worlds: the stores and the
warehouse first, then homes and customers scattered around random postcodes."""

from __future__ import annotations

import random

from fieldplan.gazetteer import Gazetteer
from fieldplan.sample_region import STORE_SITES, WAREHOUSE_SITE
from fieldplan.settings import get_settings

Coordinate = tuple[float, float]


class RandomPlaces:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.gazetteer = Gazetteer.from_directory(get_settings().sample_data_dir)
        self.pc4 = self.gazetteer.pc4_numbers()
        self.points: list[Coordinate] = []
        self.sites: list[tuple[str, int]] = []  # (site code, place index)
        for code, _, _, _, postcode in (*STORE_SITES, WAREHOUSE_SITE):
            located = self.gazetteer.locate(postcode)
            self.sites.append((code, len(self.points)))
            self.points.append((located.latitude, located.longitude))

    def add(self) -> int:
        """A new point near a random postcode; returns its place index."""
        located = self.gazetteer.locate(f"{self.rng.choice(self.pc4)} AB")
        self.points.append(
            (
                located.latitude + self.rng.uniform(-0.01, 0.01),
                located.longitude + self.rng.uniform(-0.015, 0.015),
            )
        )
        return len(self.points) - 1
