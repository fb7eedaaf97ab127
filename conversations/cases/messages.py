"""/open and /melding: internal notes and messages between professional and reporter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations import desk, relay, steps
from buurtsignaal.conversations.callbacks import Report
from buurtsignaal.conversations.cases.common import (
    ANSWER,
    FLOW,
    NOTE,
    REPLY,
    _pro_signal,
    _remember,
)
from buurtsignaal.conversations.cases.followup import RELAY_HOOK
from buurtsignaal.conversations.cases.notices import _show_button, _to_professional, _to_reporter
from buurtsignaal.conversations.flow import Draft, State
from buurtsignaal.conversations.ui import not_allowed, role_label
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.models import Signal


async def _ask_typed(
    update: Update,
    context: BuurtContext,
    state: str,
    lookup: Callable[[AsyncSession, int, int], Awaitable[Signal | None]],
    prompt: Callable[[Translator, Signal], str],
) -> State:
    """A button that starts a typed step: check who may, remember the signal, ask."""
    signal_id = Report.of(update).signal
    pressed = await desk.pressed_on(
        update, context, lambda session, user_id: lookup(session, user_id, signal_id)
    )
    if pressed is None:
        return None
    query, user_id, signal = pressed
    _remember(context, state, signal)
    await query.answer()
    await context.bot.send_message(user_id, prompt(context.t, signal))
    return state


async def on_note_chosen(update: Update, context: BuurtContext) -> State:
    """Note: ask for an internal note."""

    async def lookup(session: AsyncSession, user_id: int, signal_id: int) -> Signal | None:
        return (await _pro_signal(session, context, user_id, signal_id))[1]

    return await _ask_typed(
        update,
        context,
        NOTE,
        lookup,
        lambda t, signal: t(
            "Type the internal note for <b>{reference}</b>. Only colleagues see it, never the "
            "reporter. /annuleren stops.",
            reference=signal.reference,
        ),
    )


async def on_note(update: Update, context: BuurtContext, pending: Draft, note: str) -> State:
    """The internal note, as typed."""
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    t = context.t
    async with context.db.begin() as session:
        _, signal = await _pro_signal(
            session, context, user.id, int(pending["signal_id"]), for_update=True
        )
        if signal is not None:
            await store.add_note(
                session, signal, note, actor=store.pro_actor(user.id), now=context.now
            )
    FLOW.done(context, stored=signal is not None)
    if signal is None:
        await message.reply_text(not_allowed(t))
    else:
        await message.reply_text(
            t("Internal note added to <b>{reference}</b>.", reference=signal.reference)
        )
    return ConversationHandler.END


async def on_reply_chosen(update: Update, context: BuurtContext) -> State:
    """Reply to reporter: ask for the message."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        person, signal = await _pro_signal(session, context, user_id, Report.of(update).signal)
    if signal is None:
        await steps.refuse(query, context)
        return None
    if signal.resident_id is None:
        await query.answer(_unreachable(t, signal), show_alert=True)
        return None
    role = store.signing_role(person, signal.wijk_id) or ""
    _remember(context, REPLY, signal)
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "Type your message for the reporter of <b>{reference}</b>. They see it signed only "
            "as “the {role}”; your name stays hidden. /annuleren stops.",
            reference=signal.reference,
            role=role_label(t, role),
        ),
    )
    return REPLY


def _unreachable(t: Translator, signal: Signal) -> str:
    return t(
        "The reporter of {reference} has removed their data and can no longer be reached.",
        reference=signal.reference,
    )


async def on_reply(update: Update, context: BuurtContext, pending: Draft, text: str) -> State:
    """The message for the reporter: stored and written to the outbox in one unit of work,
    once per step, signed only with the role."""
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    t = context.t
    role = ""
    step_key = FLOW.step_key(pending)
    async with context.db.begin() as session:
        person, signal = await _pro_signal(session, context, user.id, int(pending["signal_id"]))
        before = await store.event_of_step(session, step_key)
        resident = signal.resident if signal is not None else None
        if signal is not None and resident is not None and before is None:
            event = await store.record(
                session,
                signal,
                store.REPLY_OUT,
                actor=store.pro_actor(user.id),
                now=context.now,
                note=text,
                step_key=step_key,
            )
            role = store.signing_role(person, signal.wijk_id) or ""
            relayed, markup = _to_reporter(Translator(resident.language), signal, text, role)
            bounce = relay.Bounce(
                user.id,
                blocked=t(
                    "Your message could not be delivered: the reporter has blocked the bot or "
                    "deleted the chat. This is noted in the history."
                ),
                refused=relay.not_accepted(t),
                markup=_show_button(t, signal),
            )
            await relay.enqueue(
                context,
                session,
                relay.message(
                    relay.key(step_key or Report("reply", event.id).pack(), resident.telegram_id),
                    resident.telegram_id,
                    "cases:reply",
                    relayed,
                    markup,
                    hook=RELAY_HOOK,
                    mark={
                        "signal": signal.id,
                        "event": event.id,
                        "kind": store.REPLY_OUT_UNDELIVERED,
                    },
                    bounce=bounce,
                ),
            )
    FLOW.done(context, stored=signal is not None and resident is not None)
    if signal is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    if before is not None:  # this step was relayed before (handled again, or sent again)
        await message.reply_text(
            t(
                "Your message for the reporter of <b>{reference}</b> had already been sent; it "
                "was not sent twice.",
                reference=signal.reference,
            )
        )
        return ConversationHandler.END
    if resident is None:
        await message.reply_text(_unreachable(t, signal))
        return ConversationHandler.END
    relay.wake(context)
    await message.reply_text(
        t(
            "Sent to the reporter of <b>{reference}</b>, signed “the {role}”.",
            reference=signal.reference,
            role=role_label(t, role),
        )
    )
    return ConversationHandler.END


async def on_answer_chosen(update: Update, context: BuurtContext) -> State:
    """Answer (the reporter, under a message about their report): ask for the answer."""
    return await _ask_typed(
        update,
        context,
        ANSWER,
        store.own_signal,
        lambda t, signal: t(
            "Type your answer about report <b>{reference}</b>. It is passed on without your "
            "name. /annuleren stops.",
            reference=signal.reference,
        ),
    )


async def on_answer(update: Update, context: BuurtContext, pending: Draft, text: str) -> State:
    """The reporter's answer: to the professional who last wrote, without the reporter's name,
    stored and written to the outbox in one unit of work, once per step."""
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    t = context.t
    step_key = FLOW.step_key(pending)
    added = 0
    async with context.db.begin() as session:
        signal = await store.own_signal(session, user.id, int(pending["signal_id"]))
        before = await store.event_of_step(session, step_key)
        if signal is not None and before is None:
            event = await store.record(
                session,
                signal,
                store.REPLY_IN,
                actor=store.RESIDENT,
                now=context.now,
                note=text,
                step_key=step_key,
            )
            targets = await store.reply_targets(session, signal)
            added = await relay.to_each(
                context,
                session,
                step_key or Report("answer", event.id).pack(),
                "cases:answer",
                await steps.languages(context, session, targets),
                lambda their: _to_professional(their, signal, text),
            )
    FLOW.done(context, stored=signal is not None)
    if signal is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    relay.wake(context, added)
    if added or before is not None:
        reply = t(
            "Thank you. Your answer about <b>{reference}</b> has been passed on.",
            reference=signal.reference,
        )
    else:
        reply = t(
            "Thank you. Your answer has been added to report <b>{reference}</b>.",
            reference=signal.reference,
        )
    await message.reply_text(reply)
    return ConversationHandler.END
