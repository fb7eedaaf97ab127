"""secret codes stored as a hash; wrong tries of the neighbour's code counted and limited

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

``invites.code`` becomes ``invites.code_hash`` and ``mediation_parties.invite_code`` becomes
``mediation_parties.invite_code_hash``: the SHA-256 of the code (storage.codes), so a copy of
the database cannot be used to take a role or answer for a neighbour. Existing codes are
hashed, so links and cards already given out keep working. ``mediation_parties`` gets
``invite_failures`` and ``invite_locked_at`` (a code tried wrongly too often is locked), and
``code_failures`` keeps each wrong try of a resident for a day (a few tries a day per person).
The downgrade cannot recover the codes: it leaves the hashes in the old columns, so codes
given out before the downgrade stop working.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sha256(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _hash_column(table: str, old: str, new: str) -> None:
    """Add ``new`` (64 characters, unique), fill it with the hash of ``old``, drop ``old``."""
    with op.batch_alter_table(table) as batch_op:
        batch_op.add_column(sa.Column(new, sa.String(length=64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(f"SELECT id, {old} FROM {table} WHERE {old} IS NOT NULL")
    ).all()
    for row_id, code in rows:
        connection.execute(
            sa.text(f"UPDATE {table} SET {new} = :hash WHERE id = :id"),
            {"hash": _sha256(code), "id": row_id},
        )
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(f"uq_{table}_{old}", type_="unique")
        batch_op.drop_column(old)
        batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_{new}"), [new])


def _unhash_column(table: str, new: str, old: str, length: int) -> None:
    with op.batch_alter_table(table) as batch_op:
        batch_op.add_column(sa.Column(old, sa.String(length=length), nullable=True))
    # The codes cannot be recovered; the hashes do not fit a code column's length either.
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(f"uq_{table}_{new}", type_="unique")
        batch_op.drop_column(new)
        batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_{old}"), [old])


def upgrade() -> None:
    _hash_column("invites", "code", "code_hash")
    with op.batch_alter_table("invites") as batch_op:
        batch_op.alter_column("code_hash", existing_type=sa.String(length=64), nullable=False)
    _hash_column("mediation_parties", "invite_code", "invite_code_hash")
    with op.batch_alter_table("mediation_parties") as batch_op:
        batch_op.add_column(
            sa.Column("invite_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("invite_locked_at", buurtsignaal.storage.models.UTCDateTime(), nullable=True)
        )
    op.create_table(
        "code_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("at", buurtsignaal.storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_code_failures_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_failures")),
    )
    with op.batch_alter_table("code_failures") as batch_op:
        batch_op.create_index(batch_op.f("ix_code_failures_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_code_failures_resident_id"), ["resident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("code_failures") as batch_op:
        batch_op.drop_index(batch_op.f("ix_code_failures_resident_id"))
        batch_op.drop_index(batch_op.f("ix_code_failures_at"))
    op.drop_table("code_failures")
    with op.batch_alter_table("mediation_parties") as batch_op:
        batch_op.drop_column("invite_locked_at")
        batch_op.drop_column("invite_failures")
    _unhash_column("mediation_parties", "invite_code_hash", "invite_code", 20)
    # An invite needs a code: a placeholder no link carries (the codes cannot be recovered).
    with op.batch_alter_table("invites") as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=40), nullable=True))
    op.execute(sa.text("UPDATE invites SET code = 'gone-' || CAST(id AS VARCHAR(20))"))
    with op.batch_alter_table("invites") as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=40), nullable=False)
        batch_op.drop_constraint("uq_invites_code_hash", type_="unique")
        batch_op.drop_column("code_hash")
        batch_op.create_unique_constraint(batch_op.f("uq_invites_code"), ["code"])
