"""Buurtbemiddeling cases: the neighbour's invite code, answer and phone number."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator, escape
from buurtsignaal.conversations import steps
from buurtsignaal.conversations.callbacks import Invitation
from buurtsignaal.conversations.flow import Draft, State
from buurtsignaal.conversations.mediation_cases.common import (
    INVITE_ANSWER_LABELS,
    INVITE_PREFIX,
    PARTY_STATUS_LABELS,
    PHONE,
    PHONE_FLOW,
    _coordinators,
    _tell,
    _update_key,
)
from buurtsignaal.conversations.ui import keyboard, mediation_explanation, not_allowed
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage import parsing
from buurtsignaal.storage.codes import code_hash
from buurtsignaal.storage.mediation import MediationProblem
from buurtsignaal.storage.models import MediationCase, MediationParty
from buurtsignaal.storage.residents import ensure_resident, get_resident

# --- the neighbour (party 2) -------------------------------------------------------------------


def _invite_problem(t: Translator, reason: str) -> str:
    """A polite answer to a code that cannot be used (it reveals nothing about the case)."""
    if reason == "used":
        return t(
            "This code has already been used. If that was not you, please contact the "
            "mediation team that gave you the code."
        )
    if reason == "answered":
        return t("You have already answered this invitation. Thank you!")
    if reason == "expired":
        return t("This code is no longer valid. Please ask the mediation team for a new one.")
    if reason == "own_case":
        return t(
            "This invitation is meant for your neighbour, not for you. Please give them the "
            "card or letter."
        )
    if reason == "locked":
        return t(
            "This code no longer works because it was tried wrongly too often. The mediation "
            "team has been told; please ask them for a new one."
        )
    if reason == "too_many":
        return t(
            "You have tried several codes that did not work today, so I cannot check another "
            "one until tomorrow. Please check the code on the card or letter, or ask the "
            "mediation team that gave it to you."
        )
    return t(
        "I do not know this code. Please check it on the card or letter (it looks like "
        "ABCD-2345), or ask the mediation team for a new one."
    )


async def _code_failed(
    context: BuurtContext, code: str | None, reason: str, telegram_id: int
) -> None:
    """Count a wrong try against the person and the code (in its own unit of work, since the
    refused one was rolled back); tell the coordinators when it locked the code."""
    if reason not in store.FAILURES:
        return
    async with context.db.begin() as session:
        resident = await ensure_resident(session, telegram_id, context.lang)
        case = await store.code_failed(
            session, code, reason, resident_id=resident.id, now=context.now
        )
        if case is None:
            return
        reference = case.reference
        await _tell(
            context,
            session,
            await _coordinators(context, session, case),
            lambda t: t(
                "The invite code for the neighbour (party 2) of <b>{reference}</b> was tried "
                "wrongly too often and no longer works. If the neighbour still needs it, make a "
                'new one with "Invite the neighbour". /zaak {reference}',
                reference=reference,
            ),
            key=f"mcase:code-locked:{case.id}:{code_hash(code) if code else ''}",
        )


async def _invitation(update: Update, context: BuurtContext, typed: str) -> None:
    """Show the neighbour what mediation is, with the three answers (or why the code fails)."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    code = store.normalise_code(typed)
    try:
        async with context.db.begin() as session:
            resident = await ensure_resident(session, user.id, context.lang)
            party = await store.invited_party(
                session, code, resident_id=resident.id, now=context.now
            )
            wijk = party.case.wijk.name
    except MediationProblem as problem:
        await _code_failed(context, code, problem.reason, user.id)
        await message.reply_text(_invite_problem(t, problem.reason))
        return
    assert code is not None
    text = "\n\n".join(
        [
            t(
                "Hello! The buurtbemiddeling team of {wijk} invites you to take part in "
                "buurtbemiddeling with a neighbour. You decide whether you want to.",
                wijk=wijk,
            ),
            mediation_explanation(t),
            t("<b>Do you want to take part?</b>"),
        ]
    )
    await message.reply_text(
        text,
        reply_markup=keyboard(
            [
                (t(label), Invitation(code, value).pack())
                for value, label in INVITE_ANSWER_LABELS.items()
            ]
        ),
    )


