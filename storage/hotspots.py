"""Early warning: signals of one category recurring near one place become a hotspot.

A new signal is compared with the recent signals of the same wijk and category (within
``days``). Two signals are near each other

- by distance (haversine, at most ``radius_m``) when both have coordinates;
- else by street: both typed places normalise to the same street key
  (:func:`street_key`: "Dorpsstraat 12" and "dorpsstraat bij de speeltuin" are one street).

A signal with coordinates and one with only a typed place are never compared.

Counting: every near signal counts once; a signal the resident marked as "it happens more
often" (frequency ``recurring``) counts as :data:`RECURRING_WEIGHT` (two), because it already
stands for more than one occurrence. When the count reaches ``min_signals`` and no active
hotspot covers the place, a :class:`~storage.models.Hotspot` is created and the signals are
linked to it; the caller alerts the pair once (``alerted_at`` records the delivery). Further
signals near an active hotspot are linked to it and move ``last_signal_at``; they cause no
new alert.

A hotspot calms down when no linked signal arrived for ``days`` days: ``calmed_at`` is set to
``last_signal_at + days``. Calm hotspots leave the digests; a later recurrence at the same
place makes a new hotspot with a new alert.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import Hotspot, Signal, Wijk

RECURRING_WEIGHT = 2
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class HotspotRules:
    """When recurring signals count as a hotspot (per wijk)."""

    min_signals: int = 3
    days: int = 14
    radius_m: int = 150


# --- places ---------------------------------------------------------------------------------


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# The endings of street names (Dutch first, some English). A token ending in one of these is
# taken as the street ("dorpsstraat", "kerklaan"); the rest of the text is a landmark.
STREET_SUFFIXES: tuple[str, ...] = (
    "straat",
    "laan",
    "weg",
    "plein",
    "kade",
    "gracht",
    "singel",
    "dreef",
    "hof",
    "park",
    "pad",
    "steeg",
    "dijk",
    "markt",
    "plantsoen",
    "baan",
    "boulevard",
    "allee",
    "wal",
    "haven",
    "erf",
    "veld",
    "ring",
    "dam",
    "poort",
    "vaart",
    "zoom",
    "werf",
    "promenade",
    "street",
    "road",
    "avenue",
    "lane",
    "square",
)
# Words that start a landmark, not a street: "Dorpsstraat bij de speeltuin" is Dorpsstraat.
LANDMARK_WORDS = frozenset(
    {
        "bij",
        "nabij",
        "vlakbij",
        "vlak",
        "naast",
        "achter",
        "tegenover",
        "voor",
        "hoek",
        "kruising",
        "richting",
        "ter",
        "thv",
        "tussen",
        "rond",
        "rondom",
        "omgeving",
        "buurt",
        "onder",
        "boven",
        "near",
        "behind",
        "opposite",
        "next",
        "across",
        "corner",
        "outside",
        "front",
        "beside",
        "by",
        "between",
        "around",
        "close",
    }
)
# Words that start a new part naming where ("in de Dorpsstraat", "on Dorpsstraat").
PLACE_PREPOSITIONS = frozenset({"in", "op", "aan", "te", "langs", "on", "at", "along"})
# Dropped at the start of any part.
ARTICLES = frozenset({"de", "het", "t", "een", "the", "a", "an"})
# Dropped right after a landmark word: "ter hoogte van", "in de buurt van", "next to".
AFTER_LANDMARK = frozenset(
    {"van", "de", "het", "der", "den", "t", "hoogte", "the", "of", "to", "from", "a", "an"}
)
# House numbers and their words: "12", "12a", "nr", "huisnummer".
NUMBER_WORDS = frozenset({"nr", "no", "nummer", "huisnummer", "number", "num", "tm"})
# Words that say nothing about where: "hier", "bij mij thuis", "op straat".
VAGUE_WORDS = frozenset(
    {
        "hier",
        "daar",
        "thuis",
        "overal",
        "mijn",
        "mij",
        "me",
        "ik",
        "wij",
        "ons",
        "onze",
        "huis",
        "woning",
        "buiten",
        "binnen",
        "here",
        "there",
        "home",
        "everywhere",
        "my",
        "us",
        "our",
        "house",
    }
)
VAGUE_KEYS = frozenset({"straat", "street", "weg", "road", "wijk"})
# Small words that belong to a street name before its compound token ("Van Goghstraat").
NAME_PARTICLES = frozenset({"van", "de", "der", "den", "ten", "ter", "het", "s", "t", "la", "le"})

_SEPARATORS = re.compile(r"[,;:()\[\]/\\|+&\n]")
_POSTCODE = re.compile(r"\b\d{4}\s?[a-z]{2}\b")
_THV = re.compile(r"\bt\.?\s?h\.?\s?v\b\.?")
_TOKEN = re.compile(r"[a-z0-9]+")
_PIECE = re.compile(r"[a-z]+|\d+[a-z]{0,3}")
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]{0,3}$|^\d+$")


def fold(text: str) -> str:
    """Lower-case without accents: "Curaçaostraat" → "curacaostraat"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@dataclass(frozen=True)
