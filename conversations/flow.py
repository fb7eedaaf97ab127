"""Guided flows: a form asked one question at a time in a private chat.

Shared by /melden and /bemiddeling. A flow keeps its draft in ``user_data[<name>]`` (written
through to the database after every update), gives every button the draft's nonce so stale,
double-tapped or forged presses change nothing, ends in a summary where each field can be
changed, and offers resume (the command again), cancel (/annuleren) and a clear answer to
anything a step cannot use.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from telegram import InlineKeyboardMarkup, Message, ReplyKeyboardRemove, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import BuurtContext
from bot.i18n import N_, Translator
from conversations.ui import keyboard
from storage.guard import count_guard, mentions_appearance
from storage.models import utcnow

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
SUMMARY = "summary"

Draft = dict[str, Any]
State = str | int | None  # None keeps the conversation where it is
Callback = Callable[[Update, BuurtContext], Coroutine[Any, Any, State]]
Step = Callable[[Update, BuurtContext, Draft, str], Coroutine[Any, Any, State]]
Question = Callable[[BuurtContext, Draft, str], Awaitable[tuple[str, Any]]]


@dataclass(frozen=True)
class FlowTexts:
    """The flow-specific sentences (msgids marked with N_ where they are defined)."""

    cancelled: str
    resumed: str


@dataclass
class GuidedFlow:
    """One guided flow: its steps, fixed choices and the question for each step."""

    name: str
    order: Sequence[str]
    choices: Mapping[str, Mapping[str, str]]
    texts: FlowTexts
    question: Question | None = None
    columns: Mapping[str, int] = field(default_factory=dict)
    # What to say when a step gets something it cannot use: step -> msgid.
    hints: Mapping[str, str] = field(default_factory=dict)
    # Steps that are skipped when the draft says so: step -> predicate.
    skip: Mapping[str, Callable[[Draft], bool]] = field(default_factory=dict)

    # --- the draft --------------------------------------------------------------------------

    def draft(self, context: BuurtContext) -> Draft | None:
        """The draft under way, if any."""
        data = context.user_data
        return None if data is None else data.get(self.name)

    def new_draft(self, context: BuurtContext, **fields: Any) -> Draft:
        """Start a fresh draft (a new nonce makes every older button stale)."""
        assert context.user_data is not None
        draft: Draft = {"nonce": secrets.token_hex(4), "editing": False, **fields}
        context.user_data[self.name] = draft
        return draft

    def drop(self, context: BuurtContext) -> None:
        """Forget the draft."""
        if context.user_data is not None:
            context.user_data.pop(self.name, None)

    # --- buttons ----------------------------------------------------------------------------

    def data(self, draft: Draft, step: str, value: str = "") -> str:
        """Callback data of a button: ``<flow>:<nonce>:<step>:<value>``."""
        return f"{self.name}:{draft['nonce']}:{step}:{value}"

    def pattern(self, step: str) -> str:
        """The anchored pattern of this step's buttons."""
        return rf"^{self.name}:[0-9a-f]{{8}}:{step}:"

    def label(self, t: Translator, step: str, value: str) -> str:
        """The translated label of a fixed choice."""
        return t(self.choices[step][value])

    def buttons(self, t: Translator, draft: Draft, step: str) -> InlineKeyboardMarkup:
        """The buttons of a fixed-choice question."""
        return keyboard(
            (
                (t(label), self.data(draft, step, value))
                for value, label in self.choices[step].items()
            ),
            columns=self.columns.get(step, 1),
        )

    def value_of(self, update: Update, draft: Draft) -> str | None:
        """The value of a pressed button, or None when it belongs to another draft."""
        query = update.callback_query
        assert query is not None and query.data is not None
        parts = query.data.split(":", 3)
        if len(parts) != 4:
            return None
        return parts[3] if parts[1] == draft.get("nonce") else None

    def button_step(
        self, step: str, valid: Callable[[str], bool] | None = None
    ) -> Callable[[Step], Callback]:
        """Guard a button handler: stale, double-tapped or forged presses get a polite refusal."""

        def decorate(handle: Step) -> Callback:
            async def callback(update: Update, context: BuurtContext) -> State:
                draft = self.draft(context)
                value = self.value_of(update, draft) if draft else None
                if valid is not None:
                    ok = value is not None and valid(value)
                else:
                    ok = value in self.choices.get(step, {})
                if draft is None or value is None or not ok:
                    await self.stale_button(update, context)
                    return None
                return await handle(update, context, draft, value)

            callback.__doc__ = handle.__doc__
            return callback

        return decorate

    def text_step(self, limit: int | Callable[[BuurtContext], int]) -> Callable[[Step], Callback]:
        """Guard a typed-answer handler: too long text is refused kindly and the step stays."""

        def decorate(handle: Step) -> Callback:
            async def callback(update: Update, context: BuurtContext) -> State:
                draft = self.draft(context)
                message = update.effective_message
                assert message is not None and message.text is not None
                if draft is None:
                    return ConversationHandler.END
                text = message.text.strip()
                maximum = limit(context) if callable(limit) else limit
                if len(text) > maximum:
                    await message.reply_text(
                        context.t(
                            "That text is {length} characters long; the maximum is {limit}. "
                            "Your message is still above, so you can copy it, shorten it and "
                            "send it again.",
                            length=len(text),
                            limit=maximum,
                        )
                    )
                    return None
                return await handle(update, context, draft, text)

            callback.__doc__ = handle.__doc__
            return callback

        return decorate

    # --- the profiling guard ------------------------------------------------------------

    async def ask_behaviour(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, text: str
    ) -> bool:
        """Once per draft, when a text describes who people are or look like rather than
        what they did, ask kindly for behaviour instead. True when it asked (stay on the step).

        Nothing of this is stored with the report; only a monthly count.
        """
        if draft.get("guard_asked") or not mentions_appearance(text):
            return False
        draft["guard_asked"] = True
        draft["guard_pending"] = {"step": step, "text": text}
        async with context.db.begin() as session:
            await count_guard(session, utcnow())
        t = context.t
        message = update.effective_message
        assert message is not None
        await message.reply_text(
            t(
                "Your text says something about where people come from, what they look like "
                "or what they believe. Could you describe what happened instead: what did "
                "people do, where and when? That helps the professionals more, and keeps "
                "anyone from being judged on who they are.\n"
                "Send your text again, or keep it as it is."
            ),
            reply_markup=keyboard([(t("Keep my text"), self.data(draft, step, "keep"))]),
        )
        return True

    def kept_text(self, draft: Draft, step: str) -> str | None:
        """The text the guard asked about, when the resident chose to keep it."""
        pending = draft.pop("guard_pending", None)
        if pending and pending.get("step") == step:
            return str(pending["text"])
        return None

    # --- asking -----------------------------------------------------------------------------

    async def ask(self, message: Message, context: BuurtContext, draft: Draft, step: str) -> str:
        """Send the question for ``step``, remember it as the current step, return the state."""
        assert self.question is not None
        text, markup = await self.question(context, draft, step)
        draft["step"] = step
        await message.reply_text(text, reply_markup=markup)
        return step

    def next_step(self, draft: Draft, done: str) -> str:
        """The step after ``done``: back to the summary when editing, else the next question."""
        if draft.get("editing"):
            return SUMMARY
        index = list(self.order).index(done) + 1
        while self.order[index] in self.skip and self.skip[self.order[index]](draft):
            index += 1
        return self.order[index]

    async def advance(self, update: Update, context: BuurtContext, draft: Draft, done: str) -> str:
        """Ask the next question."""
        step = self.next_step(draft, done)
        if step == SUMMARY:
            draft["editing"] = False
        message = update.effective_message
        assert message is not None
        return await self.ask(message, context, draft, step)

    async def close_question(
        self, update: Update, context: BuurtContext, draft: Draft, choice: str
    ) -> None:
        """Replace the question's buttons with the answer given (the buttons are now spent)."""
        assert self.question is not None
        query = update.callback_query
        assert query is not None
        await query.answer()
        text, _ = await self.question(context, draft, draft["step"])
        await query.edit_message_text(f"{text}\n\n✔️ {choice}", reply_markup=None)

    async def chosen(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, value: str
    ) -> State:
        """Show the chosen answer on the question and go on."""
        await self.close_question(update, context, draft, self.label(context.t, step, value))
        return await self.advance(update, context, draft, step)

    async def edit_or_finish(
        self, update: Update, context: BuurtContext, draft: Draft, value: str
    ) -> State | None:
        """At the summary: ``edit-<step>`` asks that step again, ``cancel`` cancels.

        Returns None for any other value (the caller handles "send").
        """
        query = update.callback_query
        message = update.effective_message
        assert query is not None and message is not None
        if value != "cancel" and not value.startswith("edit-"):
            return None
        await query.answer()
        await query.edit_message_reply_markup(reply_markup=None)
        if value == "cancel":
            return await self._cancelled(message, context)
        draft["editing"] = True
        return await self.ask(message, context, draft, value.removeprefix("edit-"))

    # --- the generic callbacks --------------------------------------------------------------

    async def stale_button(self, update: Update, context: BuurtContext) -> None:
        """A button from an earlier step, an old draft or forged data: explain, change nothing."""
        query = update.callback_query
        if query is not None:
            await query.answer(
                context.t("This button is no longer active. Please use the latest question."),
                show_alert=True,
            )

    async def _cancelled(self, message: Message, context: BuurtContext) -> int:
        self.drop(context)
        await message.reply_text(
            context.t(self.texts.cancelled), reply_markup=ReplyKeyboardRemove()
        )
        return ConversationHandler.END

    async def cancel(self, update: Update, context: BuurtContext) -> int:
        """/annuleren: stop; nothing is stored."""
        message = update.effective_message
        assert message is not None
        return await self._cancelled(message, context)

    def resumer(self, start: Callback) -> Callback:
        """The command again while the flow is under way: ask the current question again."""

        async def resume(update: Update, context: BuurtContext) -> State:
            draft = self.draft(context)
            message = update.effective_message
            assert message is not None
            if draft is None or "step" not in draft:
                return await start(update, context)
            await message.reply_text(context.t(self.texts.resumed))
            return await self.ask(message, context, draft, draft["step"])

        return resume

    async def unexpected(self, update: Update, context: BuurtContext) -> State:
        """Something this step cannot use (a sticker, a file, text where a button is expected)."""
        draft = self.draft(context)
        message = update.effective_message
        if draft is None or message is None or "step" not in draft:
            return None
        step = draft["step"]
        hint = self.hints.get(step, N_("Please choose one of the buttons."))
        await message.reply_text(context.t(hint))
        return await self.ask(message, context, draft, step)

    def conversation(
        self,
        *,
        entry_points: list[BaseHandler[Any, Any, Any]],
        states: dict[object, list[BaseHandler[Any, Any, Any]]],
        command: str,
        start: Callback,
        extra_fallbacks: Collection[BaseHandler[Any, Any, Any]] = (),
    ) -> ConversationHandler[Any]:
        """The persistent ConversationHandler with the shared fallbacks."""
        # Buttons are tracked per chat and user, not per message, on purpose: every button
        # carries the draft's nonce instead. PTB warns about that combination; it is expected.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="If 'per_message=False'", category=PTBUserWarning
            )
            return ConversationHandler(
                entry_points=entry_points,
                states=states,
                fallbacks=[
                    CommandHandler("annuleren", self.cancel, filters=PRIVATE),
                    CommandHandler(command, self.resumer(start), filters=PRIVATE),
                    *extra_fallbacks,
                    CallbackQueryHandler(self.stale_button, pattern=rf"^{self.name}:"),
                    MessageHandler(PRIVATE & ~filters.COMMAND, self.unexpected),
                ],
                name=self.name,
                persistent=True,
                allow_reentry=False,
            )
