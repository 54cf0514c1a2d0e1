"""Booking windows in the database: re-checked, written into the plan, once, and never two
customers into the last place. Every stored plan is checked by the engine's validator."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import optimizer
from fieldplan import booking
from fieldplan.appointments import AgreedVia, Appointment, AppointmentError, AppointmentStatus
from fieldplan.booking import BookingRules, SlotTaken, offer_again, offer_windows
from fieldplan.catalogue import JobKind
from fieldplan.customers import ContactChannel, Customer
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.jobs import Job, JobStatus
from fieldplan.migrate import upgrade
from fieldplan.optimisation import plan_region
from fieldplan.orders import Order
from fieldplan.planning import build_problem, horizon_for, stored_plan_to_judge
from fieldplan.plans import Plan, Route, Stop
from fieldplan.regions import Region
from fieldplan.technicians import Absence, Shift, Technician
from fieldplan.timeline import EventKind, TimelineEvent
from fieldplan.travel import GeodesicTravelTimes
from tests.conftest import drop_postgres_database, make_postgres_database, require_postgres

AMS = ZoneInfo("Europe/Amsterdam")
SUNDAY = date(2026, 11, 22)  # windows are offered from Monday 23 November on
MONDAY = date(2026, 11, 23)
RULES = BookingRules(offer_days=5)
TRAVEL = GeodesicTravelTimes()
UTRECHT = (52.0907, 5.1214)


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), AMS)


def monday_technician(session: Session, region: Region, code: str, name: str) -> Technician:
    """A technician at Utrecht's Domplein who works Mondays 08-17, no skills, a small van."""
    technician = Technician(
        code=code,
        region_id=region.id,
        name=name,
        skills=[],
        home_address="Domplein 1, Utrecht",
        home_latitude=UTRECHT[0],
        home_longitude=UTRECHT[1],
        van_volume_m3=1.0,
        van_weight_kg=1000,
        cost_per_hour_eur=40,
        lunch_minutes=30,
    )
    technician.shifts.append(Shift(weekday=0, start=time(8), end=time(17)))
    session.add(technician)
    session.flush()
    return technician


