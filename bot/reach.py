"""Residents who blocked the bot: marked unreachable once, skipped by what the bot sends on
its own, and reachable again as soon as they write to the bot.

Telegram answers 403 (``telegram.error.Forbidden``) to a message for someone who blocked the
bot or deleted the chat. Trying again does not help, and it is not an error of the bot: the
first refusal marks the resident (``residents.unreachable_since``) with one info line in the
log; later refusals are silent. Reminders, follow-ups and notices skip marked residents.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.residents import mark_reachable, mark_unreachable

log = logging.getLogger(__name__)


async def refused(db: Database, telegram_id: int, *, now: dt.datetime, what: str) -> None:
    """Telegram refused ``what`` for this person (403): mark them unreachable, once."""
    async with db.begin() as session:
        await refused_in(session, telegram_id, now=now, what=what)


async def refused_in(
    session: AsyncSession, telegram_id: int, *, now: dt.datetime, what: str
) -> None:
    """:func:`refused`, inside the caller's unit of work (the outbox settles the message in
    the same one)."""
    if await mark_unreachable(session, telegram_id, now=now):
        log.info("%s not delivered: the resident blocked the bot; marked unreachable", what)


async def wrote(db: Database, telegram_id: int) -> None:
    """The person wrote to the bot: whoever was marked unreachable is reachable again."""
    async with db.begin() as session:
        again = await mark_reachable(session, telegram_id)
    if again:
        log.info("a resident who had blocked the bot wrote again; reachable again")
