"""The daily digest of a wijk: what it contains, who is due one, and the delivery watermark.

Watermark: per (wijk, recipient) the :class:`~storage.models.DigestDelivery` row keeps
``covered_until``, the cut-off of the last digest written to the outbox. The digest for a slot
(the wijk's digest time on some day) covers the signals created in ``(covered_until, slot]``;
``covered_until`` moves to the slot in the unit of work that writes it to the outbox, which
delivers it. A recipient without a row starts one day before the first slot after they got the
role. So every signal is in exactly one digest per recipient, also when the bot was down at
the slot (the next run covers the missed slot).

New-signal alerts: each professional chooses per wijk between every new signal at once
(:data:`IMMEDIATE`, the default) and the digest only (:data:`DIGEST_ONLY`). The alerts for a
signal are decided in the unit of work that stores it (a :class:`~storage.models.SignalAlert`
row per recipient, written to the outbox by the caller in the same unit of work).
:func:`delivery_promise` tells the resident, from the same preferences, when it will be seen.

Nothing here knows Telegram; the texts are made in conversations/digest/texts.py.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage import access
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.calendar import add_working_days, monday_of, next_slot, shift_days
from buurtsignaal.storage.hotspots import HotspotSummary, active_hotspots, summarise
from buurtsignaal.storage.models import AlertPreference, DigestDelivery, Signal, SignalAlert, Wijk
from buurtsignaal.storage.signals import CATEGORIES, OPEN_STATUSES

IMMEDIATE, DIGEST_ONLY = "immediate", "digest"
# Without a choice, every new signal comes at once: residents are told the pair gets their
# report, a wijk has a few signals a day at most, and an early signal is worth most early.
DEFAULT_ALERT_MODE = IMMEDIATE


# --- time -----------------------------------------------------------------------------------


def is_overdue(signal: Signal, *, now: dt.datetime, response_days: int, tz: dt.tzinfo) -> bool:
    """Still "nieuw" (nobody picked it up) after ``response_days`` working days."""
    if signal.status != "nieuw":
        return False
    return now > add_working_days(signal.created_at, response_days, tz)


def overdue_bounds(now: dt.datetime, response_days: int) -> tuple[dt.datetime, dt.datetime]:
    """Signals still "nieuw" created before the first bound are overdue for sure, those from the
    second bound on are not overdue yet; only the ones in between need :func:`is_overdue`. So
    the database can count the others.

    ``response_days`` working days are at least that many days and at most two more for each
    weekend they span; a clock change moves either by an hour."""
    weekends = response_days // 5 + 1
    return (
        now - dt.timedelta(days=response_days + 2 * weekends + 1),
        now - dt.timedelta(days=response_days) + dt.timedelta(hours=2),
    )


# --- contents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalBrief:
    """One signal as a digest shows it. No resident identity, except the name of a resident
    who chose to be contactable."""

    reference: str
    category: str
    place: str | None
    latitude: float | None
    longitude: float | None
    frequency: str
    status: str
    created_at: dt.datetime
    contact_name: str | None
    overdue: bool


@dataclass(frozen=True)
class Digest:
    """What the pair of a wijk should know: new, open and overdue signals, hotspots, trend.

    ``open`` and ``overdue`` hold the oldest ones only (as many as asked for); their counts
    are ``open_count`` and ``overdue_count``."""

    wijk_id: int
    wijk_name: str
    since: dt.datetime
    until: dt.datetime
    now: dt.datetime
    response_days: int
    new: tuple[SignalBrief, ...]
    new_by_category: tuple[tuple[str, int], ...]
    open: tuple[SignalBrief, ...]
    open_count: int
    overdue: tuple[SignalBrief, ...]
    overdue_count: int
    hotspots: tuple[HotspotSummary, ...]
    previous_count: int

    @property
    def new_count(self) -> int:
        """How many signals came in during the period."""
        return len(self.new)

    @property
    def trend(self) -> int:
        """New signals in this period minus those in the previous period of the same length."""
        return self.new_count - self.previous_count


def _brief(signal: Signal, *, now: dt.datetime, response_days: int, tz: dt.tzinfo) -> SignalBrief:
    return SignalBrief(
        reference=signal.reference,
        category=signal.category,
        place=signal.location_text,
        latitude=signal.latitude,
        longitude=signal.longitude,
        frequency=signal.frequency,
        status=signal.status,
        created_at=signal.created_at,
        contact_name=signal.contact_name if signal.contactable else None,
        overdue=is_overdue(signal, now=now, response_days=response_days, tz=tz),
    )


def _by_category(signals: Sequence[SignalBrief]) -> tuple[tuple[str, int], ...]:
    counts = Counter(s.category for s in signals)
    order = [c for c in CATEGORIES if c in counts] + sorted(
        c for c in counts if c not in CATEGORIES
    )
    return tuple((c, counts[c]) for c in order)


# A digest lists at most this many open and overdue signals (the oldest); the rest are counted.
SHOWN = 40


async def build_digest(
    session: AsyncSession,
    wijk_id: int,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    response_days: int,
    tz: dt.tzinfo,
    hotspot_days: int,
    shown: int = SHOWN,
) -> Digest:
    """The digest of a wijk for signals created in ``(since, until]``, as of ``now``.

    Open and overdue signals are those created up to ``until`` that are still open at ``now``
    (signals after ``until`` belong to the next digest); they are counted in the database and
    only the oldest ``shown`` of each are loaded. Hotspots are those active at ``now``.
    """
    wijk = await session.get(Wijk, wijk_id)
    in_wijk = Signal.wijk_id == wijk_id
    oldest_first = (Signal.created_at, Signal.id)
    new_rows = (
        await session.scalars(
            select(Signal)
            .where(in_wijk, Signal.created_at > since, Signal.created_at <= until)
            .order_by(*oldest_first)
        )
    ).all()
    still_open = (in_wijk, Signal.status.in_(OPEN_STATUSES), Signal.created_at <= until)
    # The oldest open ones, status by status: each query reads just its rows off the index on
    # (wijk, status, created_at), where one query for all would walk the wijk's whole history.
    open_rows = sorted(
        [
            signal
            for status in OPEN_STATUSES
            for signal in (
                await session.scalars(
                    select(Signal)
                    .where(in_wijk, Signal.status == status, Signal.created_at <= until)
                    .order_by(*oldest_first)
                    .limit(shown)
                )
            ).all()
        ],
        key=lambda s: (s.created_at, s.id),
    )[:shown]
    open_count = await session.scalar(select(func.count()).select_from(Signal).where(*still_open))
    # Overdue: "nieuw" and older than the response time; only those near the edge are checked
    # one by one (working days), the older ones are counted in the database.
    surely, not_yet = overdue_bounds(now, response_days)
    waiting = (in_wijk, Signal.status == "nieuw", Signal.created_at <= until)
    surely_count = await session.scalar(
        select(func.count()).select_from(Signal).where(*waiting, Signal.created_at < surely)
    )
    oldest_overdue = (
        await session.scalars(
            select(Signal)
            .where(*waiting, Signal.created_at < surely)
            .order_by(*oldest_first)
            .limit(shown)
        )
    ).all()
    edge = [
        s
        for s in (
            await session.scalars(
                select(Signal)
                .where(*waiting, Signal.created_at >= surely, Signal.created_at < not_yet)
                .order_by(*oldest_first)
            )
        ).all()
        if is_overdue(s, now=now, response_days=response_days, tz=tz)
    ]
    length = until - since
    previous = await session.scalar(
        select(func.count())
        .select_from(Signal)
        .where(in_wijk, Signal.created_at > since - length, Signal.created_at <= since)
    )
    hotspots = [
        await summarise(session, h)
        for h in await active_hotspots(session, wijk_id, now=now, days=hotspot_days)
    ]

    def brief(signal: Signal) -> SignalBrief:
        return _brief(signal, now=now, response_days=response_days, tz=tz)

    new = tuple(brief(s) for s in new_rows)
    return Digest(
        wijk_id=wijk_id,
        wijk_name=wijk.name if wijk else "",
        since=since,
        until=until,
        now=now,
        response_days=response_days,
        new=new,
        new_by_category=_by_category(new),
        open=tuple(brief(s) for s in open_rows),
        open_count=int(open_count or 0),
        overdue=tuple(brief(s) for s in [*oldest_overdue, *edge][:shown]),
        overdue_count=int(surely_count or 0) + len(edge),
        hotspots=tuple(hotspots),
        previous_count=int(previous or 0),
    )


# --- the picture: signals per category per week ----------------------------------------------


@dataclass(frozen=True)
class WeekCounts:
    """Signals per category in one ISO week (local time)."""

    year: int
    week: int
    monday: dt.date
    counts: dict[str, int]


async def weekly_counts(
    session: AsyncSession, wijk_id: int, *, before: dt.datetime, weeks: int, tz: dt.tzinfo
) -> list[WeekCounts]:
    """The ``weeks`` complete ISO weeks before the week of ``before``, oldest first."""
    this_monday = before.astimezone(tz).date()
    this_monday = monday_of(this_monday)
    mondays = [this_monday - dt.timedelta(weeks=n) for n in range(weeks, 0, -1)]
    start = dt.datetime.combine(mondays[0], dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(this_monday, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    rows = (
        await session.execute(
            select(Signal.created_at, Signal.category).where(
                Signal.wijk_id == wijk_id, Signal.created_at >= start, Signal.created_at < end
            )
        )
    ).all()
    buckets: dict[dt.date, Counter[str]] = {monday: Counter() for monday in mondays}
    for created_at, category in rows:
        day = created_at.astimezone(tz).date()
        buckets[monday_of(day)][category] += 1
    result = []
    for monday in mondays:
        year, week, _ = monday.isocalendar()
        result.append(WeekCounts(year, week, monday, dict(buckets[monday])))
    return result


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A recipient who has not had the digest of a slot yet, and from when it must cover."""

    recipient: int
    since: dt.datetime