class _Token:
    text: str
    start: int  # character span in the original text
    end: int


def _fold_with_positions(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` and remember, for every folded character, its original position."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for folded in fold(char):
            chars.append(folded)
            origin.append(index)
    return "".join(chars), origin


def _is_street_token(token: str) -> bool:
    return token.endswith(STREET_SUFFIXES)


def _expand(token: str) -> str:
    """Common abbreviations: "dorpsstr" → "dorpsstraat"."""
    if token.endswith("str") and len(token) > 4:
        return token + "aat"
    return token


@dataclass(frozen=True)
class _Part:
    tokens: tuple[_Token, ...]
    landmark: bool


def _parts(text: str) -> list[_Part]:
    """Split a typed place into parts: separators, prepositions and landmark words start one."""
    folded, origin = _fold_with_positions(text)
    # Blank out postcodes and "t.h.v." (ter hoogte van) without moving any position.
    folded = _POSTCODE.sub(lambda m: " " * len(m.group()), folded)
    folded = _THV.sub(lambda m: "bij" + " " * (len(m.group()) - 3), folded)
    parts: list[_Part] = []
    current: list[_Token] = []
    landmark = False
    after_landmark = False

    def close() -> None:
        nonlocal current
        if current:
            parts.append(_Part(tuple(current), landmark))
        current = []

    position = 0
    for segment in _SEPARATORS.split(folded):
        # A separator always ends a part; what follows is no landmark unless it says so.
        close()
        landmark = after_landmark = False
        for match in _TOKEN.finditer(segment):
            # Letters and digits apart: "dorpsstraat12" is "dorpsstraat 12".
            for piece in _PIECE.finditer(match.group()):
                word = piece.group()
                start = position + match.start() + piece.start()
                end = start + len(word)
                token = _Token(_expand(word), origin[start], origin[end - 1] + 1)
                if word in LANDMARK_WORDS:
                    close()
                    landmark = after_landmark = True
                    continue
                if word in PLACE_PREPOSITIONS:
                    close()
                    landmark = after_landmark = False
                    continue
                if after_landmark and word in AFTER_LANDMARK:
                    continue
                after_landmark = False
                if not current and word in ARTICLES:
                    continue
                if _HOUSE_NUMBER.match(word) or word in NUMBER_WORDS or word in VAGUE_WORDS:
                    continue
                if len(word) == 1:
                    continue
                current.append(token)
        position += len(segment) + 1  # the separator
    close()
    return parts


def _street_tokens(part: _Part) -> tuple[list[_Token], list[_Token]]:
    """The tokens that make the street's key, and those of its label, within one part."""
    tokens = list(part.tokens)
    for index, token in enumerate(tokens):
        if not _is_street_token(token.text):
            continue
        suffix_only = token.text in STREET_SUFFIXES
        if suffix_only and index == 0:
            # "Laan van Meerdervoort", "Plein 1813": the whole part is the name.
            return tokens, tokens
        if suffix_only:
            # "Dorps straat" is "Dorpsstraat"; "Grote Markt" is "Grotemarkt".
            head = index - 1
        else:
            head = index
        # "Van Goghstraat", "Johan de Wittlaan": keep the small name words before it.
        first = head
        while first > 0 and tokens[first - 1].text in NAME_PARTICLES:
            first -= 1
        return tokens[first : index + 1], tokens[: index + 1]
    return tokens, tokens


def _street(text: str) -> tuple[list[_Token], list[_Token]] | None:
    parts = [p for p in _parts(text) if p.tokens]
    if not parts:
        return None
    chosen = (
        next((p for p in parts if any(_is_street_token(t.text) for t in p.tokens)), None)
        or next((p for p in parts if not p.landmark), None)
        or parts[0]
    )
    return _street_tokens(chosen)


def street_key(text: str | None) -> str | None:
    """The normalised street of a typed place, for comparing; None when nothing is left.

    Lower-case, accents stripped, house numbers, postcodes and landmarks ("bij de speeltuin",
    "near the school", "hoek Kerklaan") dropped, spaces removed:
    "Dorpsstraat 12", "dorpsstraat bij de speeltuin" and "Dorps straat" → "dorpsstraat".
    """
    if not text:
        return None
    found = _street(text)
    if found is None:
        return None
    key = "".join(t.text for t in found[0])
    return key if key and key not in VAGUE_KEYS else None


def street_label(text: str | None) -> str | None:
    """The street of a typed place as the resident wrote it: "dorpsstraat 14" → "Dorpsstraat"."""
    if not text:
        return None
    found = _street(text)
    if found is None or not found[1] or street_key(text) is None:
        return None
    label_tokens = found[1]
    label = " ".join(text[label_tokens[0].start : label_tokens[-1].end].split())
    return label[:1].upper() + label[1:]


# --- detection ------------------------------------------------------------------------------


def weight(signal: Signal) -> int:
    """How much a signal counts toward a hotspot: "it happens more often" counts double."""
    return RECURRING_WEIGHT if signal.frequency == "recurring" else 1


def _near(a: Signal, b: Signal, radius_m: int) -> bool:
    if a.latitude is not None and a.longitude is not None:
        if b.latitude is None or b.longitude is None:
            return False
        return haversine_m(a.latitude, a.longitude, b.latitude, b.longitude) <= radius_m
    if b.latitude is not None:
        return False
    key = street_key(a.location_text)
    return key is not None and key == street_key(b.location_text)


def _covers(hotspot: Hotspot, signal: Signal, radius_m: int) -> bool:
    """Whether an active hotspot is about the place of ``signal``."""
    if signal.latitude is not None and signal.longitude is not None:
        if hotspot.place_key is not None or hotspot.latitude is None or hotspot.longitude is None:
            return False
        distance = haversine_m(
            hotspot.latitude, hotspot.longitude, signal.latitude, signal.longitude
        )
        return distance <= radius_m
    key = street_key(signal.location_text)
    return key is not None and hotspot.place_key == key


async def calm_down(
    session: AsyncSession, wijk_id: int, *, now: dt.datetime, days: int
) -> list[Hotspot]:
    """Mark the wijk's hotspots without a new signal for ``days`` days as calm; returns them."""
    cutoff = now - dt.timedelta(days=days)
    result = await session.scalars(
        select(Hotspot).where(
            Hotspot.wijk_id == wijk_id,
            Hotspot.calmed_at.is_(None),
            Hotspot.last_signal_at <= cutoff,
        )
    )
    calmed = list(result.all())
    for hotspot in calmed:
        hotspot.calmed_at = hotspot.last_signal_at + dt.timedelta(days=days)
    await session.flush()
    return calmed


async def active_hotspots(
    session: AsyncSession, wijk_id: int, *, now: dt.datetime, days: int
) -> Sequence[Hotspot]:
    """The wijk's hotspots that have not calmed down at ``now`` (oldest first)."""
    result = await session.scalars(
        select(Hotspot)
        .where(
            Hotspot.wijk_id == wijk_id,
            Hotspot.calmed_at.is_(None),
            Hotspot.last_signal_at > now - dt.timedelta(days=days),
        )
        .order_by(Hotspot.first_signal_at, Hotspot.id)
    )
    return result.all()


async def register_signal(
    session: AsyncSession, signal: Signal, rules: HotspotRules
) -> Hotspot | None:
    """Check a just-stored signal for recurrence; returns a NEW hotspot (to alert), else None.

    Call it in the unit of work that stored the signal. The wijk row is locked for the rest of
    the transaction (PostgreSQL), so two reports at the same moment make one hotspot.
    """
    if signal.latitude is None and street_key(signal.location_text) is None:
        return None
    await session.execute(select(Wijk.id).where(Wijk.id == signal.wijk_id).with_for_update())
    now = signal.created_at
    await calm_down(session, signal.wijk_id, now=now, days=rules.days)
    for hotspot in await active_hotspots(session, signal.wijk_id, now=now, days=rules.days):
        if hotspot.category == signal.category and _covers(hotspot, signal, rules.radius_m):
            signal.hotspot_id = hotspot.id
            hotspot.last_signal_at = max(hotspot.last_signal_at, now)
            await session.flush()
            return None
    recent = await session.scalars(
        select(Signal)
        .outerjoin(Hotspot, Signal.hotspot_id == Hotspot.id)
        .where(
            Signal.wijk_id == signal.wijk_id,
            Signal.category == signal.category,
            Signal.id != signal.id,
            Signal.created_at >= now - dt.timedelta(days=rules.days),
            Signal.created_at <= now,
            # Signals of an active hotspot belong to it already.
            (Signal.hotspot_id.is_(None)) | (Hotspot.calmed_at.is_not(None)),
        )
        .order_by(Signal.created_at, Signal.id)
    )
    near = [s for s in recent.all() if _near(signal, s, rules.radius_m)]
    members = [*near, signal]
    if sum(weight(s) for s in members) < rules.min_signals:
        return None
    hotspot = _new_hotspot(signal, members)
    session.add(hotspot)
    await session.flush()
    for member in members:
        member.hotspot_id = hotspot.id
    await session.flush()
    return hotspot


def _new_hotspot(signal: Signal, members: list[Signal]) -> Hotspot:
    first = min(s.created_at for s in members)
    last = max(s.created_at for s in members)
    if signal.latitude is not None and signal.longitude is not None:
        points = [(s.latitude, s.longitude) for s in members]
        lat = sum(p[0] for p in points if p[0] is not None) / len(points)
        lon = sum(p[1] for p in points if p[1] is not None) / len(points)
        return Hotspot(
            wijk_id=signal.wijk_id,
            category=signal.category,
            place_key=None,
            latitude=lat,
            longitude=lon,
            label=f"{lat:.5f}, {lon:.5f}",
            first_signal_at=first,
            last_signal_at=last,
        )
    label = street_label(signal.location_text) or (signal.location_text or "?")
    return Hotspot(
        wijk_id=signal.wijk_id,
        category=signal.category,
        place_key=street_key(signal.location_text),
        label=label[:300],
        first_signal_at=first,
        last_signal_at=last,
    )


@dataclass(frozen=True)
class HotspotSummary:
    """A hotspot as professionals see it: no resident identity, only references and counts."""

    id: int
    wijk_id: int
    wijk_name: str
    category: str
    label: str
    by_distance: bool
    latitude: float | None
    longitude: float | None
    references: tuple[str, ...]
    signals: int
    recurring: int
    first_signal_at: dt.datetime
    last_signal_at: dt.datetime
    alerted_at: dt.datetime | None
    calmed_at: dt.datetime | None


async def summarise(session: AsyncSession, hotspot: Hotspot) -> HotspotSummary:
    """The signals and counts of a hotspot."""
    linked = (
        await session.scalars(
            select(Signal)
            .where(Signal.hotspot_id == hotspot.id)
            .order_by(Signal.created_at, Signal.id)
        )
    ).all()
    wijk = await session.get(Wijk, hotspot.wijk_id)
    return HotspotSummary(
        id=hotspot.id,
        wijk_id=hotspot.wijk_id,
        wijk_name=wijk.name if wijk else "",
        category=hotspot.category,
        label=hotspot.label,
        by_distance=hotspot.place_key is None,
        latitude=hotspot.latitude,
        longitude=hotspot.longitude,
        references=tuple(s.reference for s in linked),
        signals=len(linked),
        recurring=sum(1 for s in linked if s.frequency == "recurring"),
        first_signal_at=hotspot.first_signal_at,
        last_signal_at=hotspot.last_signal_at,
        alerted_at=hotspot.alerted_at,
        calmed_at=hotspot.calmed_at,
    )


async def get_summary(session: AsyncSession, hotspot_id: int) -> HotspotSummary | None:
    """A hotspot's summary by id."""
    hotspot = await session.get(Hotspot, hotspot_id)
    return None if hotspot is None else await summarise(session, hotspot)


async def unalerted(
    session: AsyncSession, wijk_id: int, *, now: dt.datetime, days: int
) -> list[int]:
    """Ids of the wijk's active hotspots whose alert has not been delivered yet."""
    return [
        h.id
        for h in await active_hotspots(session, wijk_id, now=now, days=days)
        if h.alerted_at is None
    ]


async def mark_alerted(session: AsyncSession, hotspot_id: int, *, now: dt.datetime) -> None:
    """Record that the pair has the alert of a hotspot."""
    hotspot = await session.get(Hotspot, hotspot_id)
    if hotspot is not None and hotspot.alerted_at is None:
        hotspot.alerted_at = now
        await session.flush()
