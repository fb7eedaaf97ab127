"""Local-calendar rules across DST changes (storage/calendar.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from buurtsignaal.storage.calendar import add_working_days, latest_slot, next_slot, shift_days

AMS = ZoneInfo("Europe/Amsterdam")
EIGHT = dt.time(8, 0)


def local(*args: int) -> dt.datetime:
    year, month, day, hour, minute, *_ = (*args, 0, 0)
    return dt.datetime(year, month, day, hour, minute, tzinfo=AMS)


def test_the_day_before_keeps_the_wall_clock_time_across_dst() -> None:
    # Summer time starts on 28 March 2027: that day has 23 hours.
    spring = local(2027, 3, 28, 8, 0)
    assert shift_days(spring, -1, AMS) == local(2027, 3, 27, 8, 0)
    assert spring - shift_days(spring, -1, AMS) == dt.timedelta(hours=23)
    # Winter time starts on 31 October 2027: that day has 25 hours.
    autumn = local(2027, 10, 31, 8, 0)
    assert shift_days(autumn, -1, AMS) == local(2027, 10, 30, 8, 0)
    assert autumn - shift_days(autumn, -1, AMS) == dt.timedelta(hours=25)


def test_slots_are_at_eight_local_time_on_dst_days() -> None:
    assert latest_slot(local(2027, 3, 28, 7, 59), EIGHT, AMS) == local(2027, 3, 27, 8, 0)
    assert latest_slot(local(2027, 3, 28, 8, 0), EIGHT, AMS) == local(2027, 3, 28, 8, 0)
    assert next_slot(local(2027, 10, 30, 9, 0), EIGHT, AMS) == local(2027, 10, 31, 8, 0)
    assert next_slot(local(2027, 10, 31, 8, 0), EIGHT, AMS) == local(2027, 10, 31, 8, 0)


def test_working_days_skip_the_weekend_and_keep_the_time_across_dst() -> None:
    friday = local(2027, 3, 26, 17, 0)  # the weekend has the change to summer time
    assert add_working_days(friday, 2, AMS) == local(2027, 3, 30, 17, 0)
    assert add_working_days(local(2027, 3, 27, 10, 0), 1, AMS) == local(2027, 3, 29, 10, 0)


async def test_a_first_digest_on_the_day_summer_time_starts_covers_one_calendar_day(
    db_url: str,
) -> None:
    """A new recipient's first digest starts at the previous day's digest time, also when
    that day has 23 hours (a 24-hour subtraction put it an hour early)."""
    import asyncio

    from sqlalchemy import select

    from buurtsignaal.storage import migrate
    from buurtsignaal.storage.db import Database
    from buurtsignaal.storage.digest import due_recipients
    from buurtsignaal.storage.models import RoleGrant, Wijk

    await asyncio.to_thread(migrate.upgrade, db_url)
    db = Database(db_url)
    try:
        async with db.begin() as session:
            session.add(Wijk(slug="noord", name="Noord", active=True))
        async with db.begin() as session:
            wijk = await session.scalar(select(Wijk))
            assert wijk is not None
            session.add(
                RoleGrant(
                    telegram_id=2001,
                    role="wijkagent",
                    wijk_id=wijk.id,
                    display_name="Sanne",
                    granted_at=local(2027, 3, 27, 20, 0),
                )
            )
        async with db.begin() as session:
            [due] = await due_recipients(
                session, wijk.id, slot=local(2027, 3, 28, 8, 0), at=EIGHT, tz=AMS
            )
    finally:
        await db.dispose()
    assert due.since == local(2027, 3, 27, 8, 0)
