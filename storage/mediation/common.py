"""Buurtbemiddeling storage: stages, statuses, event kinds, actors, rules without a database."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from buurtsignaal.storage import parsing
from buurtsignaal.storage.models import (
    MEDIATION_OUTCOMES,
    MEDIATION_STAGES,
    MediationCase,
    MediationParty,
)

TOPICS: tuple[str, ...] = (
    "geluid",
    "kinderen",
    "tuin_parkeren",
    "huisdieren",
    "overlast",
    "intimidatie",
    "anders",
)
DURATIONS: tuple[str, ...] = ("kort", "maanden", "lang")
TALKED: tuple[str, ...] = ("ja", "nee", "geprobeerd")
REACHABLE: tuple[str, ...] = ("overdag", "avond", "altijd")
CONTACT_VIA: tuple[str, ...] = ("bot", "telefoon")
REFERENCE_PREFIX = "BM"


# --- the case handling (the bemiddelaar's side) ---------------------------------------------

CLOSED = "afgesloten"
JOINT_TALK = "bemiddelingsgesprek"
AGREEMENTS = "afspraken"
NAZORG = "nazorg"
OPEN_STAGES: tuple[str, ...] = MEDIATION_STAGES[:-1]
# "Volgende fase" moves one step along the CCV stages; closing is its own action (with an
# outcome), so the last open stage (nazorg) has no next stage.
NEXT_STAGE: dict[str, str] = dict(itertools.pairwise(OPEN_STAGES))
OUTCOMES = MEDIATION_OUTCOMES
SUCCESS = ("opgelost", "deels_opgelost")  # "geslaagd: ja" for the professional who referred

# Party status: the requester agreed at the intake; the neighbour is invited, then answers.
AGREED, DECLINED, CALL, INVITED = "agreed", "declined", "call_requested", "invited"
INVITE_ANSWERS: dict[str, str] = {"agree": AGREED, "decline": DECLINED, "call": CALL}
NAZORG_ANSWERS: tuple[str, ...] = ("beter", "hetzelfde", "slechter")
APPOINTMENT_PARTIES: tuple[str, ...] = ("1", "2", "1,2")

# The neighbour's invite code: easy to read aloud and type (no 0/O, 1/I/L), shown as
# XXXXX-XXXXX: 10 of 31 characters, about 50 bits. Codes of 8 made before are still read.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
_CODE_RE = re.compile(rf"^(?:[{CODE_ALPHABET}]{{{CODE_LENGTH}}}|[{CODE_ALPHABET}]{{8}})$")
# Wrong tries: a resident gets this many a day (then even the right code waits until the next
# day), and a code that failed this often (tried after it was used, by the requester...) is
# locked and its coordinators are told.
FAILURES_PER_PERSON = 5
FAILURE_WINDOW = dt.timedelta(hours=24)
FAILURES_PER_CODE = 10
REMINDER_BEFORE = dt.timedelta(hours=24)

# Who did something, as written in MediationEvent.actor.
RESIDENT = "resident"  # the requester at the intake
BOT = "bot"

# History entries (MediationEvent.kind).
CREATED = "created"
TAKEN = "taken"
STAGE = "stage"
STAGE_UNDONE = "stage_undone"  # from_stage/to_stage as moved back; note = the undone entry
MEDIATORS = "mediators"
APPOINTMENT = "appointment"
# A party was told of a new appointment at once (note = "<appointment id>:<party number>").
APPOINTMENT_TOLD = "appointment_told"
APPOINTMENT_UNTOLD = "appointment_untold"  # could not be delivered
NOTE = "note"
INVITED_EVENT = "invited"
CODE_LOCKED = "code_locked"  # the neighbour's code was tried wrongly too often
PARTY_ANSWER = "party_answer"  # to_stage None, note = the status (agreed/declined/...)
PARTY_PHONE = "party_phone"
REMINDER_SENT = "reminder_sent"  # note = "<appointment id>:<party number>" (the ledger key)
REMINDER_UNDELIVERED = "reminder_undelivered"
NAZORG_SENT = "nazorg_sent"
NAZORG_UNDELIVERED = "nazorg_undelivered"
NAZORG_ANSWER = "nazorg_answer"  # note = the answer
CLOSED_EVENT = "closed"
ANONYMISED = "anonymised"
# The relay between the mediation team and a party (note = the text; to_stage holds the
# party it went to, as "party:<n>", since a message is not about a stage).
MESSAGE_OUT = "message_out"  # actor "pro:<id>"
MESSAGE_UNDELIVERED = "message_undelivered"  # a message_out that could not be delivered
MESSAGE_IN = "message_in"  # actor "party:<n>"
PARTY_LEFT = "party_left"  # a party removed their data (/vergeetmij); actor "party:<n>"
# Every kind above: the case view has a human line for each (a test keeps them together).
EVENT_KINDS: tuple[str, ...] = (
    CREATED,
    TAKEN,
    STAGE,
    STAGE_UNDONE,
    MEDIATORS,
    APPOINTMENT,
    APPOINTMENT_TOLD,
    APPOINTMENT_UNTOLD,
    NOTE,
    INVITED_EVENT,
    CODE_LOCKED,
    PARTY_ANSWER,
    PARTY_PHONE,
    REMINDER_SENT,
    REMINDER_UNDELIVERED,
    NAZORG_SENT,
    NAZORG_UNDELIVERED,
    NAZORG_ANSWER,
    CLOSED_EVENT,
    ANONYMISED,
    MESSAGE_OUT,
    MESSAGE_UNDELIVERED,
    MESSAGE_IN,
    PARTY_LEFT,
)
# How long a stage move can be undone (and only until the next move).
UNDO_WINDOW = dt.timedelta(minutes=15)


def pro_actor(telegram_id: int) -> str:
    """How a professional is written in the history."""
    return f"pro:{telegram_id}"


def party_actor(number: int) -> str:
    """How a party (1 or 2) is written in the history."""
    return f"party:{number}"


def actor_telegram_id(actor: str) -> int | None:
    """The Telegram id of a professional actor, else None."""
    kind, _, rest = actor.partition(":")
    return int(rest) if kind == "pro" and rest.isdigit() else None


def actor_party(actor: str) -> int | None:
    """The party number of a party actor (the intake's "resident" is party 1), else None."""
    if actor == RESIDENT:
        return 1
    kind, _, rest = actor.partition(":")
    return int(rest) if kind == "party" and rest.isdigit() else None


class MediationProblem(Exception):
    """Why something cannot be done to a case or with a code (``reason`` is a short key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def party_of(case: MediationCase, number: int) -> MediationParty | None:
    """Party 1 (the requester) or 2 (the neighbour), if there is one."""
    return next((p for p in case.parties if p.number == number), None)


def both_agreed(case: MediationCase) -> bool:
    """Whether both neighbours agreed to mediation (needed for the joint talk)."""
    first, second = party_of(case, 1), party_of(case, 2)
    return bool(first and second and first.status == AGREED and second.status == AGREED)


def next_stage(stage: str) -> str | None:
    """The stage "Volgende fase" moves to, or None (nazorg: close instead; closed: nothing)."""
    return NEXT_STAGE.get(stage)


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days (Monday to Friday) after ``start`` up to and including ``end``."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (start + dt.timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def intake_overdue(
    case: MediationCase, *, now: dt.datetime, tz: dt.tzinfo, intake_days: int
) -> bool:
    """Still "aangemeld" after more than ``intake_days`` working days (in the wijk's zone)."""
    if case.stage != "aangemeld":
        return False
    created = case.created_at.astimezone(tz).date()
    return working_days_between(created, now.astimezone(tz).date()) > intake_days


def parse_reference(typed: str, *, year: int) -> str | None:
    """A typed case reference (BM-2026-0001, bm 2026 1, 2026-1 or just 1 this year), read
    as every reference is (:func:`storage.parsing.reference`)."""
    return parsing.reference(typed, prefix=REFERENCE_PREFIX, year=year)
