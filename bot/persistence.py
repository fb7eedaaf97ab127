"""python-telegram-bot persistence on the project's own database.

Conversation states and user/chat/bot data are stored as JSON rows (``storage.bot_state``).
The application writes through after every update (see ``BuurtApplication.update_persistence``),
so a restart, even an unclean one, loses nothing a resident typed:

- python-telegram-bot hands over a deep copy of what changed; the ``update_*`` methods only
  collect it, and :meth:`SqlPersistence.write` stores all of it in one transaction (one upsert
  and at most one delete per kind), however many updates are handled at the same time.
- A write may bring more of the caller's writes into that transaction (``finish``: the inbox
  marks the update handled there), so an update's state and the mark that it was handled are
  committed together, and updates finishing at the same time share one commit
  (``storage.db.GroupCommit``).
- What is stored is remembered as a short fingerprint per row, not as a second copy of the
  data next to python-telegram-bot's own, so unchanged rows are not written again and rows
  that were never stored are not deleted (every group message marks its sender's empty user
  data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from buurtsignaal.storage import bot_state
from buurtsignaal.storage.db import Database, GroupCommit
from buurtsignaal.storage.models import utcnow

USER, CHAT, BOT, CONVERSATION = "user", "chat", "bot", "conversation"
_DROP = object()

Row = tuple[str, str]
# More writes of the caller, made in the transaction that stores the state.
Finish = Callable[[AsyncSession], Awaitable[None]]


def _conversation_key(name: str, key: ConversationKey) -> str:
    return f"{name}:{json.dumps(list(key))}"


def fingerprint(data: Any) -> bytes:
    """A short fingerprint of JSON data (the same data gives the same one)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


class SqlPersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    """BasePersistence backed by async SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, *, update_interval: float = 60) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=True, chat_data=True, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self.db = db
        # The time rows are stamped with (the application's one clock, set by bot.app).
        self.clock: Callable[[], dt.datetime] = utcnow
        # Collected since the last write: row -> data, or _DROP.
        self._pending: dict[Row, Any] = {}
        # One write at a time: what is collected meanwhile goes into the next one, and a
        # write that finds nothing pending knows that what it would have written is committed.
        self._commit: GroupCommit[Finish | None, None] = GroupCommit(self._write_batch)
        # The fingerprint of every stored row.
        self._stored: dict[Row, bytes] = {}

    # ------------------------------------------------------------------ writing

    async def write(self, finish: Finish | None = None) -> None:
        """Store everything collected so far in one transaction (nothing when unchanged),
        together with ``finish`` and those of other tasks writing at the same time; returns
        when that is committed."""
        await self._commit(finish)

    async def _write_batch(self, finishing: Sequence[Finish | None]) -> list[None]:
        pending, self._pending = self._pending, {}
        changed: dict[Row, Any] = {}
        prints: dict[Row, bytes] = {}
        dropped: list[Row] = []
        for row, data in pending.items():
            if data is _DROP:
                if row in self._stored:
                    dropped.append(row)
                continue
            mark = fingerprint(data)
            if self._stored.get(row) != mark:
                changed[row] = data
                prints[row] = mark
        finishers = [each for each in finishing if each is not None]
        if changed or dropped or finishers:
            try:
                async with self.db.begin() as session:
                    if changed or dropped:
                        await bot_state.write(session, changed, dropped, now=self.clock())
                    for finish in finishers:
                        await finish(session)
            except BaseException:
                # Not stored: keep it for the next write, unless something newer came.
                for row, data in pending.items():
                    self._pending.setdefault(row, data)
                raise
            self._stored.update(prints)
            for row in dropped:
                self._stored.pop(row, None)
        return [None] * len(finishing)

    def _save(self, kind: str, key: str, data: Any) -> None:
        self._pending[(kind, key)] = data

    def _drop(self, kind: str, key: str) -> None:
        self._pending[(kind, key)] = _DROP

    # ------------------------------------------------------------------ reading

    async def _load(self, kind: str) -> dict[str, Any]:
        async with self.db.begin() as session:
            rows = await bot_state.load_kind(session, kind)
        self._stored.update({(kind, key): fingerprint(data) for key, data in rows.items()})
        return rows

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        """All users' data."""
        return {int(k): v for k, v in (await self._load(USER)).items()}

    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        """All chats' data."""
        return {int(k): v for k, v in (await self._load(CHAT)).items()}

    async def get_bot_data(self) -> dict[str, Any]:
        """The bot-wide data."""
        data: dict[str, Any] = (await self._load(BOT)).get("", {})
        return data

    async def get_callback_data(self) -> CDCData | None:
        """Arbitrary callback data is not used."""
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        """The stored states of one ConversationHandler."""
        prefix = f"{name}:"
        stored = await self._load(CONVERSATION)
        return {
            tuple(json.loads(key[len(prefix) :])): state
            for key, state in stored.items()
            if key.startswith(prefix)
        }

    # ------------------------------------------------------------------ what PTB hands over

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store or forget one conversation's state (at the next write)."""
        if new_state is None:
            self._drop(CONVERSATION, _conversation_key(name, key))
        else:
            self._save(CONVERSATION, _conversation_key(name, key), new_state)

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        """Store one user's data; empty data is not kept (group members leave no trace)."""
        if data:
            self._save(USER, str(user_id), data)
        else:
            self._drop(USER, str(user_id))

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        """Store one chat's data; empty data is not kept."""
        if data:
            self._save(CHAT, str(chat_id), data)
        else:
            self._drop(CHAT, str(chat_id))

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        """Store the bot-wide data."""
        self._save(BOT, "", data)

    async def update_callback_data(self, data: CDCData) -> None:
        """Arbitrary callback data is not used."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Forget one chat's data."""
        self._drop(CHAT, str(chat_id))

    async def drop_user_data(self, user_id: int) -> None:
        """Forget one user's data."""
        self._drop(USER, str(user_id))

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def flush(self) -> None:
        """Write what is still collected (python-telegram-bot calls this when it stops)."""
        await self.write()
