"""/meldingen_instellen: per wijk, each new signal at once or only in the daily digest."""

from __future__ import annotations

import datetime as dt

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations import steps
from buurtsignaal.conversations.callbacks import AlertMode
from buurtsignaal.conversations.digest.common import wijk_settings
from buurtsignaal.conversations.ui import keyboard, not_allowed
from buurtsignaal.storage import access
from buurtsignaal.storage import digest as digests
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.wijken import active_wijken


async def _alert_settings(
    context: BuurtContext, telegram_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The text and buttons of /meldingen_instellen, or None for someone without a digest."""
    t = context.t
    async with context.db.begin() as session:
        person = await access.person(session, telegram_id, context.settings.admins)
        mine = person.wijken_for(Permission.DIGEST)
        wijken = [w for w in await active_wijken(session) if w.id in mine]
        modes = await digests.alert_modes(session, telegram_id)
    if not wijken:
        return None
    lines = [t("<b>How do you hear of new signals?</b>"), ""]
    buttons: list[tuple[str, str]] = []
    for wijk in wijken:
        mode = modes.get(wijk.id, digests.DEFAULT_ALERT_MODE)
        config = wijk_settings(context.settings, wijk.slug)
        at = (config.digest_time if config else dt.time(8, 0)).strftime("%H:%M")
        if mode == digests.IMMEDIATE:
            lines.append(t("{wijk}: each new signal at once 🔔", wijk=wijk.name))
            buttons.append(
                (
                    t("{wijk}: only in the digest", wijk=wijk.name),
                    AlertMode(wijk.id, digests.DIGEST_ONLY).pack(),
                )
            )
        else:
            lines.append(
                t("{wijk}: only in the daily digest at {time} 📋", wijk=wijk.name, time=at)
            )
            buttons.append(
                (
                    t("{wijk}: each new signal at once", wijk=wijk.name),
                    AlertMode(wijk.id, digests.IMMEDIATE).pack(),
                )
            )
    lines.append("")
    lines.append(
        t(
            "The daily digest comes either way, and early warnings (hotspots) always come at "
            "once. Residents are told when you will see their report."
        )
    )
    return "\n".join(lines), keyboard(buttons)


async def alert_settings(update: Update, context: BuurtContext) -> None:
    """/meldingen_instellen: per wijk, each new signal at once or only in the digest."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    view = await _alert_settings(context, user.id)
    if view is None:
        await message.reply_text(not_allowed(context.t))
        return
    text, markup = view
    await message.reply_text(text, reply_markup=markup)


async def on_alert_mode(update: Update, context: BuurtContext) -> None:
    """A button of /meldingen_instellen: switch one wijk (checked again on the server)."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    chosen = AlertMode.of(update)
    wijk_id, mode = chosen.wijk, chosen.mode
    async with context.db.begin() as session:
        person = await access.person(session, user_id, context.settings.admins)
        allowed = person.may(Permission.DIGEST, wijk_id)
        if allowed:
            await digests.set_alert_mode(session, wijk_id, user_id, mode, now=context.now)
    if not allowed:
        await steps.refuse(query, context)
        return
    await query.answer(context.t("Saved"))
    view = await _alert_settings(context, user_id)
    if view is None:
        return
    text, markup = view
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc):
            raise
