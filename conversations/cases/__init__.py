"""/open and /melding: professionals handle signals in chat; the reporter gets anonymous
messages and, a few days after closing, the question "is het opgelost?".

Professionals who may handle signals (wijkagent, opbouwwerker) list the open signals of their
wijken, look at one with its photo, place and history, take it, change its status with a
short internal note, add internal notes and write to the reporter. Messages between the two
sides go through the bot: the reporter sees only the role ("— de wijkagent"), the
professional only "the reporter of BS-…". Every button checks again, on the server side,
that the person may handle *that* signal's wijk, or for the reporter's own buttons, that the
signal is theirs.

The typed steps (a status note, an internal note, a message, an answer) are one-field flows
(conversations.flow.typed) in the one persistent flow conversation, so a restart in the middle
of typing loses nothing. The follow-up
question is sent by a sweeper job that reads what is due from the database.

By concern: ``common`` (constants, labels, small helpers), ``view`` (a signal and the list of
open signals), ``commands`` (/open, /melding), ``actions`` (buttons that act at once: page,
show, take, refer, the status menu), ``status`` (a new status with its note; telling the
reporter it closed), ``messages`` (internal notes, messages between professional and reporter),
``followup`` ("is het opgelost?" and its sweeper job), ``notices`` (texts for someone else).
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from buurtsignaal.bot.feature import Command, Feature, Job
from buurtsignaal.bot.i18n import N_
from buurtsignaal.conversations import relay
from buurtsignaal.conversations.callbacks import FollowUp, Report, ReportPage, ReportStatus
from buurtsignaal.conversations.cases.actions import (
    on_page,
    on_refer,
    on_show,
    on_status_menu,
    on_take,
    stale,
)
from buurtsignaal.conversations.cases.commands import melding_command, open_command
from buurtsignaal.conversations.cases.common import (
    ANSWER,
    FLOW,
    FOLLOWUP_EVERY,
    FOLLOWUP_JOB,
    NOTE,
    REPLY,
    STATUS_NOTE,
)
from buurtsignaal.conversations.cases.followup import (
    FOLLOWUP_HOOK,
    RELAY_HOOK,
    _followup_settled,
    _relay_undelivered,
    on_followup,
    send_followups,
)
from buurtsignaal.conversations.cases.messages import (
    on_answer,
    on_answer_chosen,
    on_note,
    on_note_chosen,
    on_reply,
    on_reply_chosen,
)
from buurtsignaal.conversations.cases.status import (
    on_status_chosen,
    on_status_note,
    on_without_note,
)
from buurtsignaal.conversations.cases.view import _event_text, _who
from buurtsignaal.conversations.flow import PRIVATE, Field
from buurtsignaal.storage.access import Permission

# --- wiring ----------------------------------------------------------------------------------


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The typed steps (one-field flows), /open, /melding and their buttons."""
    conversation = FLOW.part(
        [
            CallbackQueryHandler(
                on_status_chosen,
                pattern=ReportStatus.pattern,
            ),
            CallbackQueryHandler(on_note_chosen, pattern=Report.matching(action="note")),
            CallbackQueryHandler(on_reply_chosen, pattern=Report.matching(action="reply")),
            CallbackQueryHandler(on_answer_chosen, pattern=Report.matching(action="answer")),
        ],
        [
            Field(STATUS_NOTE, on_status_note),
            Field(NOTE, on_note),
            Field(REPLY, on_reply),
            Field(ANSWER, on_answer),
        ],
        leave={"open": open_command, "melding": melding_command},
        also={
            STATUS_NOTE: [
                CallbackQueryHandler(on_without_note, pattern=Report.matching(action="nonote")),
            ],
        },
    )
    return [
        conversation,
        CommandHandler("open", open_command, filters=PRIVATE),
        CommandHandler("melding", melding_command, filters=PRIVATE),
        CallbackQueryHandler(on_page, pattern=ReportPage.pattern),
        CallbackQueryHandler(on_show, pattern=Report.matching(action="show")),
        CallbackQueryHandler(on_take, pattern=Report.matching(action="take")),
        CallbackQueryHandler(on_status_menu, pattern=Report.matching(action="status")),
        CallbackQueryHandler(on_refer, pattern=Report.matching(action="refer")),
        CallbackQueryHandler(on_followup, pattern=FollowUp.pattern),
        CallbackQueryHandler(stale, pattern=r"^cases:"),
    ]


async def start_jobs(application: Any) -> None:
    """Schedule the follow-up sweeper: once right away, then every few minutes."""
    job_queue = application.job_queue
    assert job_queue is not None
    for job in job_queue.get_jobs_by_name(FOLLOWUP_JOB):
        job.schedule_removal()
    job_queue.run_repeating(send_followups, interval=FOLLOWUP_EVERY, first=0, name=FOLLOWUP_JOB)


FEATURE = Feature(
    name="cases",
    handlers=build_handlers,
    commands=(
        Command("open", N_("Open signals of your wijk"), Permission.SIGNALS),
        Command("melding", N_("One signal: /melding BS-2026-0001"), Permission.SIGNALS),
    ),
    start=start_jobs,
    jobs=(Job(FOLLOWUP_JOB, "every five minutes: 'is het opgelost?'"),),
    outbox_hooks={
        FOLLOWUP_HOOK: _followup_settled,
        RELAY_HOOK: relay.settled_hook(_relay_undelivered),
    },
)

__all__ = ["FEATURE", "FOLLOWUP_JOB", "_event_text", "_who", "build_handlers", "start_jobs"]
