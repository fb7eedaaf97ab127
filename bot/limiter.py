"""Two lanes through Telegram's limits, on python-telegram-bot's rate limiter interface.

Every Bot API call passes :class:`Lanes.process_request`:

- **Lanes.** A call made while an update is handled (a reply to what a person just did) takes
  the *interactive* lane; anything else (jobs, the outbox, start-up work) the *bulk* lane. The
  lane comes from :data:`LANE` (set by the application while it handles an update) unless a
  call passes ``rate_limit_args={"lane": ...}``.
- **Paced, not discovered.** Telegram allows about 30 messages a second in all, 20 a minute
  per group and about one a second per private chat in short bursts, each over a sliding
  window, and answers 429 beyond them. The buckets here (aiolimiter) are sized so that even
  their bursts stay inside those windows: ``overall_per_second`` (28) with a burst of one, so
  no second ever sees more than 29; per group ``group_burst`` plus ``group_per_minute``,
  together at most 20 in any minute; bulk sends to one private chat two at once, then one per
  two seconds (a person sets the pace of replies to what they do, so those are not held).
- **Replies first, and a share kept for them.** Bulk calls take at most ``bulk_per_second``
  (26) of the overall pace, so some of every second is always left for replies; and a bulk
  call goes to the overall limiter only while no reply is waiting for it, one bulk call at a
  time, so a reply waits behind at most one bulk call, never behind a reminder run. With
  nobody answering, bulk sends go out at about 26 a second.
- **Only calls aimed at a chat count**; answering a button press does not.
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

from buurtsignaal.storage.db import transaction_open

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
        overall_per_second: float = 28,
        bulk_per_second: float = 26,
        group_burst: int = 8,
        group_per_minute: float = 12,
        private_burst: int = 2,
        private_period: float = 2.0,
        max_retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        # AsyncLimiter(n, t) is a bucket of n that empties at n/t a second: bursts of n.
        self._overall = AsyncLimiter(1, 1 / overall_per_second)
        self._bulk = AsyncLimiter(1, 1 / bulk_per_second)
        self._group = (group_burst, group_burst * 60 / group_per_minute)
        self._private = (private_burst, private_burst * private_period)
        self._chats: dict[int, AsyncLimiter] = {}
        self._paused: dict[int | None, float] = {}  # chat (None: everything) -> resume time
        self._max_retries = max_retries
        self._backoff = backoff
        self._interactive_waiting = 0
        self._no_interactive = asyncio.Event()
        self._no_interactive.set()
        self._bulk_turn = asyncio.Lock()  # one bulk call at a time at the overall limiter

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
            burst, period = self._group if chat_id < 0 else self._private  # groups, channels
            limiter = AsyncLimiter(burst, period)
            if len(self._chats) > 10_000:  # forget idle chats now and then (bounded memory)
                self._chats = {
                    k: v for k, v in self._chats.items() if not v.has_capacity(v.max_rate)
                }
            self._chats[chat_id] = limiter
        return limiter

    async def _pause_over(self, chat_id: int | None) -> None:
        loop = asyncio.get_running_loop()
        for key in (None, chat_id):
            until = self._paused.get(key)
            if until is not None and until > loop.time():
                await asyncio.sleep(until - loop.time())

    async def _turn(self, lane: str, chat_id: int | None) -> None:
        """Wait for this call's turn: the chat's limit, then the bot's (see the docstring)."""
        if chat_id is None:
            return
        if chat_id < 0 or lane == BULK:
            await self._limiter(chat_id).acquire()
        if lane != BULK:
            self._interactive_waiting += 1
            self._no_interactive.clear()
            try:
                await self._overall.acquire()
            finally:
                self._interactive_waiting -= 1
                if not self._interactive_waiting:
                    self._no_interactive.set()
            return
        async with self._bulk_turn:
            await self._bulk.acquire()
            while self._interactive_waiting:
                await self._no_interactive.wait()
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
            await self._turn(lane, chat_id)
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
