"""/open and /melding: the commands."""

from __future__ import annotations

from telegram import Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations import desk
from buurtsignaal.conversations.cases.view import _open_page, _show
from buurtsignaal.conversations.ui import not_allowed
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.access import Permission

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


# /melding <nr>: a report of my wijken by its reference.
REPORT = desk.Lookup(
    permission=Permission.SIGNALS,
    read=store.parse_reference,
    find=store.find_signal,
    which=lambda t: t(
        "Which report? For example: /melding BS-2026-0001, or just the number: /melding 1"
    ),
    missing=lambda t, reference: t(
        "I cannot find report {reference} among the reports of your wijk.", reference=reference
    ),
)


async def melding_command(update: Update, context: BuurtContext) -> None:
    """/melding <nr>: one signal with its photo, place, history and the actions."""
    user = update.effective_user
    assert user is not None
    signal = await desk.by_reference(update, context, REPORT)
    if signal is not None:
        await _show(context, user.id, signal)
