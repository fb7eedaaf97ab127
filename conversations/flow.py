"""Guided flows: a form asked one question at a time in a private chat.

Shared by /melden, /bemiddeling and /koffieplannen. A flow keeps its draft in
``user_data[<name>]`` (written through to the database after every update), gives every
button the draft's nonce so stale, double-tapped or forged presses change nothing, ends in a
summary where each field can be changed, and offers resume (the command again), cancel
(/annuleren) and a clear answer to anything a step cannot use. :func:`persistent_conversation`
also serves the professionals' typed steps (see conversations.steps).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import warnings
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Message, ReplyKeyboardRemove, Update
from telegram.error import BadRequest, TelegramError
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
from bot.i18n import N_, Translator, escape
from conversations.ui import is_id, keyboard, paged_keyboard
from storage import access
from storage.guard import count_guard, mentions_appearance
from storage.models import Wijk
from storage.residents import ensure_resident, get_resident
from storage.wijken import active_wijken, get_wijk

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
SUMMARY = "summary"

Draft = dict[str, Any]
State = str | int | None  # None keeps the conversation where it is
Callback = Callable[[Update, BuurtContext], Coroutine[Any, Any, State]]
Step = Callable[[Update, BuurtContext, Draft, str], Coroutine[Any, Any, State]]
Question = Callable[[BuurtContext, Draft, str], Awaitable[tuple[str, Any]]]

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


def persistent_conversation(
    *,
    name: str,
    entry_points: list[BaseHandler[Any, Any, Any]],
    states: dict[object, list[BaseHandler[Any, Any, Any]]],
    fallbacks: list[BaseHandler[Any, Any, Any]],
    allow_reentry: bool = False,
    timeout: dt.timedelta | None = TYPED_TIMEOUT,
    on_expired: Callback | None = None,
) -> FlowPart:
    """One flow's handlers: combined with every other flow into the one flow conversation
    (see :func:`one_conversation`), so a person is in at most one flow at a time.

    A typed step (the default) expires after ``timeout`` without an answer: what arrives then
    goes to ``on_expired`` (which forgets the step and says so), or gets a general answer."""
    return FlowPart(
        name=name,
        entry_points=entry_points,
        states=states,
        fallbacks=fallbacks,
        allow_reentry=allow_reentry,
        timeout=timeout,
        on_expired=on_expired,
    )


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


@dataclass(frozen=True)
class FlowTexts:
    """The flow-specific sentences (msgids marked with N_ where they are defined)."""

    cancelled: str
    resumed: str
    # Said when a draft that was already sent is sent or resumed again ({reference}).
    already: str | None = None


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
    # For a flow that stores what it sends: the reference stored from a draft, by its key
    # (see draft_key), so a draft that was sent before is never stored twice.
    stored: Callable[[AsyncSession, str], Awaitable[str | None]] | None = None

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

    def draft_key(self, resident_id: int, nonce: str) -> str:
        """What a sent draft is known by in the database: ``<flow>:<resident id>:<nonce>``.

        Stored (unique) with what the draft became, in the same transaction: a draft whose key
        is stored counts as sent, however the reply fared. Resident ids, not Telegram ids, so
        /vergeetmij leaves nothing that points to the account."""
        return f"{self.name}:{resident_id}:{nonce}"

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
        if query is not None:
            await query.answer()
        await message.reply_text(context.t(self.texts.already, reference=reference))
        if query is not None:
            await self.spend_buttons(update)
        return True

    @staticmethod
    async def spend_buttons(update: Update) -> None:
        """Take the buttons off the message a pressed button was on (the flow is done); a
        failure here only leaves spent buttons, which answer that they are no longer active."""
        query = update.callback_query
        if query is None:
            return
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError as exc:
            log.info("could not take the buttons off a finished summary: %s", exc)

    def sent_again(self) -> CallbackQueryHandler[Any, Any]:
        """Outside the flow: the send button of a draft that was sent already (a double tap, an
        older summary) says what it was stored as; anything else is a stale button."""

        async def callback(update: Update, context: BuurtContext) -> None:
            query = update.callback_query
            assert query is not None and query.data is not None
            nonce = query.data.split(":")[1]
            if not await self.already_sent(update, context, nonce):
                await self.stale_button(update, context)

        callback.__doc__ = "A send button of a draft that was already sent."
        return CallbackQueryHandler(
            callback, pattern=rf"^{self.name}:[0-9a-f]{{8}}:{SUMMARY}:send$"
        )

    async def begin(
        self,
        update: Update,
        context: BuurtContext,
        no_wijk: Callable[[Translator], str],
        *,
        on_behalf: bool = True,
        **fields: Any,
    ) -> Draft | None:
        """A fresh draft for a resident: their wijk (or the only one), whether a wijk is to be
        chosen, and the wijken where they may act on behalf of someone (unless ``on_behalf``
        is off). None, after saying ``no_wijk``, when no wijk is configured."""
        message = update.effective_message
        user = update.effective_user
        assert message is not None and user is not None
        async with context.db.begin() as session:
            resident = await ensure_resident(session, user.id, context.language_for(update))
            wijken = await active_wijken(session)
            resident_wijk = resident.wijk_id if resident.wijk and resident.wijk.active else None
            me = await access.person(session, user.id, context.settings.admins)
            key_figure_wijken = sorted(me.wijken_for(access.Permission.ON_BEHALF))
        if not wijken:
            await message.reply_text(no_wijk(context.t))
            return None
        return self.new_draft(
            context,
            wijk_id=resident_wijk or (wijken[0].id if len(wijken) == 1 else None),
            wijk_choice=len(wijken) > 1,
            key_figure_wijken=key_figure_wijken if on_behalf else [],
            **fields,
        )

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

    def wijk_buttons(
        self, t: Translator, draft: Draft, step: str, wijken: Iterable[Wijk]
    ) -> InlineKeyboardMarkup:
        """The wijken to choose from at ``step``, a page at a time (a city may have many)."""
        return paged_keyboard(
            t,
            [(w.name, self.data(draft, step, str(w.id))) for w in wijken],
            page=int(draft.get("wijk_page", 0)),
            page_data=lambda page: self.data(draft, step, f"page-{page}"),
        )

    @staticmethod
    def wijk_value(value: str) -> bool:
        """Whether a wijk step's button value is valid: a wijk id, or another page."""
        return is_id(value) or (value.startswith("page-") and is_id(value[5:]))

    def buttons_of(self, step: str, callback: Callback) -> CallbackQueryHandler[Any, Any]:
        """The handler of ``step``'s buttons."""
        return CallbackQueryHandler(callback, pattern=self.pattern(step))

    def summary_keyboard(
        self,
        t: Translator,
        draft: Draft,
        labels: Mapping[str, str],
        editable: Iterable[str],
        send_label: str,
    ) -> InlineKeyboardMarkup:
        """The summary's buttons: change each editable step (two a row), then send and cancel."""
        edits = keyboard(
            (("✏️ " + labels[s], self.data(draft, SUMMARY, f"edit-{s}")) for s in editable),
            columns=2,
        )
        finish = keyboard(
            [
                ("✅ " + send_label, self.data(draft, SUMMARY, "send")),
                ("✖️ " + t("Cancel"), self.data(draft, SUMMARY, "cancel")),
            ]
        )
        return InlineKeyboardMarkup([*edits.inline_keyboard, *finish.inline_keyboard])

    @staticmethod
    def summary_action(editable: Collection[str]) -> Callable[[str], bool]:
        """Which summary buttons are valid: send, cancel, or change one of ``editable``."""

        def valid(value: str) -> bool:
            return value in ("send", "cancel") or value.removeprefix("edit-") in editable

        return valid

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

    async def chosen_then(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, value: str, then: str
    ) -> str:
        """Show the chosen answer on the question, then ask ``then`` (a step outside the order,
        such as the phone number after "Call me")."""
        await self.close_question(update, context, draft, self.label(context.t, step, value))
        message = update.effective_message
        assert message is not None
        return await self.ask(message, context, draft, then)

    async def stop(
        self, update: Update, context: BuurtContext, draft: Draft, step: str, value: str, text: str
    ) -> int:
        """Show the chosen answer on the question, forget the draft and say ``text``: the flow
        ends here (danger, no consent, not now)."""
        await self.close_question(update, context, draft, self.label(context.t, step, value))
        self.drop(context)
        message = update.effective_message
        assert message is not None
        await message.reply_text(text)
        return ConversationHandler.END

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
        await self.close_question(update, context, draft, escape(wijk.name))
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
        """A button from an earlier step, an old draft or forged data: explain, change nothing.

        The send button of a draft that was sent already says what it was stored as."""
        query = update.callback_query
        parts = (query.data or "").split(":") if query is not None else []
        if parts[2:] == [SUMMARY, "send"] and await self.already_sent(update, context, parts[1]):
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


# --- one conversation for every flow ----------------------------------------------------------


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
            what=context.t(LABELS.get(part.name, N_("what you were doing"))),
        )
        + (context.t("\nWhat you typed:\n\n{text}", text=text) if text else "")
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
                what=context.t(LABELS.get(part.name, UNNAMED_FLOW)),
            )
            + (context.t("\nWhat you typed:\n\n{text}", text=text) if text else "")
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
            options.append((t("Keep it for later"), f"flow:switch:{nonce}:keep"))
        options += [
            (t("Stop it"), f"flow:switch:{nonce}:stop"),
            (t("Go back to it"), f"flow:switch:{nonce}:back"),
        ]
        message = update.effective_message
        assert message is not None
        await message.reply_text(
            t(
                "You are still busy with {what}. What would you like to do with it before "
                "you start something new?",
                what=t(LABELS.get(current.name, UNNAMED_FLOW)),
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
        _, _, nonce, choice = query.data.split(":", 3)
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
                CallbackQueryHandler(engine.on_switch, pattern=r"^flow:switch:[0-9a-f]{8}:"),
            ],
            name=FLOWS,
            persistent=True,
        )
