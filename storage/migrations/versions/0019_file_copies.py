"""the bot's Telegram copy of a photo received over Signal

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-02

``file_copies``: the gateway's file id of a photo a resident sent over Signal, and the Telegram
file id of the bot's copy, made when the photo was first shown on Telegram. The Signal gateway
drops its photo once the copy exists.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "file_copies",
        sa.Column("file_id", sa.String(length=200), nullable=False),
        sa.Column("telegram_file_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", buurtsignaal.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_file_copies")),
    )


def downgrade() -> None:
    op.drop_table("file_copies")
