"""/overzicht: the digest now, for each of the asker's wijken; it moves no watermark."""

from __future__ import annotations

import asyncio
import datetime as dt

from telegram import Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations.digest.common import hotspot_rules
from buurtsignaal.conversations.digest.texts import digest_text
from buurtsignaal.conversations.ui import not_allowed
from buurtsignaal.storage import access
from buurtsignaal.storage import digest as digests
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.digest import Digest
from buurtsignaal.storage.wijken import get_wijk


async def overview(update: Update, context: BuurtContext) -> None:
    """/overzicht: the digest now for each of the asker's wijken; moves no watermark."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    settings = context.settings
    t = context.t
    now = context.now
    found: list[Digest] = []
    async with context.db.begin() as session:
        person = await access.person(session, user.id, settings.admins)
        wijk_ids = person.wijken_for(Permission.DIGEST)
        for wijk_id in sorted(wijk_ids):
            wijk = await get_wijk(session, wijk_id)
            if wijk is None or not wijk.active:
                continue
            last = await digests.covered_until(session, wijk_id, user.id)
            since = last if last is not None and last < now else now - dt.timedelta(days=1)
            found.append(
                await digests.build_digest(
                    session,
                    wijk_id,
                    since=since,
                    until=now,
                    now=now,
                    response_days=settings.professionals.response_days,
                    tz=settings.tz,
                    hotspot_days=hotspot_rules(settings, wijk.slug).days,
                )
            )
    if not found:
        await message.reply_text(not_allowed(t))
        return
    for digest in found:
        text = await asyncio.to_thread(digest_text, t, digest, tz=settings.tz, scheduled=False)
        await message.reply_text(text)
