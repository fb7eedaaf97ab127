"""Buurtbemiddeling cases after the intake: the coordinator's work, the neighbour's invite,
reminders, nazorg, the daily overview, the counts for the Koppelwerk pair and retention.

- ``/zaken`` and ``/zaak <reference>`` (bemiddelaar only): the open cases of their wijken and
  one case with everything from the intake, the parties, appointments, notes and history.
  Buttons take the case, move it along the CCV stages (the joint talk only when both
  neighbours agreed; "Undo" puts a move back for a short while, until the next move), name
  the mediators, record an appointment (each party who uses the bot is told at once), add a
  note, read all notes in full, create the neighbour's invite code and close the case with an
  outcome. Every button checks again, on the server side, that the presser is a bemiddelaar
  of *that* case's wijk. Every history entry reads as a sentence (EVENT_TEXTS).
- The neighbour (party 2) opens ``/start bm-<code>`` or types ``/bemiddeling <code>``, reads
  what mediation is (nothing of what the requester said) and agrees, declines or asks for a
  call. The code works once.
- "Message to party N" on ``/zaak`` (for a party reachable through the bot): the coordinator
  types a message; it is stored, then relayed to that party signed only "the mediation team",
  with an "Answer" button. The party's answer is stored and goes to the coordinator (else every
  bemiddelaar of the wijk) as "answer from party N", without who they are. A party only ever
  sees the messages meant for them.
- ``/bemiddelingen`` (wijkagent, opbouwwerker): counts only, and "geslaagd: ja/nee" for the
  cases they referred, once closed.
- Jobs: ``mcase:reminders`` and ``mcase:nazorg`` (sweepers, every few minutes and once at
  start), ``mcase:digest:<slug>`` (the bemiddelaars' daily overview) and ``mcase:retention``
  (anonymises closed cases after the retention period). They read "now" from :data:`clock`.

The typed steps (mediators, note, appointment, a message; a party's answer; the neighbour's
phone number) are persistent ConversationHandlers, so a restart while typing loses nothing and
/annuleren stops them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.context import BuurtContext
from bot.feature import Command, Feature, Job
from bot.i18n import N_, Html, Translator, escape
from bot.outbox import Settled
from conversations import relay, steps
from conversations.flow import PRIVATE, State, persistent_conversation
from conversations.steps import MEDIA, TYPED, TypedSteps
from conversations.ui import (
    DURATION_LABELS,
    REACHABLE_LABELS,
    TALKED_LABELS,
    Refusal,
    keyboard,
    local_date,
    local_datetime,
    mediation_explanation,
    not_allowed,
    shorten,
    topic_label,
)
from storage import access, outbox, parsing
from storage import mediation as store
from storage.access import Permission
from storage.codes import code_hash
from storage.mediation import MediationProblem
from storage.models import (
    MEDIATION_STAGES,
    MediationAppointment,
    MediationCase,
    MediationEvent,
    MediationParty,
)
from storage.residents import ensure_resident, get_resident
from storage.wijken import wijk_by_slug

log = logging.getLogger(__name__)

SYSTEM = "system"  # an older writer of automatic history entries (storage.privacy)

Outgoing = tuple[str, InlineKeyboardMarkup]  # a text to send, with its buttons

CONVERSATION = "mediation_cases"  # the coordinator's typed steps
NEIGHBOUR_CONVERSATION = "mediation_invite"  # the neighbour's phone number
PHONE_PENDING = "mcase_phone"  # user_data key: the neighbour's phone step

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
# A neighbour's code: 10 characters, or 8 for one made before codes grew longer.
_CODE = f"[{store.CODE_ALPHABET}]{{8}}(?:[{store.CODE_ALPHABET}]{{2}})?"

# History entries shown with their text (a note, a relayed message).
QUOTED = (store.NOTE, store.MESSAGE_OUT, store.MESSAGE_UNDELIVERED, store.MESSAGE_IN)

# The typed step under way (the coordinator's, or a party's answer), in user_data["mcase"].
STEPS = TypedSteps(
    key="mcase",
    cancelled=lambda t: t("Stopped. Nothing has been saved."),
    unfinished=lambda t, reference: t(
        "(You did not finish your input for {reference}; nothing was saved.)",
        reference=reference,
    ),
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
    person = await access.person(session, telegram_id, context.settings.admins)
    if not person.may(Permission.MEDIATION):
        return None
    case = await store.get_case(session, case_id)
    if case is None or not person.may(Permission.MEDIATION, case.wijk_id):
        return None
    return case


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
    STEPS.remember(context, action, case.reference, case_id=case.id, **extra)


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


# --- showing a case --------------------------------------------------------------------------


def _who(t: Translator, actor: str, names: dict[int, str]) -> str:
    """Who did something, as the mediation team sees it."""
    party = store.actor_party(actor)
    if party is not None:
        return t("party {n}", n=party)
    if actor in (store.BOT, SYSTEM):
        return t("the bot")
    telegram_id = store.actor_telegram_id(actor)
    if telegram_id is None:
        return "?"
    return names.get(telegram_id) or t("a mediation colleague")


def _ledger_party(note: str | None) -> str:
    """The party number of a reminder or nazorg entry (gone once anonymised)."""
    return (note or "?").rsplit(":", 1)[-1]


# What each history entry says in /zaak: plain lines, lines about one party (the party from
# the entry's ledger note), and the kinds that need more (see _event_text). Never a raw code.
EVENT_TEXTS: dict[str, str] = {
    store.CREATED: N_("request received"),
    store.TAKEN: N_("became coordinator"),
    store.APPOINTMENT: N_("appointment recorded"),
    store.NOTE: N_("note"),
    store.INVITED_EVENT: N_("invite code for party 2 created"),
    store.CODE_LOCKED: N_("invite code for party 2 locked after too many wrong tries"),
    store.PARTY_PHONE: N_("gave a phone number"),
    store.ANONYMISED: N_("anonymised after the retention period"),
    store.MESSAGE_IN: N_("answer through the bot"),
    store.PARTY_LEFT: N_("a party had their personal data removed (/vergeetmij)"),
}
PARTY_EVENT_TEXTS: dict[str, str] = {
    store.APPOINTMENT_TOLD: N_("party {n} told of the appointment"),
    store.APPOINTMENT_UNTOLD: N_("party {n} could NOT be told of the appointment"),
    store.REMINDER_SENT: N_("reminder sent to party {n}"),
    store.REMINDER_UNDELIVERED: N_("reminder could NOT be delivered to party {n}"),
    store.NAZORG_SENT: N_("nazorg check-in sent to party {n}"),
    store.NAZORG_UNDELIVERED: N_("nazorg check-in could NOT be delivered to party {n}"),
}
DETAILED_EVENTS = (
    store.STAGE,
    store.STAGE_UNDONE,
    store.MEDIATORS,
    store.PARTY_ANSWER,
    store.NAZORG_ANSWER,
    store.CLOSED_EVENT,
    store.MESSAGE_OUT,
    store.MESSAGE_UNDELIVERED,
)
assert {*EVENT_TEXTS, *PARTY_EVENT_TEXTS, *DETAILED_EVENTS} == set(store.EVENT_KINDS)


def _event_text(t: Translator, event: MediationEvent, case: MediationCase) -> str:
    """What happened in one history entry (escaped); an unknown kind gets a neutral line."""
    kind = event.kind
    if kind in EVENT_TEXTS:
        return t(EVENT_TEXTS[kind])
    if kind in PARTY_EVENT_TEXTS:
        return t(PARTY_EVENT_TEXTS[kind], n=_ledger_party(event.note))
    if kind == store.STAGE:
        return t(
            "stage {old} → {new}",
            old=_stage(t, event.from_stage or "?"),
            new=_stage(t, event.to_stage or "?"),
        )
    if kind == store.STAGE_UNDONE:
        return t(
            "stage change undone: back from {old} to {new}",
            old=_stage(t, event.from_stage or "?"),
            new=_stage(t, event.to_stage or "?"),
        )
    if kind == store.MEDIATORS:
        if event.note is None:
            return t("mediators named")
        return t("mediators: {names}", names=event.note)
    if kind == store.PARTY_ANSWER:
        return t(
            "answer to the invitation: {answer}",
            answer=t(PARTY_STATUS_LABELS.get(event.note or "", "?")),
        )
    if kind == store.NAZORG_ANSWER:
        return t("nazorg answer: {answer}", answer=t(NAZORG_LABELS.get(event.note or "", "?")))
    if kind == store.CLOSED_EVENT:
        return t("closed: {outcome}", outcome=_outcome(t, case.outcome))
    if kind == store.MESSAGE_OUT:
        return t("message to party {n}", n=store.message_party_number(event) or "?")
    if kind == store.MESSAGE_UNDELIVERED:
        return t("message to party {n}, NOT delivered", n=store.message_party_number(event) or "?")
    return t("other change")


def _history_line(
    t: Translator, tz: dt.tzinfo, event: MediationEvent, case: MediationCase, names: dict[int, str]
) -> str:
    return relay.history_line(
        t,
        local_datetime(event.at, tz),
        _event_text(t, event, case),
        _who(t, event.actor, names),
        event.note if event.kind in QUOTED else None,
    )


def _party_line(
    t: Translator, tz: dt.tzinfo, party: MediationParty | None, number: int, now: dt.datetime
) -> str:
    """Party 1 or 2 as the coordinator needs it: status, how to reach them, when."""
    if party is None:
        return t("<b>Party {n}:</b> not invited yet", n=number)
    bits: list[str] = []
    if party.status == store.INVITED:
        expires = party.invite_expires_at
        if party.invite_locked_at is not None:
            bits.append(t("invited, but the code was tried wrongly too often; create a new one"))
        elif party.invite_code_hash and expires and expires > now:
            bits.append(
                t(
                    "invited with a code valid until {date}; no answer yet",
                    date=local_date(expires, tz),
                )
            )
        else:
            bits.append(t("invited, but the code has expired; create a new one"))
    elif party.status == store.AGREED and party.consent_at is not None:
        bits.append(t("agreed on {date}", date=local_datetime(party.consent_at, tz)))
    else:
        bits.append(escape(t(PARTY_STATUS_LABELS.get(party.status, party.status))))
    if party.status != store.INVITED:
        if party.contact_via == "telefoon" and party.phone:
            bits.append(t("by phone: {phone}", phone=party.phone))
        elif party.status == store.CALL:
            bits.append(t("no phone number given yet"))
        elif party.resident_id is not None:
            bits.append(t("through the bot"))
        else:
            bits.append(t("no longer reachable through the bot"))
    if party.reachable:
        bits.append(
            t(
                "best reached: {when}",
                when=t(REACHABLE_LABELS.get(party.reachable, party.reachable)),
            )
        )
    if party.nazorg_answer:
        bits.append(t("nazorg: {answer}", answer=t(NAZORG_LABELS.get(party.nazorg_answer, "?"))))
    return t("<b>Party {n}:</b> {status}", n=number, status=Html(" · ".join(bits)))


def _appointment_line(t: Translator, tz: dt.tzinfo, appointment: MediationAppointment) -> str:
    parties = next(
        (label for stored, label in APPOINTMENT_CHOICES.values() if stored == appointment.parties),
        appointment.parties,
    )
    line = "• " + t(
        "{when} · {stage} · {parties} · {place}",
        when=local_datetime(appointment.starts_at, tz),
        stage=_stage(t, appointment.kind),
        parties=t(parties),
        place=shorten(appointment.place or "?", PLACE_SHOWN),
    )
    if appointment.cancelled_at is not None:
        line += " · " + t("cancelled")
    elif appointment.reminded_at is not None:
        line += " · " + t("⏰ reminded")
    return line


def case_text(
    t: Translator,
    case: MediationCase,
    appointments: list[MediationAppointment],
    names: dict[int, str],
    *,
    tz: dt.tzinfo,
    now: dt.datetime,
    intake_days: int,
    done: str | None = None,
) -> str:
    """Everything about one case for the mediation team, within Telegram's limit (the oldest
    history is left out when it does not fit); ``done`` (what just happened) goes on top."""
    requested = t(
        "<b>Requested:</b> {date} ({ago})",
        date=local_datetime(case.created_at, tz),
        ago=_days_ago(t, case.created_at, now),
    )
    if store.intake_overdue(case, now=now, tz=tz, intake_days=intake_days):
        requested += " · " + t("⚠️ intake overdue (more than {days} working days)", days=intake_days)
    coordinator = (
        names.get(case.coordinator) or t("a mediation colleague")
        if case.coordinator
        else t("nobody yet")
    )
    head = [f"✔️ {done}", ""] if done else []
    head += [
        t("🤝 <b>{reference}</b> · {wijk}", reference=case.reference, wijk=case.wijk.name),
        t("<b>Stage:</b> {stage}", stage=_stage(t, case.stage)),
        requested,
        t("<b>Coordinator:</b> {name}", name=coordinator),
        t("<b>Mediators:</b> {names}", names=case.mediators or t("not named yet")),
    ]
    if case.stage == store.CLOSED:
        head.append(
            t(
                "<b>Outcome:</b> {outcome} (closed {date})",
                outcome=_outcome(t, case.outcome),
                date=local_date(case.closed_at or now, tz),
            )
        )
    if case.nazorg_due_at is not None and case.stage == store.NAZORG:
        head.append(t("<b>Nazorg check-in:</b> {date}", date=local_date(case.nazorg_due_at, tz)))
    head += [
        "",
        t("<b>From the intake</b>"),
        t("<b>About:</b> {topic}", topic=topic_label(t, case.topic)),
        t(
            "<b>Going on for:</b> {duration}",
            duration=t(DURATION_LABELS.get(case.duration, case.duration)),
        ),
        t(
            "<b>Talked with the neighbour:</b> {talked}",
            talked=t(TALKED_LABELS.get(case.talked, case.talked)),
        ),
        t(
            "<b>What is going on:</b> {situation}",
            situation=shorten(case.situation, SITUATION_SHOWN) if case.situation else "—",
        ),
        t("<b>Other party:</b> {other}", other=case.other_party or "—"),
        t(
            "<b>Street and number, party 1:</b> {address}",
            address=case.requester_address or "—",
        ),
        t(
            "<b>Street and number, other party:</b> {address}",
            address=case.other_address or "—",
        ),
        _party_line(t, tz, store.party_of(case, 1), 1, now),
        _party_line(t, tz, store.party_of(case, 2), 2, now),
    ]
    if case.anonymised_at is not None:
        head.append(
            t(
                "This case was anonymised on {date}; only numbers and dates are left.",
                date=local_date(case.anonymised_at, tz),
            )
        )
    head += ["", t("<b>Appointments</b>")]
    if appointments:
        if len(appointments) > APPOINTMENTS_SHOWN:
            head.append(
                t.ngettext(
                    "… {n} earlier appointment not shown",
                    "… {n} earlier appointments not shown",
                    len(appointments) - APPOINTMENTS_SHOWN,
                )
            )
        head += [_appointment_line(t, tz, a) for a in appointments[-APPOINTMENTS_SHOWN:]]
    else:
        head.append(t("None yet."))
    lines = [_history_line(t, tz, e, case, names) for e in case.history]
    return steps.with_history(t, "\n".join(head), lines)


def case_buttons(
    t: Translator, case: MediationCase, viewer: int, now: dt.datetime
) -> InlineKeyboardMarkup | None:
    """The actions on an open case; a closed case only has its notes to read (if any)."""
    notes = any(e.kind == store.NOTE and e.note for e in case.history)
    notes_button = ("🗒 " + t("Notes"), f"mcase:notes:{case.id}")
    if case.stage == store.CLOSED:
        return keyboard([notes_button]) if notes else None
    buttons: list[tuple[str, str]] = []
    if case.coordinator != viewer:
        buttons.append(("✋ " + t("Take the case"), f"mcase:take:{case.id}"))
    if store.next_stage(case.stage) is not None:
        buttons.append(("⏭ " + t("Next stage"), f"mcase:next:{case.id}:{case.stage}"))
    move = store.undoable_move(case, now)
    if move is not None:
        buttons.append(("↩️ " + t("Undo"), f"mcase:undo:{case.id}:{move.id}"))
    buttons += [
        ("👥 " + t("Mediators"), f"mcase:mediators:{case.id}"),
        ("📅 " + t("Appointment"), f"mcase:appt:{case.id}"),
        ("📝 " + t("Note"), f"mcase:note:{case.id}"),
    ]
    if notes:
        buttons.append(notes_button)
    for number in (1, 2):
        party = store.party_of(case, number)
        if party is not None and party.resident_id is not None:
            buttons.append(
                ("💬 " + t("Message to party {n}", n=number), f"mcase:msg:{case.id}:{number}")
            )
    second = store.party_of(case, 2)
    if second is None or second.status == store.INVITED:
        buttons.append(("✉️ " + t("Invite the neighbour"), f"mcase:invite:{case.id}"))
    buttons.append(("🏁 " + t("Close"), f"mcase:close:{case.id}"))
    return keyboard(buttons, columns=2)


async def _show(
    context: BuurtContext, chat_id: int, case_id: int, *, done: str | None = None
) -> bool:
    """Send one case (with ``done`` above it: what just happened); False if not allowed."""
    t = context.t
    settings = context.settings
    async with context.db.begin() as session:
        case = await _case_for(session, context, chat_id, case_id)
        if case is None:
            return False
        appointments = list(await store.appointments_of(session, case.id))
        names = await access.display_names(session, store.history_actors(case))
    now = context.now
    text = case_text(
        t,
        case,
        appointments,
        names,
        tz=settings.tz,
        now=now,
        intake_days=settings.mediation.intake_days,
        done=done,
    )
    await context.bot.send_message(chat_id, text, reply_markup=case_buttons(t, case, chat_id, now))
    return True


# --- commands --------------------------------------------------------------------------------


async def list_cases(update: Update, context: BuurtContext) -> None:
    """/zaken: the open mediation cases of my wijken, oldest first."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    settings = context.settings
    async with context.db.begin() as session:
        person = await access.person(session, user.id, settings.admins)
        wijken = person.wijken_for(Permission.MEDIATION)
        cases = list(await store.open_cases(session, wijken)) if wijken else []
        names = await access.display_names(session, (c.coordinator for c in cases))
    if not wijken:
        await message.reply_text(not_allowed(t))
        return
    if not cases:
        await message.reply_text(t("There are no open mediation cases in your wijk."))
        return
    now = context.now
    lines = [
        t.ngettext("<b>{n} open mediation case</b>", "<b>{n} open mediation cases</b>", len(cases))
    ]
    rows: list[list[InlineKeyboardButton]] = []
    for case in cases[:LIST_LIMIT]:
        who = shorten(names.get(case.coordinator, ""), NAME_SHOWN) if case.coordinator else None
        line = "• " + t(
            "<b>{reference}</b> · {topic} · {stage} · {age} · {coordinator}",
            reference=case.reference,
            topic=topic_label(t, case.topic),
            stage=_stage(t, case.stage),
            age=_days_ago(t, case.created_at, now),
            coordinator=(who or t("a mediation colleague")) if case.coordinator else t("not taken"),
        )
        if len(wijken) > 1:
            line += " · " + escape(case.wijk.name)
        if store.intake_overdue(
            case, now=now, tz=settings.tz, intake_days=settings.mediation.intake_days
        ):
            line += " · " + t("⚠️ intake overdue")
        lines.append(line)
        rows.append(
            [
                InlineKeyboardButton(
                    f"🔎 {case.reference} · {topic_label(t, case.topic)}",
                    callback_data=f"mcase:show:{case.id}",
                )
            ]
        )
    if len(cases) > LIST_LIMIT:
        lines.append(t("… and {n} more (oldest shown first)", n=len(cases) - LIST_LIMIT))
    await message.reply_text("\n".join(lines), reply_markup=InlineKeyboardMarkup(rows))


