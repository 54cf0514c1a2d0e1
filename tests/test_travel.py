import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from geopy.distance import geodesic

from fieldplan.travel import GeodesicTravelTimes, OsrmError, OsrmTravelTimes, great_circle_m

UTRECHT = (52.09083, 5.12222)
AMERSFOORT = (52.155, 5.3875)
ZEIST = (52.09, 5.23333)
WOERDEN = (52.085, 4.88333)
RECORDED = Path(__file__).parent / "data" / "osrm_table_utrecht.json"


def test_great_circle_agrees_with_geopy_geodesic() -> None:
    points = np.array([UTRECHT, AMERSFOORT, ZEIST, WOERDEN])
    ours = great_circle_m(points)
    for i in range(4):
        for j in range(4):
            if i != j:
                reference = geodesic(points[i], points[j]).meters
                assert abs(ours[i, j] - reference) / reference < 0.005


def test_matrices_are_square_symmetric_with_zero_diagonal() -> None:
    m = GeodesicTravelTimes().matrices([UTRECHT, AMERSFOORT, ZEIST])
    assert m.duration_s.shape == (3, 3)
    assert (np.diag(m.duration_s) == 0).all()
    assert (m.duration_s == m.duration_s.T).all()
    assert (m.distance_m == m.distance_m.T).all()


def test_road_distance_exceeds_straight_line_by_the_detour_factor() -> None:
    travel = GeodesicTravelTimes()
    m = travel.matrices([UTRECHT, AMERSFOORT])
    straight = geodesic(UTRECHT, AMERSFOORT).meters
    assert 1.2 * straight < m.distance_m[0, 1] < 1.35 * straight


def test_utrecht_to_amersfoort_takes_a_realistic_half_hour() -> None:
    minutes = GeodesicTravelTimes().matrices([UTRECHT, AMERSFOORT]).duration_s[0, 1] / 60
    assert 20 < minutes < 40


def test_short_hops_are_slower_per_km_than_long_trips() -> None:
    travel = GeodesicTravelTimes(parking_s=0)
    km = np.array([2.0, 40.0])
    seconds = travel.drive_s(km)
    assert seconds[0] / km[0] > seconds[1] / km[1]


def test_time_grows_with_distance() -> None:
    travel = GeodesicTravelTimes()
    km = np.linspace(0, 80, 200)
    assert (np.diff(travel.drive_s(travel.road_km(km))) > 0).all()


def test_two_jobs_at_one_address_cost_no_travel() -> None:
    m = GeodesicTravelTimes().matrices([UTRECHT, UTRECHT])
    assert m.duration_s[0, 1] == 0
    assert m.distance_m[0, 1] == 0


def test_matrices_are_cached_and_read_only() -> None:
    travel = GeodesicTravelTimes()
    first = travel.matrices([UTRECHT, ZEIST])
    assert travel.matrices([UTRECHT, ZEIST]) is first
    with pytest.raises(ValueError, match="read-only"):
        first.duration_s[0, 1] = 1


def _osrm_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    recorded = json.loads(RECORDED.read_text())

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        coords = request.url.path.split("/")[-1].split(";")
        index = {c: i for i, c in enumerate(recorded["coordinates"])}
        rows = [index[coords[int(s)]] for s in request.url.params["sources"].split(";")]
        cols = [index[coords[int(d)]] for d in request.url.params["destinations"].split(";")]
        body = {
            "code": "Ok",
            "durations": [[recorded["durations"][r][c] for c in cols] for r in rows],
            "distances": [[recorded["distances"][r][c] for c in cols] for r in rows],
        }
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


def test_osrm_table_is_read_from_a_recorded_response() -> None:
    seen: list[httpx.Request] = []
    client = httpx.Client(transport=_osrm_transport(seen))
    osrm = OsrmTravelTimes("http://osrm.local:5000", client=client)
    m = osrm.matrices([UTRECHT, AMERSFOORT, ZEIST])
    recorded = json.loads(RECORDED.read_text())
    assert m.duration_s[0, 1] == round(recorded["durations"][0][1])
    assert m.distance_m[1, 2] == round(recorded["distances"][1][2])
    assert seen[0].url.params["annotations"] == "duration,distance"
    assert seen[0].url.path.startswith("/table/v1/driving/5.122220,52.090830;")


def test_osrm_large_tables_are_stitched_from_blocks() -> None:
    seen: list[httpx.Request] = []
    client = httpx.Client(transport=_osrm_transport(seen))
    whole = OsrmTravelTimes("http://osrm.local", client=client).matrices(
        [UTRECHT, AMERSFOORT, ZEIST, WOERDEN]
    )
    blocks = OsrmTravelTimes("http://osrm.local", client=client, max_table_size=2).matrices(
        [UTRECHT, AMERSFOORT, ZEIST, WOERDEN]
    )
    assert (whole.duration_s == blocks.duration_s).all()
    assert len(seen) == 1 + 16


def test_osrm_unreachable_pairs_raise() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"code": "Ok", "durations": [[0, None], [None, 0]], "distances": [[0, 1], [1, 0]]},
        )

    osrm = OsrmTravelTimes(
        "http://osrm.local", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(OsrmError, match="no route"):
        osrm.matrices([UTRECHT, AMERSFOORT])


def test_osrm_error_answers_raise() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "TooBig", "message": "Too many table coordinates"})

    osrm = OsrmTravelTimes(
        "http://osrm.local", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(OsrmError, match="TooBig"):
        osrm.matrices([UTRECHT, AMERSFOORT])
