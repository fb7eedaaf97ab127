"""The one sender of everything the bot sends on its own: it drains the outbox.

Features decide to send (a digest, an alert, a reminder, a notice, a relay) by writing the
message to the outbox in the unit of work that records the decision (``storage.outbox``).
This sender takes what is due, oldest first, and sends it through the bulk lane of the rate
limiter (``bot.limiter``), so a resident waiting for an answer always goes first:

- **Sent:** Telegram accepted it. In one transaction the row becomes ``sent`` (with the
  Telegram message id) and its hook runs (for example: the koffie feature stores the id of a
  group announcement it edits later). Features declare their hooks (``Feature.outbox_hooks``).
- **Passing failures** (429, 5xx, timeouts, no network): the row stays ``pending`` and is tried
  again later (after ``retry_after`` for a 429, else with growing pauses). Nothing is lost.
  A chat's later messages wait behind its first, so each chat gets them in order.
- **Blocked (403):** the resident is marked unreachable (``bot.reach``), the row ``failed``, and
  the hook learns it was not delivered (a case notes it in its history). Never retried.
- **Refused for good (other 4xx):** ``failed``, with Telegram's words in ``error``.
- A message still not delivered a day after it was decided is ``failed`` ("expired").

Exactly once, and the one window where it cannot be: the row is marked sent in the first
transaction after Telegram's answer. If the process dies after Telegram accepted a message and
before that commit (milliseconds), or the answer itself is lost on the network (a 502 from a
proxy after Telegram applied it), the row is still pending and is sent again after the restart:
that one message may arrive twice. Telegram offers no way to ask whether it arrived, and a
lost reminder is worse than a repeated one, so the outbox chooses at least once for that window
and exactly once everywhere else. A restart between the decision and the send sends it once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from buurtsignaal.bot import reach
from buurtsignaal.bot.feature import Feature, Job
from buurtsignaal.bot.limiter import BULK, LANE
from buurtsignaal.storage import outbox as stored
from buurtsignaal.storage.db import GroupCommit
from buurtsignaal.storage.models import OutboxMessage

if TYPE_CHECKING:
    from buurtsignaal.bot.context import BuurtApplication, BuurtContext

log = logging.getLogger(__name__)

SEND_INTERVAL = 2.0  # seconds between looks at the outbox (a decision also wakes the sender)
CONCURRENCY = 8  # chats sent to at the same time (one message at a time per chat)
BATCH = 500  # messages taken per look
FIRST_RETRY = dt.timedelta(seconds=5)
LONGEST_RETRY = dt.timedelta(minutes=15)
GIVE_UP = dt.timedelta(days=1)  # a message not delivered a day after the decision: failed
KEEP_SENT = dt.timedelta(days=7)
KEEP_FAILED = dt.timedelta(days=30)
READ_TIMEOUT = 20.0  # seconds a send waits for Telegram's answer before it counts as a timeout


@dataclass(frozen=True)
class Settled:
    """What a hook learns about its message once it is settled."""

    key: str
    chat_id: int
    kind: str
    data: Mapping[str, Any]
    delivered: bool
    message_id: int | None  # Telegram's id of the sent message
    error: str | None
    now: dt.datetime


# Runs in the transaction that settles the message; it may write (even new outbox messages).
OutboxHook = Callable[[AsyncSession, Settled], Awaitable[None]]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def _seconds(retry_after: object) -> float:
    total = getattr(retry_after, "total_seconds", None)
    return float(total() if callable(total) else retry_after)  # type: ignore[arg-type]


class Sender:
    """Drains the outbox through the bulk lane (see the module docstring)."""

    def __init__(
        self, application: BuurtApplication, hooks: Mapping[str, OutboxHook] | None = None
    ) -> None:
        self.application = application
        self.hooks: dict[str, OutboxHook] = dict(hooks or {})
        self.concurrency = CONCURRENCY
        self.read_timeout = READ_TIMEOUT
        # While paused, the periodic job and wake() do nothing; the tests drain by hand.
        self.paused = False
        self._lock = asyncio.Lock()
        self._settling: GroupCommit[_Settle, None] = GroupCommit(self._settle_all)

    @property
    def busy(self) -> bool:
        """Whether a drain is under way."""
        return self._lock.locked()

    def wake(self) -> None:
        """Look at the outbox now (after a unit of work that wrote to it committed)."""
        queue = self.application.job_queue
        if self.paused or queue is None or not queue.scheduler.running:
            return
        queue.run_once(_send_job, 0, name="outbox:wake")

    async def drain(self, *, rounds: int | None = None) -> int:
        """Send everything due now; how many messages were settled. One drain at a time:
        a second caller waits and then sends what is still due."""
        db = self.application.services.db
        clock = self.application.services.clock
        settled = 0
        lane = LANE.set(BULK)
        try:
            async with self._lock:
                done = 0
                while rounds is None or done < rounds:
                    done += 1
                    async with db.begin() as session:
                        rows = await stored.due(session, now=clock(), limit=BATCH)
                    if not rows:
                        break
                    settled += await self._send_all(rows)
        finally:
            LANE.reset(lane)
        return settled

    async def _send_all(self, rows: list[OutboxMessage]) -> int:
        """Send the rows: chats in parallel (bounded), each chat's messages in order."""
        by_chat: dict[int, list[OutboxMessage]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)
        gate = asyncio.Semaphore(self.concurrency)
        settled = 0

        async def one_chat(messages: list[OutboxMessage]) -> None:
            nonlocal settled
            async with gate:
                for row in messages:
                    if not await self._send_one(row):
                        return  # the chat's later messages wait behind this one
                    settled += 1

        await asyncio.gather(*(one_chat(messages) for messages in by_chat.values()))
        return settled

    async def _send_one(self, row: OutboxMessage) -> bool:
        """Send one message and settle it; False when it waits for a retry."""
        try:
            sent = await self._call(row)
        except Forbidden as exc:
            await self._settle(row, delivered=False, error=_describe(exc), refused=True)
            return True
        except RetryAfter as exc:
            wait = dt.timedelta(seconds=max(_seconds(exc.retry_after), 1))
            return await self._later(row, wait, exc)
        except BadRequest as exc:
            await self._settle(row, delivered=False, error=_describe(exc))
            return True
        except NetworkError as exc:  # 5xx, timeouts, no connection
            wait = min(FIRST_RETRY * 2 ** min(row.attempts, 10), LONGEST_RETRY)
            return await self._later(row, wait, exc)
        except TelegramError as exc:  # anything else Telegram refuses: do not hammer it
            await self._settle(row, delivered=False, error=_describe(exc))
            return True
        except Exception as exc:  # a bug here: keep the message, try again later
            log.exception("sending outbox message %s failed", row.id)
            return await self._later(row, LONGEST_RETRY, exc)
        await self._settle(row, delivered=True, message_id=sent.message_id)
        return True

    async def _call(self, row: OutboxMessage) -> Message:
        bot = self.application.bot
        markup = InlineKeyboardMarkup.de_json(row.reply_markup, bot) if row.reply_markup else None
        common: dict[str, Any] = {
            "parse_mode": row.parse_mode,
            "reply_markup": markup,
            "read_timeout": self.read_timeout,
        }
        if bot.rate_limiter is not None:
            common["rate_limit_args"] = {"lane": BULK}
        photo = row.photo if row.photo is not None else row.photo_file_id
        if photo is not None:
            return await bot.send_photo(row.chat_id, photo, caption=row.text or None, **common)
        return await bot.send_message(row.chat_id, row.text, **common)

    async def _later(self, row: OutboxMessage, wait: dt.timedelta, exc: BaseException) -> bool:
        """A passing failure: try again after ``wait`` (or give up after a day)."""
        now = self.application.services.clock()
        if now - row.created_at > GIVE_UP:
            await self._settle(row, delivered=False, error=f"expired: {_describe(exc)}")
            return True
        log.info("outbox %s (%s) not sent yet: %s; again in %s", row.id, row.kind, exc, wait)
        async with self.application.services.db.begin() as session:
            await stored.retry_later(session, row.id, at=now + wait, error=_describe(exc))
        return False

    async def _settle(
        self,
        row: OutboxMessage,
        *,
        delivered: bool,
        message_id: int | None = None,
        error: str | None = None,
        refused: bool = False,
    ) -> None:
        """Mark the row sent or failed and run its hook, in one transaction (shared with the
        other messages settled at the same moment: a commit per batch, not per message)."""
        await self._settling(_Settle(row, delivered, message_id, error, refused))

    async def _settle_all(self, batch: Sequence[_Settle]) -> list[None]:
        now = self.application.services.clock()
        async with self.application.services.db.begin() as session:
            # One read for the batch; settling each then finds its row in the session.
            await session.execute(
                select(OutboxMessage).where(OutboxMessage.id.in_([each.row.id for each in batch]))
            )
            for each in batch:
                await self._settle_in(session, each, now)
        return [None] * len(batch)

    async def _settle_in(self, session: AsyncSession, each: _Settle, now: dt.datetime) -> None:
        row, delivered, error = each.row, each.delivered, each.error
        if delivered:
            done = await stored.settle_sent(
                session, row.id, telegram_message_id=each.message_id, now=now
            )
        else:
            done = await stored.settle_failed(session, row.id, error=error or "", now=now)
            if each.refused:
                await reach.refused_in(session, row.chat_id, now=now, what=row.kind)
            else:
                log.warning("outbox %s (%s) not delivered: %s", row.id, row.kind, error)
        if done is None or not row.hook:
            return
        hook = self.hooks.get(row.hook)
        if hook is None:
            log.error("outbox %s: no hook %r is declared", row.id, row.hook)
            return
        outcome = Settled(
            key=row.dedupe_key,
            chat_id=row.chat_id,
            kind=row.kind,
            data=dict(row.hook_data or {}),
            delivered=delivered,
            message_id=each.message_id,
            error=error,
            now=now,
        )
        try:
            async with session.begin_nested():  # a failing hook never un-sends
                await hook(session, outcome)
        except Exception:
            log.exception("outbox hook %s failed for message %s", row.hook, row.id)


