"""Case handling: open signals, taking a case, status changes, notes, the anonymous relay
between a professional and the reporter, and the "is it solved?" follow-up.

Everything a case goes through is written to the signal's history (``SignalEvent``). Actors
are ``"pro:<telegram id>"`` for professionals, ``"resident"`` for the reporter and ``"bot"``
for the bot itself; a resident's identity is never stored in the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from buurtsignaal.storage import access, parsing
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.models import Signal, SignalEvent
from buurtsignaal.storage.residents import get_resident
from buurtsignaal.storage.signals import (
    OPEN_STATUSES,
    REFERENCE_PREFIX,
    STATUSES,
    WITHDRAWN,
    signal_by_reference,
)

NEW, HANDLING, CLOSED = "nieuw", "in_behandeling", "afgehandeld"
FOLLOWUP_ANSWERS: tuple[str, ...] = ("yes", "no", "unknown")
RESIDENT = "resident"
BOT = "bot"

# History kinds written here (besides "created" from storage.signals).
ASSIGNED = "assigned"
STATUS = "status"
NOTE = "note"
REPLY_OUT = "reply_out"
REPLY_OUT_UNDELIVERED = "reply_out_undelivered"
REPLY_IN = "reply_in"
NOTICE_UNDELIVERED = "notice_undelivered"
FOLLOWUP_SENT = "followup_sent"
FOLLOWUP_UNDELIVERED = "followup_undelivered"
FOLLOWUP = "followup"
REOPENED = "reopened"
ADDITION = "addition"  # the reporter added text or a photo (from /mijnmeldingen)
WITHDRAWN_EVENT = "withdrawn"  # the reporter withdrew the report
# Written by storage.privacy (forgetting a resident, retention).
REPORTER_LEFT = "reporter_left"
RETENTION_CONTACT = "retention_contact"
RETENTION_CONTENT = "retention_content"


def pro_actor(telegram_id: int) -> str:
    """The history actor of a professional."""
    return f"pro:{telegram_id}"


def actor_telegram_id(actor: str) -> int | None:
    """The professional's Telegram id in an actor string, or None for resident/bot."""
    kind, _, value = actor.partition(":")
    return int(value) if kind == "pro" and value.lstrip("-").isdigit() else None


def parse_reference(text: str, *, year: int) -> str | None:
    """A signal's canonical reference from what someone typed (see
    :func:`storage.parsing.reference`), or None if it cannot be one."""
    return parsing.reference(text, prefix=REFERENCE_PREFIX, year=year)


def signing_role(person: access.Person, wijk_id: int) -> str | None:
    """The role a professional signs a message to a resident with, in that signal's wijk."""
    for grant in person.grants:
        if grant.wijk_id == wijk_id and Permission.SIGNALS in access.PERMISSIONS[grant.role]:
            return grant.role
    return None


@dataclass(frozen=True)
class OpenPage:
    """One page of open signals, oldest first."""

    signals: Sequence[Signal]
    total: int
    page: int  # zero-based, clamped to the pages that exist
    pages: int


async def open_signals(
    session: AsyncSession, wijk_ids: Collection[int], *, page: int, per_page: int
) -> OpenPage:
    """Open signals (nieuw or in behandeling) of some wijken, oldest first, one page of them.

    Oldest first: the longest waiting comes first, and new reports land on the last page, so
    the pages do not shift while someone pages through them.
    """
    where = (Signal.wijk_id.in_(list(wijk_ids)), Signal.status.in_(OPEN_STATUSES))
    total = int(await session.scalar(select(func.count()).select_from(Signal).where(*where)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 0), pages - 1)
    result = await session.scalars(
        select(Signal)
        .where(*where)
        .order_by(Signal.created_at, Signal.id)
        .offset(page * per_page)
        .limit(per_page)
    )
    return OpenPage(signals=result.all(), total=total, page=page, pages=pages)


async def get_signal(
    session: AsyncSession, signal_id: int, *, for_update: bool = False
) -> Signal | None:
    """A signal with its history by id."""
    query = (
        select(Signal)
        .where(Signal.id == signal_id)
        .options(selectinload(Signal.history))
        .execution_options(populate_existing=True)
    )
    if for_update:
        query = query.with_for_update(of=Signal)
    return await session.scalar(query)