async def show_case(update: Update, context: BuurtContext) -> None:
    """/zaak <reference>: one case with everything the mediation team knows."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    typed = " ".join(context.args or []).strip()
    year = context.now.astimezone(context.settings.tz).year
    reference = store.parse_reference(typed, year=year) if typed else None
    async with context.db.begin() as session:
        person = await access.person(session, user.id, context.settings.admins)
        wijken = person.wijken_for(Permission.MEDIATION)
        case = await store.find_case(session, reference) if wijken and reference else None
        if case is not None and case.wijk_id not in wijken:
            case = None  # another wijk's case: answered exactly as one that does not exist
    if not wijken:
        await message.reply_text(not_allowed(t))
    elif not typed:
        await message.reply_text(
            t("Which case? For example: /zaak BM-2026-0001, or just the number: /zaak 1")
        )
    elif case is None:
        await message.reply_text(
            t(
                "I cannot find case {reference} among the cases of your wijk.",
                reference=reference or shorten(typed, 40),
            )
        )
    else:
        await _show(context, user.id, case.id)


async def counts_command(update: Update, context: BuurtContext) -> None:
    """/bemiddelingen: numbers only, and whether the cases I referred succeeded."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        person = await access.person(session, user.id, context.settings.admins)
        wijken = person.wijken_for(Permission.MEDIATION_COUNTS) | person.wijken_for(
            Permission.MEDIATION
        )
        if wijken:
            numbers = await store.counts(session, wijken)
            referred = await store.referrals(session, user.id, wijken)
    if not wijken:
        await message.reply_text(not_allowed(t))
        return
    lines = [t("🤝 <b>Buurtbemiddeling in numbers</b>")]
    for wijk in numbers:
        lines += ["", f"<b>{escape(wijk.wijk_name)}</b>"]
        open_total = sum(wijk.stages.values())
        if open_total:
            per_stage = " · ".join(
                f"{escape(_stage(t, s))} {wijk.stages[s]}"
                for s in store.OPEN_STAGES
                if s in wijk.stages
            )
            lines.append(t("Open: {n} ({stages})", n=open_total, stages=Html(per_stage)))
        else:
            lines.append(t("Open: 0"))
        closed_total = sum(wijk.outcomes.values())
        if closed_total:
            per_outcome = " · ".join(
                f"{escape(_outcome(t, o))} {wijk.outcomes[o]}"
                for o in (*store.OUTCOMES, "?")
                if o in wijk.outcomes
            )
            lines.append(t("Closed: {n} ({outcomes})", n=closed_total, outcomes=Html(per_outcome)))
        else:
            lines.append(t("Closed: 0"))
    if referred:
        lines += ["", t("<b>Cases you referred</b>")]
        if len(referred) > REFERRALS_SHOWN:
            lines.append(t("… and {n} more", n=len(referred) - REFERRALS_SHOWN))
        for referral in referred[-REFERRALS_SHOWN:]:
            if not referral.closed:
                result = t("not finished yet")
            elif referral.succeeded:
                result = t("geslaagd: ja")
            else:
                result = t("geslaagd: nee")
            lines.append(f"• {escape(referral.reference)}: {escape(result)}")
    lines += ["", t("What was said in a mediation stays with the mediation team.")]
    await message.reply_text("\n".join(lines))


