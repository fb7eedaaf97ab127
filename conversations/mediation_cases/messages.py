"""Buurtbemiddeling cases: messages between the mediation team and a party."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations import relay, steps
from buurtsignaal.conversations.callbacks import Mediation, PartyMessage
from buurtsignaal.conversations.flow import Draft, State
from buurtsignaal.conversations.mediation_cases.common import (
    ANSWER,
    FLOW,
    MESSAGE,
    Outgoing,
    _case_for,
    _coordinators,
    _language,
    _pressed_case,
    _problem_text,
    _remember,
)
from buurtsignaal.conversations.mediation_cases.jobs import RELAY_HOOK
from buurtsignaal.conversations.ui import keyboard, not_allowed
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.mediation import MediationProblem
from buurtsignaal.storage.residents import get_resident

# --- messages between the mediation team and a party ----------------------------------------


def _unreachable(t: Translator, number: int) -> str:
    return t("Party {n} cannot be reached through the bot; nothing was sent.", n=number)


async def on_message_chosen(update: Update, context: BuurtContext) -> State:
    """Message to party 1 or 2: ask for the text (they see it signed by the team only)."""
    pressed = await _pressed_case(update, context, PartyMessage.of(update).case)
    if pressed is None:
        return None
    query, user_id, case = pressed
    t = context.t
    number = PartyMessage.of(update).party
    if case.stage == store.CLOSED:
        await query.answer(_problem_text(t, MediationProblem("closed")), show_alert=True)
        return ConversationHandler.END
    party = store.party_of(case, number)
    if party is None or party.resident_id is None:
        await query.answer(_unreachable(t, number), show_alert=True)
        return ConversationHandler.END
    _remember(context, MESSAGE, case, party=number)
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "Type your message for party {n} of <b>{reference}</b>. They see it signed only "
            "as “the mediation team”; your name stays hidden. /annuleren stops.",
            n=number,
            reference=case.reference,
        ),
    )
    return MESSAGE


def _to_party(t: Translator, case_id: int, reference: str, number: int, text: str) -> Outgoing:
    """To a party: the team's message, signed by the team, with a button to answer."""
    relayed = t(
        "Message about your buurtbemiddeling <b>{reference}</b>:\n\n{text}\n\n— the mediation team",
        reference=reference,
        text=text,
    )
    return relayed, keyboard([("↩️ " + t("Answer"), PartyMessage("ans", case_id, number).pack())])


def _to_team(t: Translator, case_id: int, reference: str, number: int, text: str) -> Outgoing:
    """To the coordinator: a party's answer, without who they are."""
    relayed = t(
        "Answer from party {n} in <b>{reference}</b>:\n\n{text}",
        n=number,
        reference=reference,
        text=text,
    )
    markup = keyboard(
        [
            (
                "💬 " + t("Message to party {n}", n=number),
                PartyMessage("msg", case_id, number).pack(),
            ),
            ("🔎 " + t("Show case"), Mediation("show", case_id).pack()),
        ],
        columns=2,
    )
    return relayed, markup


async def on_message(update: Update, context: BuurtContext, pending: Draft, text: str) -> State:
    """The coordinator's message: stored and written to the outbox for the party's private
    chat in one unit of work, once per step."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    number = int(pending["party"])
    step_key = FLOW.step_key(pending)
    added = 0
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user.id, int(pending["case_id"]))
            if case is not None and await store.event_of_step(session, step_key) is None:
                stored = await store.message_party(
                    session,
                    case,
                    number,
                    text,
                    actor=store.pro_actor(user.id),
                    now=context.now,
                    step_key=step_key,
                )
                bounce = relay.Bounce(
                    user.id,
                    blocked=t(
                        "Your message could not be delivered: party {n} has blocked the bot or "
                        "deleted the chat. This is noted in the history.",
                        n=number,
                    ),
                    refused=relay.not_accepted(t),
                    markup=keyboard([("🔎 " + t("Show case"), Mediation("show", case.id).pack())]),
                )
                added = await relay.enqueue(
                    context,
                    session,
                    relay.message(
                        relay.key(step_key or f"mcase:msg:{stored.event_id}", stored.telegram_id),
                        stored.telegram_id,
                        "mcase:message",
                        *_to_party(
                            Translator(_language(context, stored.telegram_id, stored.language)),
                            case.id,
                            case.reference,
                            number,
                            text,
                        ),
                        hook=RELAY_HOOK,
                        mark={"event": stored.event_id, "kind": store.MESSAGE_UNDELIVERED},
                        bounce=bounce,
                    ),
                )
    except MediationProblem as problem:
        FLOW.drop(context)
        if problem.reason == "unreachable":
            await message.reply_text(_unreachable(t, number))
        else:
            await message.reply_text(_problem_text(t, problem))
        return ConversationHandler.END
    FLOW.done(context, stored=case is not None)
    if case is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    relay.wake(context, added)
    await message.reply_text(  # also when this step was relayed before: it is, once
        t(
            "Sent to party {n} of <b>{reference}</b>, signed “the mediation team”.",
            n=number,
            reference=case.reference,
        )
    )
    return ConversationHandler.END


async def on_answer_chosen(update: Update, context: BuurtContext) -> State:
    """Answer (a party, under a message of the team): ask for the answer."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    press = PartyMessage.of(update)
    number = press.party
    async with context.db.begin() as session:
        resident = await get_resident(session, user_id)
        found = (
            await store.party_in_case(session, press.case, number, resident.id)
            if resident is not None
            else None
        )
    if found is None:
        await steps.refuse(query, context)
        return None
    case, _ = found
    if case.stage == store.CLOSED:
        await query.answer(_answer_closed(t), show_alert=True)
        return ConversationHandler.END
    _remember(context, ANSWER, case, party=number)
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "Type your answer about your buurtbemiddeling <b>{reference}</b>. Only the "
            "mediation team reads it. /annuleren stops.",
            reference=case.reference,
        ),
    )
    return ANSWER


def _answer_closed(t: Translator) -> str:
    return t(
        "This mediation has been closed, so your answer cannot be passed on. If things get "
        "difficult again, you can ask for mediation with /bemiddeling."
    )


async def on_answer(update: Update, context: BuurtContext, pending: Draft, text: str) -> State:
    """A party's answer: stored and written to the outbox for the coordinator (else every
    bemiddelaar of the wijk) in one unit of work, without the party's identity, once per step."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    number = int(pending["party"])
    step_key = FLOW.step_key(pending)
    added = 0
    try:
        async with context.db.begin() as session:
            resident = await get_resident(session, user.id)
            found = (
                await store.party_in_case(session, int(pending["case_id"]), number, resident.id)
                if resident is not None
                else None
            )
            before = await store.event_of_step(session, step_key)
            if found is not None and before is None:
                case, party = found
                event = await store.answer_from_party(
                    session, case, party, text, now=context.now, step_key=step_key
                )
                reference = case.reference
                added = await relay.to_each(
                    context,
                    session,
                    step_key or f"mcase:ans:{event.id}",
                    "mcase:answer",
                    await _coordinators(context, session, case),
                    lambda their: _to_team(their, event.case_id, reference, number, text),
                )
    except MediationProblem:
        FLOW.drop(context)
        await message.reply_text(_answer_closed(t))
        return ConversationHandler.END
    FLOW.done(context, stored=found is not None)
    if found is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    relay.wake(context, added)
    if added or before is not None:
        reply = t("Thank you. Your answer has been passed on to the mediation team.")
    else:
        reply = t(
            "Thank you. Your answer has been saved with your mediation; the mediation team "
            "will read it."
        )
    await message.reply_text(reply)
    return ConversationHandler.END
