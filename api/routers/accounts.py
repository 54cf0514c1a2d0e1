"""Administration: who may plan which regions, and the regions themselves."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException
from pydantic import Field, field_validator
from sqlalchemy import select

from api.deps import AdminDep, CommittedInThread, SessionDep
from api.schemas import Id, Incoming, Read, RegionRead, RowId
from fieldplan.accounts import Account, Role, create_account, grant
from fieldplan.regions import Region

router = APIRouter(route_class=CommittedInThread, tags=["administration"])


class AccountRead(Read):
    id: int
    username: str
    role: Role
    active: bool
    region_ids: list[int]
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountRead:
        return cls(
            id=account.id,
            username=account.username,
            role=account.role,
            active=account.active,
            region_ids=[r.id for r in account.regions],
            created_at=account.created_at,
        )


class AccountMade(AccountRead):
    api_key: str = Field(description="Shown this once: store it, it cannot be read again.")


class AccountIn(Incoming):
    username: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=12, max_length=200)
    role: Role = Role.PLANNER
    region_ids: list[Id] = Field(default_factory=list, max_length=1000)


class AccountChange(Incoming):
    role: Role | None = None
    active: bool | None = None
    region_ids: list[Id] | None = Field(None, max_length=1000)


class RegionIn(Incoming):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9-]+$")
    name: str = Field(min_length=1, max_length=120)
    timezone: str = Field("Europe/Amsterdam", max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError("not a time zone of the IANA database (e.g. Europe/Amsterdam)")
        return value


def _regions(session: SessionDep, region_ids: list[int]) -> list[Region]:
    wanted = sorted(set(region_ids))
    found = list(session.scalars(select(Region).where(Region.id.in_(wanted))))
    missing = sorted(set(wanted) - {r.id for r in found})
    if missing:
        raise HTTPException(
            422,
            detail=[{"field": "region_ids", "reason": f"no region {', '.join(map(str, missing))}"}],
        )
    return found


def _account(session: SessionDep, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise HTTPException(404, detail=f"no account {account_id}")
    return account


@router.get("/accounts")
def list_accounts(session: SessionDep, _: AdminDep) -> list[AccountRead]:
    return [AccountRead.of(a) for a in session.scalars(select(Account).order_by(Account.id))]


@router.post("/accounts", status_code=201)
def make_account(body: AccountIn, session: SessionDep, _: AdminDep) -> AccountMade:
    """A planner (or another administrator) with the regions they plan; the answer carries
    the account's API key, once."""
    if session.scalar(select(Account.id).where(Account.username == body.username)):
        raise HTTPException(409, detail=f"an account {body.username!r} exists already")
    account, api_key = create_account(
        session, body.username, body.role, body.password, _regions(session, body.region_ids)
    )
    return AccountMade(**AccountRead.of(account).model_dump(), api_key=api_key)


@router.patch("/accounts/{account_id:int}")
def change_account(
    account_id: RowId, body: AccountChange, session: SessionDep, admin: AdminDep
) -> AccountRead:
    """Grant regions (the list replaces the old one), change the role, or (de)activate."""
    account = _account(session, account_id)
    if account.id == admin.id and (body.active is False or body.role == Role.PLANNER):
        raise HTTPException(409, detail="an administrator cannot lock themselves out")
    if body.region_ids is not None:
        grant(account, _regions(session, body.region_ids))
    if body.role is not None:
        account.role = body.role
    if body.active is not None:
        account.active = body.active
    session.flush()
    return AccountRead.of(account)


@router.post("/regions", status_code=201)
def make_region(body: RegionIn, session: SessionDep, _: AdminDep) -> RegionRead:
    """A new, empty region; its stores and technicians are loaded with `fieldplan init`'s
    region file or imported, and planners are granted it with PATCH /accounts/{id}."""
    if session.scalar(select(Region.id).where(Region.code == body.code)):
        raise HTTPException(409, detail=f"a region {body.code!r} exists already")
    region = Region(code=body.code, name=body.name, timezone=body.timezone)
    session.add(region)
    session.flush()
    return RegionRead.model_validate(region)