# --- buttons that act at once ----------------------------------------------------------------


async def on_show(update: Update, context: BuurtContext) -> None:
    """A case in the /zaken list: show it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    if not await _show(context, user_id, int(steps.match(context, 1))):
        await steps.refuse(query, context)
        return
    await query.answer()


async def on_take(update: Update, context: BuurtContext) -> None:
    """Take the case: I become its coordinator."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
            changed = await store.take(session, case, user_id, now=context.now) if case else False
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    if case is None:
        await steps.refuse(query, context)
        return
    if not changed:
        await query.answer(
            t("You are already the coordinator of {reference}.", reference=case.reference),
            show_alert=True,
        )
        return
    await query.answer()
    await steps.spend(query)
    await _show(context, user_id, case.id, done=t("You are now the coordinator of this case."))


async def on_next(update: Update, context: BuurtContext) -> None:
    """Next stage; the joint talk only when both neighbours agreed."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    from_stage = steps.match(context, 2)
    refused: tuple[MediationCase, MediationParty | None] | None = None
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
            if case is None:
                raise Refusal(not_allowed(t))
            if case.stage != from_stage:
                raise Refusal(
                    t(
                        "{reference} is already in stage {stage}; nothing changed.",
                        reference=case.reference,
                        stage=_stage(t, case.stage),
                    )
                )
            to_stage = store.next_stage(case.stage)
            if to_stage is None:
                raise MediationProblem("not_forward")
            if to_stage == store.JOINT_TALK and not store.both_agreed(case):
                refused = (case, store.party_of(case, 2))
            else:
                await store.move_stage(
                    session,
                    case,
                    to_stage,
                    actor=store.pro_actor(user_id),
                    now=context.now,
                    nazorg_after=dt.timedelta(weeks=context.settings.mediation.nazorg_weeks),
                )
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    except Refusal as refusal:
        await query.answer(refusal.text, show_alert=True)
        return
    await query.answer()
    if refused is not None:
        case, second = refused
        status = (
            t(PARTY_STATUS_LABELS.get(second.status, second.status))
            if second is not None
            else t("not invited yet")
        )
        await context.bot.send_message(
            user_id,
            t(
                "A joint talk (bemiddelingsgesprek) only happens when both neighbours agreed "
                "to mediation. The neighbour (party 2) of {reference}: {status}.\n"
                "You can skip to the agreements stage, or close the case.",
                reference=case.reference,
                status=status,
            ),
            reply_markup=keyboard(
                [
                    ("⏭ " + t("Skip to agreements"), f"mcase:skip:{case.id}:{case.stage}"),
                    ("🏁 " + t("Close"), f"mcase:close:{case.id}"),
                ],
                columns=2,
            ),
        )
        return
    await steps.spend(query)
    done = t("Stage is now: {stage}.", stage=_stage(t, to_stage))
    if to_stage == store.NAZORG:
        done += " " + t.ngettext(
            "In {n} week both parties get a check-in from the bot.",
            "In {n} weeks both parties get a check-in from the bot.",
            context.settings.mediation.nazorg_weeks,
        )
    await _show(context, user_id, case.id, done=done + " " + _undo_hint(t))


def _undo_hint(t: Translator) -> str:
    minutes = int(store.UNDO_WINDOW.total_seconds() // 60)
    return t.ngettext(
        "A mistake? “Undo” puts the stage back (for {n} minute, until the next move).",
        "A mistake? “Undo” puts the stage back (for {n} minutes, until the next move).",
        minutes,
    )


async def on_skip(update: Update, context: BuurtContext) -> None:
    """Skip the joint talk: on to the agreements stage."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
            if case is not None:
                # Only past the joint talk, from the stage just before it.
                at = case.stage
                if at != steps.match(context, 2) or store.next_stage(at) != store.JOINT_TALK:
                    raise MediationProblem("not_forward")
                await store.move_stage(
                    session,
                    case,
                    store.AGREEMENTS,
                    actor=store.pro_actor(user_id),
                    now=context.now,
                    nazorg_after=dt.timedelta(weeks=context.settings.mediation.nazorg_weeks),
                )
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    if case is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    await steps.spend(query)
    await _show(
        context,
        user_id,
        case.id,
        done=t("Stage is now: {stage}.", stage=_stage(t, store.AGREEMENTS)) + " " + _undo_hint(t),
    )


