"""Koffiemomenten and the Koppel in de wijk.

- Organisers (and the pair) plan a koffiemoment with /koffieplannen: place, date, time, once or
  every week or two weeks, optional capacity. The pair publishes a spreekuur or walk with
  /aanwezig. /beheer shows what is planned: who comes (first names only), change or cancel one
  date or the whole series; cancelling tells everyone who signed up.
- Residents see the coming koffiemomenten with /koffie, sign up (with guests), cancel, and get
  an .ics file; /koppel shows when the pair is around.
- The group gets each new koffiemoment with an "Ik kom" button whose count is edited in place,
  and a short note the day before a spreekuur or walk.
- One sweeper job (``koffie:sweep``) decides announcements, reminders and notes from the
  database and writes them to the outbox (``bot.outbox`` sends them), so a restart sends
  nothing twice and misses nothing. Notices to everyone who signed up (a cancelled or moved
  date) go the same way: never sent from a handler.

By concern: ``planning`` (the /koffieplannen and /aanwezig flow), ``managing`` (/beheer),
``residents`` (/koffie, /koppel), ``signup`` (signing up, guests, .ics, the group's button),
``announcement`` (the group's message and its count), ``jobs`` (the sweeper), ``common``.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from buurtsignaal.bot.feature import GROUP_MENU, PRIVATE_MENU, Command, Feature, Job
from buurtsignaal.bot.i18n import N_
from buurtsignaal.conversations.callbacks import Guests, Koffie
from buurtsignaal.conversations.flow import PRIVATE
from buurtsignaal.conversations.koffie.announcement import (
    refresh_announcement,
    refresh_wijk_announcements,
    schedule_count_update,
)
from buurtsignaal.conversations.koffie.common import kind_label, when_text
from buurtsignaal.conversations.koffie.jobs import (
    GROUP_HOOK,
    group_message_settled,
    start_jobs,
    sweep,
)
from buurtsignaal.conversations.koffie.managing import (
    ask_cancel,
    confirm_cancel,
    editing_conversation,
    keep_moment,
    manage,
    show_moment,
)
from buurtsignaal.conversations.koffie.planning import PLAN, planning_conversation
from buurtsignaal.conversations.koffie.residents import koffie, koppel
from buurtsignaal.conversations.koffie.signup import (
    ics,
    join_from_link,
    on_guests,
    on_ics,
    on_join,
    on_leave,
    on_rsvp,
)
from buurtsignaal.storage.access import Permission

__all__ = [
    "FEATURE",
    "PLAN",
    "build_handlers",
    "ics",
    "kind_label",
    "refresh_announcement",
    "refresh_wijk_announcements",
    "schedule_count_update",
    "sweep",
    "when_text",
]


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for koffiemomenten and the Koppel."""
    return [
        planning_conversation(),
        editing_conversation(),
        CommandHandler(
            "start", join_from_link, filters=PRIVATE & filters.Regex(r"^/start k-\d{1,9}$")
        ),
        CommandHandler("koffie", koffie, filters=PRIVATE),
        CommandHandler("koppel", koppel, filters=PRIVATE),
        CommandHandler("beheer", manage, filters=PRIVATE),
        CallbackQueryHandler(on_join, pattern=Koffie.matching(action="join")),
        CallbackQueryHandler(on_guests, pattern=Guests.pattern),
        CallbackQueryHandler(on_leave, pattern=Koffie.matching(action="leave")),
        CallbackQueryHandler(on_ics, pattern=Koffie.matching(action="ics")),
        CallbackQueryHandler(on_rsvp, pattern=Koffie.matching(action="rsvp")),
        CallbackQueryHandler(show_moment, pattern=Koffie.matching(action="m")),
        CallbackQueryHandler(ask_cancel, pattern=Koffie.matching(action="cancel")),
        CallbackQueryHandler(ask_cancel, pattern=Koffie.matching(action="cancelseries")),
        CallbackQueryHandler(confirm_cancel, pattern=Koffie.matching(action="cancel-yes")),
        CallbackQueryHandler(confirm_cancel, pattern=Koffie.matching(action="cancelseries-yes")),
        CallbackQueryHandler(keep_moment, pattern=Koffie.matching(action="keep")),
        PLAN.sent_again(),
    ]


FEATURE = Feature(
    name="koffie",
    handlers=build_handlers,
    commands=(
        Command("koffie", N_("Koffiemomenten in your wijk"), PRIVATE_MENU, order=40),
        Command(
            "koppel", N_("When the wijkagent and opbouwwerker are around"), PRIVATE_MENU, order=50
        ),
        Command("koffie", N_("Koffiemomenten in your wijk"), GROUP_MENU, order=20),
        Command("koffieplannen", N_("Plan a koffiemoment"), Permission.KOFFIE),
        Command(
            "beheer", N_("Planned koffiemomenten: who comes, change, cancel"), Permission.KOFFIE
        ),
        Command("aanwezig", N_("Publish a spreekuur or walk in the wijk"), Permission.PRESENCE),
    ),
    start=start_jobs,
    jobs=(Job("koffie:sweep", "every five minutes: announcements, reminders, the Koppel"),),
    outbox_hooks={GROUP_HOOK: group_message_settled},
)
