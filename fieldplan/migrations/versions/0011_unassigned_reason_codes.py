"""the code of each unplanned job's reason, for grouping without reading the words

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("unassigned_jobs") as batch:
        batch.add_column(
            sa.Column("reason_code", sa.String(length=40), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("unassigned_jobs") as batch:
        batch.drop_column("reason_code")
