"""Translations: gettext catalogs (Babel .po files), one per language.

Message ids are English; Dutch is the default language. ``Translator`` escapes every
keyword argument for HTML unless it is wrapped in :class:`Html`, so user text can never
break a message, and renders a :class:`Localized` argument (a date) in its own language.

Languages: Dutch and English, and for residents Turkish, Arabic and Polish. Every catalog is
meant to be complete (tests/test_i18n.py lists what is missing). Where a message has no
translation yet in a language (a text added since its catalog was last translated), the
translator falls back to Dutch, the language every professional reads, and from there to the
English message id: a message is never empty and never half in the wrong plural.

Arabic is written right to left. Values filled into a message (a reference such as
BS-2027-0001, a date, a phone number, a command, what someone typed) are wrapped in Unicode
isolates (FSI ... PDI) in right-to-left languages, so their own direction cannot reorder the
punctuation around them. That happens in one place: :meth:`Translator.fill`.
"""

from __future__ import annotations

import gettext
import html
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).with_name("locales")
#: Supported languages; the first is the default and the fallback of missing translations.
LANGUAGES: tuple[str, ...] = ("nl", "en", "tr", "ar", "pl")
#: Each language's name in itself (the /taal buttons).
LANGUAGE_NAMES: dict[str, str] = {
    "nl": "Nederlands",
    "en": "English",
    "tr": "Türkçe",
    "ar": "العربية",
    "pl": "Polski",
}
#: Languages written right to left: filled-in values are isolated there.
RIGHT_TO_LEFT = frozenset({"ar"})
#: FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE (Unicode bidi algorithm, UAX #9).
FSI, PDI = "\u2068", "\u2069"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now."""
    return message


class Html(str):
    """Text that is already safe HTML (built by the bot, not typed by a user)."""

    __slots__ = ()


class Localized(str):
    """A value that is written differently per language (a date with its weekday, say).
    Filled into a message by a :class:`Translator` it is rendered in that translator's
    language; used as a plain string it reads in the default language."""

    __slots__ = ()

    def render(self, language: str) -> str:
        """The value in ``language``."""
        raise NotImplementedError


def escape(value: object) -> str:
    """HTML-escape anything for use inside a message with parse_mode HTML."""
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=False)


@cache
def load_catalog(language: str) -> Catalog:
    """The parsed catalog of one language (read once)."""
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


@cache
def _table(language: str) -> dict[Any, Any]:
    """msgid -> text, and (singular, plural) -> forms, of the translated entries."""
    table: dict[Any, Any] = {}
    for message in load_catalog(language):
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, str):
            if message.string:
                table[message.id] = message.string
        elif message.string and all(message.string):
            table[tuple(message.id)] = tuple(message.string)
    return table


@cache
def plural_rule(language: str) -> Callable[[int], int]:
    """n -> the index of the plural form, from the catalog's Plural-Forms header (two forms
    in Dutch, English and Turkish, three in Polish, six in Arabic)."""
    return gettext.c2py(load_catalog(language).plural_expr)


def normalise_language(code: str | None, default: str = "nl") -> str:
    """Map a Telegram language_code (e.g. 'en-GB') to a supported language."""
    if code:
        short = code.split("-")[0].lower()
        if short in LANGUAGES:
            return short
    return default


class Translator:
    """Translate and fill in messages for one language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else LANGUAGES[0]
        self._table = _table(self.language)
        self._isolate = self.language in RIGHT_TO_LEFT

    def __call__(self, message: str, /, **values: object) -> str:
        """Translate ``message`` and fill in ``{name}`` placeholders with escaped values."""
        text: str | None = self._table.get(message)
        if text is None:
            text = _table(LANGUAGES[0]).get(message, message)
        return self.fill(text, **values)

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """Translate with a plural form chosen by ``n`` (also available as ``{n}``), by the
        plural rule of the language the text is in."""
        for language in (self.language, LANGUAGES[0]):
            forms = _table(language).get((singular, plural))
            if forms:
                text = forms[min(plural_rule(language)(n), len(forms) - 1)]
                break
        else:
            text = singular if n == 1 else plural
        return self.fill(text, n=n, **values)

    def fill(self, text: str, /, **values: object) -> str:
        """Fill ``{name}`` placeholders of a translated text: every value HTML-escaped, a
        :class:`Localized` one rendered in this language, and in a right-to-left language
        each value on one line isolated (FSI ... PDI), so "BS-2027-0001." keeps its full stop
        where it belongs. A value of several lines (a block of built text) is left as it is:
        an isolate ends with its line."""
        if not values:
            return text
        return text.format(**{name: self._value(value) for name, value in values.items()})

    def _value(self, value: object) -> str:
        if isinstance(value, Localized):
            value = value.render(self.language)
        text = escape(value)
        if self._isolate and text and "\n" not in text:
            return f"{FSI}{text}{PDI}"
        return text


def translator(language: str) -> Translator:
    """A translator for ``language`` (unknown languages fall back to Dutch)."""
    return Translator(language)
