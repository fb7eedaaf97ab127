"""Buurtbemiddeling cases: the intake, the parties, the CCV stages and the case history.

Only the bemiddelaar role may read case content; the functions here do not check roles, the
callers do (see storage.access). The domain rules live here so another transport could reuse
them: which stage may follow which, the neighbour's single-use invite code, what is due for a
reminder or a nazorg check-in (and how a send is claimed so it happens at most once), the
counts the wijkagent and opbouwwerker may see, the coordinators' daily overview and the
anonymisation of closed cases.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import flag_modified

from storage import parsing
from storage.codes import code_hash
from storage.models import (
    MEDIATION_OUTCOMES,
    MEDIATION_STAGES,
    CodeFailure,
    MediationAppointment,
    MediationCase,
    MediationEvent,
    MediationParty,
    Wijk,
    utcnow,
)
from storage.signals import give_back, next_number

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


@dataclass(frozen=True)
class NewMediation:
    """An intake as the resident confirmed it."""

    wijk_id: int
    resident_id: int
    topic: str
    duration: str
    talked: str
    other_party: str
    contact_via: str
    reachable: str
    phone: str | None = None
    referred_by: int | None = None
    signal_id: int | None = None
    on_behalf: bool = False
    situation: str | None = None  # "wat speelt er?" in the resident's words
    requester_address: str | None = None  # street and house number, optional
    other_address: str | None = None
    # The draft it was sent from (see MediationCase.draft_key); stored at most once.
    draft_key: str | None = None

    def __post_init__(self) -> None:
        for value, allowed in (
            (self.topic, TOPICS),
            (self.duration, DURATIONS),
            (self.talked, TALKED),
            (self.contact_via, CONTACT_VIA),
            (self.reachable, REACHABLE),
        ):
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {allowed}")
        if (self.contact_via == "telefoon") != bool(self.phone):
            raise ValueError("a phone number is kept only when the resident chose to be called")


async def create_case(
    session: AsyncSession, new: NewMediation, *, year: int, now: dt.datetime | None = None
) -> MediationCase:
    """Store a confirmed intake as a case (stage aangemeld) with its first party."""
    prefix = f"{REFERENCE_PREFIX}-{year}"
    number = await next_number(session, prefix)
    return await _insert_case(session, new, f"{prefix}-{number:04d}", now or utcnow())


async def _insert_case(
    session: AsyncSession, new: NewMediation, reference: str, now: dt.datetime
) -> MediationCase:
    case = MediationCase(
        reference=reference,
        wijk_id=new.wijk_id,
        stage="aangemeld",
        topic=new.topic,
        duration=new.duration,
        talked=new.talked,
        other_party=new.other_party,
        situation=new.situation,
        requester_address=new.requester_address,
        other_address=new.other_address,
        referred_by=new.referred_by,
        signal_id=new.signal_id,
        on_behalf=new.on_behalf,
        draft_key=new.draft_key,
        created_at=now,
        updated_at=now,
    )
    case.parties.append(
        MediationParty(
            number=1,
            resident_id=new.resident_id,
            status="agreed",
            contact_via=new.contact_via,
            phone=new.phone,
            reachable=new.reachable,
            consent_at=now,
        )
    )
    case.history.append(MediationEvent(kind=CREATED, to_stage="aangemeld", actor=RESIDENT, at=now))
    session.add(case)
    await session.flush()
    return case


async def case_of_draft(session: AsyncSession, draft_key: str) -> MediationCase | None:
    """The case already stored from an intake draft, if any."""
    return await session.scalar(select(MediationCase).where(MediationCase.draft_key == draft_key))


async def store_case_once(
    session: AsyncSession, new: NewMediation, *, year: int, now: dt.datetime | None = None
) -> tuple[MediationCase, bool]:
    """Store the case of an intake draft once: (the new case, True), or (the case stored from
    the same draft before, False), also when another transaction stores it at the same time
    (see storage.signals.store_signal_once)."""
    assert new.draft_key is not None
    existing = await case_of_draft(session, new.draft_key)
    if existing is not None:
        return existing, False
    prefix = f"{REFERENCE_PREFIX}-{year}"
    number = await next_number(session, prefix)
    existing = await case_of_draft(session, new.draft_key)  # stored while we waited
    if existing is None:
        try:
            async with session.begin_nested():
                case = await _insert_case(session, new, f"{prefix}-{number:04d}", now or utcnow())
            return case, True
        except IntegrityError:  # stored at the same moment under another year's number
            existing = await case_of_draft(session, new.draft_key)
            if existing is None:
                raise
    await give_back(session, prefix, number)
    return existing, False


async def case_by_reference(session: AsyncSession, reference: str) -> MediationCase | None:
    """A case with its parties and history, by reference (case-insensitive)."""
    return await session.scalar(
        select(MediationCase)
        .where(MediationCase.reference == reference.strip().upper())
        .options(selectinload(MediationCase.parties), selectinload(MediationCase.history))
    )


async def cases_of_resident(session: AsyncSession, resident_id: int) -> Sequence[MediationCase]:
    """The cases a resident takes part in, newest first."""
    result = await session.scalars(
        select(MediationCase)
        .join(MediationParty)
        .where(MediationParty.resident_id == resident_id)
        .order_by(MediationCase.created_at.desc())
    )
    return result.unique().all()


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


def _with_parties(query: Any) -> Any:
    return query.options(
        selectinload(MediationCase.parties), selectinload(MediationCase.history)
    ).execution_options(populate_existing=True)


async def get_case(session: AsyncSession, case_id: int) -> MediationCase | None:
    """A case with its parties and history (fresh from the database)."""
    return cast(
        "MediationCase | None",
        await session.scalar(
            _with_parties(select(MediationCase).where(MediationCase.id == case_id))
        ),
    )


async def find_case(session: AsyncSession, reference: str) -> MediationCase | None:
    """A case by its full reference (BM-2026-0001), with parties and history."""
    return cast(
        "MediationCase | None",
        await session.scalar(
            _with_parties(select(MediationCase).where(MediationCase.reference == reference))
        ),
    )


async def open_cases(session: AsyncSession, wijk_ids: Iterable[int]) -> Sequence[MediationCase]:
    """The cases of some wijken that are not closed, oldest first."""
    result = await session.scalars(
        _with_parties(
            select(MediationCase)
            .where(MediationCase.wijk_id.in_(list(wijk_ids)), MediationCase.stage != CLOSED)
            .order_by(MediationCase.created_at, MediationCase.id)
        )
    )
    return result.all()


async def appointments_of(session: AsyncSession, case_id: int) -> Sequence[MediationAppointment]:
    """A case's appointments, by time."""
    result = await session.scalars(
        select(MediationAppointment)
        .where(MediationAppointment.case_id == case_id)
        .order_by(MediationAppointment.starts_at, MediationAppointment.id)
    )
    return result.all()


