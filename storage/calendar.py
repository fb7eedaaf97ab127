"""Local-calendar arithmetic, in one place: days, weeks, working days and DST.

A rule such as "the day before at 08:00" or "two working days later" is about the wall clock
in the wijk's time zone, not about a number of hours: on the day summer time starts a day has
23 hours, on the day it ends 25. Every such rule goes through these functions, which work on
local dates and convert to UTC at the end. Instants are timezone-aware; results are in UTC.
"""

from __future__ import annotations

import datetime as dt

WEEKEND = (5, 6)  # Saturday, Sunday


def at_local(day: dt.date, time: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The instant it is ``time`` on ``day`` on the wall clock in ``tz``."""
    return dt.datetime.combine(day, time.replace(tzinfo=None), tzinfo=tz).astimezone(dt.UTC)


def local_date(moment: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The date on the wall clock in ``tz`` at ``moment``."""
    return moment.astimezone(tz).date()


def shift_days(moment: dt.datetime, days: int, tz: dt.tzinfo) -> dt.datetime:
    """The same wall-clock time ``days`` calendar days later (earlier when negative)."""
    local = moment.astimezone(tz)
    return at_local(local.date() + dt.timedelta(days=days), local.time(), tz)


def start_of_day(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """Local midnight at the start of ``day``."""
    return at_local(day, dt.time(0), tz)


def latest_slot(now: dt.datetime, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The most recent daily moment ``at`` (local time) at or before ``now``."""
    today = at_local(local_date(now, tz), at, tz)
    return today if today <= now else shift_days(today, -1, tz)


def next_slot(moment: dt.datetime, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The first daily moment ``at`` (local time) at or after ``moment``."""
    slot = latest_slot(moment, at, tz)
    return slot if slot == moment else shift_days(slot, 1, tz)


def add_working_days(moment: dt.datetime, days: int, tz: dt.tzinfo) -> dt.datetime:
    """``moment`` plus ``days`` working days (Monday to Friday), counted in ``tz``.

    A signal from Friday 17:00 with two working days is due on Tuesday 17:00; one from
    Saturday 10:00 on Tuesday 10:00.
    """
    local = moment.astimezone(tz)
    day = local.date()
    for _ in range(days):
        day += dt.timedelta(days=1)
        while day.weekday() in WEEKEND:
            day += dt.timedelta(days=1)
    return at_local(day, local.time(), tz)


def monday_of(day: dt.date) -> dt.date:
    """The Monday of ``day``'s week."""
    return day - dt.timedelta(days=day.weekday())
