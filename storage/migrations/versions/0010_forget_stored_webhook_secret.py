"""forget the stored Telegram webhook secret: it is derived from the bot token now (bot/channels/telegram.py,
``webhook_secret``), and the row older versions kept let a copy of the database forge updates.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM stored_secrets WHERE name = 'telegram-webhook'")


def downgrade() -> None:
    """Nothing to restore: no version reads the row since the secret is derived."""
