"""a message between the mediation team and a party is stored once per step

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

``mediation_events.step_key`` (unique): the typed step (the team's message to a party, a
party's answer) an entry came from, as ``signal_events.step_key`` for the signal desk, so a
step handled again (after a restart, or sent again) stores and relays it once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mediation_events") as batch_op:
        batch_op.add_column(sa.Column("step_key", sa.String(length=60), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_mediation_events_step_key"), ["step_key"])


def downgrade() -> None:
    with op.batch_alter_table("mediation_events") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_mediation_events_step_key"), type_="unique")
        batch_op.drop_column("step_key")