async def on_undo(update: Update, context: BuurtContext) -> None:
    """Undo the latest stage move (shortly after it, and only until the next move)."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
            back = (
                await store.undo_stage(
                    session,
                    case,
                    int(steps.match(context, 2)),
                    actor=store.pro_actor(user_id),
                    now=context.now,
                )
                if case is not None
                else None
            )
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    if case is None or back is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    await steps.spend(query)
    await _show(
        context,
        user_id,
        case.id,
        done=t("Undone: the stage is {stage} again.", stage=_stage(t, back)),
    )


async def on_notes(update: Update, context: BuurtContext) -> None:
    """Notes: every note of the case in full, over as many messages as needed."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
        names = await access.display_names(session, store.history_actors(case)) if case else {}
    if case is None:
        await steps.refuse(query, context)
        return
    notes = [e for e in case.history if e.kind == store.NOTE and e.note]
    if not notes:
        await query.answer(
            t("There are no notes in {reference}.", reference=case.reference), show_alert=True
        )
        return
    await query.answer()
    tz = context.settings.tz
    blocks = [
        (
            f"<i>{escape(local_datetime(e.at, tz))}</i> · {escape(_who(t, e.actor, names))}",
            e.note or "",
        )
        for e in notes
    ]
    pages = steps.pages(blocks)
    for number, page in enumerate(pages, start=1):
        title = t.ngettext(
            "🗒 <b>{n} note in {reference}</b>",
            "🗒 <b>{n} notes in {reference}</b>",
            len(notes),
            reference=case.reference,
        )
        if len(pages) > 1:
            title += " " + t("({page}/{pages})", page=number, pages=len(pages))
        await context.bot.send_message(user_id, f"{title}\n\n{page}")