def digest_roles() -> list[str]:
    """The roles that receive the digest."""
    return [role for role, granted in access.PERMISSIONS.items() if Permission.DIGEST in granted]


async def due_recipients(
    session: AsyncSession, wijk_id: int, *, slot: dt.datetime, at: dt.time, tz: dt.tzinfo
) -> list[Due]:
    """Who should have the digest of ``slot`` (daily at ``at``) but has not: their watermark
    is before it.

    A recipient without a watermark is due when they already had the role at the slot. Their
    first digest starts one day before the first slot after they got the role, so a first
    digest that failed (blocked, bot down) is not narrowed to the last day later on.
    """
    granted: dict[int, dt.datetime] = {}
    for grant in await access.holders(session, wijk_id, digest_roles()):
        earliest = granted.get(grant.telegram_id)
        if earliest is None or grant.granted_at < earliest:
            granted[grant.telegram_id] = grant.granted_at
    rows = {
        row.recipient: row
        for row in (
            await session.scalars(select(DigestDelivery).where(DigestDelivery.wijk_id == wijk_id))
        ).all()
    }
    due: list[Due] = []
    for recipient, granted_at in granted.items():
        row = rows.get(recipient)
        if row is not None:
            if row.covered_until < slot:
                due.append(Due(recipient, row.covered_until))
        elif granted_at <= slot:
            first = next_slot(granted_at, at, tz)
            due.append(Due(recipient, shift_days(first, -1, tz)))
    return due