def history_actors(case: MediationCase) -> list[int | None]:
    """The professionals named in a case (coordinator and history), for display_names."""
    return [case.coordinator, *(actor_telegram_id(e.actor) for e in case.history)]


def _record(
    session: AsyncSession,
    case: MediationCase,
    kind: str,
    *,
    actor: str,
    now: dt.datetime,
    from_stage: str | None = None,
    to_stage: str | None = None,
    note: str | None = None,
) -> MediationEvent:
    """Add one history entry and touch the case."""
    event = MediationEvent(
        case_id=case.id,
        kind=kind,
        from_stage=from_stage,
        to_stage=to_stage,
        note=note,
        actor=actor,
        at=now,
    )
    session.add(event)
    case.updated_at = now
    flag_modified(case, "updated_at")  # written even when equal, so onupdate never overrides
    return event


def _open(case: MediationCase) -> None:
    if case.stage == CLOSED:
        raise MediationProblem("closed")


async def take(
    session: AsyncSession, case: MediationCase, telegram_id: int, *, now: dt.datetime
) -> bool:
    """The bemiddelaar becomes the case's coordinator; False when they already were."""
    _open(case)
    if case.coordinator == telegram_id:
        return False
    case.coordinator = telegram_id
    _record(session, case, TAKEN, actor=pro_actor(telegram_id), now=now)
    await session.flush()
    return True


async def move_stage(
    session: AsyncSession,
    case: MediationCase,
    to_stage: str,
    *,
    actor: str,
    now: dt.datetime,
    nazorg_after: dt.timedelta,
) -> str:
    """Move an open case forward to ``to_stage`` (not to "afgesloten": see close_case).

    The joint talk needs both neighbours' agreement ("both_must_agree"). Moving to nazorg
    plans the check-in ``nazorg_after`` from now. Returns the stage the case came from.
    """
    _open(case)
    if to_stage not in OPEN_STAGES or OPEN_STAGES.index(to_stage) <= OPEN_STAGES.index(case.stage):
        raise MediationProblem("not_forward")
    if to_stage == JOINT_TALK and not both_agreed(case):
        raise MediationProblem("both_must_agree")
    from_stage = case.stage
    case.stage = to_stage
    if to_stage == NAZORG:
        case.nazorg_due_at = now + nazorg_after
    _record(session, case, STAGE, actor=actor, now=now, from_stage=from_stage, to_stage=to_stage)
    await session.flush()
    return from_stage


