"""what customers are told about their visit: reminders, on the way, new estimates

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appointment_id", sa.Integer(), sa.ForeignKey("appointments.id"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("eta", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=False),
    )
    op.create_index("ix_customer_notices_appointment_id", "customer_notices", ["appointment_id"])
    op.create_index("ix_customer_notices_sent_at", "customer_notices", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_customer_notices_sent_at", "customer_notices")
    op.drop_index("ix_customer_notices_appointment_id", "customer_notices")
    op.drop_table("customer_notices")
