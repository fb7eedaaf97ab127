"""Buurtbemiddeling storage: the counts and referrals the wijkagent and opbouwwerker may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.mediation.common import CLOSED, SUCCESS
from buurtsignaal.storage.models import MediationCase, Wijk

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
