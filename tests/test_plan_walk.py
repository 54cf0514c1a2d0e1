"""A stateful walk through a planner's and the customers' day on the demo region, through the
API: offer and book (planner and customer page), move, cancel, pin, unassign, move a job,
optimise, the technicians' reports, illness and urgent repairs, in random order. After every
step no answer was a 5xx, every acknowledged booking is in the database and the stored plans
keep every promise and rule (`plan_gate.region_defects`, what `fieldplan check-plans` runs).

Hypothesis drives it: a few short walks in the normal run, many long ones with
`pytest tests/test_plan_walk.py --hypothesis-profile=long`. Each walk starts from a copy of
one seeded database (SQLite: a file copy; PostgreSQL: a template database).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import make_url, select, text

from api.main import create_app
from fieldplan import plan_gate
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.db import make_engine
from fieldplan.jobs import Job, JobStatus
from fieldplan.orders import Order
from fieldplan.plans import StopKind, latest_plan
from fieldplan.regions import Region
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from tests.conftest import NOW, pin_clock, postgres_admin_url, require_postgres, seed_database
from tests.test_self_service import WINDOW_VALUE

# The normal run's walks; `--hypothesis-profile=long` (registered in conftest) walks far more.
# Shrinking a walk costs minutes: the normal run reports the walk as it went, with its log.
WALKS = settings(
    max_examples=2,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)
TODAY = date(2026, 11, 23)  # NOW's day in Amsterdam: its routes are out, the day is on


@dataclass(frozen=True)
class Seeded:
    backend: str
    source: str  # the file to copy, or the template database's name


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("walk") / "seed.db"
        seed_database(f"sqlite:///{path}", orders=80, password="pw", plan_days=5)
        yield Seeded("sqlite", str(path))
        return
    require_postgres()
    name = f"fieldplan_walk_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_admin_url()).set(database=name)
    seed_database(url.render_as_string(hide_password=False), orders=80, password="pw", plan_days=5)
    yield Seeded("postgresql", name)
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(statement: str) -> None:
    admin = make_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


def _copy(seeded: Seeded, tmp: Path) -> tuple[str, str | None]:
    """A fresh database with the seeded content; (url, database to drop afterwards)."""
    if seeded.backend == "sqlite":
        path = tmp / f"walk-{uuid.uuid4().hex[:8]}.db"
        shutil.copy(seeded.source, path)
        return f"sqlite:///{path}", None
    name = f"fieldplan_walk_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{seeded.source}"')
    url = make_url(postgres_admin_url()).set(database=name)
    return url.render_as_string(hide_password=False), name


def _api_key(url: str) -> str:
    """The seeded planner's key is not kept in clear: make another one for the walk."""
    from fieldplan.accounts import Role, create_account
    from fieldplan.db import session_factory, unit_of_work
    from fieldplan.regions import Region

    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        name = f"walker-{uuid.uuid4().hex[:6]}"
        regions = session.scalars(select(Region))
        _, key = create_account(session, name, Role.PLANNER, "pw", regions)
    engine.dispose()
    return key


