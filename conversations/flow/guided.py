"""A guided flow's steps as handlers: guarded buttons and text, resume, cancel, stale presses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from telegram import Message, ReplyKeyboardRemove, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import N_, escape
from buurtsignaal.conversations.callbacks import FlowPress
from buurtsignaal.conversations.flow.asking import FlowAsking
from buurtsignaal.conversations.flow.declaration import (
    PRIVATE,
    SUMMARY,
    Callback,
    Draft,
    State,
    Step,
)
from buurtsignaal.conversations.flow.guard import behaviour_request, keep_label, too_long
from buurtsignaal.conversations.flow.part import FlowPart
from buurtsignaal.conversations.ui import keyboard
from buurtsignaal.storage.guard import count_guard, mentions_appearance
from buurtsignaal.storage.residents import get_resident
from buurtsignaal.storage.wijken import get_wijk

log = logging.getLogger(__name__)


class GuidedFlow(FlowAsking):
    """One guided flow: its steps, fixed choices and the question for each step (declared in
    :class:`FlowDeclaration`), with the guarded steps, resume, cancel and stale buttons."""

    async def already_sent(self, update: Update, context: BuurtContext, nonce: str) -> bool:
        """When the draft with ``nonce`` was sent before (its reply lost, a restart, a double
        tap): say what it was stored as, forget the draft, and return True."""
        user = update.effective_user
        message = update.effective_message
        if self.stored is None or self.texts.already is None or user is None or message is None:
            return False
        async with context.db.begin() as session:
            resident = await get_resident(session, user.id)
            key = self.draft_key(resident.id, nonce) if resident is not None else None
            reference = await self.stored(session, key) if key is not None else None
        if reference is None:
            return False
        draft = self.draft(context)
        if draft is not None and draft.get("nonce") == nonce:
            self.drop(context)
        query = update.callback_query
        text = context.t(self.texts.already, reference=reference)
        if query is None:
            await message.reply_text(text)
        else:
            await query.answer()
            await self.finish(update, text)
        return True

    def sent_again(self) -> CallbackQueryHandler[Any, Any]:
        """Outside the flow: the send button of a draft that was sent already (a double tap, an
        older summary) says what it was stored as; anything else is a stale button."""

        async def callback(update: Update, context: BuurtContext) -> None:
            nonce = FlowPress.of(update).nonce
            if not await self.already_sent(update, context, nonce):
                await self.stale_button(update, context)

        callback.__doc__ = "A send button of a draft that was already sent."
        return CallbackQueryHandler(
            callback, pattern=FlowPress.matching(flow=self.name, step=SUMMARY, value="send")
        )

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
                if await too_long(message, context, text, maximum):
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
            await count_guard(session, context.now)
        t = context.t
        message = update.effective_message
        assert message is not None
        await message.reply_text(
            behaviour_request(t),
            reply_markup=keyboard([(keep_label(t), self.data(draft, step, "keep"))]),
        )
        return True

    def kept_text(self, draft: Draft, step: str) -> str | None:
        """The text the guard asked about, when the resident chose to keep it."""
        pending = draft.pop("guard_pending", None)
        if pending and pending.get("step") == step:
            return str(pending["text"])
        return None

    async def described(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, field: str, text: str
    ) -> State:
        """A described text: the guard may ask once for behaviour instead (the step stays);
        otherwise it becomes ``draft[field]`` and the flow goes on."""
        if await self.ask_behaviour(update, context, draft, step, text):
            return None
        draft.pop("guard_pending", None)
        draft[field] = text
        return await self.advance(update, context, draft, step)

    def keep_step(self, step: str, field: str) -> Callback:
        """The "Keep my text" button of ``step``: the text the guard asked about is kept."""

        @self.button_step(step, lambda value: value == "keep")
        async def on_keep(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
            """The resident keeps the text the guard asked about."""
            text = self.kept_text(draft, step)
            if text is None:
                await self.stale_button(update, context)
                return None
            draft[field] = text
            query = update.callback_query
            assert query is not None
            await query.answer()
            await query.edit_message_reply_markup(reply_markup=None)
            return await self.advance(update, context, draft, step)

        return on_keep

    async def wijk_chosen(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, value: str
    ) -> State:
        """A wijk button: an active wijk becomes the draft's, "page-<n>" shows another page of
        wijken, anything else is a stale button."""
        if value.startswith("page-"):
            draft["wijk_page"] = int(value.removeprefix("page-"))
            assert self.question is not None
            query = update.callback_query
            assert query is not None
            await query.answer()
            _, markup = await self.question(context, draft, step)
            await query.edit_message_reply_markup(reply_markup=markup)
            return None
        async with context.db.begin() as session:
            wijk = await get_wijk(session, int(value))
        if wijk is None or not wijk.active:
            await self.stale_button(update, context)
            return None
        draft["wijk_id"] = wijk.id
        draft.pop("wijk_page", None)
        following = self.following(draft, step)
        return await self.answered(update, context, draft, escape(wijk.name), following)

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
        """A button from an earlier step, an old draft or forged data: explain, change nothing.

        The send button of a draft that was sent already says what it was stored as."""
        query = update.callback_query
        press = FlowPress.parse(query.data if query is not None else None)
        if (
            press is not None
            and (press.step, press.value) == (SUMMARY, "send")
            and await self.already_sent(update, context, press.nonce)
        ):
            return
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
            if draft["step"] == SUMMARY and await self.already_sent(
                update, context, draft["nonce"]
            ):
                return ConversationHandler.END
            await message.reply_text(context.t(self.texts.resumed))
            return await self.ask(message, context, draft, draft["step"])

        return resume

    async def unexpected(self, update: Update, context: BuurtContext) -> State:
        """Something this step cannot use (a sticker, a file, text where a button is expected)."""
        draft = self.draft(context)
        message = update.effective_message
        if message is None:
            return None
        if draft is None or "step" not in draft:
            # The draft is gone (e.g. after /vergeetmij): end the flow, and say what works.
            await message.reply_text(context.t("That flow has ended. /help shows what I can do."))
            return ConversationHandler.END
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
    ) -> FlowPart:
        """This flow's part of the one flow conversation, with the shared fallbacks.

        The command also resumes a draft that was kept for later (see :class:`FlowPart`)."""
        resume = self.resumer(start)
        for handler in entry_points:
            if isinstance(handler, CommandHandler) and command in handler.commands:
                if handler.callback is start:
                    handler.callback = resume
        return FlowPart(
            name=self.name,
            entry_points=entry_points,
            states=states,
            fallbacks=[
                CommandHandler("annuleren", self.cancel, filters=PRIVATE),
                CommandHandler(command, resume, filters=PRIVATE),
                *extra_fallbacks,
                CallbackQueryHandler(self.stale_button, pattern=rf"^{self.name}:"),
                MessageHandler(PRIVATE & ~filters.COMMAND, self.unexpected),
            ],
            command=command,
            resume=resume,
        )
