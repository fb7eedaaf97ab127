"""Koffiemomenten and the Koppel's presence: series, their dates, sign-ups and reminders.

Repeating series are filled in a few weeks ahead (``HORIZON``) and extended by a daily job.
Times are planned in the wijk's local time: a weekly koffiemoment at 10:00 stays at 10:00
across the change to and from summer time. Each date is known by its place in the series
(``Moment.occurrence``), so a date that was moved or cancelled is never filled in again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import Moment, Resident, Series, Signup

HORIZON = dt.timedelta(weeks=8)
PRESENCE_KINDS = ("spreekuur", "wandeling")
STEP = {"weekly": dt.timedelta(weeks=1), "biweekly": dt.timedelta(weeks=2)}
MORNING_HOUR = 8


def occurrences(
    first: dt.datetime, repeat: str, until: dt.datetime, tz: dt.tzinfo
) -> list[dt.datetime]:
    """The start times (UTC) of a series from ``first`` up to ``until``, in local wall time;
    the position in the list is the date's ``occurrence``."""
    local = first.astimezone(tz)
    if repeat == "none":
        return [first.astimezone(dt.UTC)]
    step = STEP[repeat]
    times: list[dt.datetime] = []
    current = local.replace(tzinfo=None)
    while True:
        moment = current.replace(tzinfo=tz).astimezone(dt.UTC)
        if moment > until:
            return times
        times.append(moment)
        current += step


def planned_start(series: Series, occurrence: int, tz: dt.tzinfo) -> dt.datetime:
    """Where the series' rule puts its date number ``occurrence`` (UTC), in local wall time."""
    if series.repeat == "none":
        return series.first_starts_at.astimezone(dt.UTC)
    local = series.first_starts_at.astimezone(tz).replace(tzinfo=None)
    wall = local + STEP[series.repeat] * occurrence
    return wall.replace(tzinfo=tz).astimezone(dt.UTC)


async def _fill(
    session: AsyncSession, series: Series, until: dt.datetime, tz: dt.tzinfo, now: dt.datetime
) -> list[Moment]:
    existing = set(
        (
            await session.scalars(select(Moment.occurrence).where(Moment.series_id == series.id))
        ).all()
    )
    added = []
    for number, starts_at in enumerate(
        occurrences(series.first_starts_at, series.repeat, until, tz)
    ):
        if number in existing or starts_at < now:
            continue
        moment = Moment(
            series_id=series.id,
            occurrence=number,
            wijk_id=series.wijk_id,
            kind=series.kind,
            starts_at=starts_at,
            duration_minutes=series.duration_minutes,
            place=series.place,
            capacity=series.capacity,
        )
        session.add(moment)
        added.append(moment)
    await session.flush()
    return added


async def plan(
    session: AsyncSession,
    *,
    wijk_id: int,
    kind: str,
    place: str,
    starts_at: dt.datetime,
    repeat: str,
    created_by: int,
    tz: dt.tzinfo,
    capacity: int | None = None,
    duration_minutes: int = 90,
    now: dt.datetime,
    draft_key: str | None = None,
) -> Series:
    """Plan a gathering, once or repeating, and fill in its dates. With ``draft_key``, a draft
    planned before is not planned again: see :func:`series_of_draft`."""
    series = Series(
        draft_key=draft_key,
        wijk_id=wijk_id,
        kind=kind,
        place=place,
        repeat=repeat,
        first_starts_at=starts_at,
        duration_minutes=duration_minutes,
        capacity=capacity,
        created_by=created_by,
        created_at=now,
    )
    session.add(series)
    await session.flush()
    await _fill(session, series, max(starts_at, now) + HORIZON, tz, now)
    return series


async def series_of_draft(session: AsyncSession, draft_key: str) -> Series | None:
    """The series already planned from a draft, if any."""
    return await session.scalar(select(Series).where(Series.draft_key == draft_key))


