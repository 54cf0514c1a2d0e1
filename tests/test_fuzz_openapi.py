"""Every operation of the OpenAPI schema fuzzed with schemathesis: no input gives a 5xx.

Calls carry a planner's API key, so the fuzzer reaches past authentication into the handlers
(anonymous calls are covered by the auth tests). The database holds the sample region with a
planned day, so ids in the generated paths often exist.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.main import create_app
from fieldplan.settings import Settings
from tests.conftest import pin_clock, seed_database

# The app is built at import (schemathesis reads its schema then); its database is seeded by
# the module fixture before the first call, in a folder of its own per test process.
DATABASE = Path(tempfile.mkdtemp(prefix="fieldplan-fuzz-")) / "fuzz.db"
APP = pin_clock(
    create_app(
        Settings(
            database_url=f"sqlite:///{DATABASE}", secret_key="k", outbox_dir=DATABASE.parent / "o"
        )
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CLIENT = TestClient(APP, raise_server_exceptions=False)
API_KEY: dict[str, str] = {}
pytestmark = [
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw:DeprecationWarning"),
]


@pytest.fixture(scope="module", autouse=True)
def seeded() -> Iterator[None]:
    key = seed_database(f"sqlite:///{DATABASE}", orders=10, password="pw", plan_days=1)
    API_KEY["Authorization"] = f"Bearer {key}"
    yield
    shutil.rmtree(DATABASE.parent, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_gives_a_server_error(case: schemathesis.Case) -> None:
    # Sent with Starlette's client rather than `case.call`: schemathesis' own transport trips
    # over the urllib3 replacement that the CalDAV client installs.
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=API_KEY)
    kwargs.pop("allow_redirects", None)
    response = CLIENT.request(**kwargs, follow_redirects=False)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
