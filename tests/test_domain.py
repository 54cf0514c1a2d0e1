"""Job lifecycle, appointments and the customer timeline."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fieldplan import importing
from fieldplan.appointments import AgreedVia, Appointment, AppointmentChange
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import ALLOWED_TRANSITIONS, IllegalTransition, Job, JobStatus, change_status
from fieldplan.regions import Region
from fieldplan.timeline import EventKind, for_customer, record
from tests.conftest import TODAY
from tests.test_import import rows


@pytest.fixture
def job(session: Session, region: Region, gazetteer: Gazetteer) -> Job:
    importing.import_rows(session, rows({}), region=region, gazetteer=gazetteer, today=TODAY)
    return session.scalars(select(Job).order_by(Job.id)).first()  # type: ignore[return-value]


def test_a_job_walks_its_lifecycle_and_every_step_is_recorded(session: Session, job: Job) -> None:
    for status in (
        JobStatus.OFFERED,
        JobStatus.BOOKED,
        JobStatus.PLANNED,
        JobStatus.EN_ROUTE,
        JobStatus.IN_PROGRESS,
        JobStatus.DONE,
    ):
        change_status(session, job, status, actor="test", reason=f"to {status}")
    assert [h.to_status for h in job.history] == [
        "new",
        "offered",
        "booked",
        "planned",
        "en_route",
        "in_progress",
        "done",
    ]
    assert job.history[-1].from_status == JobStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ((), JobStatus.DONE),
        ((JobStatus.CANCELLED,), JobStatus.NEW),
        ((JobStatus.PLANNED, JobStatus.IN_PROGRESS, JobStatus.FAILED), JobStatus.PLANNED),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    session: Session, job: Job, path: tuple[JobStatus, ...], wanted: JobStatus
) -> None:
    for status in path:
        change_status(session, job, status, actor="test")
    before = (job.status, len(job.history))
    with pytest.raises(IllegalTransition):
        change_status(session, job, wanted, actor="test")
    assert (job.status, len(job.history)) == before


def test_terminal_statuses_have_no_way_out() -> None:
    for status in (
        JobStatus.DONE,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.FOLLOW_UP_NEEDED,
    ):
        assert ALLOWED_TRANSITIONS[status] == frozenset()


def test_appointment_changes_bump_the_sequence_and_keep_history(session: Session, job: Job) -> None:
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    appointment = Appointment(
        job_id=job.id,
        window_start=start,
        window_end=start + timedelta(hours=2),
        agreed_via=AgreedVia.PHONE,
    )
    session.add(appointment)
    session.flush()
    first = appointment.sequence
    appointment.changes.append(
        AppointmentChange(
            actor="customer",
            reason="works late",
            old_start=appointment.window_start,
            old_end=appointment.window_end,
            new_start=start + timedelta(hours=4),
            new_end=start + timedelta(hours=6),
        )
    )
    appointment.window_start += timedelta(hours=4)
    appointment.window_end += timedelta(hours=4)
    session.flush()
    assert appointment.sequence == first + 1
    session.expire_all()
    stored = session.get_one(Appointment, appointment.id)
    assert stored.window_start == start + timedelta(hours=4)
    assert stored.window_start.tzinfo is not None
    assert stored.changes[0].reason == "works late"


def test_a_stale_appointment_write_is_refused(session: Session, job: Job) -> None:
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    appointment = Appointment(
        job_id=job.id,
        window_start=start,
        window_end=start + timedelta(hours=2),
        agreed_via=AgreedVia.PHONE,
    )
    session.add(appointment)
    session.flush()
    # Somebody else moved it meanwhile: our copy's sequence is now stale.
    session.execute(Appointment.__table__.update().values(sequence=appointment.sequence + 1))
    appointment.window_start += timedelta(hours=1)
    with pytest.raises(StaleDataError):
        session.flush()


def test_naive_datetimes_are_refused(session: Session, job: Job) -> None:
    session.add(
        Appointment(
            job_id=job.id,
            window_start=datetime(2026, 11, 24, 8),
            window_end=datetime(2026, 11, 24, 10),
            agreed_via=AgreedVia.PHONE,
        )
    )
    with pytest.raises(Exception, match="naive datetimes are refused"):
        session.flush()


def test_the_timeline_tells_the_customers_story_in_order(session: Session, job: Job) -> None:
    record(
        session,
        customer_id=job.customer_id,
        kind=EventKind.CALLBACK_REQUESTED,
        actor="customer",
        text="please call after 17:00",
        at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    session.flush()
    events = for_customer(session, job.customer_id)
    assert events[0].kind == EventKind.ORDER_PLACED
    assert events[-1].text == "please call after 17:00"
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))


def test_a_callback_is_promised_by_the_desks_closing_time() -> None:
    """Asked at least two hours before closing: today; later, or on a closed day: by closing
    time on the next day the desk opens."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from fieldplan.callbacks import call_back_by
    from fieldplan.locations import OpeningHours

    zone = ZoneInfo("Europe/Amsterdam")
    # Monday to Friday 08:00-18:00, Saturday 09:00-17:00, closed on Sunday.
    hours = [OpeningHours(weekday=d, opens=time(8), closes=time(18)) for d in range(5)]
    hours.append(OpeningHours(weekday=5, opens=time(9), closes=time(17)))
    wednesday = datetime(2026, 12, 2, 10, 0, tzinfo=zone)
    assert call_back_by(wednesday, hours, zone) == datetime(2026, 12, 2, 18, 0, tzinfo=zone)
    late = datetime(2026, 12, 2, 16, 30, tzinfo=zone)
    assert call_back_by(late, hours, zone) == datetime(2026, 12, 3, 18, 0, tzinfo=zone)
    saturday_evening = datetime(2026, 12, 5, 20, 0, tzinfo=zone)
    assert call_back_by(saturday_evening, hours, zone) == datetime(2026, 12, 7, 18, 0, tzinfo=zone)
    assert call_back_by(wednesday, [], zone) is None
