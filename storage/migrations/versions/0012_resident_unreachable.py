"""residents who blocked the bot are marked unreachable

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``residents.unreachable_since``: when Telegram first refused a message to the resident (403:
they blocked the bot or deleted the chat). Reminders, follow-ups and other messages the bot
sends on its own skip them; it is cleared when they write to the bot again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("residents") as batch_op:
        batch_op.add_column(
            sa.Column("unreachable_since", buurtsignaal.storage.models.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("residents") as batch_op:
        batch_op.drop_column("unreachable_since")
