"""Buurtbemiddeling storage: the coordinators' daily overview."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.mediation.common import CLOSED, intake_overdue
from buurtsignaal.storage.mediation.handling import open_cases
from buurtsignaal.storage.models import MediationAppointment, MediationCase

# --- the coordinators' daily overview ---------------------------------------------------------


@dataclass(frozen=True)
class CaseBrief:
    """One line about a case for the coordinators."""

    reference: str
    topic: str
    stage: str
    created_at: dt.datetime


@dataclass(frozen=True)
class AppointmentBrief:
    """An upcoming talk."""

    reference: str
    starts_at: dt.datetime
    kind: str
    parties: str
    place: str | None


@dataclass(frozen=True)
class Overview:
    """What the bemiddelaars of a wijk should know this morning."""

    new: list[CaseBrief]
    stages: dict[str, int]
    overdue: list[CaseBrief]
    upcoming: list[AppointmentBrief]

    @property
    def quiet(self) -> bool:
        """Nothing new, nothing overdue, nothing planned: no message is sent."""
        return not (self.new or self.overdue or self.upcoming)


def _brief(case: MediationCase) -> CaseBrief:
    return CaseBrief(
        reference=case.reference, topic=case.topic, stage=case.stage, created_at=case.created_at
    )


async def overview(
    session: AsyncSession,
    wijk_id: int,
    *,
    now: dt.datetime,
    since: dt.datetime,
    tz: dt.tzinfo,
    intake_days: int,
    days_ahead: int,
) -> Overview:
    """New requests since ``since``, open cases per stage, overdue intakes (still aangemeld
    after ``intake_days`` working days) and the talks planned in the next ``days_ahead`` days."""
    cases = await open_cases(session, [wijk_id])
    stages: dict[str, int] = {}
    for case in cases:
        stages[case.stage] = stages.get(case.stage, 0) + 1
    new = [_brief(c) for c in cases if since <= c.created_at < now]
    overdue = [
        _brief(c) for c in cases if intake_overdue(c, now=now, tz=tz, intake_days=intake_days)
    ]
    result = await session.execute(
        select(MediationAppointment, MediationCase.reference)
        .join(MediationCase, MediationCase.id == MediationAppointment.case_id)
        .where(
            MediationCase.wijk_id == wijk_id,
            MediationCase.stage != CLOSED,
            MediationAppointment.cancelled_at.is_(None),
            MediationAppointment.starts_at > now,
            MediationAppointment.starts_at <= now + dt.timedelta(days=days_ahead),
        )
        .order_by(MediationAppointment.starts_at, MediationAppointment.id)
    )
    upcoming = [
        AppointmentBrief(
            reference=reference,
            starts_at=appointment.starts_at,
            kind=appointment.kind,
            parties=appointment.parties,
            place=appointment.place,
        )
        for appointment, reference in result.all()
    ]
    return Overview(new=new, stages=stages, overdue=overdue, upcoming=upcoming)