async def on_close(update: Update, context: BuurtContext) -> None:
    """Close: choose the outcome."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
    if case is None:
        await steps.refuse(query, context)
        return
    if case.stage == store.CLOSED:
        await query.answer(_problem_text(t, MediationProblem("closed")), show_alert=True)
        return
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "How did mediation <b>{reference}</b> end? Both parties get a short thank-you "
            "message, without any content.",
            reference=case.reference,
        ),
        reply_markup=keyboard(
            [(t(label), f"mcase:out:{case.id}:{code}") for code, label in OUTCOME_LABELS.items()],
            columns=2,
        ),
    )


async def on_outcome(update: Update, context: BuurtContext) -> None:
    """An outcome was chosen: close the case and thank the parties."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    outcome = steps.match(context, 2)
    thank: dict[int, str] = {}
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
            if case is not None:
                parties = await store.close_case(
                    session, case, outcome, actor=store.pro_actor(user_id), now=context.now
                )
                for party in parties:
                    if party.resident is not None:
                        telegram_id = party.resident.telegram_id
                        thank[telegram_id] = _language(
                            context, telegram_id, party.resident.language
                        )
                await _tell(context, session, thank, _closing_message, key=_update_key(update))
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    if case is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    await steps.spend(query)
    await _show(
        context,
        user_id,
        case.id,
        done=t("Closed as: {outcome}.", outcome=_outcome(t, outcome)),
    )


async def on_invite(update: Update, context: BuurtContext) -> None:
    """Invite the neighbour: a single-use code, a deep link and a text for a card."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    settings = context.settings
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
            invited = (
                await store.create_party_invite(
                    session,
                    case,
                    actor=store.pro_actor(user_id),
                    now=context.now,
                    valid_for=dt.timedelta(days=settings.mediation.invite_days),
                )
                if case is not None
                else None
            )
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    if case is None or invited is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    party, code = invited
    shown = store.format_code(code)
    bot_name = context.bot.username
    link = f"https://t.me/{bot_name}?start={INVITE_PREFIX}{code}"
    until = local_date(party.invite_expires_at or context.now, settings.tz)
    card = t(
        "Hello neighbour, the buurtbemiddeling team of {wijk} would like to invite you for a "
        "talk about living together in the street. Buurtbemiddeling is free, voluntary and "
        "confidential. Open {link} or send /bemiddeling {code} to @{bot} in Telegram. The "
        "code works until {date}.",
        wijk=case.wijk.name,
        link=link,
        code=shown,
        bot=bot_name,
        date=until,
    )
    await context.bot.send_message(
        user_id,
        t(
            "✉️ Invitation for the neighbour (party 2) of <b>{reference}</b>.\n"
            "<b>Code:</b> <code>{code}</code> (works once, until {date})\n"
            "<b>Link:</b> {link}\n"
            "An earlier code for this case no longer works.\n\n"
            "<b>Text for a card or letter:</b>\n{card}\n\n"
            "The neighbour sees only what buurtbemiddeling is; nothing of what party 1 told.",
            reference=case.reference,
            code=shown,
            date=until,
            link=link,
            card=Html(card),
        ),
    )


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
        case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
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
                (t(label), f"mcase:apptp:{case.id}:{value}")
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
    pending = STEPS.pending(context, APPT_PARTIES)
    case_id = int(steps.match(context, 1))
    if pending is None or pending.get("case_id") != case_id:
        await stale(update, context)
        return None
    async with context.db.begin() as session:
        case = await _case_for(session, context, user_id, case_id)
    if case is None:
        await steps.refuse(query, context)
        return None
    parties, label = APPOINTMENT_CHOICES[steps.match(context, 2)]
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


async def on_appointment_when(update: Update, context: BuurtContext) -> State:
    """The date and time, in the wijk's time zone."""
    pending = STEPS.pending(context, APPT_WHEN)
    message = update.effective_message
    assert message is not None
    if pending is None:
        return ConversationHandler.END
    t = context.t
    tz = context.settings.tz
    text = (message.text or "").strip()
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


async def on_appointment_place(update: Update, context: BuurtContext) -> State:
    """The place: the appointment is recorded."""
    pending = STEPS.pending(context, APPT_PLACE)
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    if pending is None:
        return ConversationHandler.END
    place = await steps.typed(update, context, MAX_PLACE)
    if place is None:
        return None
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
            relay.key(f"mcase:appt:{target.appointment_id}", target.telegram_id),
            target.telegram_id,
            "mcase:appointment",
            text,
            markup,
            hook=RELAY_HOOK,
            mark={"event": decided.event_id, "kind": store.APPOINTMENT_UNTOLD},
        )

    return notice


async def on_mediators(update: Update, context: BuurtContext) -> State:
    """The names of the mediators."""
    pending = STEPS.pending(context, MEDIATORS)
    user = update.effective_user
    assert user is not None
    if pending is None:
        return ConversationHandler.END
    names = await steps.typed(update, context, MAX_MEDIATORS)
    if names is None:
        return None
    return await _save(
        update,
        context,
        pending,
        lambda session, case: store.set_mediators(
            session, case, names, actor=store.pro_actor(user.id), now=context.now
        ),
        lambda t: t("Mediators: {names}.", names=names),
    )


async def on_note(update: Update, context: BuurtContext) -> State:
    """A short note for the case history."""
    pending = STEPS.pending(context, NOTE)
    user = update.effective_user
    assert user is not None
    if pending is None:
        return ConversationHandler.END
    text = await steps.typed(update, context, context.settings.reports.max_text_length)
    if text is None:
        return None
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
        STEPS.forget(context)
        await message.reply_text(_problem_text(t, problem))
        return ConversationHandler.END
    STEPS.forget(context)
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


# --- messages between the mediation team and a party ----------------------------------------


def _unreachable(t: Translator, number: int) -> str:
    return t("Party {n} cannot be reached through the bot; nothing was sent.", n=number)


