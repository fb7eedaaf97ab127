"""python-telegram-bot persistence on the project's own database.

Conversation states and user/chat/bot data are stored as JSON rows (``storage.bot_state``).
The application writes through after every update (see ``bot.app``), so a restart, even an
unclean one, loses nothing a resident typed.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from storage import bot_state
from storage.db import Database

USER, CHAT, BOT, CONVERSATION = "user", "chat", "bot", "conversation"
_MISSING = object()


def _conversation_key(name: str, key: ConversationKey) -> str:
    return f"{name}:{json.dumps(list(key))}"


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
        # One writer at a time: SQLite allows a single writer, and ordering keeps it simple.
        self._write_lock = asyncio.Lock()
        # What is stored now, so unchanged rows are not written again and absent ones not
        # deleted again (every group message marks its sender's empty user data).
        self._stored: dict[tuple[str, str], Any] = {}

    async def _load(self, kind: str) -> dict[str, Any]:
        async with self.db.begin() as session:
            rows = await bot_state.load_kind(session, kind)
        self._stored.update({(kind, key): copy.deepcopy(data) for key, data in rows.items()})
        return rows

    async def _save(self, kind: str, key: str, data: Any) -> None:
        if self._stored.get((kind, key), _MISSING) == data:
            return
        async with self._write_lock, self.db.begin() as session:
            await bot_state.save(session, kind, key, data)
        self._stored[(kind, key)] = copy.deepcopy(data)

    async def _drop(self, kind: str, key: str) -> None:
        if (kind, key) not in self._stored:
            return
        async with self._write_lock, self.db.begin() as session:
            await bot_state.drop(session, kind, key)
        self._stored.pop((kind, key), None)

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

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store or forget one conversation's state."""
        if new_state is None:
            await self._drop(CONVERSATION, _conversation_key(name, key))
        else:
            await self._save(CONVERSATION, _conversation_key(name, key), new_state)

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        """Store one user's data; empty data is not kept (group members leave no trace)."""
        if data:
            await self._save(USER, str(user_id), data)
        else:
            await self._drop(USER, str(user_id))

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        """Store one chat's data; empty data is not kept."""
        if data:
            await self._save(CHAT, str(chat_id), data)
        else:
            await self._drop(CHAT, str(chat_id))

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        """Store the bot-wide data."""
        await self._save(BOT, "", data)

    async def update_callback_data(self, data: CDCData) -> None:
        """Arbitrary callback data is not used."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Forget one chat's data."""
        await self._drop(CHAT, str(chat_id))

    async def drop_user_data(self, user_id: int) -> None:
        """Forget one user's data."""
        await self._drop(USER, str(user_id))

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def flush(self) -> None:
        """Every update is written immediately; nothing is buffered."""
