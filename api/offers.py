"""How many offers of windows an API process works out at once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from fieldplan.booking import Windows, customer_cutoff, offer_windows
from fieldplan.jobs import Job
from fieldplan.regions import while_unlocked

# Working out windows is Python on the CPU, and a process's threads share one interpreter
# lock: twenty offers at once would each get a twentieth of it, and so would the booking that
# holds a region's lock among them, stretching its locked moment twentyfold for everyone
# waiting on it (bookings under load then waited out the lock wait and got 503s). At most
# this many offers run at once in a process; the others wait their turn, holding no lock.
OFFERS_AT_ONCE = 2


class _Turns:
    """At most `size` offers at once, and a customer whose window just went (`urgent`: the
    fresh windows of a refused booking) goes before those who are only asking: they are in
    the middle of booking, and every round they wait is a round more for the window they
    pick next to go too."""

    def __init__(self, size: int) -> None:
        self._changed = threading.Condition()
        self._free = size
        self._urgent = 0

    @contextlib.contextmanager
    def turn(self, *, urgent: bool) -> Iterator[None]:
        with self._changed:
            self._urgent += urgent
            try:
                self._changed.wait_for(lambda: self._free > 0 and (urgent or not self._urgent))
            finally:
                self._urgent -= urgent
                self._changed.notify_all()
            self._free -= 1
        try:
            yield
        finally:
            with self._changed:
                self._free += 1
                self._changed.notify_all()


_TURNS = _Turns(OFFERS_AT_ONCE)


# An offer about to start lets a booking that holds a region's lock in this process finish
# first, up to this long (so offers never starve under a stream of bookings).
YIELD_TO_BOOKINGS_S = 0.5


@contextlib.contextmanager
def offering(*, urgent: bool = False) -> Iterator[None]:
    """Wrap the working out of windows (never a booking): see `OFFERS_AT_ONCE`, `_Turns`
    and `YIELD_TO_BOOKINGS_S`."""
    with _TURNS.turn(urgent=urgent):
        while_unlocked(YIELD_TO_BOOKINGS_S)
        yield


def for_customer(state: Any, session: Session, job: Job) -> Windows:
    """The windows a customer may pick themselves: from the app's plan, outside the cut-off."""
    with offering():
        return offer_windows(
            session,
            job,
            state.travel,
            today=state.today(),
            rules=state.rules,
            not_before=customer_cutoff(state.now(), state.rules),
        )
