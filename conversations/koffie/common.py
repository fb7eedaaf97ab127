"""What every part of the koffie feature shares: the kinds of gathering, their names, limits."""

from __future__ import annotations

import datetime as dt
import zlib

from telegram import CallbackQuery, Update, User
from telegram.ext import filters

from buurtsignaal.bot.i18n import N_, Translator
from buurtsignaal.conversations.callbacks import Koffie
from buurtsignaal.conversations.flow import PRIVATE
from buurtsignaal.conversations.ui import local_datetime
from buurtsignaal.storage import gatherings
from buurtsignaal.storage.models import Moment

# Plans are made at most a year ahead (a typed 31-12-9999 is a typing error, not a plan).
MAX_AHEAD = dt.timedelta(days=366)
MAX_PLACE = 200
KOFFIE_KINDS = ("koffie",)
PRESENCE_KINDS = gatherings.PRESENCE_KINDS
KIND_LABELS = {
    "koffie": N_("Koffiemoment"),
    "spreekuur": N_("Spreekuur of the wijkagent and opbouwwerker"),
    "wandeling": N_("Walk through the wijk with the wijkagent and opbouwwerker"),
}


def when_text(t: Translator, moment: Moment, tz: dt.tzinfo) -> str:
    """'donderdag 03-12-2026 10:00' in the reader's language."""
    return local_datetime(moment.starts_at, tz).render(t.language)


def decision(moment: Moment, decided: dt.datetime) -> str:
    """The part of an outbox key that tells one decision about a date from another: the time
    and place it was about and when it was decided. A date moved A to B and back to A is told
    and reminded again; the decision's mark in the database keeps two sweeps or two handlers
    from deciding it twice."""
    place = zlib.crc32(moment.place.encode())
    return f":{moment.starts_at:%Y%m%d%H%M}:{place:08x}:{decided:%Y%m%d%H%M%S%f}"


def example_day(now: dt.datetime, tz: dt.tzinfo) -> str:
    """A date to show as an example of what to type: a week from now, so it is never in the
    past ('10-12-2026')."""
    return f"{(now + dt.timedelta(days=7)).astimezone(tz):%d-%m-%Y}"


def kind_label(t: Translator, kind: str) -> str:
    """The translated name of a kind of gathering."""
    return t(KIND_LABELS[kind])


# Typed text in the private chat: the answer to a planning or editing step.
TYPED = PRIVATE & filters.TEXT & ~filters.COMMAND


def pressed_moment(update: Update) -> tuple[CallbackQuery, User, int]:
    """A pressed ``koffie:<what>:<moment id>`` button: the press, who pressed it, the date's id
    (the pattern that routed it here made sure the id is there)."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    return query, user, Koffie.of(update).moment
