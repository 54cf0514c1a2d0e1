"""All configuration read from the environment, in one place (`FIELDPLAN_*`)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDPLAN_", extra="ignore")

    database_url: str = "sqlite:///./fieldplan.db"
    timezone: str = "Europe/Amsterdam"
    host: str = "127.0.0.1"
    port: int = 8000
    sample_data_dir: Path = Path(__file__).resolve().parent.parent / "sample_data"
    osrm_url: str | None = None
    # The task queue's broker, e.g. amqp://guest:guest@127.0.0.1:5672//: optimisation runs
    # go to `fieldplan worker` processes. Unset: a thread of the API process runs them.
    broker_url: str | None = None
    queue_name: str = "fieldplan"
    # Signs planner session tokens. Unset: a random key per process, so a restart signs out.
    secret_key: str = ""
    token_minutes: int = 8 * 60
    # Where links in invites and feeds point; default: the address `serve` listens on.
    public_url: str = ""
    feed_days: int = 14
    outbox_dir: Path = Path("outbox")
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_sender: str = "service@fieldplan.local"
    # Customer windows: width, grid step, how many working days ahead, and how late before
    # the appointment a customer may still move or cancel it themselves.
    window_minutes: int = 120
    window_step_minutes: int = 60
    offer_days: int = 10
    customer_cutoff_hours: int = 24
    order_link_days: int = 60
    # The language of what technicians read (feeds): "nl" or "en".
    crew_language: str = "nl"
    # The demo's clock: the service runs as if it were this moment when it started, and time
    # goes on from there (the sample week stays live whatever the real date). Unset: real time.
    demo_start: datetime | None = None
    # The share of promises the plan keeps room for when work runs long (0: no protection).
    promise_target: float = Field(default=0.98, ge=0.0, lt=1.0)

    @field_validator("promise_target")
    @classmethod
    def _a_share_or_off(cls, target: float) -> float:
        if 0 < target < 0.5:
            raise ValueError("a promise target is 0 (off) or a share from 0.5 up to 1")
        return target

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
