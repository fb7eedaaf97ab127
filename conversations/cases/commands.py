"""/open and /melding: the commands."""

from __future__ import annotations

from telegram import Update

from bot.context import BuurtContext
from conversations.cases.view import _open_page, _show
from conversations.ui import not_allowed, shorten
from storage import access
from storage import cases as store
from storage.access import Permission

# --- commands ----------------------------------------------------------------------------


async def open_command(update: Update, context: BuurtContext) -> None:
    """/open: the open signals of my wijken, oldest first, five per page."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    view = await _open_page(context, user.id, 0)
    if view is None:
        await message.reply_text(not_allowed(context.t))
        return
    text, markup = view
    await message.reply_text(text, reply_markup=markup)


async def melding_command(update: Update, context: BuurtContext) -> None:
    """/melding <nr>: one signal with its photo, place, history and the actions."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    typed = " ".join(context.args or []).strip()
    year = context.now.astimezone(context.settings.tz).year
    reference = store.parse_reference(typed, year=year) if typed else None
    async with context.db.begin() as session:
        person = await access.person(session, user.id, context.settings.admins)
        wijken = person.wijken_for(Permission.SIGNALS)
        signal = await store.find_signal(session, reference) if wijken and reference else None
        if signal is not None and signal.wijk_id not in wijken:
            signal = None  # another wijk's report: answered exactly as one that does not exist
        names = await access.display_names(session, store.history_actors(signal)) if signal else {}
    if not wijken:
        await message.reply_text(not_allowed(t))
    elif not typed:
        await message.reply_text(
            t("Which report? For example: /melding BS-2026-0001, or just the number: /melding 1")
        )
    elif signal is None:
        await message.reply_text(
            t(
                "I cannot find report {reference} among the reports of your wijk.",
                reference=reference or shorten(typed, 40),
            )
        )
    else:
        await _show(context, user.id, signal, names)
