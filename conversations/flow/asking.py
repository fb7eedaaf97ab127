"""Asking a flow's questions and answering a button press in the same message."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations.flow.buttons import FlowButtons
from buurtsignaal.conversations.flow.declaration import SUMMARY, Draft, State
from buurtsignaal.conversations.ui import telegram_length

log = logging.getLogger(__name__)


class FlowAsking(FlowButtons):
    """Asking a flow's questions in order, and showing the answer given on the question."""

    async def ask(
        self,
        message: Message,
        context: BuurtContext,
        draft: Draft,
        step: str,
        *,
        intro: str | None = None,
    ) -> str:
        """Send the question for ``step`` (after ``intro``, in the same message), remember it
        as the current step, return the state."""
        assert self.question is not None
        text, markup = await self.question(context, draft, step)
        draft["step"] = step
        await message.reply_text(f"{intro}\n\n{text}" if intro else text, reply_markup=markup)
        return step

    def next_step(self, draft: Draft, done: str) -> str:
        """The step after ``done``: back to the summary when editing, else the next question."""
        if draft.get("editing"):
            return SUMMARY
        index = list(self.order).index(done) + 1
        while self.order[index] in self.skip and self.skip[self.order[index]](draft):
            index += 1
        return self.order[index]

    def following(self, draft: Draft, done: str) -> str:
        """The step after ``done``, to ask now (leaving edit mode when that is the summary)."""
        step = self.next_step(draft, done)
        if step == SUMMARY:
            draft["editing"] = False
        return step

    async def advance(
        self,
        update: Update,
        context: BuurtContext,
        draft: Draft,
        done: str,
        *,
        intro: str | None = None,
    ) -> str:
        """Ask the next question in a new message (after ``intro``): after typed input. After
        a button press on the question, :meth:`chosen` asks it in that same message."""
        step = self.following(draft, done)
        message = update.effective_message
        assert message is not None
        return await self.ask(message, context, draft, step, intro=intro)

    async def answered(
        self,
        update: Update,
        context: BuurtContext,
        draft: Draft,
        choice: str | None,
        then: str | None,
        *,
        closing: str | None = None,
    ) -> str:
        """After a button press on the current question: one edit turns that message into
        the question with the answer given (``✔️ choice``), followed by the question for
        ``then`` with its buttons, or by ``closing`` when the flow ends. One Bot API call
        instead of two; the old buttons are gone, and a stale press of one of them is refused
        by its step. A question with a reply keyboard (which an edit cannot show), or one that
        would not fit in one message, is sent anew."""
        assert self.question is not None
        query = update.callback_query
        message = update.effective_message
        assert query is not None and message is not None
        await query.answer()
        asked, _ = await self.question(context, draft, draft["step"])
        done = f"{asked}\n\n✔️ {choice}" if choice else asked
        if then is None:
            text, markup = closing or "", None
        else:
            text, markup = await self.question(context, draft, then)
            draft["step"] = then
        combined = f"{done}\n\n{text}"
        if isinstance(markup, InlineKeyboardMarkup | None) and telegram_length(combined) <= 4096:
            await query.edit_message_text(combined, reply_markup=markup)
        else:
            await query.edit_message_text(done, reply_markup=None)
            await message.reply_text(text, reply_markup=markup)
        return then or ""

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
        """Show the chosen answer on the question and go on, in the same message."""
        following = self.following(draft, step)
        label = self.label(context.t, step, value)
        return await self.answered(update, context, draft, label, following)

    async def chosen_then(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, value: str, then: str
    ) -> str:
        """Show the chosen answer on the question, then ask ``then`` (a step outside the order,
        such as the phone number after "Call me"), in the same message."""
        return await self.answered(update, context, draft, self.label(context.t, step, value), then)

    async def stop(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, value: str, text: str
    ) -> int:
        """Show the chosen answer on the question, forget the draft and say ``text``: the flow
        ends here (danger, no consent, not now)."""
        label = self.label(context.t, step, value)
        await self.answered(update, context, draft, label, None, closing=text)
        self.drop(context)
        return ConversationHandler.END

    async def finish(self, update: Update, text: str) -> None:
        """The last answer of a flow, to the press of a button on its summary: the summary
        loses its buttons and ``text`` follows it in the same message (one call); in a new
        message when it would not fit or the summary cannot be read."""
        query = update.callback_query
        message = update.effective_message
        assert query is not None and message is not None
        shown = query.message
        summary = shown.text_html if isinstance(shown, Message) else None
        if summary and telegram_length(f"{summary}\n\n{text}") <= 4096:
            try:
                await query.edit_message_text(f"{summary}\n\n{text}", reply_markup=None)
                return
            except BadRequest as exc:
                log.info("could not add the answer to the summary: %s", exc)
        await message.reply_text(text)
        await self.spend_buttons(update)
