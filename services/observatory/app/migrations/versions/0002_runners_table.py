"""runners table: one row per live service process, with its heartbeat

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runners",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runners")),
    )
    op.create_index(op.f("ix_runners_heartbeat_at"), "runners", ["heartbeat_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_runners_heartbeat_at"), table_name="runners")
    op.drop_table("runners")