async def extend_all(session: AsyncSession, *, now: dt.datetime, tz: dt.tzinfo) -> int:
    """Add the dates of repeating series up to the horizon; returns how many were added."""
    series = (
        await session.scalars(
            select(Series).where(Series.repeat != "none", Series.cancelled_at.is_(None))
        )
    ).all()
    added = 0
    for one in series:
        added += len(await _fill(session, one, now + HORIZON, tz, now))
    return added


async def upcoming(
    session: AsyncSession,
    wijk_id: int,
    kinds: Sequence[str],
    *,
    now: dt.datetime,
    within: dt.timedelta = dt.timedelta(weeks=4),
) -> Sequence[Moment]:
    """The coming dates (not cancelled) of some kinds in a wijk, soonest first."""
    result = await session.scalars(
        select(Moment)
        .where(
            Moment.wijk_id == wijk_id,
            Moment.kind.in_(list(kinds)),
            Moment.cancelled_at.is_(None),
            Moment.starts_at > now,
            Moment.starts_at <= now + within,
        )
        .order_by(Moment.starts_at, Moment.id)
    )
    return result.all()


@dataclass(frozen=True)
class Count:
    """How many sign-ups a date has, and how many people that is with guests."""

    signups: int
    people: int


async def counts(session: AsyncSession, moment_ids: Sequence[int]) -> dict[int, Count]:
    """Sign-up counts per date (dates without sign-ups are 0)."""
    rows = await session.execute(
        select(Signup.moment_id, func.count(), func.coalesce(func.sum(Signup.guests), 0))
        .where(Signup.moment_id.in_(list(moment_ids)), Signup.cancelled_at.is_(None))
        .group_by(Signup.moment_id)
    )
    found = {mid: Count(int(n), int(n) + int(g)) for mid, n, g in rows.all()}
    return {mid: found.get(mid, Count(0, 0)) for mid in moment_ids}


async def signup_of(session: AsyncSession, moment_id: int, resident_id: int) -> Signup | None:
    """A resident's sign-up for a date (also a cancelled one)."""
    return await session.scalar(
        select(Signup).where(Signup.moment_id == moment_id, Signup.resident_id == resident_id)
    )


class Full(Exception):
    """The date has reached its capacity."""


async def sign_up(
    session: AsyncSession,
    moment: Moment,
    resident: Resident,
    first_name: str,
    *,
    guests: int = 0,
    now: dt.datetime,
) -> tuple[Signup, bool]:
    """Sign a resident up (again); returns the sign-up and whether it is new.

    At most one sign-up per person and date (a unique constraint): a second press, also one
    handled at the same moment, finds the first and changes nothing."""
    existing = await signup_of(session, moment.id, resident.id)
    if existing is not None and existing.cancelled_at is None:
        return existing, False
    if moment.capacity is not None:
        taken = (await counts(session, [moment.id]))[moment.id].people
        if taken + 1 + guests > moment.capacity:
            raise Full
    if existing is None:
        # One row per person and date, also for two presses handled at the same moment: the
        # later insert finds the earlier one and leaves it alone.
        created = await session.scalar(
            _insert(session, Signup)
            .values(
                moment_id=moment.id,
                resident_id=resident.id,
                first_name=first_name[:64],
                guests=guests,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["moment_id", "resident_id"])
            .returning(Signup.id)
        )
        signup = await signup_of(session, moment.id, resident.id)
        assert signup is not None
        return signup, created is not None
    existing.first_name = first_name[:64]
    existing.guests = guests
    existing.created_at = now
    existing.cancelled_at = None
    existing.reminded_day_at = None
    existing.reminded_morning_at = None
    await session.flush()
    return existing, True


