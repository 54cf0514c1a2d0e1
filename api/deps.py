"""Dependencies declared once and reused: the request's session and the calling planner."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, HTTPException, Request, status
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from api import notify, worker
from fieldplan import notices, plan_gate, webhooks
from fieldplan.accounts import Account, Role, by_api_key
from fieldplan.db import reading, unit_of_work

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
SESSION_COOKIE = "fieldplan_session"


def get_session(request: Request, background: BackgroundTasks) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, else rolled back.
    What it told customers (`fieldplan.notices`) is sent once it has committed."""
    state = request.app.state
    with unit_of_work(state.sessions) as session:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            reading(session)
        plan_gate.judge_with(session, today=state.today(), travel=state.travel)
        yield session
    if session.info.get(notices.WRITTEN):
        background.add_task(notify.send_notices, request.app)
    if session.info.get(webhooks.WRITTEN):
        background.add_task(worker.deliver_webhooks, request.app)


# "function" scope: the transaction commits before the response leaves, so a client that
# follows a redirect (or retries) at once sees what this request wrote, and a failed commit
# is an error response, never a success the database does not hold.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _account(request: Request, token: str | None) -> Account | None:
    """Who is calling, read in a short session of its own: the request's own transaction
    (on SQLite a writer's takes the write lock with its first statement) then begins in the
    handler's thread, and ends there (`CommittedInThread`), never held across the threads
    of a request's other steps."""
    token = token or request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with request.app.state.sessions() as lookup:
        reading(lookup)
        if token.startswith("fpk_"):
            account = by_api_key(lookup, token)
        else:
            account_id = request.app.state.signer.verify(token)
            found = lookup.get(Account, account_id) if account_id is not None else None
            account = found if found is not None and found.active else None
    return account  # closing the session detached it as loaded, its regions with it


def current_planner(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> Account:
    account = _account(request, token)
    if account is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="sign in as a planner (bearer token or API key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return account


def optional_planner(
    request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> Account | None:
    return _account(request, token)


def current_admin(planner: Annotated[Account, Depends(current_planner)]) -> Account:
    if planner.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only an administrator may do this")
    return planner


PlannerDep = Annotated[Account, Depends(current_planner)]
AdminDep = Annotated[Account, Depends(current_admin)]
MaybePlannerDep = Annotated[Account | None, Depends(optional_planner)]


class CommittedInThread(APIRoute):
    """A route whose handler commits its session before it returns, in its own worker
    thread. Otherwise the commit that lets go of a region's lock would wait until FastAPI has
    validated the answer, which needs a thread of the same pool: under load every thread
    could be a booking waiting for that lock, and none would come free (bookings stood still
    until the lock wait ran out)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        writes = bool(set(kwargs.get("methods") or ()) - {"GET", "HEAD", "OPTIONS"})
        super().__init__(path, _committing(endpoint, writes), **kwargs)


# SQLite lets waiting writers retry in no order, so with dozens waiting one of them can
# starve past the busy timeout. A process's writers take their turn here first, in the
# order they came, and meet the other process at SQLite one at a time.
_SQLITE_WRITERS = threading.Lock()


def _committing(endpoint: Callable[..., Any], writes: bool) -> Callable[..., Any]:
    takes_session = "session" in inspect.signature(endpoint).parameters
    if inspect.iscoroutinefunction(endpoint) or not takes_session:
        return endpoint

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        session: Session = kwargs["session"]
        turn = writes and session.get_bind().dialect.name == "sqlite"
        with _SQLITE_WRITERS if turn else contextlib.nullcontext():
            result = endpoint(*args, **kwargs)
            session.commit()
        return result

    return run
