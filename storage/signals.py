"""Signals: what residents report, with reference numbers and a status history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from buurtsignaal.storage.models import ReferenceCounter, Signal, SignalEvent

Stored = TypeVar("Stored")

# The seed categories, in the order residents see them.
CATEGORIES: tuple[str, ...] = (
    "burenruzie",
    "geluidsoverlast",
    "kinderen_zonder_toezicht",
    "intimidatie",
    "bekladding",
    "vernieling",
    "anders",
)
OCCURRED = ("now", "today", "earlier")
FREQUENCIES = ("first", "recurring")
# The statuses a professional sets; the reporter can also withdraw an open report.
STATUSES = ("nieuw", "in_behandeling", "afgehandeld")
WITHDRAWN = "ingetrokken"
OPEN_STATUSES = ("nieuw", "in_behandeling")
REFERENCE_PREFIX = "BS"


@dataclass(frozen=True)
class NewSignal:
    """A complete report as the resident confirmed it."""

    wijk_id: int
    resident_id: int | None
    category: str
    description: str
    occurred: str
    frequency: str
    contactable: bool
    latitude: float | None = None
    longitude: float | None = None
    location_text: str | None = None
    occurred_text: str | None = None
    photo_file_id: str | None = None
    contact_name: str | None = None
    on_behalf: bool = False
    # The draft it was sent from (see Signal.draft_key); a draft is stored at most once.
    draft_key: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.occurred not in OCCURRED:
            raise ValueError(f"unknown occurred {self.occurred!r}")
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"unknown frequency {self.frequency!r}")
        if self.contact_name and not self.contactable:
            raise ValueError("a pseudonymous signal keeps no contact details")
        if self.on_behalf and not (self.contactable and self.contact_name):
            raise ValueError("a report on behalf of someone has the sleutelfiguur as contact")
        if self.latitude is None and not self.location_text:
            raise ValueError("a signal needs a location or a place description")


async def next_number(session: AsyncSession, prefix: str) -> int:
    """Atomically take the next number of a sequence (works on SQLite and PostgreSQL)."""
    for _ in range(3):
        taken = await session.scalar(
            update(ReferenceCounter)
            .where(ReferenceCounter.prefix == prefix)
            .values(value=ReferenceCounter.value + 1)
            .returning(ReferenceCounter.value)
        )
        if taken is not None:
            return int(taken)
        try:
            async with session.begin_nested():
                await session.execute(insert(ReferenceCounter).values(prefix=prefix, value=1))
            return 1
        except IntegrityError:  # someone else created the counter first; take the next one
            continue
    raise RuntimeError(f"could not take a number for {prefix}")


async def create_signal(
    session: AsyncSession, new: NewSignal, *, year: int, now: dt.datetime
) -> Signal:
    """Store a confirmed report with a fresh reference number and its first history entry."""
    prefix = f"{REFERENCE_PREFIX}-{year}"
    number = await next_number(session, prefix)
    return await _insert_signal(session, new, f"{prefix}-{number:04d}", now)


async def give_back(session: AsyncSession, prefix: str, number: int) -> None:
    """Return a number just taken and not used, so no reference is skipped (the caller's
    transaction still holds the counter: nobody took a later one)."""
    await session.execute(
        update(ReferenceCounter)
        .where(ReferenceCounter.prefix == prefix, ReferenceCounter.value == number)
        .values(value=number - 1)
    )


async def _insert_signal(
    session: AsyncSession, new: NewSignal, reference: str, now: dt.datetime
) -> Signal:
    signal = Signal(
        reference=reference,
        wijk_id=new.wijk_id,
        resident_id=new.resident_id,
        category=new.category,
        description=new.description,
        latitude=new.latitude,
        longitude=new.longitude,
        location_text=new.location_text,
        occurred=new.occurred,
        occurred_text=new.occurred_text,
        frequency=new.frequency,
        photo_file_id=new.photo_file_id,
        contactable=new.contactable,
        contact_name=new.contact_name,
        on_behalf=new.on_behalf,
        draft_key=new.draft_key,
        status="nieuw",
    )
    signal.created_at = now
    signal.updated_at = now
    signal.history.append(SignalEvent(kind="created", to_status="nieuw", actor="resident", at=now))
    session.add(signal)
    await session.flush()
    return signal


async def signal_of_draft(session: AsyncSession, draft_key: str) -> Signal | None:
    """The report already stored from a draft, if any."""
    return await session.scalar(select(Signal).where(Signal.draft_key == draft_key))


async def store_once(
    session: AsyncSession,
    prefix: str,
    *,
    find: Callable[[], Awaitable[Stored | None]],
    insert: Callable[[str], Awaitable[Stored]],
) -> tuple[Stored, bool]:
    """Store what a draft describes once, under the next reference of ``prefix``: (the new
    row, True), or (the row stored from the same draft before, False), also when another
    transaction stores it at the same time. ``find`` looks the draft's row up; ``insert``
    stores it under the reference it is given.

    Taking the reference number first makes sends of one sequence wait for each other (and on
    SQLite it opens the transaction, so the savepoint below is a nested one); the number
    goes back when the draft turns out to be stored already."""
    existing = await find()
    if existing is not None:
        return existing, False
    number = await next_number(session, prefix)
    existing = await find()  # stored while we waited
    if existing is None:
        try:
            async with session.begin_nested():
                stored = await insert(f"{prefix}-{number:04d}")
            return stored, True
        except IntegrityError:  # stored at the same moment under another year's number
            existing = await find()
            if existing is None:
                raise
    await give_back(session, prefix, number)
    return existing, False


async def store_signal_once(
    session: AsyncSession, new: NewSignal, *, year: int, now: dt.datetime
) -> tuple[Signal, bool]:
    """Store the report of a draft once (see :func:`store_once`)."""
    draft_key = new.draft_key
    assert draft_key is not None
    return await store_once(
        session,
        f"{REFERENCE_PREFIX}-{year}",
        find=lambda: signal_of_draft(session, draft_key),
        insert=lambda reference: _insert_signal(session, new, reference, now),
    )


async def signals_of_resident(
    session: AsyncSession, resident_id: int, *, limit: int = 20
) -> Sequence[Signal]:
    """The resident's own reports, newest first."""
    result = await session.scalars(
        select(Signal)
        .where(Signal.resident_id == resident_id)
        .order_by(Signal.created_at.desc(), Signal.id.desc())
        .limit(limit)
    )
    return result.all()


async def count_signals_of_resident(session: AsyncSession, resident_id: int) -> int:
    """How many reports a resident has made in total."""
    return int(
        await session.scalar(
            select(func.count()).select_from(Signal).where(Signal.resident_id == resident_id)
        )
        or 0
    )


async def signal_by_reference(session: AsyncSession, reference: str) -> Signal | None:
    """A signal with its history by reference number (case-insensitive)."""
    return await session.scalar(
        select(Signal)
        .where(Signal.reference == reference.strip().upper())
        .options(selectinload(Signal.history))
    )


async def signals_between(
    session: AsyncSession, wijk_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> Sequence[Signal]:
    """Signals of some wijken created in [start, end), oldest first."""
    result = await session.scalars(
        select(Signal)
        .where(
            Signal.wijk_id.in_(list(wijk_ids)), Signal.created_at >= start, Signal.created_at < end
        )
        .order_by(Signal.created_at, Signal.id)
    )
    return result.all()
