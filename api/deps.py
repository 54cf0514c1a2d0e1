"""Dependencies declared once and reused: the request's session and the calling planner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from fieldplan import plan_gate
from fieldplan.accounts import Account, Role, by_api_key
from fieldplan.db import reading, unit_of_work

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
SESSION_COOKIE = "fieldplan_session"


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, else rolled back."""
    state = request.app.state
    with unit_of_work(state.sessions) as session:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            reading(session)
        plan_gate.judge_with(session, today=state.today(), travel=state.travel)
        yield session


# "function" scope: the transaction commits before the response leaves, so a client that
# follows a redirect (or retries) at once sees what this request wrote, and a failed commit
# is an error response, never a success the database does not hold.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _account(request: Request, session: Session, token: str | None) -> Account | None:
    token = token or request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if token.startswith("fpk_"):
        return by_api_key(session, token)
    account_id = request.app.state.signer.verify(token)
    if account_id is None:
        return None
    account = session.get(Account, account_id)
    return account if account is not None and account.active else None


def current_planner(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]
) -> Account:
    account = _account(request, session, token)
    if account is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="sign in as a planner (bearer token or API key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return account


def optional_planner(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]
) -> Account | None:
    return _account(request, session, token)


def current_admin(planner: Annotated[Account, Depends(current_planner)]) -> Account:
    if planner.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only an administrator may do this")
    return planner


PlannerDep = Annotated[Account, Depends(current_planner)]
AdminDep = Annotated[Account, Depends(current_admin)]
MaybePlannerDep = Annotated[Account | None, Depends(optional_planner)]
