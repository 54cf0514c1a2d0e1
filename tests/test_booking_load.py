"""Fifty customers booking at once through `uvicorn --workers 2` on each database: no 5xx,
nothing acknowledged lost or doubled, nothing wrong in the stored plans afterwards. (How
long they waited is the benchmark's business: `python -m benchmarks.booking_load`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.booking_load import run, seed
from tests.conftest import BACKENDS, empty_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_fifty_clients_booking_at_once_get_no_5xx_and_lose_nothing(
    backend: str, tmp_path: Path
) -> None:
    with empty_database(backend, tmp_path) as url:
        api_key = seed(url)
        result = run(url, api_key, clients=50, workers=2, log=tmp_path / "server.log")
    assert result.server_errors == 0, (tmp_path / "server.log").read_text()[-3000:]
    assert result.lost == []
    assert result.defects == []
    assert len(result.acknowledged) >= 40, result.statuses
