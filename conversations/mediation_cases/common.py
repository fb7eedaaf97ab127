"""Buurtbemiddeling cases: constants, labels and small helpers shared by the handlers and jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardMarkup, Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import N_, Translator
from buurtsignaal.conversations import desk, relay, steps
from buurtsignaal.conversations.flow import TypedFlow
from buurtsignaal.storage import access
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.mediation import MediationProblem
from buurtsignaal.storage.models import MEDIATION_STAGES, MediationCase

SYSTEM = "system"  # an older writer of automatic history entries (storage.privacy)

Outgoing = tuple[str, InlineKeyboardMarkup]  # a text to send, with its buttons

CONVERSATION = "mediation_cases"  # the coordinator's typed steps
NEIGHBOUR_CONVERSATION = "mediation_invite"  # the neighbour's phone number

REMINDER_JOB = "mcase:reminders"
NAZORG_JOB = "mcase:nazorg"
RETENTION_JOB = "mcase:retention"
DIGEST_JOB = "mcase:digest:{slug}"
SWEEP_EVERY = dt.timedelta(minutes=5)
RETENTION_AT = dt.time(3, 30)
UPCOMING_DAYS = 3  # appointments shown in the daily overview
INVITE_PREFIX = "bm-"

LIST_LIMIT = 25  # cases in /zaken
OVERVIEW_LIMIT = 15  # lines per list in the daily overview
SITUATION_SHOWN = 1500  # characters of "what is going on" in the case view
PLACE_SHOWN = 60  # characters of a place in lists
NAME_SHOWN = 30  # characters of a coordinator's name in /zaken
APPOINTMENTS_SHOWN = 5  # the latest appointments in the case view
REFERRALS_SHOWN = 40  # the latest referrals in /bemiddelingen
MAX_MEDIATORS = 200
MAX_PLACE = 200

# Conversation states.
MEDIATORS, NOTE, APPT_PARTIES, APPT_WHEN, APPT_PLACE = (
    "mediators",
    "note",
    "appt_parties",
    "appt_when",
    "appt_place",
)
PHONE = "phone"
MESSAGE, ANSWER = "message", "answer"  # the team writes to a party; a party answers

# "Now" for handlers and jobs; tests replace it to move time.
STAGE_LABELS: dict[str, str] = {
    "aangemeld": N_("Registered"),
    "intake": N_("Intake"),
    "gesprek_partij_1": N_("Talk with party 1"),
    "gesprek_partij_2": N_("Talk with party 2"),
    "bemiddelingsgesprek": N_("Joint talk"),
    "afspraken": N_("Agreements"),
    "nazorg": N_("Follow-up"),
    "afgesloten": N_("Case closed"),
}
assert set(STAGE_LABELS) == set(MEDIATION_STAGES)
OUTCOME_LABELS: dict[str, str] = {
    "opgelost": N_("Solved"),
    "deels_opgelost": N_("Partly solved"),
    "niet_opgelost": N_("Not solved"),
    "gestopt": N_("Stopped"),
}
PARTY_STATUS_LABELS: dict[str, str] = {
    store.AGREED: N_("agreed"),
    store.DECLINED: N_("declined"),
    store.CALL: N_("asks for a call"),
    store.INVITED: N_("invited, no answer yet"),
}
NAZORG_LABELS: dict[str, str] = {
    "beter": N_("Better"),
    "hetzelfde": N_("The same"),
    "slechter": N_("Worse"),
}
APPOINTMENT_CHOICES: dict[str, tuple[str, str]] = {
    # callback value: (stored parties, label)
    "1": ("1", N_("Party 1")),
    "2": ("2", N_("Party 2")),
    "12": ("1,2", N_("Both parties")),
}
INVITE_ANSWER_LABELS: dict[str, str] = {
    "agree": N_("Yes, I want to take part"),
    "decline": N_("No, thank you"),
    "call": N_("Call me first"),
}

# History entries shown with their text (a note, a relayed message).
QUOTED = (store.NOTE, store.MESSAGE_OUT, store.MESSAGE_UNDELIVERED, store.MESSAGE_IN)

# The typed steps (the coordinator's, or a party's answer): one-field flows; the step under
# way is the flow's draft (an older release kept it in user_data["mcase"]).
FLOW = TypedFlow(
    name=CONVERSATION,
    cancelled=lambda t: t("Stopped. Nothing has been saved."),
    unfinished=lambda t, reference: t(
        "(You did not finish your input for {reference}; nothing was saved.)",
        reference=reference,
    ),
    legacy="mcase",
)
# The neighbour's phone number (an older release kept it in user_data["mcase_phone"]).
PHONE_FLOW = TypedFlow(
    name=NEIGHBOUR_CONVERSATION,
    cancelled=lambda t: t(
        "All right, no number saved. The mediation team knows you would like to talk first."
    ),
    legacy="mcase_phone",
    legacy_action=PHONE,
)


def _stage(t: Translator, stage: str) -> str:
    return t(STAGE_LABELS.get(stage, stage))


def _outcome(t: Translator, outcome: str | None) -> str:
    return t(OUTCOME_LABELS.get(outcome or "", outcome or "?"))


def _days_ago(t: Translator, since: dt.datetime, now: dt.datetime) -> str:
    days = max(0, (now - since).days)
    if days == 0:
        return t("today")
    return t.ngettext("{n} day ago", "{n} days ago", days)


# --- small helpers ---------------------------------------------------------------------------


async def _case_for(
    session: AsyncSession, context: BuurtContext, telegram_id: int, case_id: int
) -> MediationCase | None:
    """The case, only when this person is a bemiddelaar of its wijk."""
    _, case = await desk.handled(
        session,
        context,
        telegram_id,
        Permission.MEDIATION,
        lambda: store.get_case(session, case_id),
    )
    return case


async def _pressed_case(
    update: Update, context: BuurtContext, case_id: int
) -> tuple[CallbackQuery, int, MediationCase] | None:
    """A button on a case: the press, the presser and the case, only for a bemiddelaar of its
    wijk (the one refusal otherwise)."""
    return await desk.pressed_on(
        update, context, lambda session, user_id: _case_for(session, context, user_id, case_id)
    )


def _language(context: BuurtContext, telegram_id: int, stored: str) -> str:
    """A resident's language in a job: their latest choice in the chat, else the stored one."""
    data = context.application.user_data.get(telegram_id)
    return str(data["lang"]) if data and data.get("lang") else stored


