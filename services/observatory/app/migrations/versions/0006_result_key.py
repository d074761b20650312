"""the key id each stored result is sealed with; when an analysis was erased

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_key", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_analyses_result_key"), ["result_key"], unique=False)
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_index(batch_op.f("ix_analyses_result_key"))
        batch_op.drop_column("result_key")
