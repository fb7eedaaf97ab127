"""Buurtbemiddeling storage: the nazorg check-in some weeks after the agreements."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.mediation.common import (
    AGREED,
    BOT,
    CALL,
    NAZORG,
    NAZORG_ANSWER,
    NAZORG_ANSWERS,
    NAZORG_SENT,
    NAZORG_UNDELIVERED,
    party_actor,
)
from buurtsignaal.storage.mediation.handling import _record, get_case
from buurtsignaal.storage.mediation.invite import _case_of
from buurtsignaal.storage.models import MediationCase, MediationParty

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
