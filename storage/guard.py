"""The profiling guard: notice when a description says who someone is or looks like
(origin, nationality, skin colour, religion, ...) rather than what they did.

The word lists are data (storage/data/profiling_<language>.txt), reviewed by people, with
every inflection written out. Matching is on whole words, case- and accent-insensitive, so a
street like "Turfmarkt" never trips over "turk". Only a monthly count is stored, no text.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GuardCount

DATA = Path(__file__).with_name("data")
LANGUAGES = ("nl", "en")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def _fold(text: str) -> str:
    """Lower case without accents: 'Somaliër' -> 'somalier'."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of a text, folded."""
    return _WORD.findall(_fold(text))


@cache
def entries() -> frozenset[tuple[str, ...]]:
    """Every listed entry as a tuple of folded words, over all languages."""
    found: set[tuple[str, ...]] = set()
    for language in LANGUAGES:
        text = (DATA / f"profiling_{language}.txt").read_text(encoding="utf-8")
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            for entry in line.split(","):
                tokens = tuple(words(entry))
                if tokens:
                    found.add(tokens)
    return frozenset(found)


def mentions_appearance(text: str) -> bool:
    """True when the text names origin, nationality, skin colour, religion or similar."""
    tokens = words(text)
    listed = entries()
    longest = max((len(e) for e in listed), default=1)
    for start in range(len(tokens)):
        for size in range(1, longest + 1):
            if tuple(tokens[start : start + size]) in listed:
                return True
    return False


async def count_guard(session: AsyncSession, now: dt.datetime) -> None:
    """Count one firing of the guard in this month (nothing else is kept)."""
    month = now.strftime("%Y-%m")
    row = await session.get(GuardCount, month)
    if row is None:
        session.add(GuardCount(month=month, count=1))
    else:
        row.count += 1
    await session.flush()


async def guard_counts(session: AsyncSession, months: int = 12) -> list[tuple[str, int]]:
    """How often the guard fired, per month, newest first."""
    rows = await session.execute(
        select(GuardCount.month, GuardCount.count).order_by(GuardCount.month.desc()).limit(months)
    )
    return [(month, int(count)) for month, count in rows.all()]
