"""Buurtbemiddeling cases: one case as text (its history in sentences) and its buttons."""

from __future__ import annotations

import datetime as dt

from telegram import InlineKeyboardMarkup

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import N_, Html, Translator, escape
from buurtsignaal.conversations import relay, steps
from buurtsignaal.conversations.callbacks import Mediation, PartyMessage, Stage, Undo
from buurtsignaal.conversations.mediation_cases.common import (
    APPOINTMENT_CHOICES,
    APPOINTMENTS_SHOWN,
    NAZORG_LABELS,
    PARTY_STATUS_LABELS,
    PLACE_SHOWN,
    QUOTED,
    SITUATION_SHOWN,
    SYSTEM,
    _case_for,
    _days_ago,
    _outcome,
    _stage,
)
from buurtsignaal.conversations.ui import (
    DURATION_LABELS,
    REACHABLE_LABELS,
    TALKED_LABELS,
    keyboard,
    local_date,
    local_datetime,
    shorten,
    topic_label,
)
from buurtsignaal.storage import access
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.models import (
    MediationAppointment,
    MediationCase,
    MediationEvent,
    MediationParty,
)

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
    notes_button = ("🗒 " + t("Notes"), Mediation("notes", case.id).pack())
    if case.stage == store.CLOSED:
        return keyboard([notes_button]) if notes else None
    buttons: list[tuple[str, str]] = []
    if case.coordinator != viewer:
        buttons.append(("✋ " + t("Take the case"), Mediation("take", case.id).pack()))
    if store.next_stage(case.stage) is not None:
        buttons.append(("⏭ " + t("Next stage"), Stage("next", case.id, case.stage).pack()))
    move = store.undoable_move(case, now)
    if move is not None:
        buttons.append(("↩️ " + t("Undo"), Undo(case.id, move.id).pack()))
    buttons += [
        ("👥 " + t("Mediators"), Mediation("mediators", case.id).pack()),
        ("📅 " + t("Appointment"), Mediation("appt", case.id).pack()),
        ("📝 " + t("Note"), Mediation("note", case.id).pack()),
    ]
    if notes:
        buttons.append(notes_button)
    for number in (1, 2):
        party = store.party_of(case, number)
        if party is not None and party.resident_id is not None:
            buttons.append(
                (
                    "💬 " + t("Message to party {n}", n=number),
                    PartyMessage("msg", case.id, number).pack(),
                )
            )
    second = store.party_of(case, 2)
    if second is None or second.status == store.INVITED:
        buttons.append(("✉️ " + t("Invite the neighbour"), Mediation("invite", case.id).pack()))
    buttons.append(("🏁 " + t("Close"), Mediation("close", case.id).pack()))
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
