"""a koffiemoment is published once per draft; an addition or a reply is stored once per step

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

``series.draft_key`` (unique): the /koffieplannen draft a series was published from, so that
"Publish" pressed again, or the update handled again after a restart, plans nothing twice.
``signal_events.step_key`` (unique): the typed step (a resident's addition, a professional's
reply) an entry came from, so a step handled again stores and relays it once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("series") as batch_op:
        batch_op.add_column(sa.Column("draft_key", sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_series_draft_key"), ["draft_key"])
    with op.batch_alter_table("signal_events") as batch_op:
        batch_op.add_column(sa.Column("step_key", sa.String(length=60), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_signal_events_step_key"), ["step_key"])


def downgrade() -> None:
    with op.batch_alter_table("signal_events") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_signal_events_step_key"), type_="unique")
        batch_op.drop_column("step_key")
    with op.batch_alter_table("series") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_series_draft_key"), type_="unique")
        batch_op.drop_column("draft_key")
