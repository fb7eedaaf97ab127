"""Which messenger an id belongs to: Telegram, or Signal through the gateway.

Signal has no ids of its own that the bot could use, so the Signal gateway gives its chats ids
in a range Telegram never uses (Telegram's ids stay below 2**52 in size): a private chat is
``SIGNAL_BASE + n``, a group ``-(SIGNAL_BASE + n)``. The same range holds the gateway's update
ids. The rule lives here, without Telegram, so storage and the bot share it (bot.messenger).
"""

from __future__ import annotations

SIGNAL_BASE = 2**52
TELEGRAM, SIGNAL = "telegram", "signal"


def is_signal_chat(chat_id: int) -> bool:
    """Whether a chat (or user) id is one of the Signal gateway's."""
    return abs(chat_id) >= SIGNAL_BASE


def is_signal_update(update_id: int) -> bool:
    """Whether an update id is one of the Signal gateway's."""
    return update_id >= SIGNAL_BASE


def messenger_of(chat_id: int) -> str:
    """``"signal"`` or ``"telegram"``."""
    return SIGNAL if is_signal_chat(chat_id) else TELEGRAM
