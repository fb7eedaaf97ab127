"""Logging for the console script: one format on stderr, quiet HTTP libraries, no secrets,
and no floods: a line repeated many times a minute is folded into one count.

The bot token is part of every Bot API URL (``.../bot<token>/getMe``), so any library that logs
a URL or an exception that quotes one would leak it. :func:`redacting` puts a filter on the
root handlers that removes secrets from every record that reaches them, whichever logger made
it and at whatever level: the message, its arguments, the exception text and the stack.

What people write is not for logs either. python-telegram-bot logs every update it processes and
every Bot API call with its parameters at DEBUG, and SQLAlchemy every statement with its values.
:func:`private` replaces updates, Telegram objects and API parameters in every record by what
identifies them (update id and type, message id, parameter names, the length of a text) and
keeps the database drivers quiet, unless the documented setting ``[logging] message_contents``
asks for the contents.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from telegram import Message, TelegramObject, Update

REDACTED = "[redacted]"
HTTP_LOGGERS = ("httpx", "httpcore")
# Loggers that write the values of SQL statements (and rows) at INFO or DEBUG: quiet unless asked.
DATABASE_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg")
# The same line (logger, level and text) at most this often per window; the rest is counted.
REPEAT_LIMIT = 5
REPEAT_WINDOW = 60.0


@contextlib.contextmanager
def configured(*, verbose: bool) -> Iterator[None]:
    """Log to stderr (INFO, or DEBUG with -v) until exit; the HTTP libraries only say what goes
    wrong, and repeats are folded. The filters go again on exit, so that nothing lingers on
    handlers that are not ours, as in a test run (where a count folded in one test would
    otherwise be written during another)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    folds = [
        (handler, FoldRepeats(handler))
        for handler in logging.getLogger().handlers
        if not any(isinstance(f, FoldRepeats) for f in handler.filters)
    ]
    for handler, fold in folds:
        handler.addFilter(fold)
    try:
        yield
    finally:
        for handler, fold in folds:
            handler.removeFilter(fold)


@dataclass
class _Repeats:
    """How often one line was seen in the current window, and how many were left out."""

    since: float
    seen: int = 0
    folded: int = 0


class FoldRepeats(logging.Filter):
    """Let the same line through at most ``limit`` times per ``window`` seconds.

    The rest is counted and reported in one line ("... repeated N more times") with the next
    line written after the window, so that a loop that fails the same way every millisecond
    fills no disk. Times come from the records themselves. One filter per handler.
    """

    def __init__(
        self,
        handler: logging.Handler,
        *,
        limit: int = REPEAT_LIMIT,
        window: float = REPEAT_WINDOW,
        max_lines: int = 1000,
    ) -> None:
        """Fold repeats in what ``handler`` writes."""
        super().__init__()
        self.handler = handler
        self.limit = limit
        self.window = window
        self.max_lines = max_lines
        self._lines: dict[tuple[str, int, str], _Repeats] = {}
        self._reporting = False

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a line already written ``limit`` times in this window."""
        if self._reporting:  # our own summary line
            return True
        self._report_expired(record.created)
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True  # a broken record: leave it to the handler
        key = (record.name, record.levelno, text)
        repeats = self._lines.get(key)
        if repeats is None:
            if len(self._lines) >= self.max_lines:
                self._lines.pop(next(iter(self._lines)))
            repeats = self._lines[key] = _Repeats(since=record.created)
        repeats.seen += 1
        if repeats.seen <= self.limit:
            return True
        repeats.folded += 1
        return False

    def _report_expired(self, now: float) -> None:
        """Write the count of every line whose window is over, and forget those lines."""
        expired = []
        for key, repeats in self._lines.items():  # oldest first: in the order first seen
            if now - repeats.since < self.window:
                break
            expired.append(key)
        for key in expired:
            repeats = self._lines.pop(key)
            if repeats.folded:
                name, level, text = key
                if len(text) > 300:
                    text = text[:300] + "..."
                summary = logging.LogRecord(
                    name,
                    level,
                    __file__,
                    0,
                    "the line %r was repeated %d more times in %d s (not shown)",
                    (text, repeats.folded, round(self.window)),
                    None,
                )
                summary.created = now
                self._reporting = True
                try:
                    self.handler.handle(summary)
                finally:
                    self._reporting = False


def token_secrets(token: str | None) -> list[str]:
    """What must never be logged of a bot token: all of it, and the part after the colon."""
    if not token:
        return []
    return [token, token.partition(":")[2]]


class RedactSecrets(logging.Filter):
    """Replace every secret in a log record by ``[redacted]``; never drops a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        """Remember the (non-empty) secrets, longest first."""
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place (other handlers then see the redacted record too)."""
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a record whose arguments do not fit its message
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info:
            # Format the traceback now, so that no formatter prints it unredacted later.
            record.exc_text = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


@contextlib.contextmanager
def redacting(secrets: Iterable[str]) -> Iterator[RedactSecrets]:
    """Redact ``secrets`` from everything the root logger's handlers write, until exit."""
    redactor = RedactSecrets(secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redactor)
    try:
        yield redactor
    finally:
        for handler in handlers:
            handler.removeFilter(redactor)


