"""How long work really takes: spreads learnt from reports, and the plan protected with them."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldplan import durations
from fieldplan.catalogue import JobKind
from fieldplan.day_events import ReportKind, report
from fieldplan.durations import DurationSpread, estimate, prior
from fieldplan.jobs import JobStatus, JobStatusChange
from fieldplan.planning import build_problem, horizon_for
from fieldplan.settings import get_settings
from tests.test_booking import MONDAY, SUNDAY, TRAVEL, at, book, tiny_region


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_no_report_is_needed_and_a_few_dozen_teach_the_spread() -> None:
    assert estimate(JobKind.INSTALLATION, "kitchen", []) == prior(JobKind.INSTALLATION, "kitchen")
    rng = random.Random(3)
    samples = [rng.gauss(0.1, 0.5) for _ in range(40)]
    learnt = estimate(JobKind.INSTALLATION, "kitchen", samples)
    assert learnt.reports == 40
    assert 0.42 < learnt.log_sd < 0.55  # most of the way from the prior (0.30) to 0.5
    # A job left running over a weekend is one report among forty, not a new normal.
    with_outlier = estimate(JobKind.INSTALLATION, "kitchen", [*samples, math.log(60)])
    assert abs(with_outlier.log_sd - learnt.log_sd) < 0.03
    # What planners read: 80 % of such jobs are done within this many minutes.
    assert learnt.within(8 * 60) > 8 * 60


def test_reported_work_teaches_the_plan_how_long_such_jobs_take(session: Session) -> None:
    region, jobs = tiny_region(session, 3)
    for job in jobs:
        book(session, job, at(MONDAY, 9 + 2 * jobs.index(job)))
    for job in jobs:
        for kind in (ReportKind.ON_THE_WAY, ReportKind.STARTED):
            report(session, job, kind, actor="technician:T1", today=MONDAY)
        started = session.scalars(
            select(JobStatusChange).where(
                JobStatusChange.job_id == job.id,
                JobStatusChange.to_status == JobStatus.IN_PROGRESS,
            )
        ).one()
        started.at = started.at - timedelta(minutes=2 * job.duration_min)  # twice as long
        report(session, job, ReportKind.DONE, actor="technician:T1", today=MONDAY)
    row = session.scalars(select(DurationSpread)).one()
    assert (row.kind, row.reports) == (jobs[0].kind, 3)
    assert 0 < row.median_log_ratio < math.log(2)  # drawn towards the prior's zero
    translation = build_problem(
        session, region, horizon_for(region, MONDAY, 1), TRAVEL, today=SUNDAY
    )
    assert translation.problem.protection is not None
    spreads = {j.duration_log_sd for j in translation.problem.jobs}
    assert spreads == {row.log_sd}
    assert durations.spread_for(durations.spreads(session), row.kind, "").log_sd == row.log_sd


def test_the_promise_target_is_configured_and_can_be_turned_off(
    settings_env: pytest.MonkeyPatch, session: Session
) -> None:
    region, _ = tiny_region(session, 1)
    horizon = horizon_for(region, MONDAY, 1)
    settings_env.setenv("FIELDPLAN_PROMISE_TARGET", "0.95")
    protection = build_problem(session, region, horizon, TRAVEL, today=SUNDAY).problem.protection
    assert protection is not None
    assert protection.target == 0.95
    settings_env.setenv("FIELDPLAN_PROMISE_TARGET", "0")
    get_settings.cache_clear()
    assert build_problem(session, region, horizon, TRAVEL, today=SUNDAY).problem.protection is None
    settings_env.setenv("FIELDPLAN_PROMISE_TARGET", "0.3")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="promise target"):
        get_settings()
