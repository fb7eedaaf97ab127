"""Every user-facing text is translated into every language, with the same placeholders, HTML
tags and commands; plural forms and right-to-left text."""

from __future__ import annotations

import datetime as dt
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from buurtsignaal.bot import i18n
from buurtsignaal.bot.i18n import (
    FSI,
    LANGUAGES,
    PDI,
    Html,
    Translator,
    escape,
    load_catalog,
    plural_rule,
)
from buurtsignaal.conversations.ui import local_date, local_datetime, short_date

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


#: Catalogs that are still being translated: their completeness test is expected to fail (and
#: fails when it passes, so the language is taken off this set once its catalog is complete).
#: Everything else about them (placeholders, tags, commands) is checked as for the others.
EXPECTED_INCOMPLETE: set[str] = set()


def _every_language() -> list[object]:
    return [
        pytest.param(
            language,
            marks=pytest.mark.xfail(strict=True, reason=f"{language} is still being translated"),
        )
        if language in EXPECTED_INCOMPLETE
        else language
        for language in LANGUAGES
    ]


@pytest.mark.parametrize("language", _every_language())
def test_every_message_in_the_code_is_translated(language: str) -> None:
    """Every catalog is complete: residents see everything in their language, and so do
    professionals (a message that slips through reads in Dutch, see bot/i18n.py)."""
    catalog = load_catalog(language)
    missing = []
    for message in sorted(_source_messages(), key=str):
        entry = catalog.get(message if isinstance(message, str) else message[0])
        found = None if entry is None else entry.string
        strings = [found] if isinstance(found, str) else list(found or ())
        if entry is None or entry.fuzzy or not all(strings) or not strings:
            missing.append(message if isinstance(message, str) else message[0])
    listing = "\n".join(f"  {m!r}" for m in missing)
    assert not missing, (
        f"{len(missing)} message(s) without a {language} translation in "
        f"bot/locales/{language}/LC_MESSAGES/messages.po; run `make translations` and "
        f"translate them:\n{listing}"
    )


def _translations(language: str) -> list[tuple[list[str], str]]:
    """([msgid, msgid_plural], translation) for every translated text of a catalog."""
    found: list[tuple[list[str], str]] = []
    for entry in load_catalog(language):
        if not entry.id or not entry.string:
            continue
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        found.extend((ids, text) for text in strings if text)
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    """The same {placeholders} as the source; a plural form may leave out {n} ("one")."""
    wrong = []
    for ids, text in _translations(language):
        expected = _fields(ids[-1]) | ({"n"} if len(ids) > 1 else set())
        needed = _fields(ids[0]) - ({"n"} if len(ids) > 1 else set())
        if not needed <= _fields(text) <= expected:
            wrong.append(f"  {ids[0]!r}\n    -> {text!r}")
    assert not wrong, f"{language}: placeholders differ from the source:\n" + "\n".join(wrong)


# The tags Telegram's HTML knows; "<role>" in a usage line is text.
TAG = re.compile(
    r"</?(?:b|strong|i|em|u|ins|s|strike|del|a|code|pre|span|blockquote|tg-[a-z]+)\b[^<>]*>"
)
COMMAND = re.compile(r"(?<![\w/<.:])/[a-z_]{2,}\b")


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_html_tags_and_commands(language: str) -> None:
    """The same HTML tags as the source (Telegram refuses a message with a broken tag), and
    the same /commands: the bot's commands are Dutch in every language."""
    wrong = []
    for ids, text in _translations(language):
        for name, pattern in (("tags", TAG), ("commands", COMMAND)):
            source, translated = (sorted(pattern.findall(s)) for s in (ids[0], text))
            if source != translated:
                wrong.append(f"  {name} {source} != {translated} in {text!r}")
    assert not wrong, f"{language}: differs from the source:\n" + "\n".join(wrong)


def test_no_placeholder_inside_a_tag() -> None:
    """Values are isolated in right-to-left languages (bot/i18n.py): never inside a tag,
    where an isolate would break an attribute such as a link."""
    for message in _source_messages():
        for text in [message] if isinstance(message, str) else message:
            assert not any("{" in tag for tag in TAG.findall(text)), text


@pytest.mark.parametrize(
    ("language", "forms"),
    [
        ("nl", {0: 1, 1: 0, 2: 1, 5: 1}),
        ("en", {0: 1, 1: 0, 2: 1, 5: 1}),
        ("tr", {0: 1, 1: 0, 2: 1, 5: 1}),
        ("pl", {1: 0, 2: 1, 4: 1, 5: 2, 12: 2, 22: 1, 25: 2}),
        ("ar", {0: 0, 1: 1, 2: 2, 3: 3, 10: 3, 11: 4, 99: 4, 100: 5, 102: 5, 103: 3}),
    ],
)
def test_plural_forms_follow_each_catalog(language: str, forms: dict[int, int]) -> None:
    header = load_catalog(language)
    assert header.num_plurals == len(set(forms.values())) or language in {"nl", "en", "tr"}
    assert {n: plural_rule(language)(n) for n in forms} == forms


def test_ngettext_picks_any_of_six_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arabic has six plural forms: the translator indexes them by the catalog's rule, and a
    message with no translation falls back to Dutch with Dutch plurals."""
    key = ("{n} day", "{n} days")
    forms = tuple(f"form{i} {{n}}" for i in range(6))
    tables = {"ar": {key: forms}, "nl": i18n._table("nl")}
    monkeypatch.setattr(i18n, "_table", tables.__getitem__)
    ar = Translator("ar")
    shown = [ar.ngettext(*key, n).replace(FSI, "").replace(PDI, "") for n in (0, 1, 2, 3, 11, 100)]
    assert shown == ["form0 0", "form1 1", "form2 2", "form3 3", "form4 11", "form5 100"]
    tables["ar"] = {}
    assert ar.ngettext(*key, 3).replace(FSI, "").replace(PDI, "") == "3 dagen"


def test_values_are_isolated_in_arabic_only() -> None:
    """Right to left, a reference or date keeps its punctuation where it belongs: every value
    on one line is wrapped in FSI ... PDI. Left-to-right languages get the value as it is."""
    message = "Your report is in. Reference: <b>{reference}</b>."
    arabic = Translator("ar")(message, reference="BS-2027-0001")
    assert f"<b>{FSI}BS-2027-0001{PDI}</b>" in arabic
    assert Translator("nl")(message, reference="BS-2027-0001").count(FSI) == 0
    # escaped first, then isolated; a built block of several lines is left alone
    assert Translator("ar")("{text}", text="a < b") == f"{FSI}a &lt; b{PDI}"
    assert Translator("ar")("{text}", text=Html("<b>one</b>\ntwo")) == "<b>one</b>\ntwo"


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
