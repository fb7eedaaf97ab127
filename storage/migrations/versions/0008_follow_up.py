"""follow-up: withdrawn reports, additions with a photo, new-signal alerts and preferences

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status in ('nieuw', 'in_behandeling', 'afgehandeld')"
NEW_STATUSES = "status in ('nieuw', 'in_behandeling', 'afgehandeld', 'ingetrokken')"


def upgrade() -> None:
    op.create_table(
        "alert_preferences",
        sa.Column("wijk_id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column(
            "updated_at", buurtsignaal.storage.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "mode in ('immediate', 'digest')", name=op.f("ck_alert_preferences_mode")
        ),
        sa.ForeignKeyConstraint(
            ["wijk_id"],
            ["wijken.id"],
            name=op.f("fk_alert_preferences_wijk_id_wijken"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("wijk_id", "telegram_id", name=op.f("pk_alert_preferences")),
    )
    op.create_table(
        "signal_alerts",
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", buurtsignaal.storage.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("sent_at", buurtsignaal.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["signal_id"],
            ["signals.id"],
            name=op.f("fk_signal_alerts_signal_id_signals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signal_id", "recipient", name=op.f("pk_signal_alerts")),
    )
    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo_file_id", sa.String(length=200), nullable=True))
    # A withdrawn report: a new status value.
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_signals_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_signals_status"), NEW_STATUSES)


def downgrade() -> None:
    # Withdrawn reports count as closed in the older schema.
    op.execute("UPDATE signals SET status = 'afgehandeld' WHERE status = 'ingetrokken'")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_signals_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_signals_status"), OLD_STATUSES)
    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.drop_column("photo_file_id")
    op.drop_table("signal_alerts")
    op.drop_table("alert_preferences")
