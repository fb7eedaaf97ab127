"""Residents who blocked the bot: marked unreachable once, skipped by what the bot sends on
its own, and reachable again as soon as they write to the bot.

Telegram answers 403 (``telegram.error.Forbidden``) to a message for someone who blocked the
bot or deleted the chat. Trying again does not help, and it is not an error of the bot: the
first refusal marks the resident (``residents.unreachable_since``) with one info line in the
log; later refusals are silent. Reminders, follow-ups and notices skip marked residents.

Every private update says its sender can be reached. Looking that up each time would cost a
transaction per update, so the process remembers, per database, whom it knows to be reachable
(they wrote, and nothing was refused to them since) and looks up only the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref

from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.db import Database
from buurtsignaal.storage.residents import mark_reachable, mark_unreachable

log = logging.getLogger(__name__)

# Per database: who wrote and was reachable then, with no refusal seen since. Bounded: when it
# grows past KNOWN_MAX it starts again (the next update of each looks it up once more).
_known: weakref.WeakKeyDictionary[Database, set[int]] = weakref.WeakKeyDictionary()
KNOWN_MAX = 100_000
_refusals = 0  # how many refusals were seen: a look-up that overlapped one is not remembered


def _known_reachable(db: Database) -> set[int]:
    known = _known.get(db)
    if known is None:
        known = _known[db] = set()
    return known


async def refused(db: Database, telegram_id: int, *, now: dt.datetime, what: str) -> None:
    """Telegram refused ``what`` for this person (403): mark them unreachable, once."""
    async with db.begin() as session:
        await refused_in(session, telegram_id, now=now, what=what)


async def refused_in(
    session: AsyncSession, telegram_id: int, *, now: dt.datetime, what: str
) -> None:
    """:func:`refused`, inside the caller's unit of work (the outbox settles the message in
    the same one)."""
    global _refusals
    _refusals += 1
    for known in _known.values():  # the session's database is one of them
        known.discard(telegram_id)
    if await mark_unreachable(session, telegram_id, now=now):
        log.info("%s not delivered: the resident blocked the bot; marked unreachable", what)


async def wrote(db: Database, telegram_id: int) -> None:
    """The person wrote to the bot: whoever was marked unreachable is reachable again."""
    known = _known_reachable(db)
    if telegram_id in known:
        return
    refusals = _refusals
    async with db.begin() as session:
        again = await mark_reachable(session, telegram_id)
    if len(known) >= KNOWN_MAX:
        known.clear()
    if refusals == _refusals:
        known.add(telegram_id)
    if again:
        log.info("a resident who had blocked the bot wrote again; reachable again")
