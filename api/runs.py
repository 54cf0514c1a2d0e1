"""Where optimisation runs are carried out: a thread of this API process.

The run itself is a row (`fieldplan.runs`) that every process reads; this executor only
starts `fieldplan.runs.execute` for a run id once the request that wrote the row has
committed. A worker on a task queue would call the same function with the same id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from fieldplan import runs
from fieldplan.travel import TravelTimes


class ThreadExecutor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        travel: TravelTimes,
        after: Callable[[], object] | None = None,
    ) -> None:
        self.sessions = sessions
        self.travel = travel
        self.after = after  # once a run has ended: send what it told customers

    def submit(self, run_id: str) -> None:
        threading.Thread(target=self._run, args=(run_id,), daemon=True).start()

    def _run(self, run_id: str) -> None:
        runs.execute(self.sessions, run_id, self.travel)
        if self.after is not None:
            self.after()
