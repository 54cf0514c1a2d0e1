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
_OFFERING = threading.BoundedSemaphore(OFFERS_AT_ONCE)


# An offer about to start lets a booking that holds a region's lock in this process finish
# first, up to this long (so offers never starve under a stream of bookings).
YIELD_TO_BOOKINGS_S = 0.5


@contextlib.contextmanager
def offering() -> Iterator[None]:
    """Wrap the working out of windows (never a booking): see `OFFERS_AT_ONCE` and
    `YIELD_TO_BOOKINGS_S`."""
    with _OFFERING:
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