def _insert(session: AsyncSession, model: type[Signup]) -> Any:
    """INSERT for the session's database, which can be told what to do on a conflict."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)


async def set_guests(session: AsyncSession, signup: Signup, guests: int) -> None:
    """Change how many people someone brings along (within the capacity)."""
    moment = signup.moment
    if moment.capacity is not None:
        taken = (await counts(session, [moment.id]))[moment.id].people
        if taken - signup.guests + guests > moment.capacity:
            raise Full
    signup.guests = guests
    await session.flush()


async def cancel_signup(session: AsyncSession, signup: Signup, *, now: dt.datetime) -> None:
    """Cancel a sign-up; no reminders follow."""
    signup.cancelled_at = now
    await session.flush()


async def attendees(session: AsyncSession, moment_id: int) -> Sequence[Signup]:
    """Who comes to a date, in sign-up order."""
    result = await session.scalars(
        select(Signup)
        .where(Signup.moment_id == moment_id, Signup.cancelled_at.is_(None))
        .order_by(Signup.created_at, Signup.id)
    )
    return result.all()


async def cancel_moment(
    session: AsyncSession, moment: Moment, *, now: dt.datetime
) -> Sequence[Signup]:
    """Cancel one date; returns the sign-ups to tell."""
    moment.cancelled_at = now
    await session.flush()
    return await attendees(session, moment.id)


async def cancel_series(
    session: AsyncSession, series: Series, *, now: dt.datetime
) -> list[tuple[Moment, Sequence[Signup]]]:
    """Cancel a series and its coming dates; returns each cancelled date with whom to tell."""
    series.cancelled_at = now
    future = (
        await session.scalars(
            select(Moment).where(
                Moment.series_id == series.id,
                Moment.cancelled_at.is_(None),
                Moment.starts_at > now,
            )
        )
    ).all()
    return [(moment, await cancel_moment(session, moment, now=now)) for moment in future]


@dataclass(frozen=True)
class Changed:
    """A date whose time or place changed: whom to tell, and whether the group had been
    given its day-before note (then the group is told of the change too)."""

    moment: Moment
    signups: Sequence[Signup]
    noted: bool


async def move_moment(
    session: AsyncSession,
    moment: Moment,
    *,
    starts_at: dt.datetime | None,
    place: str | None,
    now: dt.datetime,
) -> Changed | None:
    """Change one date's time or place; returns the change, with the sign-ups to tell (None:
    the time and place it already has, so nothing changed and nobody is told).

    A date that moves gets its reminders again for the new time, also when they already went
    out for the old one. The group's day-before note, when it went out, is answered by the
    change itself (``noted``): a date still within its note's day keeps it as given; one
    moved further away gets a new note the day before its new time."""
    moved = starts_at is not None and starts_at != moment.starts_at
    replaced = place is not None and place != moment.place
    if not (moved or replaced):
        return None
    noted = moment.previewed_at is not None
    if starts_at is not None:
        moment.starts_at = starts_at
    if place is not None:
        moment.place = place
    signups = await attendees(session, moment.id)
    if moved:
        if moment.starts_at > now + dt.timedelta(days=1):
            moment.previewed_at = None
        for signup in signups:  # a cancelled sign-up starts afresh when it signs up again
            signup.reminded_day_at = signup.reminded_morning_at = None
    await session.flush()
    return Changed(moment, signups, noted)


async def change_series(
    session: AsyncSession,
    series: Series,
    *,
    place: str | None,
    shift: dt.timedelta | None,
    now: dt.datetime,
    tz: dt.tzinfo,
) -> tuple[list[Changed], int]:
    """Change the place, or the time (``shift`` in local wall time), of a series and of its
    coming dates; returns each change, and how many dates kept an arrangement of their own.

    A date that was moved or given another place on its own keeps that arrangement: the
    organiser settled it for that day, and the series' new rule does not undo it.
    """
    future = (
        await session.scalars(
            select(Moment).where(
                Moment.series_id == series.id,
                Moment.cancelled_at.is_(None),
                Moment.starts_at > now,
            )
        )
    ).all()
    own_time = {m.id for m in future if m.starts_at != planned_start(series, m.occurrence, tz)}
    own_place = {m.id for m in future if m.place != series.place}
    if place is not None:
        series.place = place
    if shift is not None:
        local = series.first_starts_at.astimezone(tz).replace(tzinfo=None) + shift
        series.first_starts_at = local.replace(tzinfo=tz).astimezone(dt.UTC)
    changed = []
    kept = 0
    for m in future:
        starts_at = None
        if shift is not None and m.id not in own_time:
            starts_at = planned_start(series, m.occurrence, tz)
        new_place = place if place is not None and m.id not in own_place else None
        if starts_at is None and new_place is None:
            kept += 1
            continue
        change = await move_moment(session, m, starts_at=starts_at, place=new_place, now=now)
        if change is not None:  # a date already at the new time and place is not "changed"
            changed.append(change)
    return changed, kept


async def get_moment(session: AsyncSession, moment_id: int) -> Moment | None:
    """A date by id."""
    return await session.get(Moment, moment_id)


@dataclass(frozen=True)
class Reminder:
    """A reminder that is due: which sign-up, and 'day' (the day before) or 'morning'."""

    signup: Signup
    kind: str


def reminder_times(starts_at: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """When the day-before and the morning reminder of a date are due (UTC)."""
    local = starts_at.astimezone(tz)
    morning = dt.datetime.combine(local.date(), dt.time(MORNING_HOUR), tz)
    day_before = min(starts_at - dt.timedelta(days=1), morning - dt.timedelta(hours=1))
    return day_before.astimezone(dt.UTC), min(morning, starts_at).astimezone(dt.UTC)


async def due_reminders(
    session: AsyncSession,
    *,
    now: dt.datetime,
    tz: dt.tzinfo,
    after: int = 0,
    limit: int | None = None,
) -> tuple[list[Reminder], int | None]:
    """Reminders to send now: never twice, never for cancelled sign-ups or dates, and not for a
    moment that had already passed when someone signed up.

    Sign-ups are looked at in id order, after ``after`` and at most ``limit`` of them; also
    returned is the last id looked at, to go on from (None: there were none left)."""
    query = (
        select(Signup)
        .join(Moment)
        .join(Resident, Resident.id == Signup.resident_id)
        .where(
            Signup.id > after,
            Signup.cancelled_at.is_(None),
            Resident.unreachable_since.is_(None),  # blocked the bot: skipped
            Moment.cancelled_at.is_(None),
            Moment.starts_at > now,
            Moment.starts_at <= now + dt.timedelta(days=2),
            (Signup.reminded_day_at.is_(None)) | (Signup.reminded_morning_at.is_(None)),
        )
        .order_by(Signup.id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.scalars(query)).all()
    due = []
    for signup in rows:
        day_at, morning_at = reminder_times(signup.moment.starts_at, tz)
        if now >= morning_at and signup.reminded_morning_at is None:
            if signup.created_at < morning_at:
                due.append(Reminder(signup, "morning"))
        elif now >= day_at and signup.reminded_day_at is None and signup.created_at < day_at:
            due.append(Reminder(signup, "day"))
    return due, (rows[-1].id if rows else None)


async def mark_reminded(
    session: AsyncSession, signup_ids: Sequence[int], kind: str, *, now: dt.datetime
) -> set[int]:
    """Mark a batch of reminders of one kind decided (the caller writes them to the outbox in
    the same unit of work); the sign-ups whose reminder was not decided yet.

    One conditional UPDATE for the batch, so two sweeps at the same moment cannot both decide
    one reminder."""
    if not signup_ids:
        return set()
    column = Signup.reminded_morning_at if kind == "morning" else Signup.reminded_day_at
    claimed = set(
        (
            await session.execute(
                update(Signup)
                .where(Signup.id.in_(signup_ids), column.is_(None))
                .values({column.key: now})
                .returning(Signup.id)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    if kind == "morning" and claimed:
        # The day-before reminder is moot once the morning one goes out.
        await session.execute(
            update(Signup)
            .where(Signup.id.in_(claimed), Signup.reminded_day_at.is_(None))
            .values(reminded_day_at=now)
            .execution_options(synchronize_session=False)
        )
    return claimed


GroupMessage = Literal["announced", "previewed"]


def _sent_column(what: GroupMessage) -> Any:
    return Moment.announced_at if what == "announced" else Moment.previewed_at


async def decide_group_message(
    session: AsyncSession, moment_id: int, what: GroupMessage, *, now: dt.datetime
) -> bool:
    """Decide the group's announcement or day-before note of a date (the caller writes it to
    the outbox in the same unit of work), in one conditional update; False when it was already
    decided (by another sweep)."""
    column = _sent_column(what)
    result = await session.execute(
        update(Moment).where(Moment.id == moment_id, column.is_(None)).values({column: now})
    )
    return bool(cast("CursorResult[Any]", result).rowcount == 1)


async def undo_group_message(session: AsyncSession, moment_id: int, what: GroupMessage) -> None:
    """The decided group message could not be delivered: a later sweep decides it again."""
    await session.execute(
        update(Moment).where(Moment.id == moment_id).values({_sent_column(what): None})
    )


async def store_announcement(
    session: AsyncSession, moment_id: int, *, chat_id: int, message_id: int
) -> None:
    """Keep where a date's group announcement is, so its count can be updated later."""
    await session.execute(
        update(Moment)
        .where(Moment.id == moment_id)
        .values(group_chat_id=chat_id, group_message_id=message_id)
    )