async def find_signal(session: AsyncSession, reference: str) -> Signal | None:
    """A signal with its history by reference number."""
    return await signal_by_reference(session, reference)


def history_actors(signal: Signal) -> set[int]:
    """Telegram ids of the professionals in a signal's history and its assignee."""
    found = {actor_telegram_id(event.actor) for event in signal.history}
    found.add(signal.assigned_to)
    return {i for i in found if i is not None}


def _record(
    signal: Signal,
    kind: str,
    *,
    actor: str,
    now: dt.datetime,
    note: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> SignalEvent:
    event = SignalEvent(
        kind=kind, actor=actor, at=now, note=note, from_status=from_status, to_status=to_status
    )
    signal.history.append(event)
    return event


async def record(
    session: AsyncSession,
    signal: Signal,
    kind: str,
    *,
    actor: str,
    now: dt.datetime,
    note: str | None = None,
    step_key: str | None = None,
) -> SignalEvent:
    """Add one entry to a signal's history (the signal must be loaded with its history)."""
    event = _record(signal, kind, actor=actor, now=now, note=note)
    event.step_key = step_key
    await session.flush()
    return event


@dataclass(frozen=True)
class Taken:
    """What taking a case did."""

    changed: bool
    previous: int | None  # who had it before (a colleague), if anyone
    from_status: str
    to_status: str


async def take(
    session: AsyncSession, signal: Signal, telegram_id: int, *, now: dt.datetime
) -> Taken:
    """Assign a signal to a professional; a new signal becomes "in behandeling"."""
    status = signal.status
    if signal.assigned_to == telegram_id:
        return Taken(changed=False, previous=telegram_id, from_status=status, to_status=status)
    previous = signal.assigned_to
    actor = pro_actor(telegram_id)
    signal.assigned_to = telegram_id
    _record(signal, ASSIGNED, actor=actor, now=now)
    if status == NEW:
        signal.status = HANDLING
        _record(signal, STATUS, actor=actor, now=now, from_status=NEW, to_status=HANDLING)
    signal.updated_at = now
    await session.flush()
    return Taken(changed=True, previous=previous, from_status=status, to_status=signal.status)


async def change_status(
    session: AsyncSession,
    signal: Signal,
    to_status: str,
    *,
    actor: str,
    note: str | None,
    now: dt.datetime,
    followup_days: int,
) -> bool:
    """Move a signal to ``to_status`` with an (internal) note; False when it already is.

    Closing sets ``closed_at`` and plans the follow-up question ``followup_days`` later (only
    when the reporter is still known). Opening it again cancels a follow-up not yet asked.
    """
    if to_status not in STATUSES:
        raise ValueError(f"unknown status {to_status!r}")
    from_status = signal.status
    if from_status in (to_status, WITHDRAWN):  # a withdrawn report stays withdrawn
        return False
    signal.status = to_status
    signal.updated_at = now
    if to_status == CLOSED:
        signal.closed_at = now
        known = signal.resident_id is not None
        signal.followup_due_at = now + dt.timedelta(days=followup_days) if known else None
        signal.followup_sent_at = None
        signal.followup_answer = None
    else:
        signal.closed_at = None
        signal.followup_due_at = None
    _record(
        signal,
        STATUS,
        actor=actor,
        now=now,
        note=note,
        from_status=from_status,
        to_status=to_status,
    )
    await session.flush()
    return True


async def add_note(
    session: AsyncSession, signal: Signal, note: str, *, actor: str, now: dt.datetime
) -> SignalEvent:
    """An internal note: for colleagues only, never shown to the reporter."""
    event = _record(signal, NOTE, actor=actor, now=now, note=note)
    signal.updated_at = now
    await session.flush()
    return event


async def own_signal(
    session: AsyncSession, telegram_id: int, signal_id: int, *, for_update: bool = False
) -> Signal | None:
    """The signal, only if the resident with this Telegram id reported it."""
    resident = await get_resident(session, telegram_id)
    if resident is None:
        return None
    signal = await get_signal(session, signal_id, for_update=for_update)
    if signal is None or signal.resident_id != resident.id:
        return None
    return signal


def is_open(signal: Signal) -> bool:
    """New or being handled: not closed, not withdrawn."""
    return signal.status in OPEN_STATUSES


async def event_of_step(session: AsyncSession, step_key: str | None) -> SignalEvent | None:
    """The history entry a typed step already stored, if any."""
    if step_key is None:
        return None
    return await session.scalar(select(SignalEvent).where(SignalEvent.step_key == step_key))


async def add_from_reporter(
    session: AsyncSession,
    signal: Signal,
    *,
    text: str | None,
    photo_file_id: str | None,
    now: dt.datetime,
    step_key: str | None = None,
) -> SignalEvent | None:
    """The reporter adds information (text, a photo or both) to their open report; None when
    it is no longer open."""
    if not is_open(signal) or not (text or photo_file_id):
        return None
    event = _record(signal, ADDITION, actor=RESIDENT, now=now, note=text)
    event.photo_file_id = photo_file_id
    event.step_key = step_key
    signal.updated_at = now
    await session.flush()
    return event


async def withdraw(session: AsyncSession, signal: Signal, *, now: dt.datetime) -> bool:
    """The reporter withdraws their open report: it counts as closed (no follow-up question)
    but stays in statistics and the export. False when it was not open any more."""
    if not is_open(signal):
        return False
    from_status = signal.status
    signal.status = WITHDRAWN
    signal.closed_at = now
    signal.followup_due_at = None
    signal.updated_at = now
    _record(
        signal,
        WITHDRAWN_EVENT,
        actor=RESIDENT,
        now=now,
        from_status=from_status,
        to_status=WITHDRAWN,
    )
    await session.flush()
    return True


async def mark_event(session: AsyncSession, event_id: int, kind: str) -> None:
    """Change the kind of a history entry (e.g. a reply that turned out undeliverable)."""
    await session.execute(
        update(SignalEvent)
        .where(SignalEvent.id == event_id)
        .values(kind=kind)
        .execution_options(synchronize_session=False)
    )


async def note_undelivered(
    session: AsyncSession,
    signal_id: int,
    kind: str,
    *,
    event_id: int | None = None,
    now: dt.datetime,
) -> None:
    """A message to the reporter could not be delivered: its history entry ``event_id``
    becomes ``kind``, or (without one) a new entry ``kind`` says so."""
    if event_id is not None:
        await mark_event(session, event_id, kind)
        return
    signal = await get_signal(session, signal_id)
    if signal is not None:
        await record(session, signal, kind, actor=BOT, now=now)


async def reply_targets(session: AsyncSession, signal: Signal) -> list[int]:
    """Who gets a reporter's answer: the professional who last wrote to them, else the one
    who took the case, else everyone who handles signals in the wijk (only people who still
    may see the signal)."""
    allowed = await access.recipients(session, signal.wijk_id, Permission.SIGNALS)
    writers = [actor_telegram_id(e.actor) for e in signal.history if e.kind == REPLY_OUT]
    if writers and writers[-1] in allowed and writers[-1] is not None:
        return [writers[-1]]
    if signal.assigned_to in allowed and signal.assigned_to is not None:
        return [signal.assigned_to]
    return allowed


async def due_followups(session: AsyncSession, now: dt.datetime, *, limit: int = 50) -> list[int]:
    """Ids of closed signals whose follow-up question is due and not yet sent."""
    result = await session.scalars(
        select(Signal.id)
        .where(
            Signal.status == CLOSED,
            Signal.resident_id.is_not(None),
            Signal.followup_due_at <= now,
            Signal.followup_sent_at.is_(None),
        )
        .order_by(Signal.followup_due_at, Signal.id)
        .limit(limit)
    )
    return list(result.all())


async def decide_followup(
    session: AsyncSession, signal_id: int, *, now: dt.datetime
) -> Signal | None:
    """Mark a due follow-up as decided (at most once; the caller writes it to the outbox in the
    same unit of work); None if not due (any more)."""
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            update(Signal)
            .where(
                Signal.id == signal_id,
                Signal.status == CLOSED,
                Signal.resident_id.is_not(None),
                Signal.followup_due_at <= now,
                Signal.followup_sent_at.is_(None),
            )
            .values(followup_sent_at=now, updated_at=Signal.updated_at)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        return None
    return await get_signal(session, signal_id)


@dataclass(frozen=True)
class FollowupAnswer:
    """What the reporter answered, and the status the signal was reopened with (if so)."""

    answer: str
    reopened_to: str | None


async def answer_followup(
    session: AsyncSession, signal: Signal, answer: str, *, now: dt.datetime
) -> FollowupAnswer | None:
    """Record the reporter's answer; "no" reopens a closed signal. None if not asked or
    already answered (a stale button)."""
    if answer not in FOLLOWUP_ANSWERS:
        raise ValueError(f"unknown answer {answer!r}")
    if signal.followup_sent_at is None or signal.followup_answer is not None:
        return None
    signal.followup_answer = answer
    signal.updated_at = now
    _record(signal, FOLLOWUP, actor=RESIDENT, now=now, note=answer)
    reopened_to = None
    if answer == "no" and signal.status == CLOSED:
        # Someone already knows the case: it goes back to them; otherwise it is new again.
        reopened_to = HANDLING if signal.assigned_to is not None else NEW
        _record(
            signal, REOPENED, actor=RESIDENT, now=now, from_status=CLOSED, to_status=reopened_to
        )
        signal.status = reopened_to
        signal.closed_at = None
        signal.followup_due_at = None
    await session.flush()
    return FollowupAnswer(answer=answer, reopened_to=reopened_to)


MEDIATION_PROPOSED = "mediation_proposed"
MEDIATION_ACCEPTED = "mediation_accepted"
MEDIATION_DECLINED = "mediation_declined"


def mediation_answer(signal: Signal) -> str | None:
    """Where a proposal of mediation to the reporter stands: None (never proposed, or they
    said no: it may be proposed again), ``MEDIATION_PROPOSED`` (asked, no answer yet) or
    ``MEDIATION_ACCEPTED``. Needs ``signal.history`` loaded."""
    state = None
    for event in signal.history:
        if event.kind == MEDIATION_PROPOSED:
            state = MEDIATION_PROPOSED
        elif event.kind == MEDIATION_ACCEPTED:
            state = MEDIATION_ACCEPTED
        elif event.kind == MEDIATION_DECLINED:
            state = None
    return state


async def propose_mediation(
    session: AsyncSession, signal: Signal, telegram_id: int, *, now: dt.datetime
) -> bool:
    """Record that a professional proposed mediation to the reporter (who must agree); False,
    and nothing recorded, while an earlier proposal waits for an answer or was accepted (the
    reporter is asked once, whoever of the pair presses)."""
    if mediation_answer(signal) is not None:
        return False
    await record(session, signal, MEDIATION_PROPOSED, actor=pro_actor(telegram_id), now=now)
    return True


async def referral_of(session: AsyncSession, signal_id: int, telegram_id: int) -> int | None:
    """The professional whose proposal of mediation for this signal is still open, if the
    signal is ``telegram_id``'s own report; else None."""
    signal = await session.scalar(
        select(Signal).where(Signal.id == signal_id).options(selectinload(Signal.history))
    )
    if signal is None or signal.resident is None or signal.resident.telegram_id != telegram_id:
        return None
    proposer = None
    for event in signal.history:
        if event.kind == MEDIATION_PROPOSED:
            proposer = actor_telegram_id(event.actor)
        elif event.kind in (MEDIATION_ACCEPTED, MEDIATION_DECLINED):
            proposer = None
    return proposer


async def record_referral_answer(
    session: AsyncSession, signal_id: int, *, accepted: bool, now: dt.datetime
) -> None:
    """The reporter's answer to a proposal of mediation (kept in the signal's history)."""
    signal = await session.scalar(
        select(Signal).where(Signal.id == signal_id).options(selectinload(Signal.history))
    )
    assert signal is not None
    kind = MEDIATION_ACCEPTED if accepted else MEDIATION_DECLINED
    await record(session, signal, kind, actor=RESIDENT, now=now)
