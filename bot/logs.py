"""Logging for the console script: one format on stderr, quiet HTTP libraries, no secrets,
and no floods: a line repeated many times a minute is folded into one count.

The bot token is part of every Bot API URL (``.../bot<token>/getMe``), so any library that logs
a URL or an exception that quotes one would leak it. :func:`redacting` puts a filter on the
root handlers that removes secrets from every record that reaches them, whichever logger made
it and at whatever level: the message, its arguments, the exception text and the stack.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

REDACTED = "[redacted]"
HTTP_LOGGERS = ("httpx", "httpcore")
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
