"""The day as it happens: reports move statuses and land on the timeline; running late pushes
the rest of the day and flags the promises it misses; follow-ups carry the missing part;
illness re-plans and flags; technicians report only on their own jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.main import create_app
from fieldplan import plan_gate
from fieldplan.appointments import AppointmentStatus
from fieldplan.catalogue import Part
from fieldplan.day_events import ReportKind, ReportRefused, ReportTooEarly, report, report_ill
from fieldplan.jobs import Job, JobStatus
from fieldplan.plans import Route, Stop
from fieldplan.regions import Region
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from fieldplan.timeline import EventKind, TimelineEvent
from tests.conftest import NOW, pin_clock, seed_database
from tests.test_booking import (
    MONDAY,
    SUNDAY,
    TRAVEL,
    at,
    book,
    monday_technician,
    tiny_region,
    violations,
)


def test_reports_move_the_job_through_its_day_and_onto_the_timeline(session: Session) -> None:
    _, jobs = tiny_region(session, 1)
    book(session, jobs[0], at(MONDAY, 9))
    for kind, status in (
        (ReportKind.ON_THE_WAY, JobStatus.EN_ROUTE),
        (ReportKind.STARTED, JobStatus.IN_PROGRESS),
        (ReportKind.DONE, JobStatus.DONE),
    ):
        report(session, jobs[0], kind, actor="technician:T1", today=MONDAY)
        assert jobs[0].status == status
    kinds = session.scalars(
        select(TimelineEvent.kind).where(TimelineEvent.job_id == jobs[0].id)
    ).all()
    assert {EventKind.TECHNICIAN_EN_ROUTE, EventKind.JOB_STARTED, EventKind.JOB_DONE} <= set(kinds)
    with pytest.raises(ReportRefused):
        report(session, jobs[0], ReportKind.STARTED, actor="technician:T1", today=MONDAY)


def test_work_cannot_be_reported_before_the_day_it_is_planned_for(session: Session) -> None:
    _, jobs = tiny_region(session, 1)
    book(session, jobs[0], at(MONDAY + timedelta(days=7), 9))
    for kind in (ReportKind.ON_THE_WAY, ReportKind.DONE, ReportKind.RUNNING_LATE):
        with pytest.raises(ReportTooEarly, match="is planned for 2026-11-30"):
            report(session, jobs[0], kind, actor="technician:T1", today=MONDAY, eta=at(MONDAY, 9))
    assert jobs[0].status == JobStatus.PLANNED
    report(
        session,
        jobs[0],
        ReportKind.ON_THE_WAY,
        actor="technician:T1",
        today=MONDAY + timedelta(days=7),
    )
    assert jobs[0].status == JobStatus.EN_ROUTE


def test_running_late_pushes_the_day_and_flags_the_promise_it_misses(session: Session) -> None:
    _, jobs = tiny_region(session, 2)
    first = book(session, jobs[0], at(MONDAY, 8))
    late_one = book(session, jobs[1], at(MONDAY, 10))
    outcome = report(
        session,
        jobs[0],
        ReportKind.RUNNING_LATE,
        actor="technician:T1",
        today=MONDAY,
        eta=at(MONDAY, 11) + timedelta(minutes=55),
    )
    # Arriving at 11:55 misses its own 08-10 window and pushes the next one past 12:00.
    assert [a.id for a in outcome.at_risk] == [first.id, late_one.id]
    assert late_one.status == AppointmentStatus.AT_RISK
    assert late_one.window_start == at(MONDAY, 10)  # flagged, not moved
    second = session.scalars(select(Stop).where(Stop.job_id == jobs[1].id)).one()
    assert second.start is not None
    assert second.start > at(MONDAY, 12)


def test_a_missing_part_creates_a_follow_up_that_picks_it_up(session: Session) -> None:
    _, jobs = tiny_region(session, 1)
    session.add(Part(sku="P-HINGE", name="Hinge set", volume_m3=0.001, weight_kg=0.2))
    book(session, jobs[0], at(MONDAY, 9))
    report(session, jobs[0], ReportKind.ON_THE_WAY, actor="technician:T1", today=MONDAY)
    outcome = report(
        session,
        jobs[0],
        ReportKind.PART_MISSING,
        actor="technician:T1",
        today=MONDAY,
        part_sku="P-HINGE",
        note="hinge broken",
    )
    assert jobs[0].status == JobStatus.FOLLOW_UP_NEEDED
    follow = outcome.follow_up
    assert follow is not None
    assert follow.status == JobStatus.NEW
    assert [(p.part_sku, p.missing) for p in follow.parts] == [("P-HINGE", True)]
    assert follow.earliest_date > MONDAY
    assert follow.priority >= 4


def test_an_ill_technician_s_promises_are_flagged_for_the_planner(session: Session) -> None:
    region, jobs = tiny_region(session, 1)
    appointment = book(session, jobs[0], at(MONDAY, 9))
    technician = session.scalars(select(Technician).where(Technician.region_id == region.id)).one()
    flagged = report_ill(
        session, technician, MONDAY, TRAVEL, actor="planner:test", today=SUNDAY, time_limit_s=0.3
    )
    assert [a.id for a in flagged] == [appointment.id]
    assert appointment.status == AppointmentStatus.AT_RISK
    # The only rule the new plan breaks is that promise, and it is flagged for the planner.
    assert violations(session, region) == [
        f"[promise] {jobs[0].id}: a promised appointment is not planned"
    ]


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("day")
    url = f"sqlite:///{tmp / 'a.db'}"
    api_key = seed_database(url, orders=20, password="pw", plan_days=1)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp / "o")))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {api_key}"}


def test_technicians_report_through_their_token_on_their_own_jobs_only(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        routes = session.scalars(select(Route)).all()
        mine, other = routes[0], routes[1]
        my_job = next(s.job_id for s in mine.stops if s.job_id)
        their_job = next(
            s.job_id
            for s in other.stops
            if s.job_id and s.job_id not in {x.job_id for x in mine.stops}
        )
        technician_id = mine.technician_id
    feed = client.post(f"/technicians/{technician_id}/feed", headers=headers).json()
    token = feed["url"].rsplit("/", 1)[1].removesuffix(".ics")
    ok = client.post(
        f"/feeds/technicians/{token}/jobs/{my_job}/reports", json={"kind": "on_the_way"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "en_route"
    assert (
        client.post(
            f"/feeds/technicians/{token}/jobs/{their_job}/reports", json={"kind": "on_the_way"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/feeds/technicians/tfd_forged/jobs/{my_job}/reports", json={"kind": "started"}
        ).status_code
        == 404
    )
    bad = client.post(f"/jobs/{my_job}/reports", json={"kind": "teleported"}, headers=headers)
    assert bad.status_code == 422
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert session.get_one(Job, my_job).status == JobStatus.EN_ROUTE


def test_an_urgent_repair_is_fitted_into_today_or_says_why_not(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    fitted = client.post(
        "/orders/1/repairs",
        json={"description": "tap leaking under the new sink", "duration_min": 30},
        headers=headers,
    )
    assert fitted.status_code == 201, fitted.text
    body = fitted.json()
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        job = session.get_one(Job, body["job_id"])
        assert job.priority == 5
        on_today = session.scalars(select(Stop).where(Stop.job_id == job.id)).all()
        region = session.scalars(select(Region)).one()
        problems = violations(session, region, MONDAY)
    if body["technician_day"] is not None:
        assert body["technician_day"].endswith("2026-11-23")
        assert len(on_today) == 1
        assert datetime.fromisoformat(body["start"]) >= NOW + timedelta(minutes=30)
    else:
        assert body["reason"]
        assert on_today == []
    assert problems == []
    skill_less = client.post(
        "/orders/1/repairs",
        json={"description": "x", "skills": ["rocket-science"]},
        headers=headers,
    ).json()
    assert skill_less["technician_day"] is None
    assert "rocket-science" in skill_less["reason"]


def test_a_part_missing_report_through_the_api_creates_the_follow_up_with_the_part(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        stop = session.scalars(select(Stop).where(Stop.kind == "job")).first()
        assert stop is not None
        job_id = stop.job_id
        sku = session.scalars(select(Part.sku)).first()
    assert (
        client.post(f"/jobs/{job_id}/reports", json={"kind": "on_the_way"}, headers=headers).json()[
            "status"
        ]
        == "en_route"
    )
    unknown = client.post(
        f"/jobs/{job_id}/reports",
        json={"kind": "part_missing", "part_sku": "NO-SUCH-PART"},
        headers=headers,
    )
    assert unknown.status_code == 409
    assert "NO-SUCH-PART" in unknown.json()["detail"]
    missing = client.post(
        f"/jobs/{job_id}/reports",
        json={"kind": "part_missing", "part_sku": sku, "note": "wrong size"},
        headers=headers,
    )
    assert missing.status_code == 200, missing.text
    assert missing.json()["status"] == "follow_up_needed"
    follow_up = client.get(f"/jobs/{missing.json()['follow_up_job_id']}", headers=headers).json()
    assert any(p["part_sku"] == sku and p["missing"] for p in follow_up["parts"])


def test_running_late_hands_a_later_promise_to_a_colleague_who_keeps_it(
    session: Session,
) -> None:
    region, jobs = tiny_region(session, 2)
    first = book(session, jobs[0], at(MONDAY, 8))
    later = book(session, jobs[1], at(MONDAY, 10))
    colleague = monday_technician(session, region, "TINY-T2", "Bram")
    outcome = report(
        session,
        jobs[0],
        ReportKind.RUNNING_LATE,
        actor="technician:T1",
        today=MONDAY,
        eta=at(MONDAY, 11) + timedelta(minutes=55),
        travel=TRAVEL,
        now=at(MONDAY, 8) + timedelta(minutes=30),
    )
    # The late job misses its own window; the one after it goes to the colleague, in time.
    assert [a.id for a in outcome.at_risk] == [first.id]
    assert later.status == AppointmentStatus.PROMISED
    stop = session.scalars(select(Stop).where(Stop.job_id == jobs[1].id)).one()
    assert session.get_one(Route, stop.route_id).technician_id == colleague.id
    assert stop.start is not None
    assert at(MONDAY, 10) <= stop.start <= at(MONDAY, 12)
    assert plan_gate.region_defects(session, region, today=MONDAY, travel=TRAVEL) == []
    told = session.scalars(
        select(TimelineEvent.text).where(TimelineEvent.job_id == jobs[1].id)
    ).all()
    assert any("handed to TINY-T2" in text for text in told)
