"""The neighbourhood group: commands there are answered with a link to a private chat.

Nothing about reports is ever posted in a group; ordinary group chatter is ignored.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BuurtContext
from storage.wijken import wijk_by_group

GROUPS = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE


async def to_private(update: Update, context: BuurtContext) -> None:
    """Answer /melden, /start or /help in a group with a deep link to a private chat."""
    message = update.effective_message
    chat = update.effective_chat
    assert message is not None and chat is not None
    async with context.db.begin() as session:
        wijk = await wijk_by_group(session, chat.id)
    payload = f"w-{wijk.slug}" if wijk else "melden"
    link = f"https://t.me/{context.bot.username}?start={payload}"
    t = context.t
    await message.reply_text(
        t(
            "Reports are made in a private chat with me, so nobody in this group reads along. "
            "Tap the button to start."
        ),
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton(t("Open a private chat"), url=link)]]
        ),
    )


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for commands in groups."""
    return [CommandHandler(["melden", "start", "help"], to_private, filters=GROUPS)]