async def covered_until(session: AsyncSession, wijk_id: int, recipient: int) -> dt.datetime | None:
    """The cut-off of the last digest delivered to ``recipient`` for a wijk, if any."""
    row = await session.get(DigestDelivery, (wijk_id, recipient))
    return None if row is None else row.covered_until


async def mark_delivered(
    session: AsyncSession,
    wijk_id: int,
    recipient: int,
    *,
    covered_until: dt.datetime,
    now: dt.datetime,
) -> None:
    """Move the watermark when a digest is written to the outbox (never backwards)."""
    row = await session.get(DigestDelivery, (wijk_id, recipient), with_for_update=True)
    if row is None:
        session.add(
            DigestDelivery(
                wijk_id=wijk_id, recipient=recipient, covered_until=covered_until, delivered_at=now
            )
        )
    elif row.covered_until < covered_until:
        row.covered_until = covered_until
        row.delivered_at = now
    await session.flush()


async def undo_delivery(
    session: AsyncSession,
    wijk_id: int,
    recipient: int,
    *,
    slot: dt.datetime,
    back_to: dt.datetime | None,
) -> None:
    """The digest of ``slot`` could not be delivered (the recipient blocked the bot): move the
    watermark back to ``back_to`` (None: there was none), so the next digest covers both
    periods. Only while the watermark is still at ``slot``."""
    row = await session.get(DigestDelivery, (wijk_id, recipient), with_for_update=True)
    if row is None or row.covered_until != slot:
        return
    if back_to is None:
        await session.delete(row)
    else:
        row.covered_until = back_to
    await session.flush()


