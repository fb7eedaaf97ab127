"""Data rights and retention: what we hold about a resident, forgetting them, and removing
personal data on schedule. Every removal leaves a history entry without the removed content.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from buurtsignaal.storage import bot_state
from buurtsignaal.storage.mediation import PARTY_LEFT, anonymise_closed, party_actor
from buurtsignaal.storage.messengers import SIGNAL, is_signal_chat
from buurtsignaal.storage.models import (
    InboxUpdate,
    MediationCase,
    MediationEvent,
    MediationParty,
    Moment,
    Resident,
    RoleGrant,
    Signal,
    SignalEvent,
    Signup,
)
from buurtsignaal.storage.signals import WITHDRAWN

SYSTEM = "system"
CLOSED = "afgehandeld"
# Closed for good: handled, or withdrawn by the reporter. Retention counts from closed_at.
FINISHED = (CLOSED, WITHDRAWN)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def coarse_place(signal: Signal) -> tuple[str | None, float | None, float | None]:
    """What statistics may keep of a place: the street without numbers, coordinates to ~1 km."""
    text = None
    if signal.location_text:
        words = [
            w for w in re.split(r"[\s,]+", signal.location_text) if not any(c.isdigit() for c in w)
        ]
        text = " ".join(words)[:60] or None
    lat = round(signal.latitude, 2) if signal.latitude is not None else None
    lon = round(signal.longitude, 2) if signal.longitude is not None else None
    return text, lat, lon


# --- /mijngegevens -----------------------------------------------------------------------------


async def collect(session: AsyncSession, telegram_id: int) -> dict[str, Any] | None:
    """Everything stored about one resident, as plain data (None when nothing is stored)."""
    resident = await session.scalar(select(Resident).where(Resident.telegram_id == telegram_id))
    grants = (
        await session.scalars(select(RoleGrant).where(RoleGrant.telegram_id == telegram_id))
    ).all()
    conversation_keys = await bot_state.load_kind(session, "conversation")
    mine = f"[{telegram_id}, {telegram_id}]"
    # The one flow conversation stores "<flow>:<step>": the flow is what was unfinished.
    conversations = {
        (str(v) if ":" in str(v) else k).split(":", 1)[0]: v
        for k, v in conversation_keys.items()
        if k.endswith(mine)
    }
    user_data = await bot_state.load_one(session, "user", str(telegram_id))
    if resident is None and not grants and not user_data and not conversations:
        return None
    # The id of the chat with the bot; on Signal only the gateway knows who is behind it.
    data: dict[str, Any] = (
        {"messenger": SIGNAL, "signal_chat": telegram_id}
        if is_signal_chat(telegram_id)
        else {"telegram_id": telegram_id}
    )
    if resident is not None:
        data["resident"] = {
            "language": resident.language,
            "wijk": resident.wijk.name if resident.wijk else None,
            "since": _iso(resident.created_at),
        }
        signals = (
            await session.scalars(
                select(Signal)
                .where(Signal.resident_id == resident.id)
                .options(selectinload(Signal.history))
                .order_by(Signal.created_at)
            )
        ).all()
        data["reports"] = [
            {
                "reference": s.reference,
                "wijk": s.wijk.name,
                "category": s.category,
                "description": s.description,
                "place": s.location_text,
                "latitude": s.latitude,
                "longitude": s.longitude,
                "when": s.occurred,
                "when_text": s.occurred_text,
                "how_often": s.frequency,
                "photo": bool(s.photo_file_id),
                "photos_added_later": sum(1 for e in s.history if e.photo_file_id),
                "contactable": s.contactable,
                "contact_name": s.contact_name,
                "on_behalf": s.on_behalf,
                "status": s.status,
                "created": _iso(s.created_at),
                "your_messages": [e.note for e in s.history if e.actor == "resident" and e.note],
            }
            for s in signals
        ]
        parties = (
            await session.scalars(
                select(MediationParty).where(MediationParty.resident_id == resident.id)
            )
        ).all()
        data["mediation"] = []
        for party in parties:
            case = await session.get(MediationCase, party.case_id)
            assert case is not None
            entry: dict[str, Any] = {
                "reference": case.reference,
                "you_are_party": party.number,
                "stage": case.stage,
                "outcome": case.outcome,
                "contact_via": party.contact_via,
                "phone": party.phone,
                "reachable": party.reachable,
                "consent": _iso(party.consent_at),
                "created": _iso(case.created_at),
            }
            if party.number == 1:  # what they told in their own intake (their own address only)
                entry.update(
                    topic=case.topic,
                    duration=case.duration,
                    talked=case.talked,
                    situation=case.situation,
                    other_party=case.other_party,
                    your_address=case.requester_address,
                )
            data["mediation"].append(entry)
        signups = (
            await session.scalars(select(Signup).where(Signup.resident_id == resident.id))
        ).all()
        data["koffie"] = [
            {
                "date": _iso(s.moment.starts_at),
                "place": s.moment.place,
                "first_name": s.first_name,
                "guests": s.guests,
                "cancelled": _iso(s.cancelled_at),
            }
            for s in signups
        ]
    if grants:
        data["roles"] = [
            {
                "role": g.role,
                "wijk": g.wijk.name,
                "name": g.display_name,
                "since": _iso(g.granted_at),
                "until": _iso(g.revoked_at),
            }
            for g in grants
        ]
    if conversations:
        data["unfinished"] = sorted(conversations)
    return data


# --- /vergeetmij ---------------------------------------------------------------------------------


@dataclass
class Forgotten:
    """What forgetting someone did, and whom to tell."""

    reports_open: int = 0
    reports_closed: int = 0
    mediation_cases: int = 0
    signups: int = 0
    # (telegram id of a professional, signal reference) for contactable reports left open.
    tell: list[tuple[int, str, int]] = field(default_factory=list)


async def forget(session: AsyncSession, telegram_id: int, *, now: dt.datetime) -> Forgotten:
    """Remove a resident's personal data. Open reports stay, unlinked; closed ones keep only
    statistics. Returns what happened and which wijken's professionals must be told."""
    result = Forgotten()
    resident = await session.scalar(select(Resident).where(Resident.telegram_id == telegram_id))
    if resident is not None:
        signals = (
            await session.scalars(
                select(Signal)
                .where(Signal.resident_id == resident.id)
                .options(selectinload(Signal.history))
            )
        ).all()
        for signal in signals:
            was_contactable = signal.contactable
            signal.resident_id = None
            signal.draft_key = None  # it names the resident row
            signal.contact_name = None
            signal.contactable = False
            signal.photo_file_id = None
            for event in signal.history:
                event.photo_file_id = None
            if signal.status in FINISHED:
                _strip_to_statistics(signal)
                for event in signal.history:
                    if event.actor == "resident":
                        event.note = None
                result.reports_closed += 1
            else:
                result.reports_open += 1
                if was_contactable:
                    result.tell.append((signal.wijk_id, signal.reference, signal.assigned_to or 0))
            signal.history.append(
                SignalEvent(kind="reporter_left", actor=SYSTEM, at=now, note=None)
            )
        parties = (
            await session.scalars(
                select(MediationParty).where(MediationParty.resident_id == resident.id)
            )
        ).all()
        for party in parties:
            party.resident_id = None
            party.phone = None
            party.reachable = None
            case = await session.get(MediationCase, party.case_id)
            assert case is not None
            if party.number == 1:
                case.draft_key = None  # it names the resident row
            # Addresses go at once: the requester gave both, the neighbour's is their own.
            case.other_address = None
            if party.number == 1:
                case.requester_address = None
            if case.stage == "afgesloten":
                case.other_party = None
                case.situation = None
            session.add(
                MediationEvent(
                    case_id=case.id, kind=PARTY_LEFT, actor=party_actor(party.number), at=now
                )
            )
            result.mediation_cases += 1
        signups = await session.execute(delete(Signup).where(Signup.resident_id == resident.id))
        result.signups = int(getattr(signups, "rowcount", 0) or 0)
        await session.delete(resident)
    await bot_state.drop(session, "user", str(telegram_id))
    await bot_state.drop_suffix(session, "conversation", f"[{telegram_id}, {telegram_id}]")
    # Updates from the private chat that were set aside keep their text until then.
    await session.execute(
        delete(InboxUpdate).where(InboxUpdate.chat_id == telegram_id, InboxUpdate.state == "failed")
    )
    await session.flush()
    return result


