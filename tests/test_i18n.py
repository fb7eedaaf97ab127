"""Every user-facing text is translated into Dutch and English, with the same placeholders."""

from __future__ import annotations

import datetime as dt
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from bot.i18n import LANGUAGES, Translator, escape, load_catalog
from conversations.ui import local_date, local_datetime, short_date

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"t": None, "N_": None, "ngettext": (1, 2)}


def _source_messages() -> set[str | tuple[str, ...]]:
    found: set[str | tuple[str, ...]] = set()
    for folder in ("bot", "conversations"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=(),
        ):
            if isinstance(message, tuple):
                found.add(tuple(m for m in message if m))
            elif message:
                found.add(message)
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_in_the_code_is_translated(language: str) -> None:
    catalog = load_catalog(language)
    missing = []
    for message in sorted(_source_messages(), key=str):
        entry = catalog.get(message if isinstance(message, str) else message[0])
        found = None if entry is None else entry.string
        strings = [found] if isinstance(found, str) else list(found or ())
        if entry is None or entry.fuzzy or not all(strings) or not strings:
            missing.append(message)
    assert not missing, (
        f"{len(missing)} message(s) without a {language} translation; run `make translations` "
        f"and translate them: {missing[:5]}"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    for entry in load_catalog(language):
        if not entry.id or not entry.string:
            continue
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        expected = _fields(ids[-1]) | ({"n"} if len(ids) > 1 else set())
        for text in strings:
            assert _fields(text) <= expected, f"{language}: {text!r} uses unknown placeholders"
            assert _fields(ids[0]) - {"n"} <= _fields(text) | {"n"}, (
                f"{language}: {text!r} drops a placeholder of {ids[0]!r}"
            )


def test_dutch_is_the_default_and_english_differs() -> None:
    assert Translator("nl")("Report sent") == "Melding verstuurd"
    assert Translator("en")("Report sent") == "Report sent"
    assert Translator("xx")("Report sent") == "Melding verstuurd"


def test_values_are_html_escaped() -> None:
    text = Translator("nl")("<b>Description:</b> {text}", text="<script> & co")
    assert text == "<b>Beschrijving:</b> &lt;script&gt; &amp; co"
    assert escape("a < b") == "a &lt; b"


def test_dates_carry_the_weekday_in_the_readers_language() -> None:
    """Dates shown to people name the weekday, in the language of the translator that fills
    them in (Babel's locale data); used as plain text they read in Dutch."""
    tz = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # a Thursday, 10:00 in Amsterdam
    when = local_datetime(moment, tz)
    assert Translator("nl")("<b>Where:</b> {place}", place=when) == (
        "<b>Waar:</b> donderdag 03-12-2026 10:00"
    )
    assert Translator("en")("<b>Where:</b> {place}", place=when) == (
        "<b>Where:</b> Thursday 03-12-2026 10:00"
    )
    assert str(local_date(moment, tz)) == "donderdag 03-12-2026"
    assert local_date(moment, tz).render("en") == "Thursday 03-12-2026"
    assert short_date(moment, tz).render("nl").startswith("do 3 dec")
    assert short_date(moment, tz).render("en") == "Thu 3 Dec"


def test_catalogs_have_no_duplicates() -> None:
    for language in LANGUAGES:
        ids = [str(m.id) for m in load_catalog(language) if m.id]
        assert len(ids) == len(set(ids)), language


def test_translators_are_called_t_so_their_messages_are_extracted() -> None:
    """`pybabel extract` only sees t("..."), N_("...") and ngettext(...): a translator bound to
    another name (say their_t("...")) would silently never be translated."""
    offenders = []
    for folder in ("bot", "conversations"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"\b(\w+_t|t_\w+)\(\s*[\"']", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, f"call translators t(...): {offenders}"
