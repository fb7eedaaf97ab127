"""What residents see: the coming koffiemomenten (/koffie) and the Koppel's presence (/koppel)."""

from __future__ import annotations

import datetime as dt
import logging

from telegram import Message, Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations.callbacks import Koffie
from buurtsignaal.conversations.koffie.common import (
    KOFFIE_KINDS,
    PRESENCE_KINDS,
    kind_label,
    when_text,
)
from buurtsignaal.conversations.ui import keyboard, short_date
from buurtsignaal.storage import gatherings
from buurtsignaal.storage.models import Resident, Wijk
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.wijken import active_wijken

log = logging.getLogger(__name__)


async def _resident_wijk(
    update: Update, context: BuurtContext
) -> tuple[Message, Resident, Wijk] | None:
    """The asker's wijk (or the only one), or None after asking them to choose one."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, context.lang)
        wijken = await active_wijken(session)
        wijk = resident.wijk if resident.wijk and resident.wijk.active else None
        if wijk is None and len(wijken) == 1:
            wijk = wijken[0]
    if wijk is None:
        await message.reply_text(context.t("Choose your wijk first with /start."))
        return None
    return message, resident, wijk


async def koffie(update: Update, context: BuurtContext) -> None:
    """/koffie: the coming koffiemomenten of the resident's wijk, to sign up or cancel."""
    asked = await _resident_wijk(update, context)
    if asked is None:
        return
    message, resident, wijk = asked
    t = context.t
    tz = context.settings.tz
    async with context.db.begin() as session:
        moments = list(await gatherings.upcoming(session, wijk.id, KOFFIE_KINDS, now=context.now))
        numbers = await gatherings.counts(session, [m.id for m in moments])
        mine = {
            m.id
            for m in moments
            if (s := await gatherings.signup_of(session, m.id, resident.id))
            and s.cancelled_at is None
        }
    if not moments:
        await message.reply_text(
            t("No koffiemomenten are planned in {wijk} for the coming weeks.", wijk=wijk.name)
        )
        return
    lines = [t("<b>Koffiemomenten in {wijk}</b>", wijk=wijk.name)]
    buttons = []
    for moment in moments:
        count = numbers[moment.id].people
        when = when_text(t, moment, tz)  # not inline: pybabel would then miss the plural
        lines.append(
            t.ngettext(
                "☕ {when}, {place}: {n} is coming",
                "☕ {when}, {place}: {n} are coming",
                count,
                when=when,
                place=moment.place,
            )
            + (" ✔️" if moment.id in mine else "")
        )
        short = short_date(moment.starts_at, tz)
        if moment.id in mine:
            buttons.append((t("Cancel {date}", date=short), Koffie("leave", moment.id).pack()))
        else:
            buttons.append((t("Sign up {date}", date=short), Koffie("join", moment.id).pack()))
    lines.append(t("Everyone is welcome: come by for a cup of coffee and a chat."))
    await message.reply_text("\n".join(lines), reply_markup=keyboard(buttons, columns=2))


async def koppel(update: Update, context: BuurtContext) -> None:
    """/koppel: when the wijkagent and opbouwwerker are around in the wijk."""
    asked = await _resident_wijk(update, context)
    if asked is None:
        return
    message, _, wijk = asked
    t = context.t
    async with context.db.begin() as session:
        moments = list(
            await gatherings.upcoming(
                session, wijk.id, PRESENCE_KINDS, now=context.now, within=dt.timedelta(weeks=3)
            )
        )
    if not moments:
        await message.reply_text(
            t(
                "The wijkagent and opbouwwerker have not announced a spreekuur or walk in {wijk} "
                "for the coming weeks. You can always report with /melden.",
                wijk=wijk.name,
            )
        )
        return
    lines = [t("<b>The Koppel in {wijk}</b>: drop by.", wijk=wijk.name)]
    for moment in moments:
        lines.append(
            t(
                "• {kind}: {when}, {place}",
                kind=kind_label(t, moment.kind),
                when=when_text(t, moment, context.settings.tz),
                place=moment.place,
            )
        )
    await message.reply_text("\n".join(lines))
