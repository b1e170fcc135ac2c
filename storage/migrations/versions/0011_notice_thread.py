"""citizen notices keep the forum topic they answer: a reply kept for the notifier to a message in a group's
topic was delivered to the group's General topic.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("citizen_notices", sa.Column("thread_id", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizen_notices") as batch_op:  # SQLite rebuilds the table
        batch_op.drop_column("thread_id")
