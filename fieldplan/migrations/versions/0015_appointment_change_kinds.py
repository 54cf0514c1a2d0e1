"""what each change of an appointment was, as data: booked, moved, cancelled or at risk

Rows from before are told apart by what they hold: a change with only a new window was the
booking, one with only an old window the cancellation, one whose reason starts "at risk" the
flag (its only mark until now), and the rest moves.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("appointment_changes") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=12), server_default="moved", nullable=False)
        )
    op.execute("UPDATE appointment_changes SET kind = 'at_risk' WHERE reason LIKE 'at risk%'")
    op.execute(
        "UPDATE appointment_changes SET kind = 'booked' "
        "WHERE kind = 'moved' AND old_start IS NULL AND new_start IS NOT NULL"
    )
    op.execute(
        "UPDATE appointment_changes SET kind = 'cancelled' "
        "WHERE kind = 'moved' AND old_start IS NOT NULL AND new_start IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("appointment_changes") as batch:
        batch.drop_column("kind")
