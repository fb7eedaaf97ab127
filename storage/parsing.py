"""What people type, read one way everywhere: dates, times, phone numbers and references.

Every place that reads a typed date, time, phone number or reference (the koffie planning,
appointments, /export, the mediation intake, the neighbour's number, /melding and /zaak) uses
these functions, so the grammar a professional learns in one command holds in all of them.
Nothing here knows about Telegram; each function returns None for what it cannot read.
"""

from __future__ import annotations

import datetime as dt
import re

# 26-11-2026, 26/11/2026, 26.11.2026, 2026-11-26, and 26-11-26 (this century).
_DATE_FORMATS = ("%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d", "%d-%m-%y")
# 10:00, 10.00, 10u, 10u30, 10 uur, 9:5 is not a time (minutes take two digits).
_TIME = re.compile(r"^(\d{1,2})(?:(?:[:.]|u)(\d{2})|u|\s*uur)?$")
# "26-11-2026 14:00", "26-11-2026 om 14.00", "26/11/2026 at 14:00": a date, then a time.
_DATETIME = re.compile(r"^(\S+)\s+(.+)$")
_AT = re.compile(r"^(?:om|at)\s+")  # "om 14 uur", "at 14:00": the time after it
# What reads as a try at a date or a time, even one that is not valid (25:00, 31-02-2026,
# 11 uur): a time with two-digit minutes, a day-month(-year), a whole hour, or digits alone.
_WHEN_LIKE = re.compile(
    r"\b\d{1,2}\s*[:.]\s*\d{2}\b"  # 10:30, 25:00, 10.30
    # 31-02-2026, 3.12.2026, 3/12 (not 1-3: a house number, as in "Hobbemastraat 1-3")
    r"|\b\d{1,2}([-/.])\d{1,2}\1\d{2,4}\b|\b\d{1,2}/\d{1,2}\b"
    r"|\b\d{1,2}\s*uur\b"  # 11 uur
    r"|^\d+$",  # 25
    re.IGNORECASE,
)
PHONE_CHARACTERS = frozenset("0123456789+ -()")
PHONE_MAX = 40
# BS-2026-0042, bs 2026 42, 2026-0042 or just 42 (the current year).
_REFERENCE = r"^(?:{prefix}[-\s]?)?(?:(\d{{4}})[-\s])?0*(\d{{1,6}})$"


def local_date(text: str) -> dt.date | None:
    """A calendar date as people type it (day first; or ISO)."""
    cleaned = text.strip()
    for form in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, form).date()
        except ValueError:
            continue
    return None


def local_time(text: str) -> dt.time | None:
    """A time of day as people type it: 10:00, 10.00, 10u, 10u30, 10 uur or 10 (also after
    "om" or "at": "om 10 uur")."""
    found = _TIME.match(_AT.sub("", text.strip().lower(), count=1))
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def looks_like_when(text: str) -> bool:
    """Whether ``text`` reads as a date or a time someone meant to type, valid or not (so it
    is not taken for something else, such as a place name)."""
    return _WHEN_LIKE.search(text.strip()) is not None


def local_datetime(text: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A date and a time ("26-11-2026 14:00", "26-11-2026 om 14.00") in ``tz``."""
    found = _DATETIME.match(text.strip())
    if found is None:
        return None
    day, moment = local_date(found.group(1)), local_time(found.group(2))
    if day is None or moment is None:
        return None
    return dt.datetime.combine(day, moment, tzinfo=tz)


def phone_number(text: str) -> str | None:
    """A phone number as the person typed it (trimmed), or None when it cannot be one:
    only digits, spaces, +, - and brackets, with 8 to 15 digits."""
    cleaned = text.strip()
    digits = sum(c.isdigit() for c in cleaned)
    if len(cleaned) > PHONE_MAX or not set(cleaned) <= PHONE_CHARACTERS:
        return None
    return cleaned if 8 <= digits <= 15 else None


def reference(text: str, *, prefix: str, year: int) -> str | None:
    """A canonical reference (``BS-2026-0042``) from what someone typed: the full reference in
    any case with dash or space, ``2026-0042``, or a bare number (this ``year``)."""
    found = re.match(_REFERENCE.format(prefix=re.escape(prefix)), text.strip().upper())
    if found is None:
        return None
    number = int(found.group(2))
    if number == 0:
        return None
    return f"{prefix}-{found.group(1) or year}-{number:04d}"
