"""/open and /melding: buttons that act at once (page, show, take, refer, status menu)."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Html, Translator
from buurtsignaal.conversations import relay, steps
from buurtsignaal.conversations.callbacks import Referral, Report, ReportPage, ReportStatus
from buurtsignaal.conversations.cases.common import _pressed_signal, _pro_signal
from buurtsignaal.conversations.cases.followup import RELAY_HOOK
from buurtsignaal.conversations.cases.notices import _show_button
from buurtsignaal.conversations.cases.view import _open_page, _show, _withdrawn
from buurtsignaal.conversations.ui import (
    keyboard,
    mediation_explanation,
    not_allowed,
    role_label,
    status_label,
)
from buurtsignaal.storage import access
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.signals import STATUSES, WITHDRAWN

# --- buttons that act at once ----------------------------------------------------------------


async def on_page(update: Update, context: BuurtContext) -> None:
    """‹ previous / next ›: another page of /open."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    view = await _open_page(context, user_id, ReportPage.of(update).page)
    if view is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    text, markup = view
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc):
            raise


async def on_show(update: Update, context: BuurtContext) -> None:
    """A report in the /open list (or under an alert): show it."""
    pressed = await _pressed_signal(update, context, Report.of(update).signal)
    if pressed is None:
        return
    query, user_id, signal = pressed
    await query.answer()
    await _show(context, user_id, signal)


async def on_take(update: Update, context: BuurtContext) -> None:
    """Take: the signal becomes mine; a new one is now "in behandeling"."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        _, signal = await _pro_signal(
            session, context, user_id, Report.of(update).signal, for_update=True
        )
        open_ = signal is not None and signal.status != WITHDRAWN
        taken = (
            await store.take(session, signal, user_id, now=context.now)
            if signal and open_
            else None
        )
        previous = taken.previous if taken and taken.previous != user_id else None
        names = await access.display_names(session, [previous])
    if signal is not None and not open_:
        await query.answer(_withdrawn(t, signal), show_alert=True)
        return
    if signal is None or taken is None:
        await steps.refuse(query, context)
        return
    if not taken.changed:
        await query.answer(
            t("You have already taken {reference}.", reference=signal.reference), show_alert=True
        )
        return
    await query.answer(t("Taken"))
    lines = [t("You have taken <b>{reference}</b>.", reference=signal.reference)]
    if taken.to_status != taken.from_status:
        lines.append(
            t(
                "Its status went from {old} to {new}.",
                old=status_label(t, taken.from_status),
                new=status_label(t, taken.to_status),
            )
        )
    if previous is not None:
        lines.append(t("Before, {name} had it.", name=names.get(previous, t("a colleague"))))
    await context.bot.send_message(user_id, "\n".join(lines))


async def on_refer(update: Update, context: BuurtContext) -> None:
    """Propose buurtbemiddeling to the reporter; only their own yes in the bot starts it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    refusal: str | None = None
    async with context.db.begin() as session:
        person, signal = await _pro_signal(session, context, user_id, Report.of(update).signal)
        if signal is None or signal.resident is None:
            refusal = not_allowed(t)
        elif not await store.propose_mediation(session, signal, user_id, now=context.now):
            refusal = (
                t("Mediation was already proposed; the reporter has not answered yet.")
                if store.mediation_answer(signal) == store.MEDIATION_PROPOSED
                else t("The reporter already asked for mediation.")
            )
        else:
            role = store.signing_role(person, signal.wijk_id) or "wijkagent"
            reporter, reference = signal.resident.telegram_id, signal.reference
            their = context.translator_for(reporter)
            unreachable = t("The reporter cannot be reached through the bot.")
            await relay.enqueue(
                context,
                session,
                relay.message(
                    relay.key(Report("refer", signal.id).pack(), reporter),
                    reporter,
                    "cases:proposal",
                    _mediation_proposal(their, role, reference),
                    _proposal_buttons(their, signal.id),
                    hook=RELAY_HOOK,
                    bounce=relay.Bounce(user_id, unreachable, unreachable, _show_button(t, signal)),
                ),
            )
    # Answered after the unit of work: no transaction waits for a round trip to Telegram.
    if refusal is not None or signal is None:
        await query.answer(refusal, show_alert=True)
        return
    relay.wake(context)
    await query.answer(t("Proposal sent"))
    await context.bot.send_message(
        user_id,
        t(
            "The reporter of {reference} has been asked whether they want mediation. Nothing "
            "is passed on unless they agree.",
            reference=reference,
        ),
    )


def _proposal_buttons(t: Translator, signal_id: int) -> InlineKeyboardMarkup:
    """Yes / no to a proposal of mediation (answered in the mediation intake)."""
    return keyboard(
        [
            (t("Yes, I want to ask for mediation"), Referral(signal_id, "yes").pack()),
            (t("No, thank you"), Referral(signal_id, "no").pack()),
        ]
    )


def _mediation_proposal(t: Translator, role: str, reference: str) -> str:
    """Asked to the reporter, in their language: would mediation help?"""
    return t(
        "The {role} suggests buurtbemiddeling for your report {reference}.\n\n{explanation}\n\n"
        "Would you like to ask for it? Only if you say yes do you get the questions of the "
        "intake; nothing is passed on without you.",
        role=role_label(t, role),
        reference=reference,
        explanation=Html(mediation_explanation(t)),
    )


async def on_status_menu(update: Update, context: BuurtContext) -> None:
    """Status: offer the other statuses."""
    pressed = await _pressed_signal(update, context, Report.of(update).signal)
    if pressed is None:
        return
    query, user_id, signal = pressed
    t = context.t
    if signal.status == WITHDRAWN:
        await query.answer(_withdrawn(t, signal), show_alert=True)
        return
    await query.answer()
    choices = [
        (status_label(t, status), ReportStatus(signal.id, status).pack())
        for status in STATUSES
        if status != signal.status
    ]
    await context.bot.send_message(
        user_id,
        t(
            "New status for <b>{reference}</b>? It is now: {status}.",
            reference=signal.reference,
            status=status_label(t, signal.status),
        ),
        reply_markup=keyboard(choices),
    )


# Any other cases: button (an old step, forged data): refuse, change nothing.
stale = steps.stale_button(Permission.SIGNALS)
