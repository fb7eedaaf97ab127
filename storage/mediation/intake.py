"""Buurtbemiddeling storage: a new case from the intake, its reference, and finding it again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from buurtsignaal.storage.mediation.common import (
    CONTACT_VIA,
    CREATED,
    DURATIONS,
    REACHABLE,
    REFERENCE_PREFIX,
    RESIDENT,
    TALKED,
    TOPICS,
)
from buurtsignaal.storage.models import MediationCase, MediationEvent, MediationParty
from buurtsignaal.storage.signals import next_number, store_once


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
    session: AsyncSession, new: NewMediation, *, year: int, now: dt.datetime
) -> MediationCase:
    """Store a confirmed intake as a case (stage aangemeld) with its first party."""
    prefix = f"{REFERENCE_PREFIX}-{year}"
    number = await next_number(session, prefix)
    return await _insert_case(session, new, f"{prefix}-{number:04d}", now)


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
    session: AsyncSession, new: NewMediation, *, year: int, now: dt.datetime
) -> tuple[MediationCase, bool]:
    """Store the case of an intake draft once (see storage.signals.store_once)."""
    draft_key = new.draft_key
    assert draft_key is not None
    return await store_once(
        session,
        f"{REFERENCE_PREFIX}-{year}",
        find=lambda: case_of_draft(session, draft_key),
        insert=lambda reference: _insert_case(session, new, reference, now),
    )


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
