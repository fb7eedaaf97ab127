"""The profiling guard: notice when a description says who people are or look like (origin,
nationality, skin colour, religion, ...) rather than what they did.

It decides on phrases, not single words: "twee zwarte jongens" and "de Turkse buren" describe
people, "de Turkse bakker", "Chinees eten" and "een zwarte jas" do not. The words are reviewed
data in word classes (storage/data/profiling_<language>.txt, whose header explains the classes
and the rules); this module holds only the small phrase rule. Matching is on whole words, case-
and accent-insensitive, within one clause (up to a comma or full stop), so a street like
"Turfmarkt" never trips over "turk". Only a monthly count is stored, no text.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import GuardCount

DATA = Path(__file__).with_name("data")
#: The word lists read; every text is read with all of them (residents write in any language).
LANGUAGES = ("nl", "en", "tr", "pl", "ar")
#: Letters of any script (Latin, Arabic ...), no digits; hyphenated words stay one word.
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
#: Letters that have no accent to strip in Unicode, folded by hand: Polish "biały" -> "bialy".
_PLAIN = str.maketrans({"ł": "l", "ı": "i"})
_CLAUSE = re.compile(r"[.,!?;:()\[\]\n،؛؟]+")  # with the Arabic comma, semicolon, ?

#: The word classes a data file may use (see the header of profiling_nl.txt).
CLASSES = frozenset(
    {
        "trait",
        "group",
        "nationality",
        "shop-name",
        "attribute",
        "person",
        "place",
        "country",
        "modifier",
        "conjunction",
        "article",
        "definite",
        "place-preposition",
        "origin-preposition",
        "copula",
        "pronoun",
        "between",
        "particle",
    }
)
#: Classes whose words can make the guard fire.
FIRING = frozenset({"trait", "group", "nationality", "shop-name", "attribute", "country"})
#: How many modifiers may stand between an attribute and its person word, or between a copula
#: and the attribute said of a person.
WINDOW = 3

Span = frozenset[str]


def _fold(text: str) -> str:
    """Lower case without accents: 'Somaliër' -> 'somalier', 'Białe' -> 'biale', Turkish
    'Faslı' -> 'fasli' (the dotless ı has no accent to drop; 'İ' lowers to i with a dot, which
    is dropped); in Arabic the vowel marks and the hamza on a carrier go: 'أجنبيًا' -> 'اجنبيا'."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_PLAIN))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of a text, folded."""
    return _WORD.findall(_fold(text))


def word_classes(language: str) -> dict[tuple[str, ...], Span]:
    """The entries of one language's list (tuples of folded words) with their word classes."""
    path = DATA / f"profiling_{language}.txt"
    found: dict[tuple[str, ...], set[str]] = {}
    section: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section not in CLASSES:
                raise ValueError(f"{path.name}:{number}: unknown word class [{section}]")
            continue
        if section is None:
            raise ValueError(f"{path.name}:{number}: words before the first [class] line")
        for entry in line.split(","):
            tokens = tuple(words(entry))
            if tokens:
                found.setdefault(tokens, set()).add(section)
    for classes in found.values():
        if "shop-name" in classes:  # a shop name is also a nationality noun
            classes.add("nationality")
    return {tokens: frozenset(classes) for tokens, classes in found.items()}


@cache
def lexicon() -> dict[tuple[str, ...], Span]:
    """Every listed entry with its word classes, over all languages: a text in any language
    is read with every list."""
    merged: dict[tuple[str, ...], Span] = {}
    for language in LANGUAGES:
        for tokens, classes in word_classes(language).items():
            merged[tokens] = merged.get(tokens, frozenset()) | classes
    return merged


@cache
def _longest() -> int:
    """The number of words in the longest listed entry (read once, like the lists)."""
    return max(len(entry) for entry in lexicon())


def entries() -> frozenset[tuple[str, ...]]:
    """Every listed entry that can make the guard fire, as a tuple of folded words."""
    return frozenset(tokens for tokens, classes in lexicon().items() if classes & FIRING)


