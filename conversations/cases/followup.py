"""/open and /melding: the follow-up question, its answer and its sweeper job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.bot.outbox import Settled
from buurtsignaal.conversations import desk, steps
from buurtsignaal.conversations.callbacks import FollowUp
from buurtsignaal.conversations.cases.common import FOLLOWUP_LABELS
from buurtsignaal.conversations.cases.notices import _followup_question, _reopened_alert
from buurtsignaal.conversations.ui import local_date
from buurtsignaal.storage import access, outbox
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.outbox import Outgoing

# --- the follow-up ---------------------------------------------------------------------------


async def on_followup(update: Update, context: BuurtContext) -> None:
    """The reporter answers "is het opgelost?": yes, no (reopens it) or don't know."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    press = FollowUp.of(update)
    answer = press.answer
    alert_to: dict[int, str] = {}
    async with context.db.begin() as session:
        signal = await store.own_signal(session, user_id, press.signal, for_update=True)
        result = (
            await store.answer_followup(session, signal, answer, now=context.now)
            if signal
            else None
        )
        if signal is not None and result is not None and result.reopened_to is not None:
            for telegram_id in await access.recipients(session, signal.wijk_id, Permission.SIGNALS):
                alert_to[telegram_id] = await steps.language_of(context, session, telegram_id)
            # The pair hears of it through the outbox (a fan-out never runs in a handler).
            alerts = []
            for telegram_id, language in alert_to.items():
                alert, markup = _reopened_alert(Translator(language), signal)
                alerts.append(
                    Outgoing(
                        key=f"cases:reopened:{signal.id}:u{update.update_id}:{telegram_id}",
                        chat_id=telegram_id,
                        kind="cases:reopened",
                        text=alert,
                        reply_markup=markup.to_dict(),
                    )
                )
            await outbox.enqueue(session, *alerts, now=context.now)

    def thanks(t: Translator) -> str:
        if answer == "yes":
            return t("Good to hear it is solved. Thank you for letting us know!")
        if answer == "no":
            assert signal is not None  # thanked only for their own report
            return t(
                "Sorry to hear it is not solved. Report <b>{reference}</b> has been opened "
                "again and the wijkagent and the opbouwwerker have been told.",
                reference=signal.reference,
            )
        return t("Thank you for letting us know.")

    await desk.check_in_answered(
        query,
        context,
        found=signal is not None,
        counted=result is not None,
        label=FOLLOWUP_LABELS[answer],
        thanks=thanks,
    )
    if alert_to:
        context.outbox.wake()


async def send_followups(context: BuurtContext) -> None:
    """Ask the reporters of closed signals whose follow-up is due: is het opgelost? Each
    question is decided (``followup_sent_at``) and written to the outbox in one unit of work;
    its hook notes in the history whether it was delivered."""
    now = context.now
    messages: list[Outgoing] = []
    async with context.db.begin() as session:
        for signal_id in await store.due_followups(session, now):
            signal = await store.decide_followup(session, signal_id, now=now)
            resident = signal.resident if signal is not None else None
            if signal is None or resident is None:
                continue
            if resident.unreachable_since is not None:  # they blocked the bot: noted
                await store.record(
                    session, signal, store.FOLLOWUP_UNDELIVERED, actor=store.BOT, now=now
                )
                continue
            text, markup = _followup_question(
                Translator(resident.language),
                signal,
                local_date(signal.closed_at or now, context.settings.tz),
            )
            closed = signal.closed_at or now
            messages.append(
                Outgoing(
                    key=f"cases:followup:{signal_id}:{closed:%Y%m%d%H%M%S}",
                    chat_id=resident.telegram_id,
                    kind="cases:followup",
                    text=text,
                    reply_markup=markup.to_dict(),
                    hook=FOLLOWUP_HOOK,
                    hook_data={"signal": signal_id},
                )
            )
        await outbox.enqueue(session, *messages, now=now)
    if messages:
        context.outbox.wake()


async def _followup_settled(session: AsyncSession, settled: Settled) -> None:
    """Note in the signal's history whether the follow-up question reached the reporter."""
    signal = await store.get_signal(session, int(settled.data["signal"]))
    if signal is not None:
        kind = store.FOLLOWUP_SENT if settled.delivered else store.FOLLOWUP_UNDELIVERED
        await store.record(session, signal, kind, actor=store.BOT, now=settled.now)


async def _relay_undelivered(
    session: AsyncSession, mark: Mapping[str, Any], now: dt.datetime
) -> None:
    """A message to the reporter could not be delivered: the history says so."""
    if mark:
        await store.note_undelivered(
            session, int(mark["signal"]), str(mark["kind"]), event_id=mark.get("event"), now=now
        )


FOLLOWUP_HOOK = "cases:followup"
RELAY_HOOK = "cases:relay"