async def _coordinators(
    context: BuurtContext, session: AsyncSession, case: MediationCase
) -> dict[int, str]:
    """Who hears news about a case (its coordinator, else every bemiddelaar of the wijk),
    with their languages."""
    if case.coordinator is not None:
        person = await access.person(session, case.coordinator, context.settings.admins)
        if person.may(Permission.MEDIATION, case.wijk_id):
            return await steps.languages(context, session, [case.coordinator])
    people = await access.recipients(session, case.wijk_id, Permission.MEDIATION)
    return await steps.languages(context, session, people)


async def _tell(
    context: BuurtContext,
    session: AsyncSession,
    people: dict[int, str],
    make: Callable[[Translator], str],
    *,
    key: str,
) -> None:
    """Write a message to each person, in their language, to the outbox in the caller's unit
    of work (``key`` names the decision: the update or the day)."""
    added = await relay.to_each(
        context, session, key, "mcase:news", people, lambda their: (make(their), None)
    )
    relay.wake(context, added)


def _update_key(update: Update) -> str:
    """The key of a decision taken while handling ``update`` (handled again after a crash,
    it decides the same, and the outbox adds nothing)."""
    return f"mcase:u{update.update_id}"


def _remember(context: BuurtContext, action: str, case: MediationCase, **extra: Any) -> None:
    """Remember the typed step under way on ``case``."""
    FLOW.begin(context, action, case.reference, case_id=case.id, **extra)


def _problem_text(t: Translator, problem: MediationProblem) -> str:
    """What to tell a coordinator when an action cannot be done."""
    if problem.reason == "closed":
        return t("This case is closed; nothing changed.")
    if problem.reason == "answered":
        return t("The neighbour has already answered the invitation; there is nothing to invite.")
    if problem.reason == "not_forward":
        return t("The case has already moved on; nothing changed.")
    if problem.reason == "undo_gone":
        return t(
            "This stage change can no longer be undone (it was too long ago, or the case has "
            "moved since); nothing changed."
        )
    return t("That cannot be done now; nothing changed.")
