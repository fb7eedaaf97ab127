"""/mijnmeldingen: the resident's own reports with their status."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BuurtContext
from bot.feature import Feature
from conversations.ui import category_label, local_date, status_label
from storage.residents import get_resident
from storage.signals import count_signals_of_resident, signals_of_resident

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
SHOWN = 20


async def my_reports(update: Update, context: BuurtContext) -> None:
    """List the resident's reports: reference, category, date and status."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
        signals = await signals_of_resident(session, resident.id, limit=SHOWN) if resident else []
        total = await count_signals_of_resident(session, resident.id) if resident else 0
    if not signals:
        await message.reply_text(t("You have not made any reports yet. Start one with /melden."))
        return
    tz = context.settings.tz
    lines = [t("<b>Your reports</b>")]
    for signal in signals:
        lines.append(
            t(
                "<b>{reference}</b> · {category} · {date} · {status}",
                reference=signal.reference,
                category=category_label(t, signal.category),
                date=local_date(signal.created_at, tz),
                status=status_label(t, signal.status),
            )
        )
    if total > len(signals):
        lines.append(t("… and {n} older reports.", n=total - len(signals)))
    await message.reply_text("\n".join(lines))


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for /mijnmeldingen."""
    return [CommandHandler("mijnmeldingen", my_reports, filters=PRIVATE)]


FEATURE = Feature(name="my_reports", handlers=build_handlers)