# --- new-signal alerts: preferences, claims, and what the resident is told ------------------


async def alert_modes(session: AsyncSession, telegram_id: int) -> dict[int, str]:
    """A professional's chosen mode per wijk id (wijken without a choice are left out)."""
    rows = await session.scalars(
        select(AlertPreference).where(AlertPreference.telegram_id == telegram_id)
    )
    return {row.wijk_id: row.mode for row in rows.all()}


async def set_alert_mode(
    session: AsyncSession, wijk_id: int, telegram_id: int, mode: str, *, now: dt.datetime
) -> None:
    """Choose how ``telegram_id`` hears of new signals in a wijk."""
    if mode not in (IMMEDIATE, DIGEST_ONLY):
        raise ValueError(f"unknown alert mode {mode!r}")
    row = await session.get(AlertPreference, (wijk_id, telegram_id), with_for_update=True)
    if row is None:
        session.add(
            AlertPreference(wijk_id=wijk_id, telegram_id=telegram_id, mode=mode, updated_at=now)
        )
    else:
        row.mode = mode
        row.updated_at = now
    await session.flush()


async def _digest_holders(session: AsyncSession, wijk_id: int) -> list[tuple[int, str, str]]:
    """(telegram id, role, mode) of everyone who gets the wijk's digest."""
    grants = await access.holders(session, wijk_id, digest_roles())
    chosen = {
        row.telegram_id: row.mode
        for row in (
            await session.scalars(select(AlertPreference).where(AlertPreference.wijk_id == wijk_id))
        ).all()
    }
    return [(g.telegram_id, g.role, chosen.get(g.telegram_id, DEFAULT_ALERT_MODE)) for g in grants]


async def decide_signal_alerts(
    session: AsyncSession, signal: Signal, *, now: dt.datetime
) -> list[int]:
    """In the unit of work that stores ``signal``: one alert row for every professional of its
    wijk who wants each new signal at once (the caller writes the alerts to the outbox).
    Returns their ids."""
    recipients = sorted(
        {
            telegram_id
            for telegram_id, _, mode in await _digest_holders(session, signal.wijk_id)
            if mode == IMMEDIATE
        }
    )
    for recipient in recipients:
        session.add(
            SignalAlert(signal_id=signal.id, recipient=recipient, created_at=now, sent_at=now)
        )
    await session.flush()
    return recipients


@dataclass(frozen=True)
class DeliveryPromise:
    """When the professionals of a wijk see a new signal: the roles who get it at once, the
    roles who see it in the next digest, and when that digest comes."""

    at_once: tuple[str, ...]
    in_digest: tuple[str, ...]
    next_digest: dt.datetime


async def delivery_promise(
    session: AsyncSession, wijk_id: int, *, now: dt.datetime, at: dt.time, tz: dt.tzinfo
) -> DeliveryPromise:
    """What a resident who reports now may be told. A role counts as "at once" when someone
    holding it gets each new signal at once; roles follow the order of the role table."""
    holders = await _digest_holders(session, wijk_id)
    order = digest_roles()
    at_once = {role for _, role, mode in holders if mode == IMMEDIATE}
    later = {role for _, role, _ in holders} - at_once
    return DeliveryPromise(
        at_once=tuple(r for r in order if r in at_once),
        in_digest=tuple(r for r in order if r in later),
        next_digest=next_slot(now, at, tz),
    )
