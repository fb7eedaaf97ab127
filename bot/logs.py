"""Logging for the console script: one format on stderr, quiet HTTP libraries, no secrets.

The bot token is part of every Bot API URL (``.../bot<token>/getMe``), so any library that logs
a URL or an exception that quotes one would leak it. :func:`redacting` puts a filter on the
root handlers that removes secrets from every record that reaches them, whichever logger made
it and at whatever level: the message, its arguments, the exception text and the stack.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

REDACTED = "[redacted]"
HTTP_LOGGERS = ("httpx", "httpcore")


def configure(*, verbose: bool) -> None:
    """Log to stderr (INFO, or DEBUG with -v); the HTTP libraries only say what goes wrong."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


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
