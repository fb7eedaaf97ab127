"""Buurtbemiddeling cases: the coordinator's typed steps (mediators, note, appointment)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations import relay, steps
from buurtsignaal.conversations.callbacks import AppointmentParties, Mediation
from buurtsignaal.conversations.flow import Draft, State
from buurtsignaal.conversations.mediation_cases.actions import stale
from buurtsignaal.conversations.mediation_cases.common import (
    APPOINTMENT_CHOICES,
    APPT_PARTIES,
    APPT_PLACE,
    APPT_WHEN,
    FLOW,
    MEDIATORS,
    NOTE,
    _case_for,
    _language,
    _problem_text,
    _remember,
    _stage,
)
from buurtsignaal.conversations.mediation_cases.jobs import RELAY_HOOK, _appointment_notice
from buurtsignaal.conversations.mediation_cases.view import _show
from buurtsignaal.conversations.ui import keyboard, local_datetime, not_allowed
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage import outbox, parsing
from buurtsignaal.storage.mediation import MediationProblem
from buurtsignaal.storage.models import MediationCase

# --- the coordinator's typed steps -----------------------------------------------------------


async def _ask(
    update: Update,
    context: BuurtContext,
    action: str,
    state: str,
    text: Callable[[Translator, MediationCase], str],
) -> State:
    """Start a typed step on a case, after checking the presser may handle it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        case = await _case_for(session, context, user_id, Mediation.of(update).case)
    if case is None:
        await steps.refuse(query, context)
        return None
    if case.stage == store.CLOSED:
        await query.answer(_problem_text(t, MediationProblem("closed")), show_alert=True)
        return ConversationHandler.END
    _remember(context, action, case)
    await query.answer()
    if state == APPT_PARTIES:
        markup: InlineKeyboardMarkup | None = keyboard(
            [
                (t(label), AppointmentParties(case.id, value).pack())
                for value, (_, label) in APPOINTMENT_CHOICES.items()
            ],
            columns=3,
        )
    else:
        markup = None
    await context.bot.send_message(user_id, text(t, case), reply_markup=markup)
    return state


async def on_mediators_chosen(update: Update, context: BuurtContext) -> State:
    """Mediators: ask for the names of the pair."""
    return await _ask(
        update,
        context,
        MEDIATORS,
        MEDIATORS,
        lambda t, case: t(
            "Type the names of the two mediators for <b>{reference}</b>, for example: Fatima "
            "and Henk. /annuleren stops.",
            reference=case.reference,
        ),
    )


async def on_note_chosen(update: Update, context: BuurtContext) -> State:
    """Note: ask for a short note."""
    return await _ask(
        update,
        context,
        NOTE,
        NOTE,
        lambda t, case: t(
            "Type a short note for <b>{reference}</b>. Only the mediation team sees it. "
            "/annuleren stops.",
            reference=case.reference,
        ),
    )


async def on_appointment_chosen(update: Update, context: BuurtContext) -> State:
    """Appointment: first, with whom."""
    return await _ask(
        update,
        context,
        APPT_PARTIES,
        APPT_PARTIES,
        lambda t, case: t(
            "New appointment for <b>{reference}</b> (stage {stage}). With whom?",
            reference=case.reference,
            stage=_stage(t, case.stage),
        ),
    )


async def on_appointment_parties(update: Update, context: BuurtContext) -> State:
    """With party 1, 2 or both: now the date and time."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    pending = FLOW.draft(context, APPT_PARTIES)
    press = AppointmentParties.of(update)
    case_id = press.case
    if pending is None or pending.get("case_id") != case_id:
        await stale(update, context)
        return None
    async with context.db.begin() as session:
        case = await _case_for(session, context, user_id, case_id)
    if case is None:
        await steps.refuse(query, context)
        return None
    parties, label = APPOINTMENT_CHOICES[press.parties]
    _remember(context, APPT_WHEN, case, parties=parties)
    await query.answer()
    await steps.spend(query)
    await context.bot.send_message(
        user_id,
        t(
            "✔️ {parties}\nWhen? Type the date and time as dd-mm-jjjj uu:mm, for example {example}.",
            parties=t(label),
            example=(context.now + dt.timedelta(days=7))
            .astimezone(context.settings.tz)
            .strftime("%d-%m-%Y %H:%M"),
        ),
    )
    return APPT_WHEN


async def on_appointment_when(
    update: Update, context: BuurtContext, pending: Draft, text: str
) -> State:
    """The date and time, in the wijk's time zone."""
    message = update.effective_message
    assert message is not None
    t = context.t
    tz = context.settings.tz
    starts_at = parsing.local_datetime(text, tz)
    if starts_at is None:
        await message.reply_text(
            t(
                "I cannot read that as a date and time. Please type it as dd-mm-jjjj uu:mm, "
                "for example {example}.",
                example=(context.now + dt.timedelta(days=7))
                .astimezone(tz)
                .strftime("%d-%m-%Y %H:%M"),
            )
        )
        return None
    now = context.now
    if starts_at <= now:
        await message.reply_text(
            t("That moment has already passed. Please type a date and time in the future.")
        )
        return None
    if starts_at > now + dt.timedelta(days=366):
        await message.reply_text(t("That is more than a year away; please check the year."))
        return None
    pending["action"] = APPT_PLACE
    pending["starts_at"] = starts_at.astimezone(dt.UTC).isoformat()
    await message.reply_text(t("Where? For example: Buurthuis De Boog, Hoefkade 12."))
    return APPT_PLACE