@dataclass(frozen=True)
class _Settle:
    """One message to settle (see :meth:`Sender._settle`)."""

    row: OutboxMessage
    delivered: bool
    message_id: int | None
    error: str | None
    refused: bool


async def _send_job(context: BuurtContext) -> None:
    """Send what is due (the periodic look, and wake-ups after a decision), in a task of its
    own: the job returns at once, so a long drain (2,000 reminders) neither holds up the next
    look nor makes the scheduler skip it with a warning every two seconds. While one drain runs,
    it also takes what is decided meanwhile."""
    sender = context.outbox
    if not sender.paused and not sender.busy:
        context.application.create_task(sender.drain(), name="outbox:drain")


async def _cleanup_job(context: BuurtContext) -> None:
    """Remove settled messages: sent ones after a week, failed ones after a month."""
    now = context.services.clock()
    async with context.db.begin() as session:
        removed = await stored.purge(
            session, sent_before=now - KEEP_SENT, failed_before=now - KEEP_FAILED
        )
    if removed:
        log.info("outbox clean-up: removed %d settled messages", removed)


async def start_jobs(application: Any) -> None:
    """Look at the outbox every few seconds, starting now; clean it up every night."""
    queue = application.job_queue
    assert queue is not None
    # A look that comes late (a busy loop, a moved test clock) simply runs, once, unlogged.
    queue.run_repeating(
        _send_job,
        interval=SEND_INTERVAL,
        first=0.5,
        name="outbox:send",
        job_kwargs={"misfire_grace_time": None, "coalesce": True},
    )
    queue.run_daily(
        _cleanup_job, dt.time(4, 0, tzinfo=application.services.settings.tz), name="outbox:cleanup"
    )


FEATURE = Feature(
    name="outbox",
    start=start_jobs,
    jobs=(
        Job("outbox:send", "every two seconds, and right after a decision to send"),
        Job("outbox:cleanup", "every night at 04:00"),
    ),
)