def undoable_move(case: MediationCase, now: dt.datetime) -> MediationEvent | None:
    """The stage move that may still be undone: the case's latest stage change, when it was a
    move forward (not an undo, not closing) less than :data:`UNDO_WINDOW` ago."""
    changes = [e for e in case.history if e.kind in (STAGE, STAGE_UNDONE, CLOSED_EVENT)]
    if not changes or case.stage == CLOSED:
        return None
    last = max(changes, key=lambda e: e.id)
    if last.kind != STAGE or last.to_stage != case.stage or last.from_stage is None:
        return None
    return last if now - last.at <= UNDO_WINDOW else None


async def undo_stage(
    session: AsyncSession, case: MediationCase, event_id: int, *, actor: str, now: dt.datetime
) -> str:
    """Undo the stage move ``event_id`` (the case goes back to the stage it came from; a
    planned nazorg check-in is dropped again). MediationProblem "undo_gone" when that move is
    no longer the latest, or too long ago. Returns the stage the case is back in."""
    _open(case)
    move = undoable_move(case, now)
    if move is None or move.id != event_id or move.from_stage is None:
        raise MediationProblem("undo_gone")
    back = move.from_stage
    if case.stage == NAZORG:
        case.nazorg_due_at = None
    case.stage = back
    _record(
        session,
        case,
        STAGE_UNDONE,
        actor=actor,
        now=now,
        from_stage=move.to_stage,
        to_stage=back,
        note=str(move.id),
    )
    await session.flush()
    return back


async def set_mediators(
    session: AsyncSession, case: MediationCase, names: str, *, actor: str, now: dt.datetime
) -> None:
    """The pair of volunteer mediators (their names as typed)."""
    _open(case)
    case.mediators = names
    _record(session, case, MEDIATORS, actor=actor, now=now, note=names)
    await session.flush()


async def add_note(
    session: AsyncSession, case: MediationCase, text: str, *, actor: str, now: dt.datetime
) -> None:
    """A short note in the case history."""
    _open(case)
    _record(session, case, NOTE, actor=actor, now=now, note=text)
    await session.flush()


async def add_appointment(
    session: AsyncSession,
    case: MediationCase,
    *,
    parties: str,
    starts_at: dt.datetime,
    place: str,
    actor: str,
    now: dt.datetime,
) -> MediationAppointment:
    """A planned talk for party 1, 2 or both ("1,2"); its kind is the case's current stage."""
    _open(case)
    if parties not in APPOINTMENT_PARTIES:
        raise ValueError(f"parties must be one of {APPOINTMENT_PARTIES}")
    appointment = MediationAppointment(
        case_id=case.id, kind=case.stage, parties=parties, starts_at=starts_at, place=place
    )
    session.add(appointment)
    _record(session, case, APPOINTMENT, actor=actor, now=now)
    await session.flush()
    return appointment


