"""Translations: gettext catalogs (Babel .po files) for Dutch and English.

Message ids are English; Dutch is the default language. ``Translator`` escapes every
keyword argument for HTML unless it is wrapped in :class:`Html`, so user text can never
break a message, and renders a :class:`Localized` argument (a date) in its own language.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).with_name("locales")
LANGUAGES: tuple[str, ...] = ("nl", "en")
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


def _fill(value: object, language: str) -> str:
    if isinstance(value, Localized):
        value = value.render(language)
    return escape(value)


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

    def __call__(self, message: str, /, **values: object) -> str:
        """Translate ``message`` and fill in ``{name}`` placeholders with escaped values."""
        text: str = self._table.get(message, message)
        if not values:
            return text
        return str(text.format(**{k: _fill(v, self.language) for k, v in values.items()}))

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """Translate with a plural form chosen by ``n`` (also available as ``{n}``)."""
        forms = self._table.get((singular, plural))
        # Dutch and English share the plural rule "n != 1".
        singular_text, plural_text = forms if forms else (singular, plural)
        text = singular_text if n == 1 else plural_text
        return text.format(n=n, **{k: _fill(v, self.language) for k, v in values.items()})


def translator(language: str) -> Translator:
    """A translator for ``language`` (unknown languages fall back to Dutch)."""
    return Translator(language)
