"""The one conversation of every flow, and the question before leaving one flow for another."""

from __future__ import annotations

import logging
import secrets
import warnings
from collections.abc import Sequence
from typing import Any

from telegram import Message, Update
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, ConversationHandler
from telegram.warnings import PTBUserWarning

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations.callbacks import FlowSwitch
from buurtsignaal.conversations.flow.part import (
    ACTIVE,
    FLOWS,
    SWITCH,
    FlowPart,
    _active,
    _leave,
    _moved,
    _owned,
    _qualified,
    flow_label,
)
from buurtsignaal.conversations.ui import keyboard

log = logging.getLogger(__name__)


class _SwitchTo(BaseHandler[Update, BuurtContext, object]):
    """Another flow's entry point while a flow is on screen: ask before leaving it."""

    def __init__(self, engine: _Engine, part: FlowPart, entry: BaseHandler[Any, Any, Any]) -> None:
        super().__init__(self._ask)
        self.engine, self.part, self.entry = engine, part, entry

    def check_update(self, update: object) -> object:
        """Whatever the entry point would start."""
        return self.entry.check_update(update)

    def collect_additional_context(
        self, context: BuurtContext, update: Update, application: Any, check_result: Any
    ) -> None:
        """The entry point's context (command arguments, pattern matches)."""
        self.entry.collect_additional_context(context, update, application, check_result)

    async def _ask(self, update: Update, context: BuurtContext) -> object:
        return await self.engine.ask_switch(self.part, self.entry, update, context)


class _Engine:
    """Switching between flows in the one flow conversation."""

    def __init__(self, parts: Sequence[FlowPart]) -> None:
        self.parts = {part.name: part for part in parts}

    async def ask_switch(
        self,
        target: FlowPart,
        entry: BaseHandler[Any, Any, Any],
        update: Update,
        context: BuurtContext,
    ) -> object:
        """Someone starts ``target`` while another flow is on screen."""
        current = self.parts.get(_active(context) or "")
        if current is None or current.expired(context):
            # Nothing on screen to keep (an expired typed step is dropped quietly).
            if current is not None:
                await _leave(current, update, context)
            return await entry.callback(update, context)
        assert context.user_data is not None
        nonce = secrets.token_hex(4)
        replay = update.to_dict() if update.callback_query is None else None
        context.user_data[SWITCH] = {
            "nonce": nonce,
            "from": current.name,
            "to": target.name,
            "entry": target.entry_points.index(entry),
            "update": replay,
        }
        query = update.callback_query
        if query is not None:
            await query.answer()
        t = context.t
        options = []
        # Keeping makes sense only for another flow: the same flow has one draft.
        if current.resume is not None and current is not target:
            options.append((t("Keep it for later"), FlowSwitch(nonce, "keep").pack()))
        options += [
            (t("Stop it"), FlowSwitch(nonce, "stop").pack()),
            (t("Go back to it"), FlowSwitch(nonce, "back").pack()),
        ]
        message = update.effective_message
        assert message is not None
        await message.reply_text(
            t(
                "You are still busy with {what}. What would you like to do with it before "
                "you start something new?",
                what=flow_label(t, current.name),
            ),
            reply_markup=keyboard(options),
        )
        return None

    async def on_switch(self, update: Update, context: BuurtContext) -> object:
        """The answer to "leave the current flow?"."""
        query = update.callback_query
        assert query is not None and query.data is not None
        data = context.user_data
        pending = data.get(SWITCH) if data is not None else None
        pressed = FlowSwitch.of(update)
        nonce, choice = pressed.nonce, pressed.choice
        current = self.parts.get(_active(context) or "")
        target = self.parts.get(pending["to"]) if pending else None
        if data is None or pending is None or pending.get("nonce") != nonce or target is None:
            await query.answer(context.t("This button is no longer active."), show_alert=True)
            return None
        if (
            current is None
            or pending.get("from", current.name) != current.name
            or (choice == "keep" and (current.resume is None or current is target))
        ):
            await query.answer(context.t("This button is no longer active."), show_alert=True)
            return None
        data.pop(SWITCH, None)
        await query.answer()
        t = context.t
        chosen = {"keep": t("Keep it for later"), "stop": t("Stop it")}.get(
            choice, t("Go back to it")
        )
        shown = query.message
        if isinstance(shown, Message) and shown.text_html:
            try:
                await query.edit_message_text(f"{shown.text_html}\n\n✔️ {chosen}", reply_markup=None)
            except BadRequest:
                log.info("could not mark the choice on the question")
        message = update.effective_message
        assert message is not None
        if choice == "back":
            if current.resume is not None:
                # The flow's own state, named for the one conversation (as _owned does).
                state = await current.resume(update, context)
                _moved(context, current.name, state)
                return _qualified(current.name, state)
            await message.reply_text(t("Fine, go ahead: I am listening."))
            return None
        if choice == "keep":
            data.pop(ACTIVE, None)
            await message.reply_text(
                t(
                    "Kept. Send /{command} later to go on where you left off.",
                    command=current.command,
                )
            )
        else:
            await _leave(current, update, context)
        entry = target.entry_points[int(pending["entry"])]
        if pending.get("update") is None:
            await message.reply_text(t("Now tap the button again to go on."))
            return ConversationHandler.END
        replayed = Update.de_json(pending["update"], context.bot)
        check = entry.check_update(replayed)
        if check is None or check is False:
            return ConversationHandler.END
        entry.collect_additional_context(context, replayed, context.application, check)
        return await entry.callback(replayed, context)


def one_conversation(parts: Sequence[FlowPart]) -> ConversationHandler[Any]:
    """The one persistent ConversationHandler holding every flow (see :class:`FlowPart`).

    Its states are ``<flow>:<state>``; each state tries that flow's own handlers, then its
    fallbacks. Another flow's entry point while a flow is on screen asks first whether to keep
    the current one for later, stop it, or go back to it.
    """
    names = [part.name for part in parts]
    if len(names) != len(set(names)):
        raise ValueError(f"two flows share a name: {names}")
    engine = _Engine(parts)
    entry_points: list[BaseHandler[Any, Any, Any]] = []
    states: dict[object, list[BaseHandler[Any, Any, Any]]] = {}
    switches: list[BaseHandler[Any, Any, Any]] = []
    for part in parts:
        for handler in part.entry_points:
            _owned(part, handler, step=False)
        for handler in part.fallbacks:
            _owned(part, handler, step=False)
        for state, handlers in part.states.items():
            for handler in handlers:
                _owned(part, handler, step=part.timeout is not None, in_state=True)
            states[_qualified(part.name, state)] = [
                *(part.entry_points if part.allow_reentry else []),
                *handlers,
                *part.fallbacks,
            ]
        entry_points += part.entry_points
        switches += [_SwitchTo(engine, part, entry) for entry in part.entry_points]
    # Not per message, on purpose: every button carries what it is about (a draft's nonce,
    # a case id) and is checked again when pressed. PTB warns about that combination.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=entry_points,
            states=states,
            fallbacks=[
                *switches,
                CallbackQueryHandler(engine.on_switch, pattern=FlowSwitch.pattern),
            ],
            name=FLOWS,
            persistent=True,
        )