async def close_case(
    session: AsyncSession, case: MediationCase, outcome: str, *, actor: str, now: dt.datetime
) -> list[MediationParty]:
    """Close with an outcome: future appointments are cancelled and an unused invite code
    stops working. Returns the parties to thank (those who took part and are reachable)."""
    _open(case)
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    from_stage = case.stage
    case.stage = CLOSED
    case.outcome = outcome
    case.closed_at = now
    await session.execute(
        update(MediationAppointment)
        .where(
            MediationAppointment.case_id == case.id,
            MediationAppointment.starts_at > now,
            MediationAppointment.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    _record(
        session, case, CLOSED_EVENT, actor=actor, now=now, from_stage=from_stage, to_stage=CLOSED
    )
    await session.flush()
    return [p for p in case.parties if p.resident_id is not None and p.status in (AGREED, CALL)]


# --- the neighbour's invite -------------------------------------------------------------------


def normalise_code(typed: str) -> str | None:
    """A typed code as on the card (upper case, no dash or spaces), or None if it cannot be."""
    code = re.sub(r"[\s\-]", "", typed).upper()
    return code if _CODE_RE.match(code) else None


def format_code(code: str) -> str:
    """A code as people read it: ABCDE-23456."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


async def _fresh_code(session: AsyncSession) -> str:
    for _ in range(20):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        taken = await session.scalar(
            select(MediationParty.id).where(MediationParty.invite_code_hash == code_hash(code))
        )
        if taken is None:
            return code
    raise RuntimeError("could not find a free invite code")


async def create_party_invite(
    session: AsyncSession,
    case: MediationCase,
    *,
    actor: str,
    now: dt.datetime,
    valid_for: dt.timedelta,
) -> tuple[MediationParty, str]:
    """A fresh single-use code for the neighbour (party 2), and the party. Only the code's hash
    is stored. An earlier unused (or locked) code stops working; once the neighbour answered
    there is nothing to invite ("answered")."""
    _open(case)
    second = party_of(case, 2)
    if second is not None and second.status != INVITED:
        raise MediationProblem("answered")
    code = await _fresh_code(session)
    if second is None:
        second = MediationParty(case_id=case.id, number=2, status=INVITED, contact_via="bot")
        session.add(second)
    second.invite_code_hash = code_hash(code)
    second.invite_expires_at = now + valid_for
    second.invite_failures = 0
    second.invite_locked_at = None
    _record(session, case, INVITED_EVENT, actor=actor, now=now)
    await session.flush()
    return second, code


async def _party_by_code(session: AsyncSession, code: str | None) -> MediationParty | None:
    if code is None:
        return None
    return await session.scalar(
        select(MediationParty)
        .where(MediationParty.invite_code_hash == code_hash(code))
        .options(selectinload(MediationParty.case))
        .execution_options(populate_existing=True)
    )


async def invited_party(
    session: AsyncSession, code: str | None, *, resident_id: int | None, now: dt.datetime
) -> MediationParty:
    """The party an unused, valid code belongs to; else MediationProblem with reason
    "too_many" (this resident tried too many wrong codes today: not even looked up),
    "unknown", "used", "answered" (used by this resident), "locked" (tried wrongly too often),
    "expired" (a closed case's code counts as expired) or "own_case" (the requester opened
    their neighbour's code). A caller records a failure with :func:`code_failed`."""
    if resident_id is not None and await failures_today(session, resident_id, now=now) >= (
        FAILURES_PER_PERSON
    ):
        raise MediationProblem("too_many")
    party = await _party_by_code(session, code)
    if party is None:
        raise MediationProblem("unknown")
    if party.status != INVITED:
        answered = resident_id is not None and party.resident_id == resident_id
        raise MediationProblem("answered" if answered else "used")
    if party.invite_locked_at is not None:
        raise MediationProblem("locked")
    expires = party.invite_expires_at
    if expires is None or expires <= now or party.case.stage == CLOSED:
        raise MediationProblem("expired")
    first = await session.scalar(
        select(MediationParty.resident_id).where(
            MediationParty.case_id == party.case_id, MediationParty.number == 1
        )
    )
    if resident_id is not None and first == resident_id:
        raise MediationProblem("own_case")
    return party


async def failures_today(session: AsyncSession, resident_id: int, *, now: dt.datetime) -> int:
    """How many wrong codes this resident tried in the last 24 hours."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(CodeFailure)
            .where(CodeFailure.resident_id == resident_id, CodeFailure.at > now - FAILURE_WINDOW)
        )
        or 0
    )


# Answers to a code that count as a wrong try ("answered" is a double tap; "too_many" is not
# looked up at all).
FAILURES = frozenset({"unknown", "used", "locked", "expired", "own_case"})


async def code_failed(
    session: AsyncSession, code: str | None, reason: str, *, resident_id: int, now: dt.datetime
) -> MediationCase | None:
    """Record a wrong try of ``code`` (after :func:`invited_party` refused it, in a new unit of
    work): against the resident, and against the code when it exists. Returns the case whose
    code was locked by this try (its coordinators are to be told), else None."""
    if reason not in FAILURES:
        return None
    session.add(CodeFailure(resident_id=resident_id, at=now))
    party = await _party_by_code(session, code)
    if party is None or party.status != INVITED or party.invite_locked_at is not None:
        await session.flush()
        return None
    party.invite_failures += 1
    locked = party.invite_failures >= FAILURES_PER_CODE
    if locked:
        party.invite_locked_at = now
        _record(session, party.case, CODE_LOCKED, actor=BOT, now=now)
    await session.flush()
    return await _case_of(session, party) if locked else None


async def forget_code_failures(session: AsyncSession, *, now: dt.datetime) -> int:
    """Remove wrong tries older than the window (a day); how many."""
    result = cast(
        "CursorResult[Any]",
        await session.execute(delete(CodeFailure).where(CodeFailure.at <= now - FAILURE_WINDOW)),
    )
    return int(result.rowcount or 0)


async def answer_invite(
    session: AsyncSession, code: str | None, *, resident_id: int, answer: str, now: dt.datetime
) -> MediationParty:
    """The neighbour answers with the code: agree, decline or call. The code is used up."""
    status = INVITE_ANSWERS[answer]
    party = await invited_party(session, code, resident_id=resident_id, now=now)
    claimed = cast(
        "CursorResult[Any]",
        await session.execute(
            update(MediationParty)
            .where(MediationParty.id == party.id, MediationParty.status == INVITED)
            .values(
                status=status,
                resident_id=resident_id,
                consent_at=now if status == AGREED else None,
            )
            .execution_options(synchronize_session=False)
        ),
    )
    if claimed.rowcount != 1:  # someone else used it a moment ago
        raise MediationProblem("used")
    await session.refresh(party)
    case = await _case_of(session, party)
    _record(session, case, PARTY_ANSWER, actor=party_actor(2), now=now, note=status)
    await session.flush()
    return party


async def _case_of(session: AsyncSession, party: MediationParty) -> MediationCase:
    case = await get_case(session, party.case_id)
    assert case is not None
    return case


async def party_of_resident(
    session: AsyncSession, party_id: int, resident_id: int
) -> MediationParty | None:
    """A party, only if it is this resident."""
    party = await session.get(MediationParty, party_id, populate_existing=True)
    return party if party is not None and party.resident_id == resident_id else None


async def set_party_phone(
    session: AsyncSession, party: MediationParty, phone: str, *, now: dt.datetime
) -> MediationCase:
    """The number a neighbour who asked for a call chose to give."""
    party.phone = phone
    party.contact_via = "telefoon"
    case = await _case_of(session, party)
    _record(session, case, PARTY_PHONE, actor=party_actor(party.number), now=now)
    await session.flush()
    return case


# --- messages between the mediation team and a party -------------------------------------------


@dataclass(frozen=True)
class PartyMessage:
    """A stored message for a party, to be sent: where, in which language, which entry."""

    telegram_id: int
    language: str
    event_id: int


async def message_party(
    session: AsyncSession,
    case: MediationCase,
    number: int,
    text: str,
    *,
    actor: str,
    now: dt.datetime,
    step_key: str | None = None,
) -> PartyMessage:
    """Store a message from the mediation team for party ``number`` (before it is sent), once
    per typed step (``step_key``, see :func:`event_of_step`).

    MediationProblem "closed", or "unreachable" when that party cannot be reached through the
    bot (no party yet, or no resident: removed their data or anonymised)."""
    _open(case)
    party = party_of(case, number)
    if party is None or party.resident is None:
        raise MediationProblem("unreachable")
    event = _record(
        session, case, MESSAGE_OUT, actor=actor, now=now, to_stage=party_actor(number), note=text
    )
    event.step_key = step_key
    await session.flush()
    return PartyMessage(party.resident.telegram_id, party.resident.language, event.id)


def message_party_number(event: MediationEvent) -> int | None:
    """The party a message of the team went to (message_out / message_undelivered)."""
    return actor_party(event.to_stage or "")


async def mark_event(session: AsyncSession, event_id: int, kind: str) -> None:
    """Change the kind of a history entry (e.g. a message that could not be delivered)."""
    await session.execute(
        update(MediationEvent)
        .where(MediationEvent.id == event_id)
        .values(kind=kind)
        .execution_options(synchronize_session=False)
    )


async def event_of_step(session: AsyncSession, step_key: str | None) -> MediationEvent | None:
    """The history entry a typed step already stored, if any."""
    if step_key is None:
        return None
    return await session.scalar(select(MediationEvent).where(MediationEvent.step_key == step_key))


async def party_in_case(
    session: AsyncSession, case_id: int, number: int, resident_id: int
) -> tuple[MediationCase, MediationParty] | None:
    """The case and party ``number`` of it, only when that party is this resident."""
    case = await get_case(session, case_id)
    party = party_of(case, number) if case is not None else None
    if case is None or party is None or party.resident_id != resident_id:
        return None
    return case, party


async def answer_from_party(
    session: AsyncSession,
    case: MediationCase,
    party: MediationParty,
    text: str,
    *,
    now: dt.datetime,
    step_key: str | None = None,
) -> MediationEvent:
    """Store a party's answer for the mediation team, once per typed step (MediationProblem
    "closed")."""
    _open(case)
    event = _record(session, case, MESSAGE_IN, actor=party_actor(party.number), now=now, note=text)
    event.step_key = step_key
    await session.flush()
    return event


# --- reminders the day before an appointment --------------------------------------------------


@dataclass(frozen=True)
class ReminderTarget:
    """One reminder to send: which appointment, to which party, and what to say."""

    appointment_id: int
    case_id: int
    party: int
    telegram_id: int
    language: str
    starts_at: dt.datetime
    place: str | None


async def due_reminders(session: AsyncSession, now: dt.datetime) -> list[int]:
    """Appointments of open cases starting within a day that have not been reminded."""
    result = await session.scalars(
        select(MediationAppointment.id)
        .join(MediationCase, MediationCase.id == MediationAppointment.case_id)
        .where(
            MediationAppointment.reminded_at.is_(None),
            MediationAppointment.cancelled_at.is_(None),
            MediationAppointment.starts_at > now,
            MediationAppointment.starts_at <= now + REMINDER_BEFORE,
            MediationCase.stage != CLOSED,
        )
        .order_by(MediationAppointment.starts_at, MediationAppointment.id)
    )
    return list(result.all())


def _ledger_key(appointment_id: int, party: int) -> str:
    return f"{appointment_id}:{party}"


async def _reminder_parties(
    session: AsyncSession, appointment: MediationAppointment
) -> tuple[MediationCase, list[MediationParty], set[int]]:
    """The case, its reachable parties this appointment concerns, and those already handled."""
    case = await get_case(session, appointment.case_id)
    assert case is not None
    numbers = {int(n) for n in appointment.parties.split(",")}
    reachable = [p for p in case.parties if p.number in numbers and p.resident is not None]
    handled_keys = {
        e.note
        for e in case.history
        if e.kind in (REMINDER_SENT, REMINDER_UNDELIVERED) and e.note is not None
    }
    handled = {p.number for p in reachable if _ledger_key(appointment.id, p.number) in handled_keys}
    return case, reachable, handled


@dataclass(frozen=True)
class AppointmentNotice:
    """A party to tell of a new appointment, and the history entry that says they were told
    (marked ``appointment_untold`` when the notice cannot be delivered)."""

    target: ReminderTarget
    event_id: int


async def decide_appointment_notices(
    session: AsyncSession, appointment: MediationAppointment, *, now: dt.datetime
) -> list[AppointmentNotice]:
    """Decide who is told at once of a new appointment: the parties it concerns who use the
    bot, each with a history entry ("told"), in the unit of work that writes the notices to the
    outbox. A party who blocked the bot is noted as not told, without trying."""
    case, reachable, _ = await _reminder_parties(session, appointment)
    notices = []
    for party in reachable:
        if party.resident is None:
            continue
        key = _ledger_key(appointment.id, party.number)
        if party.resident.unreachable_since is not None:
            _record(session, case, APPOINTMENT_UNTOLD, actor=BOT, now=now, note=key)
            continue
        event = _record(session, case, APPOINTMENT_TOLD, actor=BOT, now=now, note=key)
        await session.flush()
        target = ReminderTarget(
            appointment_id=appointment.id,
            case_id=appointment.case_id,
            party=party.number,
            telegram_id=party.resident.telegram_id,
            language=party.resident.language,
            starts_at=appointment.starts_at,
            place=appointment.place,
        )
        notices.append(AppointmentNotice(target, event.id))
    await session.flush()
    return notices


async def decide_reminders(
    session: AsyncSession, appointment_id: int, *, now: dt.datetime
) -> list[ReminderTarget]:
    """Decide the reminders still to send for an appointment: one history entry per party
    (the ledger), written in the unit of work that writes them to the outbox, and the
    appointment marked as reminded, so a second run decides nothing again."""
    appointment = await session.get(MediationAppointment, appointment_id, populate_existing=True)
    if appointment is None or appointment.reminded_at is not None:
        return []
    case, reachable, handled = await _reminder_parties(session, appointment)
    targets = []
    for party in reachable:
        if party.number in handled or party.resident is None:
            continue
        if party.resident.unreachable_since is not None:
            # They blocked the bot: noted as undelivered without trying.
            key = _ledger_key(appointment.id, party.number)
            _record(session, case, REMINDER_UNDELIVERED, actor=BOT, now=now, note=key)
            continue
        _record(
            session,
            case,
            REMINDER_SENT,
            actor=BOT,
            now=now,
            note=_ledger_key(appointment.id, party.number),
        )
        targets.append(
            ReminderTarget(
                appointment_id=appointment.id,
                case_id=case.id,
                party=party.number,
                telegram_id=party.resident.telegram_id,
                language=party.resident.language,
                starts_at=appointment.starts_at,
                place=appointment.place,
            )
        )
    appointment.reminded_at = now
    await session.flush()
    return targets


async def reminder_undelivered(
    session: AsyncSession, case_id: int, appointment_id: int, party: int
) -> None:
    """Telegram refused a party's reminder for good: the ledger says so."""
    await session.execute(
        update(MediationEvent)
        .where(
            MediationEvent.case_id == case_id,
            MediationEvent.kind == REMINDER_SENT,
            MediationEvent.note == _ledger_key(appointment_id, party),
        )
        .values(kind=REMINDER_UNDELIVERED)
        .execution_options(synchronize_session=False)
    )


# --- nazorg: the check-in some weeks after the agreements -------------------------------------


@dataclass(frozen=True)
class NazorgTarget:
    """One check-in to send."""

    party_id: int
    case_id: int
    party: int
    telegram_id: int
    language: str
    unreachable: bool = False  # they blocked the bot: not sent, noted as undelivered


async def due_nazorg(session: AsyncSession, now: dt.datetime) -> list[int]:
    """Parties of cases in nazorg whose check-in is due and not sent: only those who took
    part (agreed or asked for a call) and can be reached through the bot."""
    result = await session.scalars(
        select(MediationParty.id)
        .join(MediationCase, MediationCase.id == MediationParty.case_id)
        .where(
            MediationCase.stage == NAZORG,
            MediationCase.nazorg_due_at <= now,
            MediationParty.resident_id.is_not(None),
            MediationParty.status.in_((AGREED, CALL)),
            MediationParty.nazorg_sent_at.is_(None),
        )
        .order_by(MediationParty.case_id, MediationParty.number)
    )
    return list(result.all())


async def decide_nazorg(
    session: AsyncSession, party_id: int, *, now: dt.datetime
) -> NazorgTarget | None:
    """Mark a due check-in as decided (at most once; the caller writes it to the outbox in the
    same unit of work); None if not due."""
    claimed = cast(
        "CursorResult[Any]",
        await session.execute(
            update(MediationParty)
            .where(
                MediationParty.id == party_id,
                MediationParty.nazorg_sent_at.is_(None),
                MediationParty.resident_id.is_not(None),
            )
            .values(nazorg_sent_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if claimed.rowcount != 1:
        return None
    party = await session.get(MediationParty, party_id, populate_existing=True)
    assert party is not None and party.resident is not None
    return NazorgTarget(
        party_id=party.id,
        case_id=party.case_id,
        party=party.number,
        telegram_id=party.resident.telegram_id,
        language=party.resident.language,
        unreachable=party.resident.unreachable_since is not None,
    )


async def record_nazorg(
    session: AsyncSession, case_id: int, party: int, *, delivered: bool, now: dt.datetime
) -> None:
    """Write in the history that the check-in was sent, or could not be delivered."""
    case = await get_case(session, case_id)
    if case is not None:
        kind = NAZORG_SENT if delivered else NAZORG_UNDELIVERED
        _record(session, case, kind, actor=BOT, now=now, note=str(party))
        await session.flush()


async def answer_nazorg(
    session: AsyncSession, party: MediationParty, answer: str, *, now: dt.datetime
) -> MediationCase | None:
    """Record a party's answer to the check-in; None when not asked or already answered."""
    if answer not in NAZORG_ANSWERS:
        raise ValueError(f"unknown answer {answer!r}")
    if party.nazorg_sent_at is None or party.nazorg_answer is not None:
        return None
    party.nazorg_answer = answer
    case = await _case_of(session, party)
    _record(session, case, NAZORG_ANSWER, actor=party_actor(party.number), now=now, note=answer)
    await session.flush()
    return case


# --- what the wijkagent and the opbouwwerker may see ------------------------------------------


@dataclass(frozen=True)
class WijkCounts:
    """Numbers only: open cases per stage and closed cases per outcome."""

    wijk_id: int
    wijk_name: str
    stages: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Referral:
    """A case someone referred: its reference and, once closed, only whether it succeeded."""

    reference: str
    closed: bool
    succeeded: bool


async def counts(session: AsyncSession, wijk_ids: Iterable[int]) -> list[WijkCounts]:
    """Per wijk: how many open cases are in each stage, how many closed with each outcome."""
    wanted = sorted(set(wijk_ids))
    wijken = (
        await session.execute(
            select(Wijk.id, Wijk.name).where(Wijk.id.in_(wanted)).order_by(Wijk.name)
        )
    ).all()
    rows = (
        await session.execute(
            select(MediationCase.wijk_id, MediationCase.stage, MediationCase.outcome, func.count())
            .where(MediationCase.wijk_id.in_(wanted))
            .group_by(MediationCase.wijk_id, MediationCase.stage, MediationCase.outcome)
        )
    ).all()
    found = [WijkCounts(wijk_id=i, wijk_name=name) for i, name in wijken]
    by_id = {c.wijk_id: c for c in found}
    for wijk_id, stage, outcome, number in rows:
        target = by_id[wijk_id]
        if stage == CLOSED:
            key = outcome or "?"
            target.outcomes[key] = target.outcomes.get(key, 0) + int(number)
        else:
            target.stages[stage] = target.stages.get(stage, 0) + int(number)
    return found


async def referrals(
    session: AsyncSession, telegram_id: int, wijk_ids: Iterable[int]
) -> list[Referral]:
    """The cases this professional referred (in wijken where they may see counts)."""
    result = await session.execute(
        select(MediationCase.reference, MediationCase.stage, MediationCase.outcome)
        .where(
            MediationCase.referred_by == telegram_id,
            MediationCase.wijk_id.in_(list(wijk_ids)),
        )
        .order_by(MediationCase.created_at, MediationCase.id)
    )
    return [
        Referral(reference=ref, closed=stage == CLOSED, succeeded=outcome in SUCCESS)
        for ref, stage, outcome in result.all()
    ]


# --- the coordinators' daily overview ---------------------------------------------------------


@dataclass(frozen=True)
class CaseBrief:
    """One line about a case for the coordinators."""

    reference: str
    topic: str
    stage: str
    created_at: dt.datetime


@dataclass(frozen=True)
class AppointmentBrief:
    """An upcoming talk."""

    reference: str
    starts_at: dt.datetime
    kind: str
    parties: str
    place: str | None


@dataclass(frozen=True)
class Overview:
    """What the bemiddelaars of a wijk should know this morning."""

    new: list[CaseBrief]
    stages: dict[str, int]
    overdue: list[CaseBrief]
    upcoming: list[AppointmentBrief]

    @property
    def quiet(self) -> bool:
        """Nothing new, nothing overdue, nothing planned: no message is sent."""
        return not (self.new or self.overdue or self.upcoming)


def _brief(case: MediationCase) -> CaseBrief:
    return CaseBrief(
        reference=case.reference, topic=case.topic, stage=case.stage, created_at=case.created_at
    )


async def overview(
    session: AsyncSession,
    wijk_id: int,
    *,
    now: dt.datetime,
    since: dt.datetime,
    tz: dt.tzinfo,
    intake_days: int,
    days_ahead: int,
) -> Overview:
    """New requests since ``since``, open cases per stage, overdue intakes (still aangemeld
    after ``intake_days`` working days) and the talks planned in the next ``days_ahead`` days."""
    cases = await open_cases(session, [wijk_id])
    stages: dict[str, int] = {}
    for case in cases:
        stages[case.stage] = stages.get(case.stage, 0) + 1
    new = [_brief(c) for c in cases if since <= c.created_at < now]
    overdue = [
        _brief(c) for c in cases if intake_overdue(c, now=now, tz=tz, intake_days=intake_days)
    ]
    result = await session.execute(
        select(MediationAppointment, MediationCase.reference)
        .join(MediationCase, MediationCase.id == MediationAppointment.case_id)
        .where(
            MediationCase.wijk_id == wijk_id,
            MediationCase.stage != CLOSED,
            MediationAppointment.cancelled_at.is_(None),
            MediationAppointment.starts_at > now,
            MediationAppointment.starts_at <= now + dt.timedelta(days=days_ahead),
        )
        .order_by(MediationAppointment.starts_at, MediationAppointment.id)
    )
    upcoming = [
        AppointmentBrief(
            reference=reference,
            starts_at=appointment.starts_at,
            kind=appointment.kind,
            parties=appointment.parties,
            place=appointment.place,
        )
        for appointment, reference in result.all()
    ]
    return Overview(new=new, stages=stages, overdue=overdue, upcoming=upcoming)


# --- retention ----------------------------------------------------------------------------------


async def anonymise_closed(
    session: AsyncSession, *, now: dt.datetime, retention_days: int
) -> list[str]:
    """Anonymise the cases closed more than ``retention_days`` ago (once each).

    Removed: what is going on, the other party's description, both street addresses, the
    mediators' names, the link to a signal, every party's phone, availability, invite code and
    link to a resident, the place of each appointment and the text of every history entry.
    Kept for statistics: reference, wijk, stage, outcome, topic, duration, talked
    (categories), the coordinator, who referred it, the dates, the parties' status, contact
    way and nazorg answer, the appointments' times and the kinds of the history entries. One
    "anonymised" entry (without any of the removed content) records that it happened.
    Returns the references anonymised now.
    """
    cutoff = now - dt.timedelta(days=retention_days)
    result = await session.scalars(
        _with_parties(
            select(MediationCase).where(
                MediationCase.stage == CLOSED,
                MediationCase.closed_at <= cutoff,
                MediationCase.anonymised_at.is_(None),
            )
        )
    )
    done = []
    for case in result.all():
        case.other_party = None
        case.situation = None
        case.requester_address = None
        case.other_address = None
        case.mediators = None
        case.signal_id = None
        case.anonymised_at = now
        for party in case.parties:
            party.phone = None
            party.reachable = None
            party.invite_code_hash = None
            party.invite_expires_at = None
            party.resident_id = None
        for event in case.history:
            event.note = None
        await session.execute(
            update(MediationAppointment)
            .where(MediationAppointment.case_id == case.id)
            .values(place=None)
            .execution_options(synchronize_session=False)
        )
        _record(session, case, ANONYMISED, actor=BOT, now=now)
        done.append(case.reference)
    await session.flush()
    return done
