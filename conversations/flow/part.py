"""One flow's part of the one conversation: its handlers, the flow on screen, expiry, leaving."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import N_, Translator
from buurtsignaal.conversations.flow.declaration import Callback

log = logging.getLogger(__name__)

FLOWS = "flows"  # the name of the one flow conversation (its states are persisted)
ACTIVE = "flow"  # user_data: the flow whose question is on screen, and when it last moved
SWITCH = "flow_switch"  # user_data: the question "leave the current flow?" under way
TYPED_TIMEOUT = dt.timedelta(minutes=30)  # a professional's typed step expires after this

# What each flow is called when the bot asks whether to leave it (a flow not listed: UNNAMED_FLOW;
# a mark nested in another call would not be extracted).
UNNAMED_FLOW = N_("what you were doing")
LABELS: dict[str, str] = {
    "melden": N_("your report (/melden)"),
    "bemiddeling": N_("your request for mediation (/bemiddeling)"),
    "plannen": N_("planning a koffiemoment or presence"),
    "koffie_edit": N_("changing a koffiemoment"),
    "cases": N_("your text for a signal"),
    "mediation_cases": N_("your text for a mediation case"),
    "mediation_invite": N_("your phone number for the mediation team"),
    "mine": N_("your addition to a report"),
}


def flow_label(t: Translator, name: str) -> str:
    """What the flow ``name`` is called when the bot speaks of it ("your report (/melden)")."""
    return t(LABELS.get(name, UNNAMED_FLOW))


def typed_back(t: Translator, text: str) -> str:
    """What someone typed, shown back to them when it was not used (nothing is lost)."""
    return t("\nWhat you typed:\n\n{text}", text=text) if text else ""


def _qualified(name: str, state: object) -> object:
    """A flow's own state, named for the one flow conversation (END and None stay)."""
    if state is None or state == ConversationHandler.END:
        return state
    return f"{name}:{state}"


class FlowPart(BaseHandler[Update, BuurtContext, None]):
    """One flow's handlers: its entry points, its states and its fallbacks.

    Never registered by itself: :func:`one_conversation` combines all parts into one
    ConversationHandler, so a person is in at most one flow at a time, and a typed message
    or /annuleren always goes to the flow whose question is on screen.
    """

    def __init__(
        self,
        *,
        name: str,
        entry_points: list[BaseHandler[Any, Any, Any]],
        states: dict[object, list[BaseHandler[Any, Any, Any]]],
        fallbacks: list[BaseHandler[Any, Any, Any]],
        allow_reentry: bool = False,
        command: str | None = None,
        resume: Callback | None = None,
        timeout: dt.timedelta | None = None,
        on_expired: Callback | None = None,
    ) -> None:
        super().__init__(self._never)
        self.name = name
        self.entry_points = entry_points
        self.states = states
        self.fallbacks = fallbacks
        self.allow_reentry = allow_reentry
        self.command = command  # the command that resumes a draft kept for later
        self.resume = resume
        self.timeout = timeout
        self.on_expired = on_expired

    @staticmethod
    async def _never(update: Update, context: BuurtContext) -> None:
        """Not a handler of its own (see one_conversation)."""

    def check_update(self, update: object) -> bool:
        """A part answers nothing by itself."""
        return False

    def cancel_handler(self) -> BaseHandler[Any, Any, Any] | None:
        """This flow's /annuleren."""
        for handler in self.fallbacks:
            if isinstance(handler, CommandHandler) and "annuleren" in handler.commands:
                return handler
        return None

    def expired(self, context: BuurtContext) -> bool:
        """True when this flow's step waited longer than its timeout."""
        active = (context.user_data or {}).get(ACTIVE) or {}
        if self.timeout is None or active.get("name") != self.name or not active.get("at"):
            return False
        return context.now - dt.datetime.fromisoformat(active["at"]) > self.timeout


def _active(context: BuurtContext) -> str | None:
    active = (context.user_data or {}).get(ACTIVE) or {}
    return active.get("name")


def _moved(context: BuurtContext, name: str, state: object) -> None:
    """Remember which flow is on screen (or that none is) after one of its steps."""
    data = context.user_data
    now = context.now.isoformat()
    if data is None or state is None:
        if data is not None and data.get(ACTIVE, {}).get("name") == name:
            data[ACTIVE]["at"] = now
        return
    if state == ConversationHandler.END:
        if data.get(ACTIVE, {}).get("name") == name:
            data.pop(ACTIVE, None)
            data.pop(SWITCH, None)  # a question about leaving it is moot now
        return
    data[ACTIVE] = {"name": name, "at": now}


def _owned(
    part: FlowPart, handler: BaseHandler[Any, Any, Any], *, step: bool, in_state: bool = False
) -> None:
    """Make ``handler`` return states named for the one conversation and keep track of the
    flow on screen; a step of an expired typed flow is not taken, nor text typed while the
    question "leave this flow?" waits for an answer."""
    inner = handler.callback

    async def callback(update: Update, context: BuurtContext) -> object:
        if in_state and (context.user_data or {}).get(SWITCH):
            if update.callback_query is None:
                return await _hold_for_switch(part, update, context)
            assert context.user_data is not None
            context.user_data.pop(SWITCH, None)  # a press in the flow itself: back to it
        if step and part.expired(context):
            return await _expire(part, update, context)
        state = await inner(update, context)
        _moved(context, part.name, state)
        return _qualified(part.name, state)

    callback.__doc__ = inner.__doc__
    handler.callback = callback


async def _hold_for_switch(part: FlowPart, update: Update, context: BuurtContext) -> object:
    """Text typed while "what to do with the current flow?" waits: it is not taken as the
    answer to the flow's hidden step, and it is shown back so nothing is lost."""
    message = update.effective_message
    if message is None:
        return None
    text = message.text or message.caption or ""
    await message.reply_text(
        context.t(
            "First choose with the buttons above what to do with {what}; what you typed has "
            "not been used.",
            what=flow_label(context.t, part.name),
        )
        + typed_back(context.t, text)
    )
    return None


async def _expire(part: FlowPart, update: Update, context: BuurtContext) -> object:
    """A step that waited too long: nothing is sent or saved, and what was typed is shown
    back so it is not lost."""
    if part.on_expired is not None:
        await part.on_expired(update, context)
        if context.user_data is not None:
            context.user_data.pop(ACTIVE, None)
        return ConversationHandler.END
    return await expire_plainly(part, update, context)


async def expire_plainly(part: FlowPart, update: Update, context: BuurtContext) -> object:
    """The general answer to a step that waited too long: it is stopped, and what was typed
    is shown back."""
    query = update.callback_query
    if query is not None:  # an old button of the expired step: its message is the bot's own
        await query.answer(
            context.t("This button is no longer active. Please use the latest question."),
            show_alert=True,
        )
    message = update.effective_message
    if message is not None and query is None:
        text = message.text or ""
        await message.reply_text(
            context.t(
                "That was waiting for more than {minutes} minutes ({what}), so it has been "
                "stopped and nothing was sent or saved.",
                minutes=int((part.timeout or TYPED_TIMEOUT).total_seconds() // 60),
                what=flow_label(context.t, part.name),
            )
            + typed_back(context.t, text)
        )
    return await _leave(part, update, context)


async def _leave(part: FlowPart, update: Update, context: BuurtContext) -> object:
    """Stop ``part`` as its /annuleren does (it forgets the draft and says so)."""
    cancel = part.cancel_handler()
    if cancel is not None:
        await cancel.callback(update, context)
    if context.user_data is not None:
        context.user_data.pop(ACTIVE, None)
    return ConversationHandler.END
