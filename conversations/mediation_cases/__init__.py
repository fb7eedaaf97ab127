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
phone number) are one-field flows (conversations.flow.typed) in the one persistent flow
conversation, so a restart while typing loses nothing and /annuleren stops them.

By concern: ``common`` (constants, labels, small helpers), ``view`` (a case as text and
buttons), ``commands`` (/zaken, /zaak, /bemiddelingen), ``actions`` (buttons that act at once:
take, stages, undo, notes, close, invite code), ``typed`` (the coordinator's typed steps:
mediators, note, appointment), ``messages`` (messages between the team and a party),
``neighbour`` (the neighbour's invite and phone number), ``nazorg`` (nazorg answers), ``jobs``
(reminders, the nazorg sweep, retention, the daily overview).
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from buurtsignaal.bot.feature import Command, Feature, Job
from buurtsignaal.bot.i18n import N_
from buurtsignaal.conversations import relay
from buurtsignaal.conversations.callbacks import (
    AppointmentParties,
    Invitation,
    Mediation,
    Nazorg,
    Outcome,
    PartyMessage,
    Stage,
    Undo,
)
from buurtsignaal.conversations.flow import PRIVATE, TYPED, Field
from buurtsignaal.conversations.mediation_cases.actions import (
    on_close,
    on_invite,
    on_next,
    on_notes,
    on_outcome,
    on_show,
    on_skip,
    on_take,
    on_undo,
    stale,
)
from buurtsignaal.conversations.mediation_cases.commands import (
    counts_command,
    list_cases,
    show_case,
)
from buurtsignaal.conversations.mediation_cases.common import (
    ANSWER,
    APPT_PARTIES,
    APPT_PLACE,
    APPT_WHEN,
    DIGEST_JOB,
    FLOW,
    INVITE_PREFIX,
    MAX_MEDIATORS,
    MAX_PLACE,
    MEDIATORS,
    MESSAGE,
    NAZORG_JOB,
    NOTE,
    PHONE,
    PHONE_FLOW,
    REMINDER_JOB,
    RETENTION_JOB,
)
from buurtsignaal.conversations.mediation_cases.jobs import (
    NAZORG_HOOK,
    RELAY_HOOK,
    REMINDER_HOOK,
    _nazorg_settled,
    _reminder_settled,
    overview_text,
    start_jobs,
)
from buurtsignaal.conversations.mediation_cases.messages import (
    on_answer,
    on_answer_chosen,
    on_message,
    on_message_chosen,
)
from buurtsignaal.conversations.mediation_cases.nazorg import on_nazorg
from buurtsignaal.conversations.mediation_cases.neighbour import (
    mediation_with_code,
    on_invite_answer,
    on_invite_call,
    on_neighbour_phone,
    start_with_code,
)
from buurtsignaal.conversations.mediation_cases.typed import (
    choose_button,
    on_appointment_chosen,
    on_appointment_parties,
    on_appointment_place,
    on_appointment_when,
    on_mediators,
    on_mediators_chosen,
    on_note,
    on_note_chosen,
)
from buurtsignaal.conversations.mediation_cases.view import _event_text, case_buttons, case_text
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.access import Permission

# --- wiring ------------------------------------------------------------------------------------


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The typed steps (two one-field flows), the commands and the buttons."""
    coordinator = FLOW.part(
        [
            CallbackQueryHandler(
                on_mediators_chosen, pattern=Mediation.matching(action="mediators")
            ),
            CallbackQueryHandler(on_note_chosen, pattern=Mediation.matching(action="note")),
            CallbackQueryHandler(on_appointment_chosen, pattern=Mediation.matching(action="appt")),
            CallbackQueryHandler(on_message_chosen, pattern=PartyMessage.matching(action="msg")),
            CallbackQueryHandler(on_answer_chosen, pattern=PartyMessage.matching(action="ans")),
        ],
        [
            Field(MEDIATORS, on_mediators, MAX_MEDIATORS),
            Field(NOTE, on_note),
            Field(APPT_WHEN, on_appointment_when, None),  # read as a date and time
            Field(APPT_PLACE, on_appointment_place, MAX_PLACE),
            Field(MESSAGE, on_message),
            Field(ANSWER, on_answer),
        ],
        leave={"zaak": show_case, "zaken": list_cases},
        also={
            APPT_PARTIES: [
                CallbackQueryHandler(on_appointment_parties, pattern=AppointmentParties.pattern),
                MessageHandler(TYPED, choose_button),
            ],
        },
    )
    neighbour = PHONE_FLOW.part(
        [CallbackQueryHandler(on_invite_call, pattern=Invitation.matching(answer="call"))],
        [Field(PHONE, on_neighbour_phone, None)],  # read as a phone number
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
        CallbackQueryHandler(on_show, pattern=Mediation.matching(action="show")),
        CallbackQueryHandler(on_take, pattern=Mediation.matching(action="take")),
        CallbackQueryHandler(on_next, pattern=Stage.matching(action="next")),
        CallbackQueryHandler(on_skip, pattern=Stage.matching(action="skip")),
        CallbackQueryHandler(on_undo, pattern=Undo.pattern),
        CallbackQueryHandler(on_notes, pattern=Mediation.matching(action="notes")),
        CallbackQueryHandler(on_close, pattern=Mediation.matching(action="close")),
        CallbackQueryHandler(on_outcome, pattern=Outcome.pattern),
        CallbackQueryHandler(on_invite, pattern=Mediation.matching(action="invite")),
        CallbackQueryHandler(on_invite_answer, pattern=Invitation.matching(answer="agree")),
        CallbackQueryHandler(on_invite_answer, pattern=Invitation.matching(answer="decline")),
        CallbackQueryHandler(on_nazorg, pattern=Nazorg.pattern),
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

__all__ = [
    "FEATURE",
    "_event_text",
    "build_handlers",
    "case_buttons",
    "case_text",
    "overview_text",
    "start_jobs",
]
