"""Privacy as a feature: /privacy now; /mijngegevens and /vergeetmij follow in this module."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BuurtContext
from conversations.ui import privacy_text

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


async def privacy(update: Update, context: BuurtContext) -> None:
    """/privacy: who sees what and how long it is kept, from the actual configuration."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(privacy_text(context.t, context.settings, full=True))


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for privacy commands."""
    return [CommandHandler("privacy", privacy, filters=PRIVATE)]