async def on_message_chosen(update: Update, context: BuurtContext) -> State:
    """Message to party 1 or 2: ask for the text (they see it signed by the team only)."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    number = int(steps.match(context, 2))
    async with context.db.begin() as session:
        case = await _case_for(session, context, user_id, int(steps.match(context, 1)))
    if case is None:
        await steps.refuse(query, context)
        return None
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
    return relayed, keyboard([("↩️ " + t("Answer"), f"mcase:ans:{case_id}:{number}")])


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
            ("💬 " + t("Message to party {n}", n=number), f"mcase:msg:{case_id}:{number}"),
            ("🔎 " + t("Show case"), f"mcase:show:{case_id}"),
        ],
        columns=2,
    )
    return relayed, markup


async def on_message(update: Update, context: BuurtContext) -> State:
    """The coordinator's message: stored and written to the outbox for the party's private
    chat in one unit of work, once per step."""
    pending = STEPS.pending(context, MESSAGE)
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    if pending is None:
        return ConversationHandler.END
    text = await steps.typed(update, context, context.settings.reports.max_text_length)
    if text is None:
        return None
    t = context.t
    number = int(pending["party"])
    step_key = STEPS.step_key(pending)
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
                    markup=keyboard([("🔎 " + t("Show case"), f"mcase:show:{case.id}")]),
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
        STEPS.forget(context)
        if problem.reason == "unreachable":
            await message.reply_text(_unreachable(t, number))
        else:
            await message.reply_text(_problem_text(t, problem))
        return ConversationHandler.END
    STEPS.forget(context)
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
    number = int(steps.match(context, 2))
    async with context.db.begin() as session:
        resident = await get_resident(session, user_id)
        found = (
            await store.party_in_case(session, int(steps.match(context, 1)), number, resident.id)
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


async def on_answer(update: Update, context: BuurtContext) -> State:
    """A party's answer: stored and written to the outbox for the coordinator (else every
    bemiddelaar of the wijk) in one unit of work, without the party's identity, once per step."""
    pending = STEPS.pending(context, ANSWER)
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    if pending is None:
        return ConversationHandler.END
    text = await steps.typed(update, context, context.settings.reports.max_text_length)
    if text is None:
        return None
    t = context.t
    number = int(pending["party"])
    step_key = STEPS.step_key(pending)
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
        STEPS.forget(context)
        await message.reply_text(_answer_closed(t))
        return ConversationHandler.END
    STEPS.forget(context)
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
                (t(label), f"mcase:p2:{code}:{value}")
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
    code = steps.match(context, 1)
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
    answer = steps.match(context, 2)
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
    party, _ = result
    user = update.effective_user
    assert user is not None and context.user_data is not None
    context.user_data[PHONE_PENDING] = {"party_id": party.id}
    await context.bot.send_message(
        user.id,
        context.t(
            "Which phone number may the mediation team call? It is only kept for this "
            "mediation. /annuleren if you would rather not give one."
        ),
    )
    return PHONE


async def on_neighbour_phone(update: Update, context: BuurtContext) -> State:
    """The number the neighbour chooses to give."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None and context.user_data is not None
    pending = context.user_data.get(PHONE_PENDING)
    if not isinstance(pending, dict):
        return ConversationHandler.END
    t = context.t
    text = parsing.phone_number(message.text or "")
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
    context.user_data.pop(PHONE_PENDING, None)
    if case is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    await message.reply_text(t("Thank you. The mediation team will call you."))
    return ConversationHandler.END


async def cancel_phone(update: Update, context: BuurtContext) -> int:
    """/annuleren instead of a phone number."""
    message = update.effective_message
    assert message is not None
    if context.user_data is not None:
        context.user_data.pop(PHONE_PENDING, None)
    await message.reply_text(
        context.t(
            "All right, no number saved. The mediation team knows you would like to talk first."
        )
    )
    return ConversationHandler.END


# --- nazorg answers ---------------------------------------------------------------------------


async def on_nazorg(update: Update, context: BuurtContext) -> None:
    """A party answers the check-in: better, the same or worse."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    answer = steps.match(context, 2)
    async with context.db.begin() as session:
        resident = await get_resident(session, user_id)
        party = (
            await store.party_of_resident(session, int(steps.match(context, 1)), resident.id)
            if resident
            else None
        )
        case = await store.answer_nazorg(session, party, answer, now=context.now) if party else None
        people = await _coordinators(context, session, case) if case else {}
        if case is not None and party is not None:
            reference, number = case.reference, party.number
            await _tell(
                context,
                session,
                people,
                lambda t: t(
                    "Nazorg <b>{reference}</b>: asked how things are now, party {n} "
                    "answered “{answer}”. /zaak {reference}",
                    reference=reference,
                    n=number,
                    answer=t(NAZORG_LABELS[answer]),
                ),
                key=_update_key(update),
            )
    if party is None:
        await steps.refuse(query, context)
        return
    if case is None:
        await query.answer(
            t("You have already answered this question. Thank you!"), show_alert=True
        )
        return
    await query.answer()
    await steps.spend(query)
    await context.bot.send_message(
        user_id,
        f"✔️ {escape(t(NAZORG_LABELS[answer]))}\n"
        + t("Thank you for letting us know. The mediation team reads your answer."),
    )


# Any other mcase: button (an old step, forged data): refuse, change nothing.
stale = steps.stale_button(Permission.MEDIATION)


# --- messages to residents (in their language) -----------------------------------------------


def _closing_message(t: Translator) -> str:
    """To both parties when the case closes: kind, without any content."""
    return t(
        "The buurtbemiddeling team has closed your mediation. Thank you for taking part and "
        "for talking with each other. If things get difficult again, you can always ask for "
        "mediation with /bemiddeling."
    )


def _reminder_text(t: Translator, target: store.ReminderTarget, tz: dt.tzinfo) -> str:
    """The reminder a day before: date, time and place, nothing about the other party."""
    local = target.starts_at.astimezone(tz)
    return t(
        "⏰ <b>Reminder</b>: you have a buurtbemiddeling talk on {date} at {time}.\n"
        "<b>Place:</b> {place}\n"
        "Can you not make it? Please let the mediation team know in time.",
        date=local_date(local, tz),
        time=local.strftime("%H:%M"),
        place=target.place or "?",
    )


def _appointment_notice(
    t: Translator, target: store.ReminderTarget, tz: dt.tzinfo
) -> tuple[str, InlineKeyboardMarkup]:
    """Told at once when a talk is planned: date, time and place, nothing about the other
    party, with a button to answer the mediation team."""
    local = target.starts_at.astimezone(tz)
    text = t(
        "📅 <b>Appointment</b>: the mediation team has planned a buurtbemiddeling talk with "
        "you on {date} at {time}.\n"
        "<b>Place:</b> {place}\n"
        "You get a reminder the day before. Can you not make it? Let the mediation team know "
        "with the button below.",
        date=local_date(local, tz),
        time=local.strftime("%H:%M"),
        place=target.place or "?",
    )
    markup = keyboard([("↩️ " + t("Answer"), f"mcase:ans:{target.case_id}:{target.party}")])
    return text, markup


def _nazorg_question(t: Translator, party_id: int) -> tuple[str, InlineKeyboardMarkup]:
    """The check-in some weeks after the agreements."""
    text = t(
        "Some weeks ago you took part in buurtbemiddeling. <b>How are things now?</b>\n"
        "Your answer goes only to the mediation team."
    )
    markup = keyboard(
        [(t(label), f"mcase:nz:{party_id}:{code}") for code, label in NAZORG_LABELS.items()],
        columns=3,
    )
    return text, markup


