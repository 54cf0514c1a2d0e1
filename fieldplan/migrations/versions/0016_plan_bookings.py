"""the revisions of a region that were one booking of a job new to the plan

Another API process's prepared plan catches up on such a revision by reading the stored
routes and the job's promise again, instead of the whole region (`fieldplan.live_plans`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_bookings",
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_plan_bookings_region_id_regions")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_plan_bookings_job_id_jobs")),
        sa.PrimaryKeyConstraint("region_id", "revision", name=op.f("pk_plan_bookings")),
    )


def downgrade() -> None:
    op.drop_table("plan_bookings")
