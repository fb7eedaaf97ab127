"""Two lanes through Telegram's limits, on python-telegram-bot's rate limiter interface.

Every Bot API call passes :class:`Lanes.process_request`:

- **Lanes.** A call made while an update is handled (a reply to what a person just did) takes
  the *interactive* lane; anything else (jobs, the outbox, start-up work) the *bulk* lane. Bulk
  calls wait while interactive ones are waiting, so a resident never waits behind a digest or
  a reminder run. The lane comes from :data:`LANE` (set by the application while it handles
  an update) unless a call passes ``rate_limit_args={"lane": ...}``.
- **Limits.** Both lanes share Telegram's limits (aiolimiter): about 30 messages a second in
  all and 20 a minute per group; bulk sends to one private chat about one a second with short
  bursts (replies are paced by the person). Only calls aimed at a chat count; answering a
  button press does not.
- **Failures.** A 429 pauses that chat (or everything, for calls without a chat) for its
  ``retry_after`` and retries; server and network errors (5xx, timeouts, refused connections)
  are retried a few times with backoff in the interactive lane; bulk work is retried later by
  its sender, which knows what was delivered. "Message is not modified" is success: the message
  already shows what the bot wanted (a double tap). Everything else is raised as it is.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

from storage.db import transaction_open

log = logging.getLogger(__name__)

INTERACTIVE = "interactive"
BULK = "bulk"
# The lane of the calls made in this context (see the module docstring).
LANE: contextvars.ContextVar[str] = contextvars.ContextVar("buurtsignaal_lane", default=BULK)

# Tests make a Bot API call inside a unit of work an error (tests/conftest.py).
STRICT = False

_EDITS = frozenset({"editMessageText", "editMessageReplyMarkup", "editMessageCaption"})

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


def _seconds(retry_after: object) -> float:
    """RetryAfter.retry_after is an int or a timedelta, depending on PTB's settings."""
    total = getattr(retry_after, "total_seconds", None)
    return float(total() if callable(total) else retry_after)  # type: ignore[arg-type]


class Lanes(BaseRateLimiter[dict[str, Any]]):
    """Interactive replies before bulk sends, within Telegram's limits, with bounded retries."""

    def __init__(
        self,
        *,
        overall_per_second: float = 30,
        group_per_minute: float = 20,
        private_burst: float = 5,
        private_period: float = 5.0,
        max_retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self._overall = AsyncLimiter(overall_per_second, 1)
        self._group_rate = group_per_minute
        self._private_rate = (private_burst, private_period)
        self._chats: dict[int, AsyncLimiter] = {}
        self._paused: dict[int | None, float] = {}  # chat (None: everything) -> resume time
        self._max_retries = max_retries
        self._backoff = backoff
        self._interactive_waiting = 0
        self._no_interactive = asyncio.Event()
        self._no_interactive.set()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def interactive_waiting(self) -> int:
        """How many interactive calls are waiting for their turn now."""
        return self._interactive_waiting

    def _limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            if chat_id < 0:  # groups and channels
                limiter = AsyncLimiter(self._group_rate, 60)
            else:
                limiter = AsyncLimiter(*self._private_rate)
            if len(self._chats) > 10_000:  # forget idle chats now and then (bounded memory)
                self._chats.clear()
            self._chats[chat_id] = limiter
        return limiter

    async def _pause_over(self, chat_id: int | None) -> None:
        loop = asyncio.get_running_loop()
        for key in (None, chat_id):
            until = self._paused.get(key)
            if until is not None and until > loop.time():
                await asyncio.sleep(until - loop.time())

    async def _turn(self, lane: str, chat_id: int | None) -> None:
        """Wait for this call's turn: pauses after a 429, the chat's limit, then the bot's."""
        if lane == BULK:
            while self._interactive_waiting:
                await self._no_interactive.wait()
        if chat_id is not None:
            # A person sets the pace of replies to what they do; bulk sends to one private
            # chat are spread out (about one a second, with short bursts).
            if chat_id < 0 or lane == BULK:
                await self._limiter(chat_id).acquire()
            await self._overall.acquire()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> JSONResult:
        """Make one Bot API call in its lane, within the limits, retrying what may pass."""
        if transaction_open():
            # It would hold the database (on SQLite: everyone) for a round trip to Telegram.
            log.warning("%s called inside a database transaction", endpoint)
            if STRICT:
                raise RuntimeError(f"{endpoint} called inside a database transaction")
        lane = str((rate_limit_args or {}).get("lane") or LANE.get())
        chat = data.get("chat_id")
        chat_id = int(str(chat)) if str(chat).lstrip("-").isdigit() else None
        attempt = 0
        while True:
            attempt += 1
            # A pause after a 429 holds only this chat (or, without a chat, everything); it
            # does not make bulk work elsewhere wait.
            await self._pause_over(chat_id)
            if lane == INTERACTIVE:
                self._interactive_waiting += 1
                self._no_interactive.clear()
            try:
                await self._turn(lane, chat_id)
            finally:
                if lane == INTERACTIVE:
                    self._interactive_waiting -= 1
                    if not self._interactive_waiting:
                        self._no_interactive.set()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = _seconds(exc.retry_after)
                loop = asyncio.get_running_loop()
                self._paused[chat_id] = max(self._paused.get(chat_id, 0), loop.time() + wait)
                if attempt > self._max_retries:
                    raise
                log.info("flood limit on %s: waiting %.1f s (try %d)", endpoint, wait, attempt)
            except BadRequest as exc:
                if endpoint in _EDITS and "message is not modified" in exc.message.lower():
                    return True  # it already shows what we wanted (a double tap)
                raise
            except (TimedOut, NetworkError) as exc:
                # Bulk work is retried later by its sender, which knows what was delivered.
                if lane != INTERACTIVE or attempt > self._max_retries:
                    raise
                delay = self._backoff * 2 ** (attempt - 1)
                log.info("%s failed (%s): again in %.1f s", endpoint, exc.message, delay)
                await asyncio.sleep(delay)