# --- jobs --------------------------------------------------------------------------------------

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock(application: Any) -> asyncio.Lock:
    """One sweep at a time per application (a direct run and the scheduled one never overlap)."""
    lock = _locks.get(application)
    if lock is None:
        lock = _locks[application] = asyncio.Lock()
    return lock


async def send_reminders(context: BuurtContext) -> None:
    """Remind the parties of each appointment once, about a day before it starts: decided
    (the ledger in the history) and written to the outbox in one unit of work."""
    async with _lock(context.application):
        now = context.now
        tz = context.settings.tz
        messages: list[outbox.Outgoing] = []
        async with context.db.begin() as session:
            for appointment_id in await store.due_reminders(session, now):
                for target in await store.decide_reminders(session, appointment_id, now=now):
                    t = Translator(_language(context, target.telegram_id, target.language))
                    messages.append(
                        outbox.Outgoing(
                            key=f"mcase:reminder:{appointment_id}:{target.party}",
                            chat_id=target.telegram_id,
                            kind="mcase:reminder",
                            text=_reminder_text(t, target, tz),
                            hook=REMINDER_HOOK,
                            hook_data={
                                "case": target.case_id,
                                "appointment": appointment_id,
                                "party": target.party,
                            },
                        )
                    )
            await outbox.enqueue(session, *messages, now=now)
    if messages:
        context.outbox.wake()


async def _reminder_settled(session: AsyncSession, settled: Settled) -> None:
    """A reminder Telegram refused for good (blocked): the history says it did not arrive."""
    if not settled.delivered:
        data = settled.data
        await store.reminder_undelivered(
            session, int(data["case"]), int(data["appointment"]), int(data["party"])
        )


async def send_nazorg(context: BuurtContext) -> None:
    """Send the nazorg check-in to each party whose case is due, once: decided and written to
    the outbox in one unit of work; the history notes whether it arrived."""
    async with _lock(context.application):
        now = context.now
        messages: list[outbox.Outgoing] = []
        async with context.db.begin() as session:
            for party_id in await store.due_nazorg(session, now):
                target = await store.decide_nazorg(session, party_id, now=now)
                if target is None:
                    continue
                if target.unreachable:  # they blocked the bot: trying would not help
                    await store.record_nazorg(
                        session, target.case_id, target.party, delivered=False, now=now
                    )
                    continue
                t = Translator(_language(context, target.telegram_id, target.language))
                text, markup = _nazorg_question(t, target.party_id)
                messages.append(
                    outbox.Outgoing(
                        key=f"mcase:nazorg:{party_id}",
                        chat_id=target.telegram_id,
                        kind="mcase:nazorg",
                        text=text,
                        reply_markup=markup.to_dict(),
                        hook=NAZORG_HOOK,
                        hook_data={"case": target.case_id, "party": target.party},
                    )
                )
            await outbox.enqueue(session, *messages, now=now)
    if messages:
        context.outbox.wake()


async def _nazorg_settled(session: AsyncSession, settled: Settled) -> None:
    """Note in the case's history whether the check-in arrived."""
    await store.record_nazorg(
        session,
        int(settled.data["case"]),
        int(settled.data["party"]),
        delivered=settled.delivered,
        now=settled.now,
    )


REMINDER_HOOK = "mcase:reminder"
NAZORG_HOOK = "mcase:nazorg"
RELAY_HOOK = "mcase:relay"


async def anonymise(context: BuurtContext) -> None:
    """Retention: anonymise the cases closed longer ago than the retention period, and forget
    wrong code tries older than a day."""
    now = context.now
    async with context.db.begin() as session:
        done = await store.anonymise_closed(
            session, now=now, retention_days=context.settings.mediation.retention_days
        )
        await store.forget_code_failures(session, now=now)
    if done:
        log.info("anonymised %d closed mediation case(s): %s", len(done), ", ".join(done))


def overview_text(
    t: Translator,
    wijk: str,
    overview: store.Overview,
    *,
    tz: dt.tzinfo,
    now: dt.datetime,
    intake_days: int,
) -> str:
    """The bemiddelaars' daily overview of one wijk (lists cut so it fits one message)."""

    def cut(lines: list[str]) -> list[str]:
        if len(lines) <= OVERVIEW_LIMIT:
            return lines
        return [*lines[:OVERVIEW_LIMIT], t("… and {n} more", n=len(lines) - OVERVIEW_LIMIT)]

    parts = [t("🤝 <b>Buurtbemiddeling {wijk}</b>, {date}", wijk=wijk, date=local_date(now, tz))]
    if overview.new:
        parts += [
            "",
            t.ngettext(
                "<b>{n} new request</b> since yesterday:",
                "<b>{n} new requests</b> since yesterday:",
                len(overview.new),
            ),
        ]
        parts += cut(
            [
                "• "
                + t(
                    "<b>{reference}</b> · {topic}",
                    reference=c.reference,
                    topic=topic_label(t, c.topic),
                )
                for c in overview.new
            ]
        )
    if overview.overdue:
        parts += [
            "",
            t.ngettext(
                "⚠️ <b>{n} intake overdue</b> (still registered after {days} working days):",
                "⚠️ <b>{n} intakes overdue</b> (still registered after {days} working days):",
                len(overview.overdue),
                days=intake_days,
            ),
        ]
        parts += cut(
            [
                "• "
                + t(
                    "<b>{reference}</b> · {topic} · since {date}",
                    reference=c.reference,
                    topic=topic_label(t, c.topic),
                    date=local_date(c.created_at, tz),
                )
                for c in overview.overdue
            ]
        )
    if overview.upcoming:
        parts += ["", t("<b>Appointments in the coming days:</b>")]
        parts += cut(
            [
                "• "
                + t(
                    "{when} · <b>{reference}</b> · {stage} · {place}",
                    when=local_datetime(a.starts_at, tz),
                    reference=a.reference,
                    stage=_stage(t, a.kind),
                    place=shorten(a.place or "?", PLACE_SHOWN),
                )
                for a in overview.upcoming
            ]
        )
    if overview.stages:
        per_stage = " · ".join(
            f"{escape(_stage(t, s))} {overview.stages[s]}"
            for s in store.OPEN_STAGES
            if s in overview.stages
        )
        parts += ["", t("<b>Open cases:</b> {stages}", stages=Html(per_stage))]
    parts += ["", t("All open cases: /zaken · one case: /zaak BM-2026-0001")]
    return "\n".join(parts)


async def send_overview(context: BuurtContext) -> None:
    """The daily overview for the bemiddelaars of one wijk (job data: the wijk's slug).

    Nothing is sent on a quiet day (no new requests, no overdue intakes, no appointments)."""
    job = context.job
    assert job is not None
    slug = str(job.data)
    settings = context.settings
    now = context.now
    async with context.db.begin() as session:
        wijk = await wijk_by_slug(session, slug)
        if wijk is None or not wijk.active:
            return
        overview = await store.overview(
            session,
            wijk.id,
            now=now,
            since=now - dt.timedelta(days=1),
            tz=settings.tz,
            intake_days=settings.mediation.intake_days,
            days_ahead=UPCOMING_DAYS,
        )
        people = await access.recipients(session, wijk.id, Permission.MEDIATION)
        languages = await steps.languages(context, session, people)
        name = wijk.name
        if not overview.quiet:
            await _tell(
                context,
                session,
                languages,
                lambda t: overview_text(
                    t,
                    name,
                    overview,
                    tz=settings.tz,
                    now=now,
                    intake_days=settings.mediation.intake_days,
                ),
                key=f"mcase:overview:{wijk.id}:{now.astimezone(settings.tz):%Y-%m-%d}",
            )


