"""mediation intake: what is going on, and the parties' street and house number

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models  # noqa: F401  (custom column types used by migrations)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mediation_cases") as batch:
        batch.add_column(sa.Column("situation", sa.Text(), nullable=True))
        batch.add_column(sa.Column("requester_address", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("other_address", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mediation_cases") as batch:
        batch.drop_column("other_address")
        batch.drop_column("requester_address")
        batch.drop_column("situation")