def _compound(word: str) -> Span:
    """The classes of an unlisted hyphenated word from its parts: 'marokkaans-nederlandse' is an
    attribute, 'oost-europa-ganger' nothing in particular."""
    if "-" not in word:
        return frozenset()
    listed = lexicon()
    parts = [listed.get((part,), frozenset()) for part in word.split("-")]
    found = {c for classes in parts for c in classes & {"trait", "group", "attribute"}}
    found |= parts[-1] & {"person", "place"}
    return frozenset(found)


def _spans(tokens: Sequence[str]) -> list[Span]:
    """The word classes of a sentence, longest listed entry first."""
    listed = lexicon()
    longest = _longest()
    spans: list[Span] = []
    start = 0
    while start < len(tokens):
        for size in range(min(longest, len(tokens) - start), 0, -1):
            classes = listed.get(tuple(tokens[start : start + size]))
            if classes is not None:
                spans.append(classes)
                start += size
                break
        else:
            spans.append(_compound(tokens[start]))
            start += 1
    return spans


def _is_person(span: Span) -> bool:
    return "person" in span and "place" not in span


def _after_place_preposition(spans: Sequence[Span], i: int) -> bool:
    """'bij de ...', 'naar ...', 'at the ...': what follows is a place."""
    before = spans[i - 1] if i >= 1 else frozenset()
    before2 = spans[i - 2] if i >= 2 else frozenset()
    return "place-preposition" in before or ("article" in before and "place-preposition" in before2)


def _qualifies_person(spans: Sequence[Span], i: int) -> bool:
    """Rule 3: the attribute at i stands before a person word ('zwarte jongens')."""
    for j in range(i + 1, min(len(spans), i + WINDOW + 2)):
        if _is_person(spans[j]):
            return True
        if not spans[j] & {"modifier", "conjunction", "attribute"}:
            return False
    return False


def _said_of_person(spans: Sequence[Span], i: int) -> bool:
    """Rule 4: the attribute at i is said of a person ('hij was zwart', 'they looked Asian')."""
    if i + 1 < len(spans) and not spans[i + 1] & {"conjunction", "particle", "attribute"}:
        return False
    k, subject = i - 1, False
    while k >= 0 and "copula" not in spans[k]:
        if i - k > WINDOW or not spans[k] & {"between", "pronoun"}:
            return False
        subject = subject or "pronoun" in spans[k]
        k -= 1
    if k < 0:
        return False
    for m in range(max(0, k - 2), k):  # 'hij was', 'the family upstairs is'
        if spans[m] & {"person", "pronoun"} and "place" not in spans[m]:
            subject = subject or not _after_place_preposition(spans, m)  # not 'van de buurman'
    return subject


def _names_person(spans: Sequence[Span], i: int) -> bool:
    """Rule 5: a nationality noun names a person, not a shop, country or language."""
    if _after_place_preposition(spans, i):
        return False
    before = spans[i - 1] if i >= 1 else frozenset()
    if "shop-name" in spans[i] and "definite" in before:
        return False
    if "attribute" in spans[i] and not ("article" in before and "definite" not in before):
        return False  # 'een Chinees' is a person; 'Chinees eten', 'spraken Chinees' are not
    return not (i + 1 < len(spans) and "place" in spans[i + 1])


def _origin_of_person(spans: Sequence[Span], i: int) -> bool:
    """Rule 6: a country is where a person comes from ('een gezin uit Syrië')."""
    p = i - 1
    if p >= 0 and "article" in spans[p]:
        p -= 1
    if p < 0 or "origin-preposition" not in spans[p]:
        return False
    before = spans[max(0, p - 2) : p]
    return any(span & {"person", "pronoun"} and "place" not in span for span in before)


def _fires(spans: Sequence[Span], i: int) -> bool:
    here = spans[i]
    if here & {"trait", "group"}:
        return True
    if "attribute" in here and (_qualifies_person(spans, i) or _said_of_person(spans, i)):
        return True
    if "nationality" in here and _names_person(spans, i):
        return True
    return "country" in here and _origin_of_person(spans, i)


def mentions_appearance(text: str) -> bool:
    """True when the text describes people by origin, nationality, skin colour or religion."""
    for clause in _CLAUSE.split(_fold(text)):
        spans = _spans(words(clause))
        if any(_fires(spans, i) for i in range(len(spans))):
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
