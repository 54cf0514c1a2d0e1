"""the regions each planner account may see and change

Accounts that existed before kept seeing every region, so each planner is granted every
region there is now; an admin narrows that with `fieldplan account grant`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_regions",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_regions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["region_id"],
            ["regions.id"],
            name=op.f("fk_account_regions_region_id_regions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region_id", name=op.f("pk_account_regions")),
    )
    op.execute(
        "INSERT INTO account_regions (account_id, region_id) "
        "SELECT accounts.id, regions.id FROM accounts CROSS JOIN regions "
        "WHERE accounts.role = 'planner'"
    )


def downgrade() -> None:
    op.drop_table("account_regions")
