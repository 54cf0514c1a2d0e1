"""a revision of a region may be several bookings of jobs new to the plan

Bookings that wait for the region's lock are taken together in one transaction
(`fieldplan.booking_desk`), so one revision records every job it booked. The table holds
only what other processes catch up on, so it is made anew: a revision it no longer knows
is read afresh.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(*key: str) -> None:
    op.create_table(
        "plan_bookings",
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_plan_bookings_region_id_regions")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_plan_bookings_job_id_jobs")),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_plan_bookings")),
    )


def upgrade() -> None:
    op.drop_table("plan_bookings")
    _create("region_id", "revision", "job_id")


def downgrade() -> None:
    op.drop_table("plan_bookings")
    _create("region_id", "revision")