async def to_announce(session: AsyncSession, *, now: dt.datetime) -> Sequence[Moment]:
    """Koffie dates to announce in their group: the next date of each series, once."""
    rows = (
        await session.scalars(
            select(Moment)
            .where(
                Moment.kind == "koffie",
                Moment.cancelled_at.is_(None),
                Moment.starts_at > now,
            )
            .order_by(Moment.series_id, Moment.starts_at)
        )
    ).all()
    nexts: dict[int, Moment] = {}
    for moment in rows:
        nexts.setdefault(moment.series_id, moment)
    return [m for m in nexts.values() if m.announced_at is None]


async def to_preview(session: AsyncSession, *, now: dt.datetime) -> Sequence[Moment]:
    """The Koppel's spreekuur and walks of tomorrow that the group has not been told about."""
    result = await session.scalars(
        select(Moment)
        .where(
            Moment.kind.in_(PRESENCE_KINDS),
            Moment.cancelled_at.is_(None),
            Moment.previewed_at.is_(None),
            Moment.starts_at > now,
            Moment.starts_at <= now + dt.timedelta(days=1),
        )
        .order_by(Moment.starts_at)
    )
    return result.all()


async def presence_during(session: AsyncSession, moment: Moment) -> Moment | None:
    """The Koppel's spreekuur or walk in the same wijk that overlaps a date, if any."""
    end = moment.starts_at + dt.timedelta(minutes=moment.duration_minutes)
    rows = await session.scalars(
        select(Moment)
        .where(
            Moment.wijk_id == moment.wijk_id,
            Moment.kind.in_(PRESENCE_KINDS),
            Moment.cancelled_at.is_(None),
            Moment.starts_at < end,
            Moment.starts_at > moment.starts_at - dt.timedelta(days=1),
        )
        .order_by(Moment.starts_at, Moment.id)
    )
    for presence in rows:
        if presence.starts_at + dt.timedelta(minutes=presence.duration_minutes) > moment.starts_at:
            return presence
    return None


async def announced(session: AsyncSession, wijk_id: int, *, now: dt.datetime) -> Sequence[int]:
    """The coming koffie dates of a wijk that have an announcement in the group."""
    result = await session.scalars(
        select(Moment.id).where(
            Moment.wijk_id == wijk_id,
            Moment.kind == "koffie",
            Moment.group_message_id.is_not(None),
            Moment.starts_at > now,
        )
    )
    return result.all()