def _strip_to_statistics(signal: Signal) -> None:
    text, lat, lon = coarse_place(signal)
    signal.description = None
    signal.occurred_text = None
    signal.location_text = text
    signal.latitude = lat
    signal.longitude = lon


# --- retention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """One scheduled removal: what kind, which item, and why (no content)."""

    kind: str  # "contact", "content", "signups", "mediation"
    reference: str
    detail: str


async def retention_plan(
    session: AsyncSession,
    *,
    now: dt.datetime,
    contact_days: int,
    content_days: int,
    signup_days: int,
    mediation_days: int,
) -> list[Removal]:
    """What the retention job would remove now."""
    plan: list[Removal] = []
    contact_cut = now - dt.timedelta(days=contact_days)
    content_cut = now - dt.timedelta(days=content_days)
    closed = (
        await session.scalars(
            select(Signal)
            .where(Signal.status.in_(FINISHED), Signal.closed_at.is_not(None))
            .options(selectinload(Signal.history))
            .order_by(Signal.closed_at)
        )
    ).all()
    for signal in closed:
        assert signal.closed_at is not None
        if signal.closed_at <= contact_cut and signal.contact_name:
            plan.append(Removal("contact", signal.reference, f"closed {signal.closed_at:%Y-%m-%d}"))
        has_content = (
            signal.description
            or signal.photo_file_id
            or any(e.photo_file_id for e in signal.history)
            or signal.occurred_text
            or (signal.location_text and coarse_place(signal)[0] != signal.location_text)
        )
        if signal.closed_at <= content_cut and has_content:
            plan.append(Removal("content", signal.reference, f"closed {signal.closed_at:%Y-%m-%d}"))
    signup_cut = now - dt.timedelta(days=signup_days)
    past = (
        await session.scalars(
            select(Moment)
            .where(Moment.starts_at <= signup_cut)
            .join(Signup, Signup.moment_id == Moment.id)
            .distinct()
        )
    ).all()
    for moment in past:
        plan.append(Removal("signups", f"moment-{moment.id}", f"{moment.starts_at:%Y-%m-%d}"))
    mediation_cut = now - dt.timedelta(days=mediation_days)
    cases = (
        await session.scalars(
            select(MediationCase)
            .where(
                MediationCase.stage == "afgesloten",
                MediationCase.closed_at <= mediation_cut,
                MediationCase.anonymised_at.is_(None),
            )
            .order_by(MediationCase.closed_at)
        )
    ).all()
    for case in cases:
        assert case.closed_at is not None
        plan.append(Removal("mediation", case.reference, f"closed {case.closed_at:%Y-%m-%d}"))
    return plan


