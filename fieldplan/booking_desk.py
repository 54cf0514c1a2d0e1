"""Bookings of a region that arrive together are booked together (group commit).

Every booking holds its region's lock while it is re-checked, written and judged by the plan
gate, and under many customers at once the bookings queue for that lock: each waits for every
one before it, and the lock, the gate's check and the commit are paid once per booking. So
the bookings that reach one process while it is busy booking in the same region are taken up
together by the first of them whose turn comes: one lock, each booking in a savepoint of its
own (a refused one leaves the others as they are, and each books into the plan those before
it left), one check by the gate of everything they wrote, one commit. Every booking gets the
answer it would have got alone: its appointment, or its own refusal. A batch the gate refuses
as a whole is booked again one by one, so that one booking's fault is its own 409.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.exc import StaleDataError

from fieldplan import booking, notices, plan_gate, webhooks
from fieldplan.appointments import Appointment
from fieldplan.db import reading
from fieldplan.jobs import Job
from fieldplan.plan_gate import PlanRefused
from fieldplan.regions import lock_region
from fieldplan.travel import TravelTimes

# Bookings taken up together at most: the others of the region wait for their commit.
MAX_TOGETHER = 50


@dataclass(frozen=True)
class Terms:
    """What a booking is judged with: bookings are taken together only under the same."""

    travel: TravelTimes
    today: date
    rules: booking.BookingRules

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Terms)
            and self.travel is other.travel  # one process's travel times: the same object
            and (self.today, self.rules) == (other.today, other.rules)
        )

    def __hash__(self) -> int:
        return hash((id(self.travel), self.today))


@dataclass(eq=False)
class _Ticket:
    """One booking waiting at the desk, and what became of it."""

    job_id: int
    asked: booking.Asked
    terms: Terms
    done: bool = False
    appointment_id: int | None = None
    made: bool = False
    flags: dict[str, bool] = field(default_factory=dict)  # what its transaction wrote to send
    error: BaseException | None = None


@dataclass(eq=False)
class _Desk:
    """The bookings of one region in one process: at most one batch of them at a time."""

    turn: threading.Condition = field(default_factory=threading.Condition)
    waiting: list[_Ticket] = field(default_factory=list)
    busy: bool = False

    def serve(self, ticket: _Ticket, engine: Engine, region_id: int) -> None:
        """Wait until the ticket is done: by a batch another thread runs, or by one this
        thread runs when no batch of the region runs (with whatever waits beside it)."""
        with self.turn:
            self.waiting.append(ticket)
        while not ticket.done:
            with self.turn:
                while self.busy and not ticket.done:
                    self.turn.wait()
                if ticket.done:
                    return
                self.busy = True
            batch: list[_Ticket] = []
            try:
                _book_together(engine, region_id, partial(self._take, ticket, batch))
            except Exception as failed:  # each request of the batch answers with it
                for waiting in batch or [ticket]:
                    if waiting.appointment_id is None and waiting.error is None:
                        waiting.error = failed
                if not batch:
                    with self.turn:
                        self.waiting.remove(ticket)
            finally:
                with self.turn:
                    for waiting in batch or [ticket]:
                        waiting.done = True  # with its appointment or its error
                    self.busy = False
                    self.turn.notify_all()

    def _take(self, ticket: _Ticket, batch: list[_Ticket]) -> list[_Ticket]:
        """The ticket and those waiting beside it under the same terms, into `batch`: taken
        once the batch holds the region's lock, so that those that came while it waited for
        it go with it."""
        with self.turn:
            others = [t for t in self.waiting if t is not ticket and t.terms == ticket.terms]
            taken = [ticket, *others[: MAX_TOGETHER - 1]]
            self.waiting = [t for t in self.waiting if t not in taken]
        batch += taken
        return taken


_desks: weakref.WeakKeyDictionary[Engine, dict[int, _Desk]] = weakref.WeakKeyDictionary()
_desks_guard = threading.Lock()


def _desk(engine: Engine, region_id: int) -> _Desk:
    with _desks_guard:
        return _desks.setdefault(engine, {}).setdefault(region_id, _Desk())


def book(
    session: Session,
    job: Job,
    asked: booking.Asked,
    *,
    travel: TravelTimes,
    today: date,
    rules: booking.BookingRules,
) -> tuple[Appointment, bool]:
    """`booking.book`, taken together with the region's other bookings of this process. The
    caller's transaction must have only read: it is ended first (it must not hold SQLite's
    write lock while it waits for the batch), and the appointment is read in a new one that
    only reads (the booking has committed: on SQLite a second turn at the write lock would
    queue the request behind every other booking again). A session that has written, or
    that is bound to a transaction someone else holds, books alone in its own transaction."""
    engine = session.get_bind()
    if not isinstance(engine, Engine) or _has_written(session):
        return booking.book(session, job, asked, travel=travel, today=today, rules=rules)
    ticket = _Ticket(job.id, asked, Terms(travel, today, rules))
    region_id = job.region_id
    session.rollback()
    _desk(engine, region_id).serve(ticket, engine, region_id)
    if ticket.error is not None:
        raise ticket.error
    assert ticket.appointment_id is not None
    reading(session)
    session.info.update(ticket.flags)  # notices and webhooks to send once it has committed
    return session.get_one(Appointment, ticket.appointment_id), ticket.made


def _book_together(engine: Engine, region_id: int, take: Callable[[], list[_Ticket]]) -> None:
    batch: list[_Ticket] = []

    def taken() -> list[_Ticket]:
        batch.extend(take())
        return batch

    try:
        _transaction(engine, region_id, taken)
        return
    except (PlanRefused, IntegrityError, StaleDataError):
        if len(batch) < 2:
            raise
        for ticket in batch:  # one of them broke the plan: alone, each says which
            ticket.appointment_id, ticket.error = None, None
    for ticket in batch:
        try:
            _transaction(engine, region_id, [ticket].copy)
        except Exception as failed:  # the request answers with it
            ticket.appointment_id, ticket.error = None, failed


def _transaction(engine: Engine, region_id: int, take: Callable[[], list[_Ticket]]) -> None:
    """Book the tickets `take` gives once the region is locked, in one transaction; each in
    a savepoint, so that a refusal is that ticket's alone. Nothing is committed when nothing
    was booked: the region's revision stays, and every process's prepared plan with it."""
    with Session(engine, expire_on_commit=False) as session:
        lock_region(session, region_id)
        tickets = take()
        terms = tickets[0].terms
        plan_gate.judge_with(session, today=terms.today, travel=terms.travel)
        made: dict[_Ticket, tuple[int, bool]] = {}
        refused: dict[_Ticket, Exception] = {}
        for ticket in tickets:
            try:
                with session.begin_nested():
                    job = session.get_one(Job, ticket.job_id)
                    appointment, new = booking.book_locked(
                        session,
                        job,
                        ticket.asked,
                        travel=terms.travel,
                        today=terms.today,
                        rules=terms.rules,
                    )
                made[ticket] = (appointment.id, new)
            except Exception as error:  # the savepoint took back its writes
                refused[ticket] = error
        if any(new for _, new in made.values()):
            plan_gate.verify(session)
            session.commit()
        else:
            session.rollback()
        flags = {k: True for k in (notices.WRITTEN, webhooks.WRITTEN) if session.info.get(k)}
    for ticket, (appointment_id, new) in made.items():
        ticket.appointment_id, ticket.made, ticket.error = appointment_id, new, None
        ticket.flags = flags
    for ticket, why in refused.items():
        ticket.error = why


_FLUSHED = "fieldplan.booking_desk.flushed"


def _has_written(session: Session) -> bool:
    return bool(session.new or session.dirty or session.deleted or session.info.get(_FLUSHED))


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, *_: object) -> None:
    session.info[_FLUSHED] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_FLUSHED, None)
