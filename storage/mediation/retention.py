"""Buurtbemiddeling storage: anonymising closed cases after the retention period."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.mediation.common import ANONYMISED, BOT, CLOSED
from buurtsignaal.storage.mediation.handling import _record, _with_parties
from buurtsignaal.storage.models import MediationAppointment, MediationCase

# --- retention ----------------------------------------------------------------------------------


async def anonymise_closed(
    session: AsyncSession, *, now: dt.datetime, retention_days: int
) -> list[str]:
    """Anonymise the cases closed more than ``retention_days`` ago (once each).

    Removed: what is going on, the other party's description, both street addresses, the
    mediators' names, the link to a signal, every party's phone, availability, invite code and
    link to a resident, the place of each appointment and the text of every history entry.
    Kept for statistics: reference, wijk, stage, outcome, topic, duration, talked
    (categories), the coordinator, who referred it, the dates, the parties' status, contact
    way and nazorg answer, the appointments' times and the kinds of the history entries. One
    "anonymised" entry (without any of the removed content) records that it happened.
    Returns the references anonymised now.
    """
    cutoff = now - dt.timedelta(days=retention_days)
    result = await session.scalars(
        _with_parties(
            select(MediationCase).where(
                MediationCase.stage == CLOSED,
                MediationCase.closed_at <= cutoff,
                MediationCase.anonymised_at.is_(None),
            )
        )
    )
    done = []
    for case in result.all():
        case.other_party = None
        case.situation = None
        case.requester_address = None
        case.other_address = None
        case.mediators = None
        case.signal_id = None
        case.anonymised_at = now
        for party in case.parties:
            party.phone = None
            party.reachable = None
            party.invite_code_hash = None
            party.invite_expires_at = None
            party.resident_id = None
        for event in case.history:
            event.note = None
        await session.execute(
            update(MediationAppointment)
            .where(MediationAppointment.case_id == case.id)
            .values(place=None)
            .execution_options(synchronize_session=False)
        )
        _record(session, case, ANONYMISED, actor=BOT, now=now)
        done.append(case.reference)
    await session.flush()
    return done