async def apply_retention(
    session: AsyncSession,
    *,
    now: dt.datetime,
    contact_days: int,
    content_days: int,
    signup_days: int,
    mediation_days: int,
) -> Sequence[Removal]:
    """Remove what the plan says, recording each removal in the item's history."""
    plan = await retention_plan(
        session,
        now=now,
        contact_days=contact_days,
        content_days=content_days,
        signup_days=signup_days,
        mediation_days=mediation_days,
    )
    if any(removal.kind == "mediation" for removal in plan):
        await anonymise_closed(session, now=now, retention_days=mediation_days)
    for removal in plan:
        if removal.kind == "mediation":
            continue
        if removal.kind == "signups":
            moment_id = int(removal.reference.removeprefix("moment-"))
            await session.execute(delete(Signup).where(Signup.moment_id == moment_id))
            continue
        signal = await session.scalar(
            select(Signal)
            .where(Signal.reference == removal.reference)
            .options(selectinload(Signal.history))
        )
        assert signal is not None
        if removal.kind == "contact":
            signal.contact_name = None
            signal.contactable = False
            signal.history.append(SignalEvent(kind="retention_contact", actor=SYSTEM, at=now))
        else:
            _strip_to_statistics(signal)
            signal.photo_file_id = None
            for event in signal.history:
                event.photo_file_id = None
                if event.actor == "resident":
                    event.note = None
            signal.history.append(SignalEvent(kind="retention_content", actor=SYSTEM, at=now))
    await session.flush()
    return plan
