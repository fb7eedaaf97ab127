"""What the digest's parts share: a wijk's settings and hotspot rules, a recipient's language."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import Application

from buurtsignaal.bot.context import BuurtApplication
from buurtsignaal.bot.settings import Settings, WijkSettings
from buurtsignaal.storage.hotspots import HotspotRules
from buurtsignaal.storage.residents import get_resident


def wijk_settings(settings: Settings, slug: str | None) -> WijkSettings | None:
    """The configuration of a wijk by slug."""
    return next((w for w in settings.wijken if w.slug == slug), None)


def hotspot_rules(settings: Settings, slug: str | None) -> HotspotRules:
    """The hotspot rules of a wijk: its own values, else the defaults."""
    wijk = wijk_settings(settings, slug)
    defaults = settings.hotspots
    return HotspotRules(
        min_signals=(wijk.hotspot_min_signals if wijk else None) or defaults.min_signals,
        days=(wijk.hotspot_days if wijk else None) or defaults.days,
        radius_m=defaults.radius_m,
    )


async def recipient_language(
    application: BuurtApplication, session: AsyncSession, telegram_id: int
) -> str:
    """A recipient's language: as a resident, else their last known chat language, else default."""
    resident = await get_resident(session, telegram_id)
    if resident is not None:
        return resident.language
    data = application.user_data.get(telegram_id)
    if data and data.get("lang"):
        return str(data["lang"])
    return application.services.settings.default_language


def app_of(application: Application[Any, Any, Any, Any, Any, Any]) -> BuurtApplication:
    """The application as the bot builds it (with its services and outbox)."""
    assert isinstance(application, BuurtApplication)
    return application
