"""how many times a worker took up an optimisation run

A run whose worker died is delivered again by the queue; it is carried out once more from
scratch, and the time after that it is failed with the reason (`fieldplan.runs.claim`).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("optimisation_runs") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("optimisation_runs") as batch:
        batch.drop_column("attempts")
