"""The outbox: messages the bot sends on its own, written where the decision is made.

A feature that decides to send something (a digest, a reminder, a notice, a relay) calls
:func:`enqueue` in the same unit of work that records the decision (a watermark moved, a
reminder marked, a case event written). Either both are committed or neither is: a crash
before the commit decides nothing, and one after it leaves the message waiting here. The
``dedupe_key`` is unique, so a decision taken twice (two sweeps, a retried job) adds one row.

The sender (``bot.outbox``) takes :func:`due` rows in order, sends each and settles it with
:func:`settle_sent`, :func:`settle_failed` or :func:`retry_later`; :func:`purge` removes
settled rows after a while. This module never imports ``telegram``: a message is its text,
parse mode, keyboard (as JSON) and optional photo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import OutboxMessage

ERROR_LENGTH = 500
PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class Outgoing:
    """One message to write to the outbox (see :func:`enqueue`)."""

    key: str
    chat_id: int
    kind: str
    text: str
    parse_mode: str | None = "HTML"
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    photo_file_id: str | None = None
    hook: str | None = None
    hook_data: dict[str, Any] | None = None


async def enqueue(session: AsyncSession, *messages: Outgoing, now: dt.datetime) -> int:
    """Write messages to the outbox in the caller's unit of work; how many were new.

    A message whose ``key`` is already in the outbox (sent or not) is left out, so deciding
    the same thing twice sends it once. One INSERT ... ON CONFLICT DO NOTHING, also for
    thousands of messages."""
    if not messages:
        return 0
    rows = [
        {
            "dedupe_key": m.key,
            "chat_id": m.chat_id,
            "kind": m.kind,
            "text": m.text,
            "parse_mode": m.parse_mode,
            "reply_markup": m.reply_markup,
            "photo": m.photo,
            "photo_file_id": m.photo_file_id,
            "hook": m.hook,
            "hook_data": m.hook_data,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = 0
    for start in range(0, len(rows), 500):  # stay under the drivers' parameter limits
        chunk = rows[start : start + 500]
        keys = {row["dedupe_key"] for row in chunk}
        known = set(
            (
                await session.scalars(
                    select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))
                )
            ).all()
        )
        statement = insert(OutboxMessage).on_conflict_do_nothing(index_elements=["dedupe_key"])
        await session.execute(statement, chunk)
        added += len(keys - known)
    return added


async def due(session: AsyncSession, *, now: dt.datetime, limit: int = 200) -> list[OutboxMessage]:
    """Pending messages in the order they were decided, at most ``limit``, each chat's in
    order: a chat whose oldest pending message waits for a retry holds the later ones too."""
    rows = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.state == PENDING)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    ).all()
    held: set[int] = set()
    ready: list[OutboxMessage] = []
    for row in rows:
        if row.chat_id in held:
            continue
        if row.next_attempt_at > now:
            held.add(row.chat_id)
            continue
        ready.append(row)
    return ready


async def next_attempt(session: AsyncSession) -> dt.datetime | None:
    """When the earliest pending message is due (None when nothing is pending)."""
    value = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.state == PENDING)
    )
    if value is not None and value.tzinfo is None:  # SQLite keeps no zone (min() is raw)
        value = value.replace(tzinfo=dt.UTC)
    return value


async def settle_sent(
    session: AsyncSession, message_id: int, *, telegram_message_id: int | None, now: dt.datetime
) -> OutboxMessage | None:
    """Telegram accepted the message: mark it sent (once). The row, or None if it was not
    pending any more."""
    row = await session.get(OutboxMessage, message_id)
    if row is None or row.state != PENDING:
        return None
    row.state = SENT
    row.attempts += 1
    row.sent_at = now
    row.message_id = telegram_message_id
    row.error = None
    row.photo = None  # a sent photo need not be kept
    await session.flush()
    return row


async def settle_failed(
    session: AsyncSession, message_id: int, *, error: str, now: dt.datetime
) -> OutboxMessage | None:
    """Telegram refused the message for good: mark it failed with the error."""
    row = await session.get(OutboxMessage, message_id)
    if row is None or row.state != PENDING:
        return None
    row.state = FAILED
    row.attempts += 1
    row.sent_at = now
    row.error = error[:ERROR_LENGTH]
    await session.flush()
    return row


async def retry_later(
    session: AsyncSession, message_id: int, *, at: dt.datetime, error: str
) -> None:
    """A passing failure: try the message again at ``at``."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.state == PENDING)
        .values(next_attempt_at=at, error=error[:ERROR_LENGTH], attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )


async def free_key(session: AsyncSession, key: str) -> None:
    """Let a failed message's decision be taken again: its row keeps the error under another
    key, and the next :func:`enqueue` with ``key`` adds a new message."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.dedupe_key == key, OutboxMessage.state == FAILED)
        .values(dedupe_key=OutboxMessage.dedupe_key + "#failed-" + OutboxMessage.id.cast(String))
        .execution_options(synchronize_session=False)
    )


async def failed(session: AsyncSession, *, limit: int = 100) -> Sequence[OutboxMessage]:
    """The newest messages that could not be delivered, newest first."""
    result = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.state == FAILED)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return result.all()


async def counts(session: AsyncSession) -> dict[str, int]:
    """How many messages are in each state."""
    rows = await session.execute(
        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    )
    return {str(state): int(number) for state, number in rows.all()}


async def purge(
    session: AsyncSession, *, sent_before: dt.datetime, failed_before: dt.datetime
) -> int:
    """Remove sent messages settled before ``sent_before`` and failed ones before
    ``failed_before``; how many were removed."""
    result = await session.execute(
        delete(OutboxMessage).where(
            ((OutboxMessage.state == SENT) & (OutboxMessage.sent_at < sent_before))
            | ((OutboxMessage.state == FAILED) & (OutboxMessage.sent_at < failed_before))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
