"""Long polling through a durable inbox: no update is confirmed to Telegram before it is stored.

python-telegram-bot's Updater confirms a batch (by asking for the next one) as soon as it has
queued it, and reads the whole batch at once. So a crash loses what was fetched but not yet
handled, and one update the library cannot read makes it fetch the same batch forever. This
fetcher replaces it; the Application stays the engine:

1. ask Telegram for the raw updates, only of the types the bot handles (``ALLOWED_UPDATES``);
2. store them in the inbox in one transaction; only then is the offset advanced, and the next
   getUpdates confirms them to Telegram;
3. read each update on its own and put it in the Application's update queue; one that cannot
   be read is set aside as failed, with the error, and logged once;
4. ``BuurtApplication.process_update`` hands each one back here to be handled, and it is
   marked done (its raw JSON dropped) in the transaction that stores what it changed (the
   persistence's), so the two are committed together. An error in a handler counts as handled
   once the error handler ran.

At most ``MAX_IN_HAND`` updates are in hand at once: beyond that the inbox stops fetching until
the application has room (Telegram keeps the rest), so a flood of updates cannot fill memory.

Order is kept by one mechanism: the inbox queues updates oldest first, and the application's
update processor (bot.processor) handles them in queue order per chat (per presser, for a button)
while different chats go side by side. At start, what the inbox still holds (a crash or a stop
came first) is queued before anything new, so every chat keeps its order. A retried attempt
stays within its own turn, so nothing of the same chat overtakes it. Every handling attempt is
counted before it starts (updates starting at about the same time share one commit): an update
whose handling never finished ``MAX_ATTEMPTS`` times (it brought the bot down each time) is set
aside too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import TelegramError

from buurtsignaal.bot.feature import Feature, Job
from buurtsignaal.bot.messenger import SIGNAL, TELEGRAM, is_signal_update
from buurtsignaal.storage import inbox as stored
from buurtsignaal.storage.db import GroupCommit
from buurtsignaal.storage.inbox import Received

if TYPE_CHECKING:
    from buurtsignaal.bot.context import BuurtApplication, BuurtContext
    from buurtsignaal.bot.persistence import Finish

log = logging.getLogger(__name__)

# The update types the bot has handlers for (bot.app registers message and callback query
# handlers only); Telegram sends no others. tests/test_inbox.py checks this against the handlers.
ALLOWED_UPDATES: tuple[str, ...] = ("message", "callback_query")
POLL_WAIT = 10.0  # seconds a getUpdates call waits for something new
READ_MARGIN = 5.0  # seconds more before the HTTP read gives up
BATCH = 100
# Updates handed to the application and not finished yet, at most: beyond it the inbox stops
# fetching until there is room (back-pressure; Telegram keeps what is not fetched yet).
MAX_IN_HAND = 200
MAX_ATTEMPTS = 3
RETRY_DELAY = 0.5  # seconds before an attempt that raised is tried again (doubling)
MAX_BACKOFF = 30.0  # longest wait between getUpdates calls while they fail
# Handled updates keep only their id, chat and times, for a day (Telegram sends an update
# again for up to a day until it is confirmed); failed ones keep the update and the error a week.
KEEP_DONE = dt.timedelta(days=1)
KEEP_FAILED = dt.timedelta(days=7)
CLEANUP_INTERVAL = dt.timedelta(hours=1)


def chat_of(raw: dict[str, Any]) -> int | None:
    """The chat an update belongs to, read from the raw JSON (it need not be readable)."""
    for key, payload in raw.items():
        if key == "update_id" or not isinstance(payload, dict):
            continue
        for holder in (payload, payload.get("message")):
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return int(chat["id"])
        user = payload.get("from")
        if isinstance(user, dict) and isinstance(user.get("id"), int):
            return int(user["id"])
    return None


def _describe(exc: BaseException) -> str:
    """An exception in one line: its type and message."""
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


class Inbox:
    """Fetches updates into the inbox and hands them to the application, in order."""

    def __init__(
        self,
        application: BuurtApplication,
        *,
        wait: float = POLL_WAIT,
        max_attempts: int = MAX_ATTEMPTS,
        messenger: str = TELEGRAM,
        max_in_hand: int = MAX_IN_HAND,
    ) -> None:
        """Poll for ``application`` (call :meth:`start`; :func:`polling` does it all).

        ``messenger`` is where the updates come from: Telegram, or the Signal gateway (see
        bot.messenger). Both inboxes share one table; their update ids never overlap."""
        self.application = application
        self.messenger = messenger
        self.db = application.services.db
        self.wait = wait
        self.max_attempts = max_attempts
        # The offset of the next getUpdates: everything before it is stored (it confirms them).
        self.offset: int | None = None
        self._queued: set[int] = set()  # handed to the application, not finished yet
        self._task: asyncio.Task[None] | None = None
        # At most this many updates in hand: fetching waits for room (Telegram keeps the rest).
        self.max_in_hand = max_in_hand
        self._room = asyncio.Event()
        self._room.set()
        # Attempts of updates that start at about the same time are counted in one commit.
        self._attempts: GroupCommit[int, int | None] = GroupCommit(self._count_attempts)

    # ------------------------------------------------------------------ fetching

    async def _get_updates(self, *, wait: float, limit: int = BATCH) -> Any:
        """getUpdates (waiting up to ``wait`` seconds for something new), as raw JSON."""
        data = {
            "offset": self.offset,
            "timeout": wait,
            "limit": limit,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        # Bot.get_updates reads the whole batch at once, so one update it cannot read fails
        # them all; _post is what it calls for the raw JSON (and it is not rate limited).
        bot = self.application.bot
        if self.messenger == SIGNAL:
            bot = bot.signal  # type: ignore[attr-defined]
        return await bot._post("getUpdates", data, read_timeout=wait + READ_MARGIN)

    async def fetch(self) -> list[Received]:
        """One getUpdates call: store what came, in one transaction, before it is confirmed.

        Returns the updates stored now, in order (not the ones already in the inbox)."""
        room = max(1, min(BATCH, self.max_in_hand - len(self._queued)))
        result = await self._get_updates(wait=self.wait, limit=room)
        received: list[Received] = []
        for item in result if isinstance(result, list) else ():
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int):
                log.error(
                    "Telegram sent something that is not an update (a %s), skipped",
                    type(item).__name__,
                )
                continue
            received.append(Received(update_id, chat_of(item), item))
        if not received:
            return []
        async with self.db.begin() as session:
            new = set(await stored.store(session, received))
        # Stored: the next getUpdates, with this offset, confirms them to Telegram.
        self.offset = max(r.update_id for r in received) + 1
        return [r for r in received if r.update_id in new]

    async def hand_over(self, updates: Sequence[Received]) -> None:
        """Read each stored update and queue it for the application, in order.

        One that cannot be read is set aside; the others go on."""
        bot = self.application.bot
        for received in updates:
            try:
                update = Update.de_json(received.raw, bot)
            except Exception as exc:  # whatever the library raises on data it cannot read
                await self._set_aside(received.update_id, f"cannot be read: {_describe(exc)}")
                continue
            self._queued.add(received.update_id)
            if len(self._queued) >= self.max_in_hand:
                self._room.clear()
            self.application.update_queue.put_nowait(update)

    async def recover(self) -> int:
        """Queue what the inbox still holds from before (oldest first); how many."""
        async with self.db.begin() as session:
            rows = await stored.unfinished(session)
        pending: list[Received] = []
        for row in rows:
            if row.update_id in self._queued:
                continue
            if is_signal_update(row.update_id) != (self.messenger == SIGNAL):
                continue  # the other inbox's
            if row.attempts >= self.max_attempts:
                await self._set_aside(
                    row.update_id,
                    f"handling did not finish in {row.attempts} attempts (the bot stopped "
                    f"each time); last error: {row.error or 'none'}",
                )
                continue
            pending.append(Received(row.update_id, row.chat_id, dict(row.raw or {})))
        if pending:
            log.info("handling %d update(s) received before the last stop first", len(pending))
        await self.hand_over(pending)
        return len(pending)

    async def _set_aside(self, update_id: int, error: str) -> None:
        """Mark an update failed, with its error, and say so once in the log."""
        log.error("update %s set aside (kept in the inbox as failed): %s", update_id, error)
        try:
            async with self.db.begin() as session:
                await stored.set_aside(
                    session, update_id, error, now=self.application.services.clock()
                )
        except Exception:
            log.exception("could not mark update %s as failed", update_id)

    # ------------------------------------------------------------------ handling

    @property
    def in_hand(self) -> int:
        """How many updates were handed to the application and are not finished yet."""
        return len(self._queued)

    def owns(self, update: object) -> bool:
        """Whether ``update`` came from the inbox and is not finished yet."""
        return isinstance(update, Update) and update.update_id in self._queued

    async def handle(self, update: Update, process: Callable[[Finish], Awaitable[None]]) -> None:
        """Handle an update from the inbox with ``process``, counting attempts, then mark it.

        ``process`` gives errors in handlers to the error handler and is handed the marking
        (``finish``) to run in the transaction that stores what the update changed, so both
        are committed together; if it does not run it, the update is marked on its own. What
        ``process`` still raises is tried again, up to ``max_attempts`` in all, and then the
        update is set aside. A stop of the process in between leaves the update ``new``, to
        be handled at the next start.
        """
        update_id = update.update_id
        now = self.application.services.clock
        marked = False

        async def finish(session: AsyncSession) -> None:
            nonlocal marked
            await stored.mark_done(session, update_id, now=now())
            marked = True  # committed, unless process() raises after this

        try:
            tries = 0
            while True:
                tries += 1
                attempts = tries
                marked = False
                try:
                    counted = await self._attempts(update_id)
                    if counted is None:
                        return  # already handled or set aside: never twice
                    attempts = counted
                    await process(finish)
                except Exception as exc:
                    if attempts >= self.max_attempts:
                        log.debug("update %s: attempt %d failed", update_id, attempts, exc_info=exc)
                        await self._set_aside(
                            update_id,
                            f"handling failed {attempts} times, the last time with "
                            f"{_describe(exc)}",
                        )
                        return
                    log.debug("update %s: attempt %d failed, again soon", update_id, attempts)
                    with contextlib.suppress(Exception):
                        async with self.db.begin() as session:
                            await stored.note_error(session, update_id, _describe(exc))
                    await asyncio.sleep(RETRY_DELAY * 2 ** (tries - 1))
                    continue
                break
            if not marked:
                try:
                    async with self.db.begin() as session:
                        await finish(session)
                except Exception:
                    log.exception("update %s was handled but could not be marked done", update_id)
        finally:
            self._queued.discard(update_id)
            if len(self._queued) < self.max_in_hand:
                self._room.set()

    async def _count_attempts(self, update_ids: Sequence[int]) -> list[int | None]:
        """Count an attempt of each update in one transaction (see :meth:`handle`)."""
        async with self.db.begin() as session:
            counted = await stored.begin_attempts(session, update_ids)
        return [counted.get(update_id) for update_id in update_ids]

    # ------------------------------------------------------------------ the loop

    async def start(self) -> None:
        """Queue what the inbox still holds, then fetch and hand over until :meth:`stop`."""
        await self.recover()
        self._task = asyncio.create_task(self._poll(), name="inbox:poll")

    async def _poll(self) -> None:
        """Fetch, store and hand over, again and again; wait longer while it fails."""
        if self.messenger == TELEGRAM:
            with contextlib.suppress(TelegramError):
                # A webhook would make every getUpdates fail.
                await self.application.bot.delete_webhook()
        backoff = 1.0
        while True:
            await self._room.wait()  # back-pressure: no more while the application is full
            try:
                new = await self.fetch()
            except TelegramError as exc:
                log.warning("getting updates failed (%s); again in %g s", exc.message, backoff)
            except Exception:
                # Most likely the database: nothing was confirmed, Telegram sends it again.
                log.exception("could not store the updates; again in %g s", backoff)
            else:
                backoff = 1.0
                await self.hand_over(new)
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def stop(self) -> None:
        """Stop fetching, and confirm what was stored (so Telegram does not send it again)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self.offset is not None:
            try:
                await self._get_updates(wait=0, limit=1)
            except TelegramError as exc:
                log.debug("could not confirm the last updates (%s)", exc.message)


