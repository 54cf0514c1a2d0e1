"""Where optimisation runs are carried out: a thread of this API process.

The run itself is a row (`fieldplan.runs`) that every process reads; this executor only
starts `fieldplan.runs.execute` for a run id once the request that wrote the row has
committed. A worker on a task queue would call the same function with the same id.
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from fieldplan import runs
from fieldplan.travel import TravelTimes


class ThreadExecutor:
    def __init__(self, sessions: sessionmaker[Session], travel: TravelTimes) -> None:
        self.sessions = sessions
        self.travel = travel

    def submit(self, run_id: str) -> None:
        threading.Thread(
            target=runs.execute, args=(self.sessions, run_id, self.travel), daemon=True
        ).start()