# --- no message contents in the log ----------------------------------------------------------

# Bot API parameters that identify rather than tell: kept as they are.
_ID_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "user_id",
        "from_chat_id",
        "callback_query_id",
        "update_id",
        "offset",
        "limit",
        "timeout",
        "parse_mode",
        "show_alert",
        "cache_time",
    }
)


def describe_update(update: Update) -> str:
    """An update as the log may name it: its id and type, never what it says."""
    kinds = [kind for kind in Update.ALL_TYPES if getattr(update, kind, None) is not None]
    return f"{update.update_id} ({', '.join(kinds) or 'unknown type'})"


def _scrub(value: Any, depth: int = 0) -> Any:
    """``value`` with everything people wrote replaced by what identifies it."""
    if isinstance(value, Update):
        return describe_update(value)
    if isinstance(value, Message):
        return f"<message {value.message_id} in chat {value.chat_id}>"
    if isinstance(value, TelegramObject):
        return f"<{type(value).__name__}>"
    if depth > 4:
        return "<...>"
    if isinstance(value, Mapping):
        return {
            key: item if key in _ID_FIELDS and not isinstance(item, str) else _field(item, depth)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item, depth + 1) for item in value]
    return value


def _field(value: Any, depth: int) -> Any:
    """A value inside API parameters or results: numbers and flags stay, text is measured."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return f"<{len(value)} characters>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return _scrub(value, depth + 1)


class HideContents(logging.Filter):
    """Replace updates, Telegram objects and parameter dicts in a record's arguments by what
    identifies them; never drops a record. Runs before the other filters of a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record's arguments in place (other handlers then see it scrubbed too)."""
        args = record.args
        if isinstance(args, Mapping):
            record.args = _scrub(args)
        elif isinstance(args, tuple):
            record.args = tuple(_scrub(arg) for arg in args)
        return True


@contextlib.contextmanager
def private(*, message_contents: bool = False, database_echo: bool = False) -> Iterator[None]:
    """Until exit: no message contents in what the root logger's handlers write (unless
    ``message_contents``), and no SQL values from the database libraries (unless
    ``database_echo``, the explicit ``database.echo`` setting)."""
    quiet = [] if database_echo else [logging.getLogger(name) for name in DATABASE_LOGGERS]
    levels = [(logger, logger.level) for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    hider = HideContents()
    handlers = [] if message_contents else list(logging.getLogger().handlers)
    for handler in handlers:
        handler.filters.insert(0, hider)  # before folding and redacting, which read the text
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hider)
        for logger, level in levels:
            logger.setLevel(level)
