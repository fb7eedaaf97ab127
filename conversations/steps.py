"""Buttons and texts shared by the desks: /open and /melding, /zaken and /zaak, /mijnmeldingen.

A button names what it acts on by id and is checked again when pressed; only private chats
get an answer with content. The typed steps (a note, a message, an answer) are one-field flows
(conversations.flow.typed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Update
from telegram.error import BadRequest

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator, escape
from buurtsignaal.conversations.ui import not_allowed, telegram_length
from buurtsignaal.storage import access
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.residents import get_resident

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4000  # Telegram allows 4096 characters; keep a margin

Callback = Callable[[Update, BuurtContext], Coroutine[Any, Any, Any]]


# --- buttons ------------------------------------------------------------------------------


async def refuse(query: CallbackQuery, context: BuurtContext) -> None:
    """The one answer to a button someone may not use."""
    await query.answer(not_allowed(context.t), show_alert=True)


async def pressed(update: Update, context: BuurtContext) -> tuple[CallbackQuery, int] | None:
    """The callback query and the presser's id; presses outside a private chat are refused
    (what professionals handle never goes to a group)."""
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None
    if chat is None or chat.type != "private":
        await refuse(query, context)
        return None
    return query, query.from_user.id


async def spend(query: CallbackQuery) -> None:
    """Take the buttons off the message that was pressed (they are used up)."""
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as exc:  # too old to edit, or already without buttons
        log.info("could not remove buttons: %s", exc)


def stale_button(permission: Permission) -> Callback:
    """The catch-all for a feature's other buttons: those who may use the feature hear the
    button is no longer active, anyone else gets the one refusal."""

    async def stale(update: Update, context: BuurtContext) -> None:
        """Any other button of this feature (an old step, forged data): refuse, change nothing."""
        query = update.callback_query
        user = update.effective_user
        assert query is not None and user is not None
        async with context.db.begin() as session:
            person = await access.person(session, user.id, context.settings.admins)
        if not person.may(permission):
            await refuse(query, context)
            return
        await query.answer(context.t("This button is no longer active."), show_alert=True)

    return stale


# --- texts --------------------------------------------------------------------------------


async def language_of(context: BuurtContext, session: AsyncSession, telegram_id: int) -> str:
    """The language someone else uses: their latest choice in the chat, else the one stored
    with them as a resident, else the default."""
    data = context.application.user_data.get(telegram_id)
    if data and data.get("lang"):
        return str(data["lang"])
    resident = await get_resident(session, telegram_id)
    return resident.language if resident else context.settings.default_language


async def languages(
    context: BuurtContext, session: AsyncSession, people: Iterable[int]
) -> dict[int, str]:
    """Each person with the language they use (:func:`language_of`), in the given order."""
    return {person: await language_of(context, session, person) for person in people}


def with_history(t: Translator, head: str, lines: list[str]) -> str:
    """``head`` and the history under it, within Telegram's message limit: the oldest entries
    are left out (and counted) when they do not fit."""
    title = t("<b>History</b>")
    budget = MESSAGE_LIMIT - telegram_length(head) - telegram_length(title) - 100
    shown: list[str] = []
    for line in reversed(lines):
        budget -= telegram_length(line) + 1
        if budget < 0:
            break
        shown.append(line)
    shown.reverse()
    parts = [head, "", title]
    hidden = len(lines) - len(shown)
    if hidden:
        parts.append(
            t.ngettext("… {n} earlier entry not shown", "… {n} earlier entries not shown", hidden)
        )
    parts.extend(shown)
    return "\n".join(parts)


def _escaped_chunks(text: str, limit: int) -> list[str]:
    """``text`` HTML-escaped, cut into pieces of at most ``limit`` (as Telegram counts), at a
    space or line break where one is near; an entity such as ``&amp;`` is never cut."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        piece = escape(char)
        length = telegram_length(piece)
        if current and size + length > limit:
            cut = next(
                (i for i in range(len(current) - 1, len(current) // 2, -1) if current[i] in " \n"),
                len(current) - 1,
            )
            chunks.append("".join(current[: cut + 1]).rstrip())
            current = current[cut + 1 :]
            size = sum(telegram_length(p) for p in current)
        current.append(piece)
        size += length
    chunks.append("".join(current))
    return chunks


def pages(blocks: Sequence[tuple[str, str]], limit: int = MESSAGE_LIMIT - 200) -> list[str]:
    """Blocks of (a safe HTML header, a plain text) as messages of at most ``limit``: the
    texts escaped, as many blocks a message as fit, a text too long for one message split
    over several. Nothing is left out."""
    pieces: list[str] = []
    for header, text in blocks:
        room = max(limit - telegram_length(header) - 6, 100)  # header, " (…)" and a newline
        first, *rest = _escaped_chunks(text, room)
        pieces.append(f"{header}\n{first}")
        pieces.extend(f"{header} (…)\n{chunk}" for chunk in rest)
    result: list[str] = []
    for piece in pieces:
        if result and telegram_length(result[-1]) + 2 + telegram_length(piece) <= limit:
            result[-1] += "\n\n" + piece
        else:
            result.append(piece)
    return result
