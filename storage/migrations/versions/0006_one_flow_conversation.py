"""one flow conversation: persisted flow states move under one name

Every guided flow and typed step is now one ConversationHandler named "flows" whose states
are "<flow>:<state>". The states stored under each flow's own name move there; a person who
was in two flows at once (the bug this fixes) keeps the most recent one, and the other's
draft stays in their user data, to be resumed with its command.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models  # custom column types used by migrations

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLOWS = "flows"

bot_state = sa.table(
    "bot_state",
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("data", sa.JSON),
    sa.column("updated_at", buurtsignaal.storage.models.UTCDateTime()),
)


def _rows() -> list[tuple[str, Any, Any]]:
    query = (
        sa.select(bot_state.c.key, bot_state.c.data, bot_state.c.updated_at)
        .where(bot_state.c.kind == "conversation")
        .order_by(bot_state.c.updated_at.desc())
    )
    return [(row[0], row[1], row[2]) for row in op.get_bind().execute(query)]


def upgrade() -> None:
    bind = op.get_bind()
    moved: dict[str, tuple[object, object]] = {}
    old_keys: list[str] = []
    for key, data, updated_at in _rows():
        name, _, person = key.partition(":")
        if name == FLOWS:
            continue
        old_keys.append(key)
        new_key = f"{FLOWS}:{person}"
        moved.setdefault(new_key, (f"{name}:{data}", updated_at))  # newest first
    if old_keys:
        bind.execute(
            sa.delete(bot_state).where(
                bot_state.c.kind == "conversation", bot_state.c.key.in_(old_keys)
            )
        )
    for new_key, (state, updated_at) in moved.items():
        bind.execute(
            sa.insert(bot_state).values(
                kind="conversation", key=new_key, data=state, updated_at=updated_at
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    for key, data, updated_at in _rows():
        name, _, person = key.partition(":")
        if name != FLOWS or not isinstance(data, str) or ":" not in data:
            continue
        flow, _, state = data.partition(":")
        bind.execute(
            sa.delete(bot_state).where(bot_state.c.kind == "conversation", bot_state.c.key == key)
        )
        bind.execute(
            sa.insert(bot_state).values(
                kind="conversation",
                key=f"{flow}:{person}",
                data=json.loads(json.dumps(state)),
                updated_at=updated_at,
            )
        )
