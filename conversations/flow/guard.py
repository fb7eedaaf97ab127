"""What a typed text is checked for: its length, and the profiling guard's question."""

from __future__ import annotations

from telegram import Message

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator


async def too_long(message: Message, context: BuurtContext, text: str, limit: int) -> bool:
    """True, after saying so kindly, when a typed ``text`` is longer than ``limit``."""
    if len(text) <= limit:
        return False
    await message.reply_text(
        context.t(
            "That text is {length} characters long; the maximum is {limit}. Your message "
            "is still above, so you can copy it, shorten it and send it again.",
            length=len(text),
            limit=limit,
        )
    )
    return True


def behaviour_request(t: Translator) -> str:
    """The profiling guard's one kind question: describe behaviour instead (or keep the text)."""
    return t(
        "Your text says something about where people come from, what they look like "
        "or what they believe. Could you describe what happened instead: what did "
        "people do, where and when? That helps the professionals more, and keeps "
        "anyone from being judged on who they are.\n"
        "Send your text again, or keep it as it is."
    )


def keep_label(t: Translator) -> str:
    """The label of the guard's button that keeps the text as it is."""
    return t("Keep my text")
