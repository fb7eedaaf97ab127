"""The inbox: updates from Telegram, stored before they are confirmed and marked when handled.

A row is ``new`` from the moment it is stored until it is handled (``done``) or set aside
(``failed``, with the error). Handling drops the raw update (which holds the message text) at
once; :func:`purge` removes finished rows after a while.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import InboxUpdate

ERROR_LENGTH = 500


@dataclass(frozen=True)
class Received:
    """One update as it came in: its id, its chat (if any) and the raw JSON."""

    update_id: int
    chat_id: int | None
    raw: dict[str, Any]


async def store(session: AsyncSession, updates: Sequence[Received]) -> list[int]:
    """Store the updates that are not in the inbox yet; their ids, in order.

    Telegram sends an update again until a later call confirms it, so one that is already
    stored (handled or not) is left as it is.
    """
    ids = [u.update_id for u in updates]
    known = set(
        (
            await session.scalars(
                select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
            )
        ).all()
    )
    new: list[int] = []
    for received in sorted(updates, key=lambda u: u.update_id):
        if received.update_id in known:
            continue
        known.add(received.update_id)
        session.add(
            InboxUpdate(
                update_id=received.update_id,
                chat_id=received.chat_id,
                raw=received.raw,
                state="new",
                attempts=0,
            )
        )
        new.append(received.update_id)
    await session.flush()
    return new


async def unfinished(session: AsyncSession) -> list[InboxUpdate]:
    """Every update not handled yet, oldest first."""
    rows = await session.scalars(
        select(InboxUpdate).where(InboxUpdate.state == "new").order_by(InboxUpdate.update_id)
    )
    return list(rows.all())


async def last_update_id(session: AsyncSession, *, below: int) -> int:
    """The highest update id received below ``below`` (one messenger's range), else 0."""
    highest = await session.scalar(
        select(func.max(InboxUpdate.update_id)).where(InboxUpdate.update_id < below)
    )
    return int(highest or 0)


async def get(session: AsyncSession, update_id: int) -> InboxUpdate | None:
    """One stored update."""
    return await session.get(InboxUpdate, update_id)


async def begin_attempt(session: AsyncSession, update_id: int) -> int | None:
    """Count a handling attempt; how many there have been, or None when it is not ``new``."""
    return (await begin_attempts(session, [update_id])).get(update_id)


async def begin_attempts(session: AsyncSession, update_ids: Sequence[int]) -> dict[int, int]:
    """Count a handling attempt of each update that is still ``new``, in one statement; how
    many attempts each has had now (updates that are not ``new`` are left out)."""
    if not update_ids:
        return {}
    rows = await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id.in_(list(update_ids)), InboxUpdate.state == "new")
        .values(attempts=InboxUpdate.attempts + 1)
        .returning(InboxUpdate.update_id, InboxUpdate.attempts)
        .execution_options(synchronize_session=False)
    )
    return {int(uid): int(attempts) for uid, attempts in rows.all()}


async def note_error(session: AsyncSession, update_id: int, error: str) -> None:
    """Remember why an attempt failed (the update stays ``new``, to be tried again)."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id == update_id)
        .values(error=error[:ERROR_LENGTH])
    )


async def mark_done(session: AsyncSession, update_id: int, *, now: dt.datetime) -> None:
    """The update was handled: keep only that it was (the raw update is dropped)."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id == update_id)
        .values(state="done", raw=None, error=None, finished_at=now)
    )


async def set_aside(session: AsyncSession, update_id: int, error: str, *, now: dt.datetime) -> None:
    """The update cannot be read or handled: keep it as failed, with the error, and skip it."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id == update_id)
        .values(state="failed", error=error[:ERROR_LENGTH], finished_at=now)
    )


async def purge(
    session: AsyncSession, *, now: dt.datetime, done_after: dt.timedelta, failed_after: dt.timedelta
) -> int:
    """Remove handled updates older than ``done_after`` and failed ones older than
    ``failed_after``; how many were removed."""
    removed = 0
    for state, after in (("done", done_after), ("failed", failed_after)):
        result = await session.execute(
            delete(InboxUpdate).where(
                InboxUpdate.state == state, InboxUpdate.finished_at < now - after
            )
        )
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
