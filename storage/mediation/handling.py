"""Buurtbemiddeling storage: reading cases and the bemiddelaar's actions on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import flag_modified

from buurtsignaal.storage.mediation.common import (
    AGREED,
    APPOINTMENT,
    APPOINTMENT_PARTIES,
    CALL,
    CLOSED,
    CLOSED_EVENT,
    JOINT_TALK,
    MEDIATORS,
    NAZORG,
    NOTE,
    OPEN_STAGES,
    OUTCOMES,
    STAGE,
    STAGE_UNDONE,
    TAKEN,
    UNDO_WINDOW,
    MediationProblem,
    actor_telegram_id,
    both_agreed,
    pro_actor,
)
from buurtsignaal.storage.models import (
    MediationAppointment,
    MediationCase,
    MediationEvent,
    MediationParty,
)


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
