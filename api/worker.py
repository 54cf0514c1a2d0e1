"""Optimisation runs on a real queue: Celery, with RabbitMQ as its broker.

A run is a row (`fieldplan.runs`) that every API process reads; the queue carries only its id,
to whichever `fieldplan worker` process takes it, on this machine or another. RabbitMQ rather
than Redis because a run takes minutes and must survive the worker that runs it: RabbitMQ
gives a dead consumer's unacknowledged message to the next worker as soon as its connection
drops, whereas Redis's transport does so only after a visibility timeout that must outlast the
longest run (an hour by default), so a run lost with its worker would wait that long, and a
shorter timeout would hand a run still going to a second worker. No result store either: the
run's row is its result. A message is acknowledged when the run has ended, so a worker that
dies gives its run back; `runs.claim` starts it again from scratch once, then fails it.

With no broker configured the API process carries runs out in a thread of its own, through the
same `carry_out` a worker calls, so the demo needs nothing installed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from celery import Celery
from fastapi import FastAPI

from api import notify
from fieldplan import runs, webhooks
from fieldplan.db import utcnow
from fieldplan.settings import Settings, get_settings

OPTIMISE = "fieldplan.optimise"
DELIVER = "fieldplan.deliver_webhooks"


class Executor(Protocol):
    def submit(self, run_id: str) -> None: ...


def carry_out(app: FastAPI, run_id: str) -> None:
    """What an executor does with a run: take it up, carry it out to its end, and send what
    it told customers and subscribers."""
    state = app.state
    if runs.claim(state.sessions, run_id):
        runs.execute(state.sessions, run_id, state.travel)
    notify.send_notices(app)
    deliver_webhooks(app)


def deliver_webhooks(app: FastAPI) -> None:
    """Post the webhook deliveries that are due, and see that those tried again later are
    sent when they are due: a task on the queue where there is one, else a timer of this
    process (one at a time: the earliest due)."""
    sent = webhooks.deliver_due(app.state.sessions)
    if sent.next_due is None:
        return
    delay = max(0.0, (sent.next_due - utcnow()).total_seconds())
    settings: Settings = app.state.settings
    if settings.broker_url:
        make_queue(settings).send_task(DELIVER, countdown=delay)
        return
    _timers.after(delay, lambda: deliver_webhooks(app))


class _Timer:
    """At most one pending timer per process, for the earliest time asked."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.timer: threading.Timer | None = None
        self.due = 0.0

    def after(self, delay: float, then: Callable[[], None]) -> None:
        due = time.monotonic() + delay
        with self.guard:
            if self.timer is not None and self.timer.is_alive() and self.due <= due:
                return
            if self.timer is not None:
                self.timer.cancel()
            self.timer = threading.Timer(delay, _logged, (then,))
            self.timer.daemon = True
            self.due = due
            self.timer.start()


_timers = _Timer()


def _logged(then: Callable[[], None]) -> None:
    try:
        then()
    except Exception:  # a timer's thread has nobody to tell but the log
        logging.getLogger(__name__).exception(
            "webhook deliveries could not be sent now: the next change or run sends them"
        )


class ThreadExecutor:
    """No broker: the run is carried out in a thread of this API process."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def submit(self, run_id: str) -> None:
        threading.Thread(target=carry_out, args=(self.app, run_id), daemon=True).start()


class QueueExecutor:
    """The run's id goes on the queue for a worker."""

    def __init__(self, queue: Celery) -> None:
        self.queue = queue

    def submit(self, run_id: str) -> None:
        self.queue.send_task(OPTIMISE, args=[run_id])


def executor(app: FastAPI, settings: Settings) -> Executor:
    if settings.broker_url:
        return QueueExecutor(make_queue(settings))
    return ThreadExecutor(app)


def executor_for(settings: Settings) -> Executor:
    """For a process without an API app of its own (the command line)."""
    if settings.broker_url:
        return QueueExecutor(make_queue(settings))
    return ThreadExecutor(_worker_app())


def make_queue(settings: Settings) -> Celery:
    queue = Celery("fieldplan", broker=settings.broker_url or "memory://", set_as_current=False)
    queue.conf.update(
        task_default_queue=settings.queue_name,
        # Acknowledged once the run has ended: a worker that dies gives it back to the queue.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        # One run at a time per worker process; the others wait on the queue for any worker.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    queue.task(name=OPTIMISE)(_optimise)
    queue.task(name=DELIVER)(_deliver)
    return queue


def _optimise(run_id: str) -> None:
    carry_out(_worker_app(), run_id)


def _deliver() -> None:
    deliver_webhooks(_worker_app())


@functools.cache
def _worker_app() -> FastAPI:
    """The worker's own API state (database, travel times, mail): built once per process."""
    from api.main import create_app  # api.main builds its executor from this module

    return create_app()


def drop_queue(settings: Settings) -> None:
    """Delete the settings' queue and whatever waits in it (a test's or a benchmark's own)."""
    with make_queue(settings).connection_for_write() as connection:
        connection.default_channel.queue_delete(settings.queue_name)


def queue() -> Celery:
    """What `fieldplan worker` runs."""
    return make_queue(get_settings())
