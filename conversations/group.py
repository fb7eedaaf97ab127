"""The neighbourhood group: the bot lives there, but everything personal happens privately.

- /melden, /bemiddeling, /koffie (and /start, /help) in a group are answered with a button that
  opens a private chat; the start payload selects the group's wijk. Each answer is given at
  most once a minute per group: the same command again within that minute gets nothing (the
  answer with its button is right there), so sixty /melden in a row make one message and never
  queue up behind the group's send limit.
- New members get a short welcome with that button, only when the bot is an admin there.
- /koppelgroep <wijk>: an admin (or that wijk's beheerder) links the group to a wijk.
- Nothing about reports or mediation is ever posted here; ordinary chatter is ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import Feature
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.ui import not_allowed
from buurtsignaal.storage import access
from buurtsignaal.storage.wijken import active_wijken, link_group, wijk_by_group

GROUPS = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
# How long one answer to a command in a group stands for all repeats of it.
ANSWER_WINDOW = dt.timedelta(seconds=60)
ANSWERED = "group_answered"  # chat_data: answer key -> when it was last given (ISO)


def _private_button(t: Translator, bot_username: str, payload: str) -> InlineKeyboardMarkup:
    link = f"https://t.me/{bot_username}?start={payload}"
    return InlineKeyboardMarkup([[InlineKeyboardButton(t("Open a private chat"), url=link)]])


async def _payload(context: BuurtContext, chat_id: int) -> str:
    async with context.db.begin() as session:
        wijk = await wijk_by_group(session, chat_id)
    return f"w-{wijk.slug}" if wijk else "melden"


async def to_private(update: Update, context: BuurtContext) -> None:
    """Answer a command in the group with a deep link to a private chat, and nothing else."""
    message = update.effective_message
    chat = update.effective_chat
    assert message is not None and chat is not None
    t = context.t
    command = (message.text or "").split()[0].split("@")[0].lower()
    if not _first_in_window(context, command if command in _OWN_ANSWER else "/melden"):
        return
    texts = {
        "/bemiddeling": t(
            "Buurtbemiddeling is confidential, so it starts in a private chat with me. "
            "Tap the button."
        ),
        "/koffie": t(
            'Sign up for a koffiemoment in a private chat with me (or press "I\'m coming" on '
            "an announcement here). Tap the button."
        ),
    }
    text = texts.get(
        command,
        t(
            "Reports are made in a private chat with me, so nobody in this group reads along. "
            "Tap the button to start."
        ),
    )
    markup = _private_button(t, context.bot.username, await _payload(context, chat.id))
    await message.reply_text(text, reply_markup=markup)


# Commands with their own answer; the others (/melden, /start, /help) share one.
_OWN_ANSWER = ("/bemiddeling", "/koffie")


def _first_in_window(context: BuurtContext, key: str) -> bool:
    """True (and remembered) when this group has not had answer ``key`` in the last minute."""
    data = context.chat_data
    if data is None:
        return True
    now = context.now
    answered = data.setdefault(ANSWERED, {})
    last = answered.get(key)
    if (
        last is not None
        and dt.timedelta(0) <= now - dt.datetime.fromisoformat(last) < ANSWER_WINDOW
    ):
        return False
    answered[key] = now.isoformat()
    return True


async def welcome(update: Update, context: BuurtContext) -> None:
    """Welcome new members briefly, only when the bot is an admin of the group."""
    message = update.effective_message
    chat = update.effective_chat
    assert message is not None and chat is not None
    newcomers = [m for m in message.new_chat_members or () if not m.is_bot]
    if not newcomers:
        return
    try:
        me = await context.bot.get_chat_member(chat.id, context.bot.id)
    except TelegramError:
        return
    if me.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        return
    t = Translator(context.settings.default_language)
    names = ", ".join(m.first_name for m in newcomers)
    await message.reply_text(
        t(
            "Welcome, {names}! Here neighbours keep each other informed. Report worries, ask "
            "for mediation or sign up for a koffiemoment privately with me.",
            names=names,
        ),
        reply_markup=_private_button(t, context.bot.username, await _payload(context, chat.id)),
    )


async def link(update: Update, context: BuurtContext) -> None:
    """/koppelgroep <wijk>: link this group to a wijk (admins, or that wijk's beheerder)."""
    message = update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    assert message is not None and chat is not None and user is not None
    t = Translator(context.settings.default_language)
    wanted = " ".join(context.args or []).strip().lower()
    async with context.db.begin() as session:
        me = await access.person(session, user.id, context.settings.admins)
        allowed = me.may_manage_roles()
        wijken = [w for w in await active_wijken(session) if allowed and me.may_manage_roles(w.id)]
        wijk = next((w for w in wijken if wanted in (w.slug, w.name.lower())), None)
        if wijk is not None:
            await link_group(session, wijk.id, chat.id)
            await access.audit(
                session,
                "group_linked",
                actor=user.id,
                wijk_id=wijk.id,
                detail=str(chat.id),
                now=context.now,
            )
    # Answered after the unit of work: no transaction waits for a round trip to Telegram.
    if not allowed:
        await message.reply_text(not_allowed(t))
        return
    if wijk is None:
        await message.reply_text(
            t(
                "Use: /koppelgroep &lt;wijk&gt;. Wijken: {wijken}",
                wijken=", ".join(w.slug for w in wijken) or "-",
            )
        )
        return
    name = wijk.name
    await message.reply_text(
        t(
            "This group is now the neighbourhood group of {wijk}. Koffiemomenten will be "
            "announced here; reports never appear here.",
            wijk=name,
        )
    )


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for groups."""
    return [
        CommandHandler("koppelgroep", link, filters=GROUPS),
        CommandHandler(
            ["melden", "bemiddeling", "koffie", "start", "help"], to_private, filters=GROUPS
        ),
        MessageHandler(filters.ChatType.GROUPS & filters.StatusUpdate.NEW_CHAT_MEMBERS, welcome),
    ]


FEATURE = Feature(name="group", handlers=build_handlers)
