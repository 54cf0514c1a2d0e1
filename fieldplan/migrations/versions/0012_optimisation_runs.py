"""optimisation runs as rows, readable by every API process

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "optimisation_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("time_limit_s", sa.Float(), nullable=False),
        sa.Column("today", sa.Date(), nullable=False),
        sa.Column("started_by", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("best_costs", sa.JSON(), nullable=False),
        sa.Column("plan_ids", sa.JSON(), nullable=False),
        sa.Column("unplanned", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_optimisation_runs_region_id_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optimisation_runs")),
    )
    op.create_index(
        op.f("ix_optimisation_runs_region_id"), "optimisation_runs", ["region_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_optimisation_runs_region_id"), table_name="optimisation_runs")
    op.drop_table("optimisation_runs")