@contextlib.asynccontextmanager
async def polling(
    application: BuurtApplication, *, wait: float = POLL_WAIT
) -> AsyncIterator[Inbox]:
    """Run the application on the inbox, as ``run_polling`` runs it on PTB's Updater.

    Initialise, ``post_init``, start, poll; on exit stop polling, handle what is queued, stop
    and shut down (``post_stop``, ``post_shutdown``).
    """
    try:
        await application.initialize()
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        inbox = Inbox(application, wait=wait)
        inboxes = [inbox]
        if getattr(application.bot, "signal", None) is not None:
            # Signal residents reach the same application through the gateway.
            inboxes.append(Inbox(application, wait=wait, messenger=SIGNAL))
        application.inboxes = tuple(inboxes)
        try:
            for each in inboxes:
                await each.start()
            yield inbox
        finally:
            for each in inboxes:
                await each.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


# ---------------------------------------------------------------------- retention


async def purge(application: BuurtApplication, *, now: dt.datetime) -> int:
    """Remove handled and failed updates whose time is up; how many."""
    async with application.services.db.begin() as session:
        removed = await stored.purge(
            session, now=now, done_after=KEEP_DONE, failed_after=KEEP_FAILED
        )
    if removed:
        log.debug("removed %d finished update(s) from the inbox", removed)
    return removed


async def _cleanup_job(context: BuurtContext) -> None:
    """The hourly clean-up of the inbox."""
    await purge(cast("BuurtApplication", context.application), now=context.now)


async def start_jobs(application: Any) -> None:
    """Clean up the inbox every hour (the first time a minute after start)."""
    queue = application.job_queue
    assert queue is not None
    queue.run_repeating(_cleanup_job, interval=CLEANUP_INTERVAL, first=60, name="inbox:cleanup")


FEATURE = Feature(
    name="inbox",
    start=start_jobs,
    jobs=(Job("inbox:cleanup", "every hour: handled updates after a day, failed after a week"),),
)
