"""Which messenger an id belongs to: Telegram, or Signal through the gateway.

Signal has no ids of its own that the bot could use, so the Signal gateway gives its chats ids
in a range Telegram never uses (Telegram's ids stay below 2**52 in size): a private chat is
``SIGNAL_BASE + n``, a group ``-(SIGNAL_BASE + n)``. The same range holds the gateway's update
ids. The rule lives here, without Telegram, so storage and the bot share it (bot.messenger).

A photo a resident sent over Signal is kept by the gateway only until the bot has its own
copy on Telegram (the first time it shows the photo there); ``file_copies`` maps the gateway's
file id to that copy.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import FileCopy, Signal, SignalEvent

SIGNAL_BASE = 2**52
TELEGRAM, SIGNAL = "telegram", "signal"


def is_signal_chat(chat_id: int) -> bool:
    """Whether a chat (or user) id is one of the Signal gateway's."""
    return abs(chat_id) >= SIGNAL_BASE


def is_signal_update(update_id: int) -> bool:
    """Whether an update id is one of the Signal gateway's."""
    return update_id >= SIGNAL_BASE


def messenger_of(chat_id: int) -> str:
    """``"signal"`` or ``"telegram"``."""
    return SIGNAL if is_signal_chat(chat_id) else TELEGRAM


async def telegram_copy(session: AsyncSession, file_id: str) -> str | None:
    """The Telegram file id of the bot's copy of a gateway file, if it made one."""
    return await session.scalar(
        select(FileCopy.telegram_file_id).where(FileCopy.file_id == file_id)
    )


async def remember_copy(
    session: AsyncSession, file_id: str, telegram_file_id: str, *, now: dt.datetime
) -> None:
    """Remember the bot's Telegram copy of a gateway file."""
    if await session.get(FileCopy, file_id) is None:
        session.add(FileCopy(file_id=file_id, telegram_file_id=telegram_file_id, created_at=now))
        await session.flush()


async def drop_unused_copies(session: AsyncSession) -> int:
    """Remove the copies of photos no report refers to any more (after /vergeetmij or the
    retention removed them); how many."""
    used = union(
        select(Signal.photo_file_id).where(Signal.photo_file_id.is_not(None)),
        select(SignalEvent.photo_file_id).where(SignalEvent.photo_file_id.is_not(None)),
    ).subquery()
    result = await session.execute(
        delete(FileCopy).where(FileCopy.file_id.not_in(select(used.c[0])))
    )
    return int(getattr(result, "rowcount", 0) or 0)
