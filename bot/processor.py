"""Per-chat ordered concurrency, on python-telegram-bot's BaseUpdateProcessor.

Updates of different chats are handled side by side, at most ``concurrency`` at once;
updates with the same :func:`order_key` are handled strictly one after the other, in the order
the application's update queue holds them. That is the one ordering mechanism: the inbox
(bot.inbox) queues what it stored oldest first, and a retried update keeps its place, because
it is retried within its own turn.

The key is the chat, except for a button press: that is the person who pressed it (in a
private chat that is the same number), so fifty residents pressing "Ik kom" on one group
announcement are handled side by side, while each person's own updates stay in order.

An update waiting for an earlier one of its chat does not take one of the ``concurrency``
slots, so one busy chat never holds up the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

DEFAULT_CONCURRENCY = 16
# PTB's own semaphore is only the outer bound (a waiting update holds no slot of ours).
_OUTER_BOUND = 1_000_000


def order_key(update: object) -> int | None:
    """What an update must keep its order within: the chat, or the presser of a button."""
    if not isinstance(update, Update):
        return None
    if update.callback_query is not None:
        return update.callback_query.from_user.id
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else None


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Different chats concurrently (bounded), one chat strictly in order."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        # With 1, PTB awaits every update before it takes the next (no tasks at all).
        super().__init__(1 if concurrency == 1 else _OUTER_BOUND)
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        # The last update queued for each key: its end is when the next one may start.
        self._tails: dict[int, asyncio.Future[None]] = {}
        self._running = 0

    @property
    def running(self) -> int:
        """How many updates are being handled right now (not counting those waiting)."""
        return self._running

    @property
    def waiting_chats(self) -> int:
        """How many keys have an update under way or waiting."""
        return len(self._tails)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the previous update of this key, then for a slot, then handle it.

        The place in line is taken before the first await, so it follows the queue order
        (PTB starts the update tasks in the order it took the updates from the queue)."""
        key = order_key(update)
        previous = self._tails.get(key) if key is not None else None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key is not None:
            self._tails[key] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            async with self._slots:
                self._running += 1
                try:
                    await coroutine
                finally:
                    self._running -= 1
        finally:
            done.set_result(None)
            if key is not None and self._tails.get(key) is done:
                del self._tails[key]
            if asyncio.iscoroutine(coroutine):
                coroutine.close()  # never awaited when cancelled while waiting; a no-op else

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to close: the application waits for its update tasks itself."""