async def on_appointment_place(
    update: Update, context: BuurtContext, pending: Draft, place: str
) -> State:
    """The place (at most MAX_PLACE characters): the appointment is recorded."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    starts_at = dt.datetime.fromisoformat(str(pending["starts_at"]))

    async def record(session: AsyncSession, case: MediationCase) -> int:
        appointment = await store.add_appointment(
            session,
            case,
            parties=str(pending["parties"]),
            starts_at=starts_at,
            place=place,
            actor=store.pro_actor(user.id),
            now=context.now,
        )
        notices = await store.decide_appointment_notices(session, appointment, now=context.now)
        return await relay.enqueue(context, session, *map(_appointment_relay(context), notices))

    return await _save(
        update,
        context,
        pending,
        record,
        lambda t: t(
            "Appointment recorded: {when}, {place}. The parties who use the bot have been "
            "told, and get a reminder a day before.",
            when=local_datetime(starts_at, context.settings.tz),
            place=place,
        ),
        then=lambda added: relay.wake(context, added),
    )


def _appointment_relay(
    context: BuurtContext,
) -> Callable[[store.AppointmentNotice], outbox.Outgoing]:
    """Each party is told of a new appointment (date, time, place; nothing about the other
    party) through the outbox; the history entry says "not told" if it cannot be delivered."""

    def notice(decided: store.AppointmentNotice) -> outbox.Outgoing:
        target = decided.target
        t = Translator(_language(context, target.telegram_id, target.language))
        text, markup = _appointment_notice(t, target, context.settings.tz)
        return relay.message(
            relay.key(Mediation("appt", target.appointment_id).pack(), target.telegram_id),
            target.telegram_id,
            "mcase:appointment",
            text,
            markup,
            hook=RELAY_HOOK,
            mark={"event": decided.event_id, "kind": store.APPOINTMENT_UNTOLD},
        )

    return notice


async def on_mediators(update: Update, context: BuurtContext, pending: Draft, names: str) -> State:
    """The names of the mediators (at most MAX_MEDIATORS characters)."""
    user = update.effective_user
    assert user is not None
    return await _save(
        update,
        context,
        pending,
        lambda session, case: store.set_mediators(
            session, case, names, actor=store.pro_actor(user.id), now=context.now
        ),
        lambda t: t("Mediators: {names}.", names=names),
    )


async def on_note(update: Update, context: BuurtContext, pending: Draft, text: str) -> State:
    """A short note for the case history."""
    user = update.effective_user
    assert user is not None
    return await _save(
        update,
        context,
        pending,
        lambda session, case: store.add_note(
            session, case, text, actor=store.pro_actor(user.id), now=context.now
        ),
        lambda t: t("Note added."),
    )


async def _save(
    update: Update,
    context: BuurtContext,
    pending: dict[str, Any],
    change: Callable[[AsyncSession, MediationCase], Coroutine[Any, Any, Any]],
    done: Callable[[Translator], str],
    *,
    then: Callable[[Any], None] | None = None,
) -> int:
    """Check again, store the typed change, (``then``: act on what the change returned, after
    it is committed) and show the case."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user.id, int(pending["case_id"]))
            result = await change(session, case) if case is not None else None
    except MediationProblem as problem:
        FLOW.drop(context)
        await message.reply_text(_problem_text(t, problem))
        return ConversationHandler.END
    FLOW.done(context, stored=case is not None)
    if case is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    if then is not None:
        then(result)
    await _show(context, user.id, case.id, done=done(t))
    return ConversationHandler.END


async def choose_button(update: Update, context: BuurtContext) -> State:
    """Text while the buttons (party 1, 2 or both) are expected."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(
        context.t("Please choose one of the buttons, or stop with /annuleren.")
    )
    return None
