"""finishing a flow twice stores nothing twice

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A report or a mediation request remembers the draft it was sent from (``draft_key``, unique),
so sending the same draft again (after a lost reply, a restart or a double tap) finds the
stored one instead of storing a second. A person has at most one sign-up per date, and at most
one active grant per role and wijk; duplicates that slipped in before are folded first: the
active sign-up (else the newest) stays, and of two active grants the oldest stays while the
others are marked revoked.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

signups_table = sa.table(
    "signups",
    sa.column("id", sa.Integer()),
    sa.column("moment_id", sa.Integer()),
    sa.column("resident_id", sa.Integer()),
    sa.column("cancelled_at", buurtsignaal.storage.models.UTCDateTime()),
)
roles_table = sa.table(
    "roles",
    sa.column("id", sa.Integer()),
    sa.column("telegram_id", sa.BigInteger()),
    sa.column("role", sa.String()),
    sa.column("wijk_id", sa.Integer()),
    sa.column("revoked_at", buurtsignaal.storage.models.UTCDateTime()),
)


def _fold_duplicates(connection: sa.Connection, now: dt.datetime) -> None:
    """Keep one sign-up per person and date, and one active grant per person, role and wijk."""
    kept: dict[tuple[int, int], int] = {}
    doomed: list[int] = []
    rows = connection.execute(
        sa.select(
            signups_table.c.id,
            signups_table.c.moment_id,
            signups_table.c.resident_id,
        ).order_by(
            signups_table.c.moment_id,
            signups_table.c.resident_id,
            # the active one first, then the newest
            signups_table.c.cancelled_at.is_not(None),
            signups_table.c.id.desc(),
        )
    ).all()
    for signup_id, moment_id, resident_id in rows:
        if (moment_id, resident_id) in kept:
            doomed.append(signup_id)
        else:
            kept[(moment_id, resident_id)] = signup_id
    if doomed:
        connection.execute(sa.delete(signups_table).where(signups_table.c.id.in_(doomed)))

    active: set[tuple[int, str, int]] = set()
    extra: list[int] = []
    grants = connection.execute(
        sa.select(
            roles_table.c.id, roles_table.c.telegram_id, roles_table.c.role, roles_table.c.wijk_id
        )
        .where(roles_table.c.revoked_at.is_(None))
        .order_by(roles_table.c.id)
    ).all()
    for grant_id, telegram_id, role, wijk_id in grants:
        if (telegram_id, role, wijk_id) in active:
            extra.append(grant_id)
        active.add((telegram_id, role, wijk_id))
    if extra:
        connection.execute(
            sa.update(roles_table).where(roles_table.c.id.in_(extra)).values(revoked_at=now)
        )


def upgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft_key", sa.String(length=60), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_signals_draft_key"), ["draft_key"])

    with op.batch_alter_table("mediation_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft_key", sa.String(length=60), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_mediation_cases_draft_key"), ["draft_key"])

    # A migration has no clock service: it runs once, now.
    _fold_duplicates(op.get_bind(), dt.datetime.now(dt.UTC))

    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_signups_moment_resident", ["moment_id", "resident_id"]
        )

    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.create_index(
            "uq_roles_active",
            ["telegram_id", "role", "wijk_id"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_index("uq_roles_active")

    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.drop_constraint("uq_signups_moment_resident", type_="unique")

    with op.batch_alter_table("mediation_cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_mediation_cases_draft_key"), type_="unique")
        batch_op.drop_column("draft_key")

    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_signals_draft_key"), type_="unique")
        batch_op.drop_column("draft_key")
