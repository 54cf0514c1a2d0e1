from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import SessionDep
from api.schemas import TokenRead
from fieldplan.accounts import authenticate

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token")
def issue_token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenRead:
    """OAuth2 password flow for planners; integrations use an API key as bearer instead."""
    account = authenticate(session, form.username, form.password)
    if account is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenRead(access_token=request.app.state.signer.issue(account.id))
