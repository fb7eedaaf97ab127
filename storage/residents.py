"""Residents: the Telegram account, chosen language and wijk. Nothing more."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Resident


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
