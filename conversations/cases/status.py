"""/open and /melding: a new status with its internal note; telling the reporter it closed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations import relay, steps
from buurtsignaal.conversations.callbacks import Report, ReportStatus
from buurtsignaal.conversations.cases.common import FLOW, STATUS_NOTE, _pro_signal, _remember
from buurtsignaal.conversations.cases.followup import RELAY_HOOK
from buurtsignaal.conversations.cases.notices import _closed_notice, _show_button
from buurtsignaal.conversations.cases.view import _withdrawn
from buurtsignaal.conversations.flow import Draft, State
from buurtsignaal.conversations.ui import keyboard, not_allowed, status_label
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.models import Resident, Signal
from buurtsignaal.storage.signals import WITHDRAWN

# --- the typed steps ---------------------------------------------------------------------


async def on_status_chosen(update: Update, context: BuurtContext) -> State:
    """A new status was chosen: ask for a short internal note."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    press = ReportStatus.of(update)
    to_status = press.status
    async with context.db.begin() as session:
        _, signal = await _pro_signal(session, context, user_id, press.signal)
    if signal is None:
        await steps.refuse(query, context)
        return None
    if signal.status == WITHDRAWN:
        await query.answer(_withdrawn(t, signal), show_alert=True)
        return None
    if signal.status == to_status:
        await query.answer(
            t(
                "{reference} already has the status {status}.",
                reference=signal.reference,
                status=status_label(t, to_status),
            ),
            show_alert=True,
        )
        return None
    _remember(context, STATUS_NOTE, signal, to_status)
    await query.answer()
    await steps.spend(query)
    lines = [
        t(
            "Change the status of <b>{reference}</b> from {old} to {new}: not done yet.",
            reference=signal.reference,
            old=status_label(t, signal.status),
            new=status_label(t, to_status),
        ),
        t(
            "Type a short note for your colleagues (the reporter does not see it) and the "
            "status changes, or press “Without note”. /annuleren stops and changes nothing."
        ),
    ]
    if to_status == store.CLOSED and signal.resident_id is not None:
        lines.append(
            t(
                "The reporter is told that the report is closed (without your note). To tell "
                "them more, use “Reply to reporter”."
            )
        )
    await context.bot.send_message(
        user_id,
        "\n".join(lines),
        reply_markup=keyboard([(t("Without note"), Report("nonote", signal.id).pack())]),
    )
    return STATUS_NOTE


async def on_status_note(update: Update, context: BuurtContext, pending: Draft, note: str) -> State:
    """The note with a status change."""
    return await _apply_status(update, context, pending, note)


async def on_without_note(update: Update, context: BuurtContext) -> State:
    """Without note: change the status right away."""
    pressed = await steps.pressed(update, context)
    pending = FLOW.draft(context, STATUS_NOTE)
    if pressed is None:
        return None
    query, _ = pressed
    if pending is None or str(pending["signal_id"]) != str(Report.of(update).signal):
        await query.answer(context.t("This button is no longer active."), show_alert=True)
        return None
    await query.answer()
    await steps.spend(query)
    return await _apply_status(update, context, pending, None)


async def _apply_status(
    update: Update, context: BuurtContext, pending: dict[str, Any], note: str | None
) -> int:
    user = update.effective_user
    assert user is not None
    t = context.t
    now = context.now
    to_status = str(pending["status"])
    changed = False
    old = ""
    told: bool | None = None  # whether the reporter is told it is closed (None: not closed)
    async with context.db.begin() as session:
        _, signal = await _pro_signal(
            session, context, user.id, int(pending["signal_id"]), for_update=True
        )
        if signal is not None:
            old = signal.status
            changed = await store.change_status(
                session,
                signal,
                to_status,
                actor=store.pro_actor(user.id),
                note=note,
                now=now,
                followup_days=context.settings.professionals.followup_days,
            )
            resident = signal.resident
            if changed and to_status == store.CLOSED and resident is not None:
                told = await _tell_closed(context, session, signal, resident, user.id)
    FLOW.done(context, stored=signal is not None)
    if signal is None:
        await context.bot.send_message(user.id, not_allowed(t))
        return ConversationHandler.END
    if old == WITHDRAWN:
        await context.bot.send_message(user.id, _withdrawn(t, signal))
        return ConversationHandler.END
    if not changed:
        await context.bot.send_message(
            user.id,
            t(
                "{reference} already has the status {status}; nothing changed.",
                reference=signal.reference,
                status=status_label(t, to_status),
            ),
        )
        return ConversationHandler.END
    lines = [
        t(
            "<b>{reference}</b>: status {old} → {new}.",
            reference=signal.reference,
            old=status_label(t, old),
            new=status_label(t, to_status),
        )
    ]
    if note:
        lines.append(t("Your note is saved in the history (internal)."))
    if told is not None:
        relay.wake(context, told)
        lines.append(_closed_told(t) if told else _closed_untold(t))
    await context.bot.send_message(user.id, "\n".join(lines))
    return ConversationHandler.END


def _closed_told(t: Translator) -> str:
    return t("The reporter has been told that it is closed.")


def _closed_untold(t: Translator) -> str:
    return t("The reporter could not be told: the bot cannot reach them. This is noted.")


async def _tell_closed(
    context: BuurtContext, session: AsyncSession, signal: Signal, resident: Resident, by: int
) -> bool:
    """Decide to tell the reporter their signal is closed (through the outbox; the history
    notes it if it cannot be delivered). A reporter who blocked the bot is noted at once."""
    now = context.now
    if resident.unreachable_since is not None:
        await store.record(session, signal, store.NOTICE_UNDELIVERED, actor=store.BOT, now=now)
        return False
    t = context.t
    text = _closed_notice(
        Translator(resident.language), signal, context.settings.professionals.followup_days
    )
    await relay.enqueue(
        context,
        session,
        relay.message(
            relay.key(f"cases:closed:{signal.id}:{now:%Y%m%d%H%M%S%f}", resident.telegram_id),
            resident.telegram_id,
            "cases:closed",
            text,
            hook=RELAY_HOOK,
            mark={"signal": signal.id, "kind": store.NOTICE_UNDELIVERED},
            bounce=relay.Bounce(by, _closed_untold(t), _closed_untold(t), _show_button(t, signal)),
        ),
    )
    return True