async def start_with_code(update: Update, context: BuurtContext) -> None:
    """/start bm-<code>: the neighbour opened the invite link."""
    typed = (context.args or [""])[0]
    await _invitation(update, context, typed[len(INVITE_PREFIX) :])


async def mediation_with_code(update: Update, context: BuurtContext) -> None:
    """/bemiddeling <code>: the neighbour typed the code from the card."""
    await _invitation(update, context, " ".join(context.args or []))


async def _answer(
    update: Update, context: BuurtContext, answer: str
) -> tuple[MediationParty, MediationCase] | None:
    """Record the neighbour's answer (the code is used up) and tell the coordinator."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    code = Invitation.of(update).code
    try:
        async with context.db.begin() as session:
            resident = await ensure_resident(session, user_id, context.lang)
            party = await store.answer_invite(
                session, code, resident_id=resident.id, answer=answer, now=context.now
            )
            case = await store.get_case(session, party.case_id)
            assert case is not None
            people = await _coordinators(context, session, case)
            reference, status = case.reference, party.status
            await _tell(
                context,
                session,
                people,
                lambda t: t(
                    "The neighbour (party 2) of <b>{reference}</b> answered the invitation: "
                    "{answer}. /zaak {reference}",
                    reference=reference,
                    answer=t(PARTY_STATUS_LABELS[status]),
                ),
                key=_update_key(update),
            )
    except MediationProblem as problem:
        await _code_failed(context, code, problem.reason, user_id)
        if problem.reason in ("unknown", "used"):
            await steps.refuse(query, context)  # forged or someone else's: reveal nothing
        else:
            await query.answer(_invite_problem(t, problem.reason), show_alert=True)
        return None
    await query.answer()
    await steps.spend(query)
    await context.bot.send_message(user_id, f"✔️ {escape(t(INVITE_ANSWER_LABELS[answer]))}")
    return party, case


async def on_invite_answer(update: Update, context: BuurtContext) -> None:
    """The neighbour agrees or declines."""
    answer = Invitation.of(update).answer
    result = await _answer(update, context, answer)
    if result is None:
        return
    user = update.effective_user
    assert user is not None
    t = context.t
    if answer == "agree":
        text = t(
            "Thank you for taking part. The mediation team will contact you to plan a first "
            "talk; before each appointment you get a reminder here."
        )
    else:
        text = t(
            "All right, thank you for letting us know. Nothing more happens with this "
            "invitation. If you change your mind, please contact the mediation team."
        )
    await context.bot.send_message(user.id, text)


async def on_invite_call(update: Update, context: BuurtContext) -> State:
    """The neighbour asks for a call first: which number?"""
    result = await _answer(update, context, "call")
    if result is None:
        return None
    party, case = result
    user = update.effective_user
    assert user is not None
    PHONE_FLOW.begin(context, PHONE, case.reference, party_id=party.id)
    await context.bot.send_message(
        user.id,
        context.t(
            "Which phone number may the mediation team call? It is only kept for this "
            "mediation. /annuleren if you would rather not give one."
        ),
    )
    return PHONE


async def on_neighbour_phone(
    update: Update, context: BuurtContext, pending: Draft, typed: str
) -> State:
    """The number the neighbour chooses to give."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    text = parsing.phone_number(typed)
    if text is None:
        await message.reply_text(
            t("That does not look like a phone number. For example: 06 12345678.")
        )
        return None
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
        party = (
            await store.party_of_resident(session, int(pending["party_id"]), resident.id)
            if resident
            else None
        )
        case = await store.set_party_phone(session, party, text, now=context.now) if party else None
        people = await _coordinators(context, session, case) if case else {}
        if case is not None:
            reference = case.reference
            await _tell(
                context,
                session,
                people,
                lambda t: t(
                    "The neighbour (party 2) of <b>{reference}</b> would like a call: {phone}. "
                    "/zaak {reference}",
                    reference=reference,
                    phone=text,
                ),
                key=_update_key(update),
            )
    PHONE_FLOW.done(context, stored=case is not None)
    if case is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    await message.reply_text(t("Thank you. The mediation team will call you."))
    return ConversationHandler.END
