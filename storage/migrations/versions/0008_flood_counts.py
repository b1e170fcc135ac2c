"""flood counts: the per-citizen flood limit, shared by every process

The count of a citizen's recent messages moves from each process's memory to the citizen's row, so
that several processes (`govbot run --workers N`, or hosts behind a proxy) enforce one limit.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("flood_window", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("flood_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("flood_previous", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("flood_warned", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        for column in ("flood_warned", "flood_previous", "flood_count", "flood_window"):
            batch.drop_column(column)
