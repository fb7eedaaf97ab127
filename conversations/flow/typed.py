"""A typed step as a one-field flow: a note, a message, an answer, a phone number.

A professional (or a resident answering one) presses a button, the bot asks for one text, and
the text is handled once. Declared as data (:class:`TypedFlow` with its :class:`Field`\\ s);
:meth:`TypedFlow.part` builds the handlers: each field's text (length-checked), media while a
text is expected, /annuleren, the feature's commands that leave the step unfinished, and
expiry. What the step is about (the action, the reference, ids) is the flow's draft in
``user_data[<flow name>]``, persisted with the user's data, so a restart in the middle of
typing loses nothing; its nonce makes the step's key (:meth:`TypedFlow.step_key`), so a step
handled twice stores and relays its result once.

A step is forgotten only when it ends, after its result is stored and confirmed. A handler
marks the step stored (:meth:`TypedFlow.done`) in the same breath as it commits; if the
confirmation then fails to send, the step stays under way, marked: what the person sends
next (the text again, /annuleren, a command) hears that it was already received, and nothing
is stored or sent twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler, MessageHandler, filters

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.flow.declaration import PRIVATE, Callback, Draft, State
from buurtsignaal.conversations.flow.guard import too_long
from buurtsignaal.conversations.flow.part import TYPED_TIMEOUT, FlowPart, expire_plainly, typed_back

TYPED = PRIVATE & filters.TEXT & ~filters.COMMAND
MEDIA = PRIVATE & ~filters.COMMAND & ~filters.TEXT

# What a field's text goes to: (update, context, the step's draft, the checked text).
Receive = Callable[[Update, BuurtContext, Draft, str], Coroutine[Any, Any, State]]
Limit = int | Callable[[BuurtContext], int] | None


def text_limit(context: BuurtContext) -> int:
    """The longest text a resident or professional may type (the reports' limit)."""
    return context.settings.reports.max_text_length


async def typed_text(update: Update, context: BuurtContext, limit: int) -> str | None:
    """The typed text, or None (after saying why) when it is empty or too long."""
    message = update.effective_message
    assert message is not None
    text = (message.text or "").strip()
    if await too_long(message, context, text, limit):
        return None
    return text or None


async def not_text(update: Update, context: BuurtContext) -> State:
    """A photo, sticker or file while a text is expected."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(
        context.t("Please send this as a text message, or stop with /annuleren.")
    )
    return None


@dataclass(frozen=True)
class Field:
    """One typed answer of a flow: the state (the draft's ``action``) that waits for it, the
    longest text it takes (``None``: the text as typed, ``receive`` reads it itself, as a
    date or a phone number), and what receives the text."""

    action: str
    receive: Receive
    limit: Limit = text_limit


@dataclass(frozen=True)
class TypedFlow:
    """A feature's typed steps: one flow, one step under way at a time, kept as its draft.

    ``cancelled`` is said on /annuleren, ``unfinished`` (with the step's reference) when a
    command that leaves the step is sent while typing (see :meth:`part`): the text is dropped,
    then the command is done. A step waits ``timeout``; what arrives later goes to
    ``on_expired``, else it is stopped as /annuleren does, with what was typed shown back.
    ``legacy`` names where an older release kept the step under way: such a step is taken
    over the first time it is read; one kept without an action (there, or under the flow's
    own name) is the step ``legacy_action``."""

    name: str
    cancelled: Callable[[Translator], str]
    unfinished: Callable[[Translator, str], str] | None = None  # (t, reference)
    timeout: dt.timedelta | None = TYPED_TIMEOUT
    on_expired: Callback | None = None
    legacy: str | None = None
    legacy_action: str | None = None

    # --- the step under way (the flow's draft) ------------------------------------------------

    def begin(self, context: BuurtContext, action: str, reference: str, **fields: Any) -> Draft:
        """Start the step ``action`` about ``reference`` (a fresh nonce: a fresh step key)."""
        assert context.user_data is not None
        draft: Draft = {
            "action": action,
            "reference": reference,
            "nonce": secrets.token_hex(4),
            **fields,
        }
        context.user_data[self.name] = draft
        return draft

    def draft(self, context: BuurtContext, action: str | None = None) -> Draft | None:
        """The step under way (if it is ``action``)."""
        data = context.user_data
        if data is None:
            return None
        if self.legacy is not None and self.legacy in data:
            old = data.pop(self.legacy)
            if isinstance(old, dict) and self.name not in data:
                data[self.name] = dict(old)
        draft = data.get(self.name)
        if not isinstance(draft, dict):
            return None
        if self.legacy_action is not None:  # kept by an older release without an action
            draft.setdefault("action", self.legacy_action)
        return draft if action is None or draft.get("action") == action else None

    def done(self, context: BuurtContext, *, stored: bool = True) -> None:
        """The step's result is stored (committed): mark it so, until the step ends. Not
        ``stored`` (refused, or nothing to store): forget the step now."""
        draft = self.draft(context)
        if draft is not None and stored:
            draft["stored"] = True
        elif not stored:
            self.drop(context)

    def drop(self, context: BuurtContext) -> Draft | None:
        """Forget the step under way (after its result is stored); return what it was."""
        draft = self.draft(context)
        if context.user_data is not None:
            context.user_data.pop(self.name, None)
        return draft

    @staticmethod
    def step_key(draft: Draft) -> str | None:
        """What the step's result is stored under (unique), so a step handled again (after a
        restart, or sent again) stores and relays it once: ``<action>:<reference>:<nonce>``."""
        nonce = draft.get("nonce")
        return f"{draft['action']}:{draft['reference']}:{nonce}"[:60] if nonce else None

    # --- the handlers -------------------------------------------------------------------------

    async def _already(self, update: Update, context: BuurtContext, draft: Draft) -> int:
        """The step was stored, but its confirmation never arrived: say so, and end it (a
        button pressed meanwhile is answered, so its spinner stops)."""
        self.drop(context)
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):  # too old to answer: the text still goes
                await update.callback_query.answer()
        await self._say_already(update, context, draft)
        return ConversationHandler.END

    @staticmethod
    async def _say_already(update: Update, context: BuurtContext, draft: Draft) -> None:
        message = update.effective_message
        if message is not None:
            await message.reply_text(
                context.t(
                    "What you typed for <b>{reference}</b> had already been received; nothing "
                    "was saved or sent twice.",
                    reference=str(draft.get("reference", "?")),
                )
            )

    async def cancel(self, update: Update, context: BuurtContext) -> int:
        """/annuleren while typing: nothing is sent or saved."""
        message = update.effective_message
        assert message is not None
        draft = self.draft(context)
        if draft is not None and draft.get("stored"):
            return await self._already(update, context, draft)
        self.drop(context)
        await message.reply_text(self.cancelled(context.t))
        return ConversationHandler.END

    def leaving(self, callback: Callback) -> Callback:
        """A command of the feature while typing: drop the unfinished text, so it is never sent
        or saved by accident in the wrong place, then do the command."""

        async def leave(update: Update, context: BuurtContext) -> State:
            draft = self.drop(context)
            message = update.effective_message
            if draft is not None and draft.get("stored"):  # its confirmation never arrived
                await self._say_already(update, context, draft)
            elif draft is not None and message is not None and self.unfinished:
                await message.reply_text(
                    self.unfinished(context.t, str(draft.get("reference", "?")))
                )
            await callback(update, context)
            return ConversationHandler.END

        leave.__doc__ = callback.__doc__
        return leave

    def _text(self, one: Field) -> Callback:
        """A field's handler: the step under way, the text checked, then ``receive``."""

        async def receive(update: Update, context: BuurtContext) -> State:
            draft = self.draft(context, one.action)
            if draft is None:  # nothing (usable) under way: the step is over, nothing taken
                message = update.effective_message
                assert message is not None
                await message.reply_text(
                    self.cancelled(context.t) + typed_back(context.t, message.text or "")
                )
                return ConversationHandler.END
            if draft.get("stored"):
                return await self._already(update, context, draft)
            limit = one.limit(context) if callable(one.limit) else one.limit
            if limit is None:
                message = update.effective_message
                assert message is not None
                text: str | None = (message.text or "").strip()
            else:
                text = await typed_text(update, context, limit)
            if text is None:
                return None
            return await one.receive(update, context, draft, text)

        receive.__doc__ = one.receive.__doc__
        return self._ending(receive)

    def _ending(self, callback: Callback) -> Callback:
        """``callback``, and the step forgotten when it ends (its reply is sent by then)."""

        async def ending(update: Update, context: BuurtContext) -> State:
            state = await callback(update, context)
            if state == ConversationHandler.END:
                self.drop(context)
            return state

        ending.__doc__ = callback.__doc__
        return ending

    def part(
        self,
        entry_points: list[BaseHandler[Any, Any, Any]],
        fields: Sequence[Field],
        *,
        leave: Mapping[str, Callback] | None = None,
        also: Mapping[str, list[BaseHandler[Any, Any, Any]]] | None = None,
        media: Callback = not_text,
    ) -> FlowPart:
        """The flow's part of the one flow conversation: ``entry_points`` (the buttons that
        start a step), each field's text, ``also`` (a state's other handlers: a button in the
        step, a photo), and the fallbacks: /annuleren, the commands in ``leave`` (the step is
        dropped first), and ``media`` for a photo, sticker or file the state does not take."""
        states: dict[object, list[BaseHandler[Any, Any, Any]]] = {}
        for state, handlers in (also or {}).items():
            for handler in handlers:
                handler.callback = self._ending(handler.callback)
            states[state] = list(handlers)
        for one in fields:
            states.setdefault(one.action, []).insert(0, MessageHandler(TYPED, self._text(one)))
        part = FlowPart(
            name=self.name,
            entry_points=entry_points,
            states=states,
            fallbacks=[
                CommandHandler("annuleren", self.cancel, filters=PRIVATE),
                *(
                    CommandHandler(command, self.leaving(callback), filters=PRIVATE)
                    for command, callback in (leave or {}).items()
                ),
                MessageHandler(MEDIA, media),
            ],
            allow_reentry=True,
            timeout=self.timeout,
        )

        async def expired(update: Update, context: BuurtContext) -> None:
            """Something arrives after the step waited too long."""
            draft = self.draft(context)
            if draft is not None and draft.get("stored"):
                await self._already(update, context, draft)
            elif self.on_expired is not None:
                await self.on_expired(update, context)
            else:
                await expire_plainly(part, update, context)

        part.on_expired = expired
        return part
