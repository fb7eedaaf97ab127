"""The alerts of a just-stored signal: a new signal at once, and a new hotspot (early warning)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.bot.context import AfterCommit, BuurtApplication, BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.digest.common import app_of, hotspot_rules, recipient_language
from buurtsignaal.conversations.digest.texts import alert_text, signal_alert_text
from buurtsignaal.storage import access, hotspots, outbox
from buurtsignaal.storage import digest as digests
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.models import Signal
from buurtsignaal.storage.outbox import Outgoing
from buurtsignaal.storage.wijken import get_wijk


async def on_signal_created(
    context: BuurtContext, session: AsyncSession, signal: Signal
) -> AfterCommit | None:
    """A just-stored signal (same unit of work): write the "new signal" alerts of those who
    want each one at once, and the alert of a NEW hotspot, to the outbox."""
    wijk = await get_wijk(session, signal.wijk_id)
    slug = wijk.slug if wijk else None
    application = app_of(context.application)
    messages = [
        await _signal_alert(application, session, signal, recipient)
        for recipient in await digests.decide_signal_alerts(session, signal, now=context.now)
    ]
    hotspot = await hotspots.register_signal(session, signal, hotspot_rules(context.settings, slug))
    if hotspot is not None:
        messages += await hotspot_alerts(application, session, hotspot.id, now=context.now)
    if not messages:
        return None
    await outbox.enqueue(session, *messages, now=context.now)

    async def wake() -> None:
        application.outbox.wake()

    return wake


async def _signal_alert(
    application: BuurtApplication, session: AsyncSession, signal: Signal, recipient: int
) -> Outgoing:
    """One "new signal" alert, in the recipient's language."""
    language = await recipient_language(application, session, recipient)
    text, markup = signal_alert_text(Translator(language), signal)
    return Outgoing(
        key=f"alert:signal:{signal.id}:{recipient}",
        chat_id=recipient,
        kind="alert:signal",
        text=text,
        reply_markup=markup.to_dict(),
    )


async def hotspot_alerts(
    application: BuurtApplication, session: AsyncSession, hotspot_id: int, *, now: dt.datetime
) -> list[Outgoing]:
    """A hotspot's alert to everyone who gets the wijk's digest, once: ``alerted_at`` is set
    in the same unit of work that writes them to the outbox."""
    settings = application.services.settings
    hotspot = await hotspots.get_summary(session, hotspot_id)
    if hotspot is None or hotspot.alerted_at is not None or hotspot.calmed_at is not None:
        return []
    wijk = await get_wijk(session, hotspot.wijk_id)
    days = hotspot_rules(settings, wijk.slug if wijk else None).days
    messages = []
    for recipient in await access.recipients(session, hotspot.wijk_id, Permission.DIGEST):
        t = Translator(await recipient_language(application, session, recipient))
        messages.append(
            Outgoing(
                key=f"alert:hotspot:{hotspot_id}:{recipient}",
                chat_id=recipient,
                kind="alert:hotspot",
                text=alert_text(t, hotspot, tz=settings.tz, days=days),
            )
        )
    await hotspots.mark_alerted(session, hotspot_id, now=now)
    return messages
