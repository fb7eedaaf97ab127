"""composite indexes for the digest and the hotspot check

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

The digest reads one wijk's signals in a period (new ones, open ones, the period before) and
the hotspot check one category of a wijk in a period. With only ``wijk_id`` indexed, each read
the whole wijk; these indexes let them read the range.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_signals_wijk_created": ["wijk_id", "created_at"],
    "ix_signals_wijk_status_created": ["wijk_id", "status", "created_at"],
    "ix_signals_wijk_category_created": ["wijk_id", "category", "created_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "signals", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="signals")
