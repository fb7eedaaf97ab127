"""Buurtbemiddeling storage: appointment notices and reminders the day before, claimed once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.mediation.common import (
    APPOINTMENT_TOLD,
    APPOINTMENT_UNTOLD,
    BOT,
    CLOSED,
    REMINDER_BEFORE,
    REMINDER_SENT,
    REMINDER_UNDELIVERED,
)
from buurtsignaal.storage.mediation.handling import _record, get_case
from buurtsignaal.storage.models import (
    MediationAppointment,
    MediationCase,
    MediationEvent,
    MediationParty,
)

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
