"""Key/value rows behind the python-telegram-bot persistence (JSON data per kind and key)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import BotState, utcnow


async def load_kind(session: AsyncSession, kind: str) -> dict[str, Any]:
    """All stored entries of one kind, by key."""
    rows = await session.execute(select(BotState.key, BotState.data).where(BotState.kind == kind))
    return {key: data for key, data in rows.all()}


async def load_keys(session: AsyncSession, kind: str, keys: Iterable[str]) -> dict[str, Any]:
    """The stored entries of one kind among ``keys``, by key."""
    rows = await session.execute(
        select(BotState.key, BotState.data).where(BotState.kind == kind, BotState.key.in_(keys))
    )
    return {key: data for key, data in rows.all()}


async def load_one(session: AsyncSession, kind: str, key: str) -> Any | None:
    """One entry, or None."""
    row = await session.get(BotState, (kind, key))
    return None if row is None else row.data


async def save(session: AsyncSession, kind: str, key: str, data: Any) -> None:
    """Insert or replace an entry."""
    row = await session.get(BotState, (kind, key))
    if row is None:
        session.add(BotState(kind=kind, key=key, data=data))
    else:
        row.data = data
        row.updated_at = utcnow()


async def write(
    session: AsyncSession,
    changed: Mapping[tuple[str, str], Any],
    dropped: Iterable[tuple[str, str]],
    *,
    now: dt.datetime,
) -> None:
    """Store every changed entry (one upsert) and remove the dropped ones, in the caller's
    transaction."""
    if changed:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(BotState).values(
            [
                {"kind": kind, "key": key, "data": data, "updated_at": now}
                for (kind, key), data in changed.items()
            ]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[BotState.kind, BotState.key],
                set_={"data": statement.excluded.data, "updated_at": statement.excluded.updated_at},
            )
        )
    by_kind: dict[str, list[str]] = {}
    for kind, key in dropped:
        by_kind.setdefault(kind, []).append(key)
    for kind, keys in by_kind.items():
        await session.execute(delete(BotState).where(BotState.kind == kind, BotState.key.in_(keys)))


async def drop(session: AsyncSession, kind: str, key: str) -> None:
    """Remove an entry if it exists."""
    await session.execute(delete(BotState).where(BotState.kind == kind, BotState.key == key))


async def drop_prefix(session: AsyncSession, kind: str, prefix: str) -> None:
    """Remove every entry of a kind whose key starts with ``prefix``."""
    await session.execute(
        delete(BotState).where(BotState.kind == kind, BotState.key.startswith(prefix))
    )


async def drop_suffix(session: AsyncSession, kind: str, suffix: str) -> None:
    """Remove every entry of a kind whose key ends with ``suffix``."""
    await session.execute(
        delete(BotState).where(BotState.kind == kind, BotState.key.endswith(suffix))
    )