async def start_jobs(application: Any) -> None:
    """Schedule the sweepers (once right away, then every few minutes), retention and the
    daily overview of each wijk; all of them read what is due from the database."""
    settings = application.services.settings
    queue = application.job_queue
    assert queue is not None
    names = [
        REMINDER_JOB,
        NAZORG_JOB,
        RETENTION_JOB,
        *(DIGEST_JOB.format(slug=w.slug) for w in settings.wijken),
    ]
    for name in names:
        for job in queue.get_jobs_by_name(name):
            job.schedule_removal()
    queue.run_repeating(send_reminders, interval=SWEEP_EVERY, first=0, name=REMINDER_JOB)
    queue.run_repeating(send_nazorg, interval=SWEEP_EVERY, first=0, name=NAZORG_JOB)
    queue.run_daily(anonymise, time=RETENTION_AT.replace(tzinfo=settings.tz), name=RETENTION_JOB)
    for wijk in settings.wijken:
        queue.run_daily(
            send_overview,
            time=wijk.digest_time.replace(tzinfo=settings.tz),
            name=DIGEST_JOB.format(slug=wijk.slug),
            data=wijk.slug,
        )


# --- wiring ------------------------------------------------------------------------------------


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The typed steps (two persistent conversations), the commands and the buttons."""
    coordinator = persistent_conversation(
        entry_points=[
            CallbackQueryHandler(on_mediators_chosen, pattern=r"^mcase:mediators:(\d{1,9})$"),
            CallbackQueryHandler(on_note_chosen, pattern=r"^mcase:note:(\d{1,9})$"),
            CallbackQueryHandler(on_appointment_chosen, pattern=r"^mcase:appt:(\d{1,9})$"),
            CallbackQueryHandler(on_message_chosen, pattern=r"^mcase:msg:(\d{1,9}):([12])$"),
            CallbackQueryHandler(on_answer_chosen, pattern=r"^mcase:ans:(\d{1,9}):([12])$"),
        ],
        states={
            MEDIATORS: [MessageHandler(TYPED, on_mediators)],
            NOTE: [MessageHandler(TYPED, on_note)],
            APPT_PARTIES: [
                CallbackQueryHandler(
                    on_appointment_parties, pattern=r"^mcase:apptp:(\d{1,9}):(1|2|12)$"
                ),
                MessageHandler(TYPED, choose_button),
            ],
            APPT_WHEN: [MessageHandler(TYPED, on_appointment_when)],
            APPT_PLACE: [MessageHandler(TYPED, on_appointment_place)],
            MESSAGE: [MessageHandler(TYPED, on_message)],
            ANSWER: [MessageHandler(TYPED, on_answer)],
        },
        fallbacks=[
            CommandHandler("annuleren", STEPS.cancel, filters=PRIVATE),
            CommandHandler("zaak", STEPS.leaving(show_case), filters=PRIVATE),
            CommandHandler("zaken", STEPS.leaving(list_cases), filters=PRIVATE),
            MessageHandler(MEDIA, steps.not_text),
        ],
        name=CONVERSATION,
        allow_reentry=True,
    )
    neighbour = persistent_conversation(
        entry_points=[
            CallbackQueryHandler(on_invite_call, pattern=rf"^mcase:p2:({_CODE}):call$"),
        ],
        states={PHONE: [MessageHandler(TYPED, on_neighbour_phone)]},
        fallbacks=[
            CommandHandler("annuleren", cancel_phone, filters=PRIVATE),
            MessageHandler(MEDIA, steps.not_text),
        ],
        name=NEIGHBOUR_CONVERSATION,
        allow_reentry=True,
    )
    return [
        coordinator,
        neighbour,
        CommandHandler(
            "start",
            start_with_code,
            filters=PRIVATE & filters.Regex(rf"^/start {INVITE_PREFIX}\S+$"),
        ),
        CommandHandler(
            "bemiddeling",
            mediation_with_code,
            filters=PRIVATE & filters.Regex(r"^/bemiddeling(@\w+)?\s+\S"),
        ),
        CommandHandler("zaken", list_cases, filters=PRIVATE),
        CommandHandler("zaak", show_case, filters=PRIVATE),
        CommandHandler("bemiddelingen", counts_command, filters=PRIVATE),
        CallbackQueryHandler(on_show, pattern=r"^mcase:show:(\d{1,9})$"),
        CallbackQueryHandler(on_take, pattern=r"^mcase:take:(\d{1,9})$"),
        CallbackQueryHandler(on_next, pattern=r"^mcase:next:(\d{1,9}):([a-z0-9_]+)$"),
        CallbackQueryHandler(on_skip, pattern=r"^mcase:skip:(\d{1,9}):([a-z0-9_]+)$"),
        CallbackQueryHandler(on_undo, pattern=r"^mcase:undo:(\d{1,9}):(\d{1,9})$"),
        CallbackQueryHandler(on_notes, pattern=r"^mcase:notes:(\d{1,9})$"),
        CallbackQueryHandler(on_close, pattern=r"^mcase:close:(\d{1,9})$"),
        CallbackQueryHandler(
            on_outcome, pattern=rf"^mcase:out:(\d{{1,9}}):({'|'.join(store.OUTCOMES)})$"
        ),
        CallbackQueryHandler(on_invite, pattern=r"^mcase:invite:(\d{1,9})$"),
        CallbackQueryHandler(on_invite_answer, pattern=rf"^mcase:p2:({_CODE}):(agree|decline)$"),
        CallbackQueryHandler(
            on_nazorg, pattern=rf"^mcase:nz:(\d{{1,9}}):({'|'.join(store.NAZORG_ANSWERS)})$"
        ),
        CallbackQueryHandler(stale, pattern=r"^mcase:"),
    ]


FEATURE = Feature(
    name="mediation_cases",
    handlers=build_handlers,
    commands=(
        Command("zaken", N_("Open mediation cases"), Permission.MEDIATION),
        Command("zaak", N_("One mediation case: /zaak BM-2026-0001"), Permission.MEDIATION),
        Command(
            "bemiddelingen", N_("Mediation in your wijk: counts only"), Permission.MEDIATION_COUNTS
        ),
    ),
    start=start_jobs,
    jobs=(
        Job(REMINDER_JOB, "every five minutes: appointment reminders"),
        Job(NAZORG_JOB, "every five minutes: the nazorg check-in"),
        Job(RETENTION_JOB, "every night: anonymise closed cases"),
        Job(DIGEST_JOB.format(slug="<slug>"), "daily at digest_time: coordinators' overview"),
    ),
    outbox_hooks={
        REMINDER_HOOK: _reminder_settled,
        NAZORG_HOOK: _nazorg_settled,
        RELAY_HOOK: relay.settled_hook(relay.marking(store.mark_event)),  # not delivered: noted
    },
)
