"""Buurtbemiddeling storage: messages between the mediation team and a party."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.mediation.common import (
    MESSAGE_IN,
    MESSAGE_OUT,
    MediationProblem,
    actor_party,
    party_actor,
    party_of,
)
from buurtsignaal.storage.mediation.handling import _open, _record, get_case
from buurtsignaal.storage.models import MediationCase, MediationEvent, MediationParty

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
