"""the outbox: messages the bot sends on its own

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

``outbox_messages``: every message the bot sends on its own (digests, alerts, reminders,
notices, relays) is written here in the unit of work that decides it, with a unique dedupe key,
and sent from here by one sender (bot/outbox.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("parse_mode", sa.String(length=20), nullable=True),
        sa.Column("reply_markup", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("photo", sa.LargeBinary(), nullable=True),
        sa.Column("photo_file_id", sa.String(length=200), nullable=True),
        sa.Column("hook", sa.String(length=60), nullable=True),
        sa.Column("hook_data", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", buurtsignaal.storage.models.UTCDateTime(), nullable=False),
        sa.Column("created_at", buurtsignaal.storage.models.UTCDateTime(), nullable=False),
        sa.Column("sent_at", buurtsignaal.storage.models.UTCDateTime(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "state in ('pending', 'sent', 'failed')", name=op.f("ck_outbox_messages_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_messages_dedupe_key")),
    )
    op.create_index("ix_outbox_messages_state_id", "outbox_messages", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_state_id", table_name="outbox_messages")
    op.drop_table("outbox_messages")
