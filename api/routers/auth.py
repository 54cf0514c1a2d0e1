from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import CommittedInThread, SessionDep
from api.schemas import Refusal, TokenRead
from fieldplan.accounts import sign_in

router = APIRouter(route_class=CommittedInThread, prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenRead,
    responses={
        401: {"model": Refusal, "description": "wrong username or password"},
        429: {"model": Refusal, "description": "too many failed sign-ins: see Retry-After"},
    },
)
def issue_token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenRead | Response:
    """OAuth2 password flow for planners; integrations use an API key as bearer instead.
    After five failed attempts on a username each further one waits longer (429 with
    Retry-After), up to 15 minutes."""
    account = sign_in(session, form.username, form.password, now=request.app.state.now())
    if account is None:  # answered, not raised: the failure is committed and counts
        return JSONResponse(
            {"detail": "wrong username or password"},
            status_code=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenRead(access_token=request.app.state.signer.issue(account.id))