def tiny_region(session: Session, jobs: int, *, code: str = "TINY") -> tuple[Region, list[Job]]:
    """One technician who works Mondays only, with a van for ten 100-litre deliveries, and
    `jobs` customers around the corner, each with a five-minute delivery."""
    region = Region(code=code, name="Tiny", timezone="Europe/Amsterdam")
    session.add(region)
    session.flush()
    monday_technician(session, region, f"{code}-T1", "Anouk")
    created = []
    for k in range(jobs):
        customer = Customer(
            name=f"Klant {k}",
            street="Oudegracht",
            house_number=str(k + 1),
            postcode="3511 AB",
            city="Utrecht",
            latitude=UTRECHT[0] + 0.0004 * (k % 7),
            longitude=UTRECHT[1] + 0.0004 * (k // 7),
            phone="+31 30 000 0000",
            email=f"klant{k}@example.nl",
            contact_channel=ContactChannel.EMAIL,
        )
        session.add(customer)
        session.flush()
        order = Order(
            number=f"{code}-{k:03d}",
            customer_id=customer.id,
            region_id=region.id,
            ordered_on=SUNDAY,
            wanted_from=MONDAY,
            content_hash="x",
        )
        session.add(order)
        session.flush()
        job = Job(
            order_id=order.id,
            customer_id=customer.id,
            region_id=region.id,
            kind=JobKind.DELIVERY,
            duration_min=5,
            volume_m3=0.1,
            weight_kg=10,
            earliest_date=MONDAY,
        )
        session.add(job)
        created.append(job)
    session.flush()
    return region, created


def violations(session: Session, region: Region, first: date = MONDAY) -> list[str]:
    """The engine's validator over the stored plan, every live appointment a hard promise."""
    translation = build_problem(
        session, region, horizon_for(region, first, 5), TRAVEL, today=SUNDAY
    )
    plan = stored_plan_to_judge(session, region, translation)
    return [str(v) for v in optimizer.check(translation.problem, plan)]


def book(session: Session, job: Job, start: datetime, key: str | None = None) -> Appointment:
    asked = booking.Asked(
        start,
        start + timedelta(hours=2),
        "customer:test",
        AgreedVia.SELF_SERVICE,
        booking.Idempotency.of(key, job.id, start.isoformat()) if key else None,
    )
    appointment, _ = booking.book(session, job, asked, travel=TRAVEL, today=SUNDAY, rules=RULES)
    return appointment


def cancel(session: Session, appointment: Appointment, reason: str = "test") -> None:
    """A planner cancels the appointment on the Sunday before the test week."""
    booking.call_off(
        session,
        appointment,
        now=at(SUNDAY, 9),
        today=SUNDAY,
        rules=RULES,
        actor="planner:test",
        reason=reason,
        by_customer=False,
    )


def test_offered_windows_are_two_hours_on_working_days_and_booking_writes_the_plan(
    session: Session,
) -> None:
    region, jobs = tiny_region(session, 3)
    found = offer_windows(session, jobs[0], TRAVEL, today=SUNDAY, rules=RULES)
    assert found.choices, found.reason
    assert {c.start.astimezone(AMS).date() for c in found.choices} == {MONDAY}  # Mondays only
    assert all(c.end - c.start == timedelta(hours=2) for c in found.choices)
    assert sum(c.recommended for c in found.choices) == 3
    chosen = found.choices[3]
    appointment = book(session, jobs[0], chosen.start)
    assert jobs[0].status == JobStatus.PLANNED
    plan = session.scalars(select(Plan).where(Plan.region_id == region.id)).one()
    stops = [s for r in plan.routes for s in r.stops if s.job_id == jobs[0].id]
    assert len(stops) == 1
    start = stops[0].departure - timedelta(minutes=5)
    assert appointment.window_start <= start <= appointment.window_end
    assert violations(session, region) == []
    kinds = session.scalars(
        select(TimelineEvent.kind).where(TimelineEvent.job_id == jobs[0].id)
    ).all()
    assert EventKind.SLOT_BOOKED in kinds


def test_a_retried_request_books_once_and_a_reused_key_is_refused(session: Session) -> None:
    _, jobs = tiny_region(session, 2)
    first = book(session, jobs[0], at(MONDAY, 10), key="abc")
    again = book(session, jobs[0], at(MONDAY, 10), key="abc")
    assert again.id == first.id
    count = session.scalar(select(func.count()).where(Appointment.job_id == jobs[0].id))
    assert count == 1
    with pytest.raises(booking.KeyReused, match="'abc' was used for job"):
        book(session, jobs[1], at(MONDAY, 10), key="abc")


def test_a_key_sent_again_with_another_window_is_refused_not_answered_with_the_first(
    session: Session,
) -> None:
    _, jobs = tiny_region(session, 1)
    first = book(session, jobs[0], at(MONDAY, 10), key="K")
    with pytest.raises(booking.KeyReused, match="another window"):
        book(session, jobs[0], at(MONDAY, 13), key="K")
    assert session.get_one(Appointment, first.id).window_start == at(MONDAY, 10)


def test_a_replay_after_the_booking_was_cancelled_is_refused(session: Session) -> None:
    _, jobs = tiny_region(session, 1)
    first = book(session, jobs[0], at(MONDAY, 10), key="K")
    cancel(session, first)
    with pytest.raises(AppointmentError, match="was cancelled since"):
        book(session, jobs[0], at(MONDAY, 10), key="K")


def test_an_expired_key_may_be_used_afresh(session: Session) -> None:
    _, jobs = tiny_region(session, 2)
    book(session, jobs[0], at(MONDAY, 10), key="K")
    stored = session.scalar(select(booking.BookingRequest).where(booking.BookingRequest.key == "K"))
    assert stored is not None
    stored.created_at = stored.created_at - timedelta(
        hours=booking.IDEMPOTENCY_KEY_HOURS, seconds=1
    )
    session.flush()
    other = book(session, jobs[1], at(MONDAY, 13), key="K")
    assert other.job_id == jobs[1].id


def test_the_eleventh_booking_of_a_ten_place_day_is_refused_with_fresh_options(
    session: Session,
) -> None:
    region, jobs = tiny_region(session, 11)
    for k, job in enumerate(jobs[:10]):
        book(session, job, at(MONDAY, 8 + k % 4))
    with pytest.raises(SlotTaken) as refused:
        book(session, jobs[10], at(MONDAY, 9))
    assert "no longer available" in str(refused.value)
    fresh = offer_again(session, refused.value, TRAVEL, today=SUNDAY, rules=RULES)
    assert fresh is not None
    # The van is full on Monday, the only working day of the week: none is left in the
    # five offered days, and the first date that would do is next Monday.
    assert fresh.choices == []
    assert fresh.first_dates == [date(2026, 11, 30)]
    assert violations(session, region) == []


def test_moving_and_cancelling_free_the_place_and_keep_the_plan_valid(session: Session) -> None:
    region, jobs = tiny_region(session, 11)
    appointments = [book(session, job, at(MONDAY, 8 + k % 4)) for k, job in enumerate(jobs[:10])]
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    booking.move(
        session,
        appointments[0],
        at(MONDAY + timedelta(days=7), 13),
        at(MONDAY + timedelta(days=7), 15),
        travel=TRAVEL,
        now=now,
        today=SUNDAY,
        rules=RULES,
        actor="customer:test",
        reason="on holiday",
        by_customer=True,
    )
    assert appointments[0].sequence >= 2
    book(session, jobs[10], at(MONDAY, 9))  # the freed place on Monday
    booking.call_off(
        session,
        appointments[1],
        now=now,
        today=SUNDAY,
        rules=RULES,
        actor="customer:test",
        reason="no longer needed",
        by_customer=True,
    )
    assert appointments[1].status == AppointmentStatus.CANCELLED
    assert jobs[1].status == JobStatus.NEW
    assert violations(session, region) == []
    assert violations(session, region, MONDAY + timedelta(days=7)) == []


def test_customers_cannot_change_within_the_cut_off(session: Session) -> None:
    _, jobs = tiny_region(session, 1)
    appointment = book(session, jobs[0], at(MONDAY, 8))
    sunday_noon = datetime(2026, 11, 22, 11, tzinfo=UTC)  # 20 hours before
    with pytest.raises(AppointmentError, match="24 hours"):
        booking.call_off(
            session,
            appointment,
            now=sunday_noon,
            today=SUNDAY,
            rules=RULES,
            actor="customer:test",
            reason="changed my mind",
            by_customer=True,
        )


def test_a_promise_broken_by_illness_is_flagged_not_moved_and_new_windows_are_proposed(
    session: Session,
) -> None:
    region, jobs = tiny_region(session, 1)
    appointment = book(session, jobs[0], at(MONDAY, 10))
    technician = session.scalars(select(Technician).where(Technician.region_id == region.id)).one()
    technician.absences.append(Absence(first_day=MONDAY, last_day=MONDAY, reason="ill"))
    session.flush()
    plan_region(
        session, region, MONDAY, 1, TRAVEL, optimizer.Limits(time_limit_s=0.5), today=SUNDAY
    )
    session.refresh(appointment)
    assert appointment.status == AppointmentStatus.AT_RISK
    assert appointment.window_start == at(MONDAY, 10)  # never moved silently
    kinds = session.scalars(
        select(TimelineEvent.kind).where(TimelineEvent.job_id == jobs[0].id)
    ).all()
    assert EventKind.PROMISE_AT_RISK in kinds
    proposal = offer_windows(session, jobs[0], TRAVEL, today=SUNDAY, rules=RULES)
    assert proposal.choices == []
    assert proposal.first_dates == [date(2026, 11, 30)]
    moved = booking.move(
        session,
        appointment,
        at(date(2026, 11, 30), 10),
        at(date(2026, 11, 30), 12),
        travel=TRAVEL,
        now=datetime(2026, 11, 23, 7, tzinfo=UTC),
        today=SUNDAY,
        rules=BookingRules(offer_days=6),
        actor="planner:test",
        reason="technician ill, agreed by phone",
        by_customer=False,
    )
    assert moved.status == AppointmentStatus.PROMISED


def test_booking_takes_the_job_off_the_day_it_was_planned_on(session: Session) -> None:
    region, jobs = tiny_region(session, 1)
    next_monday = MONDAY + timedelta(days=7)
    plan_region(
        session, region, next_monday, 1, TRAVEL, optimizer.Limits(time_limit_s=0.5), today=SUNDAY
    )
    assert jobs[0].status == JobStatus.PLANNED
    book(session, jobs[0], at(MONDAY, 9))
    on_plans = session.scalars(
        select(Plan.day)
        .join(Route, Route.plan_id == Plan.id)
        .join(Stop)
        .where(Stop.job_id == jobs[0].id)
    ).all()
    assert on_plans == [MONDAY]


def _race(engine: Engine, region_code: str, clients: int) -> tuple[int, list[str], list[str]]:
    """`clients` threads book at once; returns (successes, refusals, other errors)."""
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        _, jobs = tiny_region(session, clients, code=region_code)
        job_ids = [j.id for j in jobs]
    barrier = threading.Barrier(clients)
    booked: list[int] = []
    refused: list[str] = []
    errors: list[str] = []

    def client(k: int) -> None:
        barrier.wait()
        try:
            with unit_of_work(sessions) as session:
                job = session.get_one(Job, job_ids[k])
                book(session, job, at(MONDAY, 8 + k % 4), key=f"race-{k}")
            booked.append(k)
        except SlotTaken as taken:
            fresh = "with fresh windows" if taken.job_id is not None else "without windows"
            refused.append(f"{taken} ({fresh})")
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with unit_of_work(sessions) as session:
        region = session.scalars(select(Region).where(Region.code == region_code)).one()
        assert violations(session, region) == []
        promised = session.scalar(
            select(func.count())
            .select_from(Appointment)
            .join(Job, Job.id == Appointment.job_id)
            .where(Job.region_id == region.id)
        )
        assert promised == len(booked)
    return len(booked), refused, errors


def test_fifty_clients_racing_for_ten_places_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
    upgrade(engine)
    try:
        successes, refused, errors = _race(engine, "RACE", 50)
    finally:
        engine.dispose()
    assert errors == []
    assert successes == 10
    assert all("no longer available" in r and "with fresh windows" in r for r in refused)
    assert len(refused) == 40


@pytest.mark.postgres
def test_fifty_clients_racing_for_ten_places_on_postgresql() -> None:
    require_postgres()
    engine, name = make_postgres_database()
    try:
        upgrade(engine)
        successes, refused, errors = _race(engine, "RACE", 50)
    finally:
        engine.dispose()
        drop_postgres_database(name)
    assert errors == []
    assert successes == 10
    assert len(refused) == 40
    assert all("no longer available" in r and "with fresh windows" in r for r in refused)


def test_a_window_years_ahead_is_refused_quickly(session: Session) -> None:
    _, jobs = tiny_region(session, 1)
    with pytest.raises(SlotTaken, match="180 days ahead"):
        book(session, jobs[0], at(date(2031, 6, 2), 9))
