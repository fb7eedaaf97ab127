"""Buurtbemiddeling cases: the intake, the parties and the case history.

Only the bemiddelaar role may read case content; the functions here do not check roles, the
callers do (see storage.access).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import MediationCase, MediationEvent, MediationParty, utcnow
from storage.signals import next_number

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
    now = now or utcnow()
    prefix = f"{REFERENCE_PREFIX}-{year}"
    number = await next_number(session, prefix)
    case = MediationCase(
        reference=f"{prefix}-{number:04d}",
        wijk_id=new.wijk_id,
        stage="aangemeld",
        topic=new.topic,
        duration=new.duration,
        talked=new.talked,
        other_party=new.other_party,
        referred_by=new.referred_by,
        signal_id=new.signal_id,
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
    case.history.append(
        MediationEvent(kind="created", to_stage="aangemeld", actor="resident", at=now)
    )
    session.add(case)
    await session.flush()
    return case


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
