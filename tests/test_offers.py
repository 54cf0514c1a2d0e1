"""How many offers an API process works out at once (api.offers), and in which order."""

from __future__ import annotations

import threading
import time

from api.offers import _Turns


def test_a_customer_whose_window_just_went_gets_the_next_turn_before_those_only_asking() -> None:
    turns = _Turns(1)
    order: list[str] = []

    def offer(name: str, *, urgent: bool) -> None:
        with turns.turn(urgent=urgent):
            order.append(name)

    asking = [
        threading.Thread(target=offer, args=(f"asking {k}",), kwargs={"urgent": False})
        for k in range(5)
    ]
    refused = threading.Thread(target=offer, args=("refused",), kwargs={"urgent": True})
    with turns.turn(urgent=False):
        for thread in asking:  # those only asking come first...
            thread.start()
        time.sleep(0.1)
        refused.start()
        time.sleep(0.1)  # ...and all wait for the turn held here
        assert order == []
    for thread in [*asking, refused]:
        thread.join(5)
    assert order[0] == "refused"
    assert sorted(order[1:]) == [f"asking {k}" for k in range(5)]


def test_no_more_offers_run_at_once_than_there_are_turns() -> None:
    turns = _Turns(2)
    running, most = 0, 0
    guard = threading.Lock()

    def offer(urgent: bool) -> None:
        nonlocal running, most
        with turns.turn(urgent=urgent):
            with guard:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with guard:
                running -= 1

    threads = [threading.Thread(target=offer, args=(k % 3 == 0,)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 2
    assert running == 0
