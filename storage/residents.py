"""Residents: the Telegram account, chosen language and wijk, and whether they can be reached."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import Resident


async def get_resident(session: AsyncSession, telegram_id: int) -> Resident | None:
    """The resident for a Telegram user id, if known."""
    return await session.scalar(select(Resident).where(Resident.telegram_id == telegram_id))


async def ensure_resident(session: AsyncSession, telegram_id: int, language: str) -> Resident:
    """The resident for a Telegram user id, created on first contact."""
    resident = await get_resident(session, telegram_id)
    if resident is None:
        resident = Resident(telegram_id=telegram_id, language=language)
        session.add(resident)
        await session.flush()
    return resident


async def set_language(session: AsyncSession, resident: Resident, language: str) -> None:
    """Remember the resident's language."""
    resident.language = language
    await session.flush()


async def set_wijk(session: AsyncSession, resident: Resident, wijk_id: int) -> None:
    """Remember the resident's wijk."""
    resident.wijk_id = wijk_id
    await session.flush()


async def mark_unreachable(session: AsyncSession, telegram_id: int, *, now: dt.datetime) -> bool:
    """Note that messages to this resident are refused (they blocked the bot or deleted the
    chat). True only the first time; False when already marked or not a resident."""
    marked = await session.execute(
        update(Resident)
        .where(Resident.telegram_id == telegram_id, Resident.unreachable_since.is_(None))
        .values(unreachable_since=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(marked, "rowcount", 0))


async def mark_reachable(session: AsyncSession, telegram_id: int) -> bool:
    """The resident wrote to the bot: they can be reached again. True when they were marked."""
    since = await session.scalar(
        select(Resident.unreachable_since).where(Resident.telegram_id == telegram_id)
    )
    if since is None:
        return False
    await session.execute(
        update(Resident)
        .where(Resident.telegram_id == telegram_id)
        .values(unreachable_since=None)
        .execution_options(synchronize_session=False)
    )
    return True
