"""Messages through the bot between professionals and residents, on both desks (signals and
mediation) and from /mijnmeldingen: one way to decide, send and show them.

Every message to someone other than the person who just acted (a professional's message to a
reporter or a party, a resident's answer or addition, the closing notice, an appointment
notice, a one-line notice) is:

- **decided** in the unit of work that stores it: the history entry and the outbox message are
  committed together (:func:`enqueue`), under a key per step and recipient (:func:`key`), so a
  step handled again (a restart, the same text sent again, a double tap) adds nothing;
- **sent** by the outbox (``bot.outbox``) on the bulk lane a moment later, never from the
  handler; the person who acted gets their confirmation as the reply, after the unit of work;
- **bounced** when Telegram refuses it for good: the desk's hook (:func:`settled_hook`) marks
  the history entry (a message to a reporter or a party, the closing or appointment notice),
  and a professional whose message it was hears it (a text written with the relay, in their
  language, with a button to the report or case).

The text a person typed is escaped by the translator (it is a placeholder value), never put
into a message as HTML. Answers come back through the "Answer" button under a relay, which
names the report or case by id; who gets an answer is read from the history when it is typed.
Nothing depends on the Telegram message id of a relay, so a relay sent later by the outbox
routes answers exactly as one sent at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup

from buurtsignaal.bot.i18n import Html, Translator
from buurtsignaal.conversations.ui import shorten
from buurtsignaal.storage import outbox
from buurtsignaal.storage.outbox import Outgoing

if TYPE_CHECKING:
    from buurtsignaal.bot.context import BuurtContext
    from buurtsignaal.bot.outbox import OutboxHook, Settled

QUOTE_SHOWN = 300  # characters of a relayed message or a note in a history line

# What the desk's hook does with an undelivered relay: note it in the history.
Marker = Callable[[AsyncSession, Mapping[str, Any], dt.datetime], Awaitable[None]]


def key(step: str, chat_id: int, part: str = "") -> str:
    """The outbox key of one relay step to one person (``part``: a second message of the same
    step, such as the photo before the text)."""
    return f"relay:{step}:{chat_id}" + (f":{part}" if part else "")


@dataclass(frozen=True)
class Bounce:
    """What the person who wrote hears when their relay cannot be delivered: ``blocked`` when
    the resident blocked the bot, else ``refused``; in their language, written with the relay."""

    chat_id: int
    blocked: str
    refused: str
    markup: InlineKeyboardMarkup | None = None

    def data(self) -> dict[str, Any]:
        return {
            "chat": self.chat_id,
            "blocked": self.blocked,
            "refused": self.refused,
            "markup": self.markup.to_dict() if self.markup is not None else None,
        }


def not_accepted(t: Translator) -> str:
    """The writer hears it, in their language: Telegram refused their relay (not blocked)."""
    return t(
        "Telegram did not accept your message just now, so it was not delivered. This is "
        "noted in the history; please try again later."
    )


def message(
    step_key: str,
    chat_id: int,
    kind: str,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    *,
    hook: str | None = None,
    mark: Mapping[str, Any] | None = None,
    bounce: Bounce | None = None,
    photo_file_id: str | None = None,
) -> Outgoing:
    """One relay for the outbox: ``text`` (safe HTML, made with a translator) to ``chat_id``;
    with ``hook``, the desk's hook gets ``mark`` (what to note when it is not delivered) and
    ``bounce`` (whom to tell)."""
    data: dict[str, Any] | None = None
    if hook is not None:
        data = {"mark": dict(mark or {}), "bounce": bounce.data() if bounce else None}
    return Outgoing(
        key=step_key,
        chat_id=chat_id,
        kind=kind,
        text=text,
        reply_markup=markup.to_dict() if markup is not None else None,
        photo_file_id=photo_file_id,
        hook=hook,
        hook_data=data,
    )


async def enqueue(context: BuurtContext, session: AsyncSession, *messages: Outgoing) -> int:
    """Write the relays to the outbox in the caller's unit of work; how many were new (a step
    decided before adds none). Call :func:`wake` after the unit of work."""
    return await outbox.enqueue(session, *messages, now=context.now)


async def to_each(
    context: BuurtContext,
    session: AsyncSession,
    step: str,
    kind: str,
    people: Mapping[int, str],
    make: Callable[[Translator], tuple[str, InlineKeyboardMarkup | None]],
) -> int:
    """The same relay ``step`` to each person (telegram id: language), made in their language
    by ``make`` (text and buttons), written to the outbox; how many were new."""
    return await enqueue(
        context,
        session,
        *(
            message(key(step, person), person, kind, *make(Translator(language)))
            for person, language in people.items()
        ),
    )


def wake(context: BuurtContext, added: int = 1) -> None:
    """After the unit of work that wrote relays: let the sender look now."""
    if added:
        context.outbox.wake()


def settled_hook(mark: Marker) -> OutboxHook:
    """The outbox hook of a desk's relays: when one is not delivered, ``mark`` notes it in the
    history (with the relay's ``mark`` data), and the person who wrote it is told."""

    async def settled(session: AsyncSession, outcome: Settled) -> None:
        """A relay could not be delivered: note it and tell whoever wrote it."""
        if outcome.delivered:
            return
        await mark(session, outcome.data.get("mark") or {}, outcome.now)
        bounce = outcome.data.get("bounce")
        if not bounce:
            return
        blocked = (outcome.error or "").startswith("Forbidden")
        await outbox.enqueue(
            session,
            Outgoing(
                key=f"{outcome.key}:bounce",
                chat_id=int(bounce["chat"]),
                kind="relay:bounce",
                text=str(bounce["blocked"] if blocked else bounce["refused"]),
                reply_markup=bounce.get("markup"),
            ),
            now=outcome.now,
        )

    return settled


def marking(mark_event: Callable[[AsyncSession, int, str], Awaitable[None]]) -> Marker:
    """A :data:`Marker` for relays whose ``mark`` names a history entry (``event``) and what
    it becomes (``kind``), with the desk's ``mark_event``."""

    async def mark(session: AsyncSession, data: Mapping[str, Any], now: dt.datetime) -> None:
        if data:
            await mark_event(session, int(data["event"]), str(data["kind"]))

    return mark


def history_line(
    t: Translator,
    when: str,
    what: str,
    who: str,
    note: str | None = None,
    *,
    internal: bool = False,
) -> str:
    """One entry of a report's or a case's history: when, what (safe HTML), who, and the text
    of a relayed message or note under it (escaped, shortened)."""
    line = t("<i>{when}</i> · {what} · {who}", when=when, what=Html(what), who=who)
    if note:
        quoted = shorten(note, QUOTE_SHOWN)
        if internal:
            line += "\n    " + t("🔒 internal: {note}", note=quoted)
        else:
            line += "\n    " + t("“{note}”", note=quoted)
    return line
