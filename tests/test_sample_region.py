"""The bundled region is the generator's output, and it looks like the brief says."""

from __future__ import annotations

import json
from pathlib import Path

from fieldplan.gazetteer import Gazetteer
from fieldplan.sample_region import SampleSpec, build_orders, write_sample
from tests.conftest import SAMPLE


def test_shipped_files_are_exactly_what_the_generator_makes(
    gazetteer: Gazetteer, tmp_path: Path
) -> None:
    region, orders = write_sample(SampleSpec(), gazetteer, tmp_path)
    assert region.read_text() == (SAMPLE / "region.json").read_text()
    assert orders.read_text() == (SAMPLE / "orders.csv").read_text()


def test_region_has_stores_a_warehouse_and_varied_technicians() -> None:
    region = json.loads((SAMPLE / "region.json").read_text())
    kinds = [loc["kind"] for loc in region["locations"]]
    assert 3 <= kinds.count("store") <= 5
    assert kinds.count("warehouse") == 1
    technicians = region["technicians"]
    assert 12 <= len(technicians) <= 20
    assert len({tuple(t["skills"]) for t in technicians}) >= 8
    assert len({tuple(t["shifts"]["0"]) for t in technicians}) >= 2
    assert any(len(t["shifts"]) == 4 for t in technicians)


def test_the_generator_is_seeded_and_scales(gazetteer: Gazetteer) -> None:
    big = SampleSpec(seed=7, orders=2000, technicians=60)
    assert build_orders(big, gazetteer) == build_orders(big, gazetteer)
    assert len({r["order_number"] for r in build_orders(big, gazetteer)}) == 2000
    assert build_orders(SampleSpec(seed=8), gazetteer) != build_orders(
        SampleSpec(seed=7), gazetteer
    )


def test_loading_the_region_twice_updates_in_place(session, gazetteer) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from fieldplan.catalogue import load_catalogue
    from fieldplan.locations import OpeningHours
    from fieldplan.region_setup import load_region
    from fieldplan.technicians import Shift, Technician

    load_catalogue(session, SAMPLE / "catalogue.json")
    for _ in range(2):
        load_region(session, SAMPLE / "region.json", gazetteer)
    assert session.scalar(select(func.count()).select_from(Technician)) == 16
    assert session.scalar(select(func.count()).select_from(OpeningHours)) == 4 * 7 + 5
    assert session.scalar(select(func.count()).select_from(Shift)) > 16 * 3
