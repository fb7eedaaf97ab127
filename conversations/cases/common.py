"""/open and /melding: constants, labels and small helpers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import N_, Translator
from buurtsignaal.conversations import desk
from buurtsignaal.conversations.flow import TypedFlow
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.access import Permission, Person
from buurtsignaal.storage.models import Signal

PER_PAGE = 5
FOLLOWUP_JOB = "cases:followups"
FOLLOWUP_EVERY = dt.timedelta(minutes=5)
DESCRIPTION_SHOWN = 2500  # characters of the description in the detail message
ADDED_PHOTOS_SHOWN = 3  # the newest photos a reporter added later, shown with the signal

# Conversation states: what the person is typing.
STATUS_NOTE, NOTE, REPLY, ANSWER = "status_note", "note", "reply", "answer"

FOLLOWUP_LABELS = {"yes": N_("Yes"), "no": N_("No"), "unknown": N_("I don't know")}
# Every kind of history entry as a human line (never the internal code).
EVENT_LABELS = {
    "created": N_("reported"),
    store.ASSIGNED: N_("taken"),
    store.NOTE: N_("internal note"),
    store.REPLY_OUT: N_("message to the reporter"),
    store.REPLY_OUT_UNDELIVERED: N_("message to the reporter, NOT delivered"),
    store.REPLY_IN: N_("answer from the reporter"),
    store.NOTICE_UNDELIVERED: N_("the reporter could not be told that it was closed"),
    store.FOLLOWUP_SENT: N_("asked the reporter whether it is solved"),
    store.FOLLOWUP_UNDELIVERED: N_("could not ask the reporter whether it is solved"),
    store.FOLLOWUP: N_("the reporter answered whether it is solved"),
    store.ADDITION: N_("the reporter added information"),
    store.WITHDRAWN_EVENT: N_("withdrawn by the reporter"),
    store.MEDIATION_PROPOSED: N_("buurtbemiddeling proposed to the reporter"),
    store.MEDIATION_ACCEPTED: N_("the reporter wants buurtbemiddeling"),
    store.MEDIATION_DECLINED: N_("the reporter does not want buurtbemiddeling"),
    store.REPORTER_LEFT: N_("the reporter removed their data (/vergeetmij)"),
    store.RETENTION_CONTACT: N_("contact details removed (retention period)"),
    store.RETENTION_CONTENT: N_("description, typed place and photos removed (retention period)"),
}
INTERNAL = (store.NOTE, store.STATUS)

# The typed steps: one-field flows; the step under way is the flow's draft.
FLOW = TypedFlow(
    name="cases",
    cancelled=lambda t: t("Stopped. Nothing has been sent or saved."),
    unfinished=lambda t, reference: t(
        "(You did not finish your text about {reference}; nothing was sent.)",
        reference=reference,
    ),
)


# --- small helpers ---------------------------------------------------------------------------


def _age(t: Translator, since: dt.datetime, now: dt.datetime) -> str:
    """How long ago, roughly: days, else hours."""
    delta = max(now - since, dt.timedelta(0))
    if delta.days >= 1:
        return t.ngettext("{n} day", "{n} days", delta.days)
    hours = delta.seconds // 3600
    if hours >= 1:
        return t.ngettext("{n} hour", "{n} hours", hours)
    return t("less than an hour")


async def _pro_signal(
    session: AsyncSession,
    context: BuurtContext,
    telegram_id: int,
    signal_id: int,
    *,
    for_update: bool = False,
) -> tuple[Person, Signal | None]:
    """The signal, only if this person may handle signals in its wijk."""
    return await desk.handled(
        session,
        context,
        telegram_id,
        Permission.SIGNALS,
        lambda: store.get_signal(session, signal_id, for_update=for_update),
    )


async def _signal_for(
    session: AsyncSession, context: BuurtContext, telegram_id: int, signal_id: int
) -> Signal | None:
    """:func:`_pro_signal` without the person."""
    return (await _pro_signal(session, context, telegram_id, signal_id))[1]


async def _pressed_signal(
    update: Update, context: BuurtContext, signal_id: int
) -> tuple[CallbackQuery, int, Signal] | None:
    """A button on a signal: the press, the presser and the signal, only for someone who may
    handle signals in its wijk (the one refusal otherwise)."""
    return await desk.pressed_on(
        update, context, lambda session, user_id: _signal_for(session, context, user_id, signal_id)
    )


def _remember(
    context: BuurtContext, action: str, signal: Signal, status: str | None = None
) -> None:
    """Remember the typed step under way on ``signal``."""
    FLOW.begin(context, action, signal.reference, signal_id=signal.id, status=status)