class PlannersDay(RuleBasedStateMachine):
    """One walk: the world is made fresh in `__init__` from the seeded copy."""

    seeded: Seeded
    tmp: Path

    def __init__(self) -> None:
        super().__init__()
        self.url, self.drop = _copy(self.seeded, self.tmp)
        key = _api_key(self.url)
        app = create_app(Settings(database_url=self.url, secret_key="k", outbox_dir=self.tmp))
        self.app = pin_clock(app, NOW)
        self.client = TestClient(self.app)
        self.client.__enter__()
        self.headers = {"Authorization": f"Bearer {key}"}
        self.acknowledged: dict[int, int] = {}  # appointment id -> job id, booked and live
        self.cancelled: set[int] = set()
        self.log: list[str] = []

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)
        self.app.state.sessions.kw["bind"].dispose()
        if self.drop is not None:
            _admin(f'DROP DATABASE IF EXISTS "{self.drop}" WITH (FORCE)')

    # helpers ------------------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", self.headers)
        response = self.client.request(method, path, **kwargs)
        self.log.append(f"{method} {path} -> {response.status_code}")
        assert response.status_code < 500, f"{method} {path}: {response.text[:500]}"
        return response

    def query(self, statement: Any) -> list[Any]:
        with self.app.state.sessions() as session:
            return list(session.scalars(statement))

    def pick(self, data: st.DataObject, items: list[Any], label: str) -> Any:
        return data.draw(st.sampled_from(items), label=label) if items else None

    def jobs(self, *statuses: JobStatus) -> list[int]:
        return self.query(select(Job.id).where(Job.status.in_(statuses)).order_by(Job.id))

    def live(self) -> list[int]:
        return sorted(a for a in self.acknowledged if a not in self.cancelled)

    def todays_jobs(self) -> list[int]:
        with self.app.state.sessions() as session:
            region = session.scalars(select(Region)).one()
            plan = latest_plan(session, region.id, TODAY)
            return sorted(
                {
                    s.job_id
                    for r in (plan.routes if plan else [])
                    for s in r.stops
                    if s.kind == StopKind.JOB and s.job_id is not None and not s.second_person
                }
            )

    # rules --------------------------------------------------------------------------------

    @rule(data=st.data())
    def planner_books(self, data: st.DataObject) -> None:
        job_id = self.pick(data, self.jobs(JobStatus.NEW, JobStatus.PLANNED), "job")
        if job_id is None:
            return
        offered = self.call("GET", f"/jobs/{job_id}/windows").json()
        windows = offered.get("windows") or []
        if not windows:
            return
        window = self.pick(data, windows[:6], "window")
        made = self.call(
            "POST",
            f"/jobs/{job_id}/appointment",
            json={"start": window["start"], "end": window["end"]},
        )
        if made.status_code == 201:
            self.acknowledged[made.json()["id"]] = job_id

    @rule(data=st.data())
    def customer_books(self, data: st.DataObject) -> None:
        orders = self.query(
            select(Order.id)
            .where(Order.id.in_(select(Job.order_id).where(Job.status == JobStatus.NEW)))
            .order_by(Order.id)
        )
        order_id = self.pick(data, orders[:30], "order")
        if order_id is None:
            return
        url = self.call("GET", f"/orders/{order_id}/customer-link").json()["url"]
        page = "/" + url.split("://", 1)[1].split("/", 1)[1]
        jobs = self.query(
            select(Job.id).where(Job.order_id == order_id, Job.status == JobStatus.NEW)
        )
        job_id = self.pick(data, jobs, "job")
        windows = self.call("GET", f"{page}/jobs/{job_id}/windows", headers={})
        values = WINDOW_VALUE.findall(windows.text)
        if not values:
            return
        self.call(
            "POST",
            f"{page}/jobs/{job_id}/book",
            headers={},
            data={"window": self.pick(data, values[:6], "window"), "key": uuid.uuid4().hex},
            follow_redirects=False,
        )
        for appointment in self.query(
            select(Appointment).where(
                Appointment.job_id == job_id, Appointment.status != AppointmentStatus.CANCELLED
            )
        ):
            self.acknowledged[appointment.id] = job_id

    @rule(data=st.data())
    def planner_moves_a_promise(self, data: st.DataObject) -> None:
        appointment_id = self.pick(data, self.live(), "appointment")
        if appointment_id is None:
            return
        job_id = self.acknowledged[appointment_id]
        windows = self.call("GET", f"/jobs/{job_id}/windows").json().get("windows") or []
        if not windows:
            return
        window = self.pick(data, windows[:6], "window")
        self.call(
            "PUT",
            f"/appointments/{appointment_id}",
            json={"start": window["start"], "end": window["end"]},
        )

    @rule(data=st.data())
    def planner_cancels(self, data: st.DataObject) -> None:
        appointment_id = self.pick(data, self.live(), "appointment")
        if appointment_id is None:
            return
        if self.call("DELETE", f"/appointments/{appointment_id}").status_code == 200:
            self.cancelled.add(appointment_id)

    @rule(data=st.data(), position=st.one_of(st.none(), st.integers(0, 3)))
    def planner_pins(self, data: st.DataObject, position: int | None) -> None:
        job_id = self.pick(data, self.jobs(JobStatus.NEW, JobStatus.PLANNED)[:40], "job")
        technician = self.pick(data, self.query(select(Technician.id)), "technician")
        day = TODAY + timedelta(days=data.draw(st.integers(1, 4), label="days ahead"))
        if job_id is None:
            return
        body: dict[str, Any] = {"technician_id": technician, "day": day.isoformat()}
        if position is not None:
            body["position"] = position
        self.call("PUT", f"/jobs/{job_id}/pin", json=body)

    @rule(data=st.data(), renegotiate=st.booleans())
    def planner_unassigns(self, data: st.DataObject, renegotiate: bool) -> None:
        job_id = self.pick(data, self.jobs(JobStatus.PLANNED), "job")
        if job_id is not None:
            self.call("POST", f"/jobs/{job_id}/unassign", json={"renegotiate": renegotiate})

    @rule(data=st.data(), renegotiate=st.booleans())
    def planner_moves_a_job(self, data: st.DataObject, renegotiate: bool) -> None:
        job_id = self.pick(data, self.jobs(JobStatus.NEW, JobStatus.PLANNED), "job")
        technician = self.pick(data, self.query(select(Technician.id)), "technician")
        day = TODAY + timedelta(days=data.draw(st.integers(1, 4), label="days ahead"))
        if job_id is None:
            return
        self.call(
            "POST",
            f"/jobs/{job_id}/move",
            json={"technician_id": technician, "day": day.isoformat(), "renegotiate": renegotiate},
        )

    @rule(first=st.integers(0, 3), days=st.integers(1, 2))
    def planner_optimises(self, first: int, days: int) -> None:
        day = TODAY + timedelta(days=first)
        run = self.call(
            "POST",
            "/plans/optimisations",
            json={"region_id": 1, "first_day": day.isoformat(), "days": days, "time_limit_s": 1},
        )
        if run.status_code != 202:
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = self.call("GET", f"/plans/optimisations/{run.json()['id']}").json()
            if status["status"] != "running":
                error = status["error"] or ""
                assert status["status"] != "failed" or "run it again" in error, error
                return
            time.sleep(0.1)
        raise AssertionError("the optimisation did not end")

    @rule(
        data=st.data(),
        kind=st.sampled_from(
            ["on_the_way", "started", "done", "running_late", "not_home", "part_missing"]
        ),
        late_min=st.integers(5, 150),
    )
    def technician_reports(self, data: st.DataObject, kind: str, late_min: int) -> None:
        job_id = self.pick(data, self.todays_jobs(), "job")
        if job_id is None:
            return
        body: dict[str, Any] = {"kind": kind}
        if kind == "running_late":
            body["eta"] = (NOW + timedelta(minutes=late_min)).isoformat()
        if kind == "part_missing":
            body["part_sku"] = "P-HINGE"
        self.call("POST", f"/jobs/{job_id}/reports", json=body)

    @rule(data=st.data(), ahead=st.integers(0, 2))
    def technician_falls_ill(self, data: st.DataObject, ahead: int) -> None:
        technician = self.pick(data, self.query(select(Technician.id)), "technician")
        day = TODAY + timedelta(days=ahead)
        self.call("POST", f"/technicians/{technician}/ill", json={"day": day.isoformat()})

    @rule(data=st.data())
    def urgent_repair(self, data: st.DataObject) -> None:
        order_id = self.pick(data, self.query(select(Order.id).order_by(Order.id))[:30], "order")
        self.call(
            "POST",
            f"/orders/{order_id}/repairs",
            json={"description": "leaking tap", "duration_min": 45},
        )

    # what must hold after every step ------------------------------------------------------

    @invariant()
    def every_acknowledged_booking_is_stored(self) -> None:
        for appointment_id, job_id in self.acknowledged.items():
            with self.app.state.sessions() as session:
                appointment = session.get(Appointment, appointment_id)
                assert appointment is not None, f"acknowledged appointment {appointment_id} lost"
                assert appointment.job_id == job_id
                if appointment_id not in self.cancelled:
                    assert appointment.status != AppointmentStatus.CANCELLED or _cancelled_by_day(
                        session, job_id
                    ), f"appointment {appointment_id} cancelled by nobody"

    @invariant()
    def the_stored_plans_keep_every_promise_and_rule(self) -> None:
        with self.app.state.sessions() as session:
            region = session.scalars(select(Region)).one()
            found = plan_gate.region_defects(
                session, region, today=TODAY, travel=self.app.state.travel
            )
        assert found == [], "\n".join([*map(str, found), "after:", *self.log[-8:]])


def _cancelled_by_day(session: Any, job_id: int) -> bool:
    """A promise may end without the walk cancelling it when its job ended (done, failed)."""
    job = session.get(Job, job_id)
    return job is not None and job.status in (JobStatus.CANCELLED,)


def test_a_planners_day_keeps_every_promise(seeded: Seeded, tmp_path: Path, request: Any) -> None:
    PlannersDay.seeded = seeded
    PlannersDay.tmp = tmp_path
    long = request.config.getoption("hypothesis_profile", None) == "long"
    chosen = settings(
        settings() if long else WALKS,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    run_state_machine_as_test(PlannersDay, settings=chosen)
