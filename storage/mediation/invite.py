"""Buurtbemiddeling storage: the neighbour's single-use invite code, failed tries and the answer."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from buurtsignaal.storage.codes import code_hash
from buurtsignaal.storage.mediation.common import (
    _CODE_RE,
    AGREED,
    BOT,
    CLOSED,
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_LOCKED,
    FAILURE_WINDOW,
    FAILURES_PER_CODE,
    FAILURES_PER_PERSON,
    INVITE_ANSWERS,
    INVITED,
    INVITED_EVENT,
    PARTY_ANSWER,
    PARTY_PHONE,
    MediationProblem,
    party_actor,
    party_of,
)
from buurtsignaal.storage.mediation.handling import _open, _record, get_case
from buurtsignaal.storage.models import CodeFailure, MediationCase, MediationParty

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
