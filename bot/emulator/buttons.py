"""Buttons for fronts that have none (the terminal shell, the Signal gateway): one numbering
of inline buttons, the message a typed number answers, and deep links to the bot."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from buurtsignaal.bot.emulator.model import BotMessage, JsonDict


def inline_rows(message: BotMessage) -> list[list[JsonDict]]:
    """The inline keyboard rows of a bot message (empty when it has none)."""
    markup = message.raw.get("reply_markup") or {}
    return [list(row) for row in markup.get("inline_keyboard", [])]


def pressable_buttons(message: BotMessage) -> list[JsonDict]:
    """The callback buttons of a message in reading order: typing N presses button N - 1.

    The one numbering of buttons for fronts without buttons (the terminal shell, the Signal
    gateway): url buttons get no number, as pressing them opens something outside the chat.
    """
    return [b for row in inline_rows(message) for b in row if "callback_data" in b]


def numbered_rows(message: BotMessage) -> list[list[tuple[int | None, JsonDict]]]:
    """The inline keyboard rows with each button's number (None: not pressable by number),
    numbered as :func:`pressable_buttons`."""
    number = 0
    rows: list[list[tuple[int | None, JsonDict]]] = []
    for row in inline_rows(message):
        numbered: list[tuple[int | None, JsonDict]] = []
        for button in row:
            if "callback_data" in button:
                number += 1
                numbered.append((number, button))
            else:
                numbered.append((None, button))
        rows.append(numbered)
    return rows


def newest_with_buttons(messages: Iterable[BotMessage]) -> BotMessage | None:
    """The newest of ``messages`` (oldest first) that has inline buttons: the one a typed
    number answers."""
    for message in reversed(list(messages)):
        if inline_rows(message):
            return message
    return None


_DEEP_LINK_RE: Final = re.compile(r"^https://t\.me/([A-Za-z0-9_]+)\?start=([A-Za-z0-9_-]{1,64})$")


def deep_link_payload(url: str, bot_username: str | None = None) -> str | None:
    """The payload of a deep link that starts a private chat with the bot
    (``https://t.me/<bot>?start=<payload>``), optionally only for the bot ``bot_username``."""
    match = _DEEP_LINK_RE.match(url)
    if match is None or (bot_username is not None and match.group(1) != bot_username):
        return None
    return match.group(2)
