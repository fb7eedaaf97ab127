"""The emulator core's state and its internals: the attributes, polling helpers, and how a
user's message and an update are made."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from buurtsignaal.bot.emulator.model import (
    _ADMIN_RIGHTS,
    _RESTRICTED_RIGHTS,
    DEFAULT_UPDATE_TYPES,
    ApiCall,
    BotMessage,
    InjectedFault,
    JsonDict,
    Listener,
    StoredFile,
    _Chat,
    _Failure,
    _FaultPlan,
)

_log = logging.getLogger("buurtsignaal.bot.emulator")


class _EmulatorBase:
    """The core's state: users, chats, messages, files, updates, and what changes them."""

    def __init__(
        self,
        *,
        token: str = "123456:EMULATOR-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "buurtsignaal_bot",
        bot_first_name: str = "Buurtsignaal",
        latency_ms: float = 0.0,
        flood_limits: bool = False,
        id_prefix: str = "",
        first_update_id: int = 1,
        keep_messages: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the emulator; call ``start`` (or use ``async with``) to serve it.

        ``id_prefix`` starts every file id and callback query id, and ``first_update_id`` is
        the first update id, so a bot served by two such servers can tell their ids apart.
        ``keep_messages`` keeps only that many newest messages per chat (all when None).
        ``clock`` gives Telegram's time (seconds since the epoch) for dates and the 48-hour
        delete window.

        ``latency_ms`` delays every answer (getUpdates included) as a network would;
        ``flood_limits`` answers 429 like Telegram when the bot sends too fast (see
        :meth:`_check_flood`). Both are attributes that may be changed at any time.
        """
        self.token = token
        self.clock = clock
        self.latency_ms = latency_ms
        self.flood_limits = flood_limits
        # (messages, seconds): all chats together, one group, one private chat.
        self.flood_overall: tuple[int, float] = (30, 1.0)
        self.flood_group: tuple[int, float] = (20, 60.0)
        self.flood_private: tuple[int, float] = (5, 5.0)
        self.flood_errors = 0
        self.injected: list[InjectedFault] = []
        # Web content sendPhoto/sendDocument can fetch by URL: url -> (bytes, content type).
        self.web: dict[str, tuple[bytes, str]] = {}
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.host = "127.0.0.1"
        self.port = 0
        self.users: dict[int, JsonDict] = {}
        self.files: dict[str, StoredFile] = {}
        self.sent: list[BotMessage] = []
        self.calls: list[ApiCall] = []
        self.callback_answers: list[JsonDict] = []
        self.commands: dict[tuple[str, str], list[JsonDict]] = {}
        self.menu_buttons: dict[int | None, JsonDict] = {}
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.webhook_url = ""
        self.internal_errors: list[Exception] = []
        self._chats: dict[int, _Chat] = {}
        self._blocked: set[int] = set()
        self._started: set[int] = set()
        self._flood: list[tuple[float, int | None]] = []
        self._fault_plan: _FaultPlan | None = None
        self._files_by_path: dict[str, StoredFile] = {}
        self._photo_sets: dict[str, list[StoredFile]] = {}
        self._queue: list[JsonDict] = []
        self._fetched_upto = 0
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.id_prefix = id_prefix
        self.keep_messages = keep_messages
        self._update_ids = itertools.count(first_update_id)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._change_listeners: list[Callable[[], object]] = []
        self._open_queries: set[str] = set()
        self._failures: dict[str, list[_Failure]] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._listeners: list[Listener] = []
        self._answer_listeners: list[Callable[[JsonDict], object]] = []
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Callable[[JsonDict], Any]] = self._method_table()

    def _method_table(self) -> dict[str, Callable[[JsonDict], Any]]:
        """The Bot API methods served, by lower-case name (see bot.emulator.methods)."""
        return {}

    # ---------------------------------------------------------------- polling helpers

    @property
    def allowed_updates(self) -> frozenset[str]:
        """The update types the bot asked for (by getUpdates' allowed_updates)."""
        return self._allowed_updates

    def enqueue_raw(self, payload: JsonDict) -> JsonDict:
        """Enqueue an update exactly as given (plus a fresh update_id), even a malformed one."""
        update = {"update_id": next(self._update_ids), **copy.deepcopy(payload)}
        self._queue.append(update)
        self._notify()
        return copy.deepcopy(update)

    @property
    def pending_updates(self) -> int:
        """Updates enqueued but not yet handed out by getUpdates."""
        return sum(1 for u in self._queue if u["update_id"] > self._fetched_upto)

    @property
    def unconfirmed_updates(self) -> int:
        """Updates not yet confirmed by a later getUpdates offset."""
        return len(self._queue)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds; it is re-checked after every API call or update."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_fetch(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every enqueued update was handed out by getUpdates."""
        try:
            await self.wait_until(lambda: self.pending_updates == 0, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.pending_updates} update(s) not fetched in {timeout}s"
            ) from None

    async def wait_for_confirm(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every enqueued update was confirmed by a later getUpdates offset."""
        await self.wait_until(lambda: not self._queue, timeout)

    async def wait_for_sent(self, count: int, timeout: float = 5.0) -> list[BotMessage]:  # noqa: ASYNC109
        """Wait until ``len(sent) >= count``; return ``sent``."""
        try:
            await self.wait_until(lambda: len(self.sent) >= count, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"expected {count} sent message(s), got {len(self.sent)} in {timeout}s"
            ) from None
        return self.sent

    # ---------------------------------------------------------------- internals: state

    def _notify(self) -> None:
        """Wake everyone waiting for a state change (long polls and wait_* helpers)."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        for listener in list(self._change_listeners):
            listener()

    def _forget_old(self, chat: _Chat) -> None:
        """Keep only the newest ``keep_messages`` messages of a chat."""
        if self.keep_messages is None:
            return
        for store in (chat.history, chat.bot_messages):
            while len(store) > self.keep_messages:
                del store[next(iter(store))]

    def _emit(self, event: str, message: BotMessage) -> None:
        """Tell the listeners about a sent/edited/deleted bot message."""
        for listener in list(self._listeners):
            try:
                listener(event, message)
            except Exception:
                _log.exception("emulator listener failed for %s", event)

    def _user(self, user_id: int) -> JsonDict:
        """Return a known user or raise LookupError."""
        try:
            return self.users[user_id]
        except KeyError:
            raise LookupError(f"unknown user {user_id}; call add_user first") from None

    def _known_chat(self, chat_id: int) -> _Chat:
        """Return a known chat or raise LookupError."""
        try:
            return self._chats[chat_id]
        except KeyError:
            raise LookupError(f"unknown chat {chat_id}") from None

    def _group(self, chat_id: int) -> _Chat:
        """Return a known group or raise LookupError."""
        chat = self._known_chat(chat_id)
        if chat.type == "private":
            raise LookupError(f"chat {chat_id} is a private chat, not a group")
        return chat

    def _chat_for(self, user_id: int, chat_id: int | None) -> _Chat:
        """Chat a user acts in: their private chat if ``chat_id`` is None."""
        self._user(user_id)
        chat = self._known_chat(user_id if chat_id is None else chat_id)
        if chat.type == "private" and chat.user_id != user_id:
            raise LookupError(f"user {user_id} cannot act in the private chat {chat.id}")
        return chat

    def _bot_user(self) -> JsonDict:
        """The bot's User dict."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _chat_dict(self, chat: _Chat) -> JsonDict:
        """The Chat dict embedded in messages."""
        if chat.type == "private":
            user = self.users[chat.user_id or chat.id]
            result: JsonDict = {"id": chat.id, "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    result[key] = user[key]
            return result
        result = {"id": chat.id, "type": chat.type, "title": chat.title or ""}
        if chat.username:
            result["username"] = chat.username
        return result

    def _member_dict(self, user: JsonDict, status: str) -> JsonDict:
        """A ChatMember dict for ``status`` with every field PTB requires."""
        member: JsonDict = {"user": dict(user), "status": status}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(dict.fromkeys(_ADMIN_RIGHTS, True))
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_promote_members=False,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_manage_topics=False,
            )
        elif status == "restricted":
            member.update(dict.fromkeys(_RESTRICTED_RIGHTS, False))
            member.update(is_member=True, until_date=0)
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _bot_member(self, chat: _Chat) -> JsonDict:
        """The bot's ChatMember dict in a chat."""
        status = "administrator" if chat.type != "private" and chat.bot_is_admin else "member"
        if chat.type != "private" and not chat.bot_member:
            status = "left"
        return self._member_dict(self._bot_user(), status)

    def _make_update(self, kind: str, payload: JsonDict, enqueue: bool) -> JsonDict:
        """Wrap a payload into an Update, enqueue it if asked and return it."""
        update = {"update_id": next(self._update_ids), kind: payload}
        if enqueue:
            self._queue.append(update)
            self._notify()
        return copy.deepcopy(update)

    def _store_user_message(self, chat: _Chat, user: JsonDict, content: JsonDict) -> JsonDict:
        """Store a message from a user in the chat history and return it."""
        message: JsonDict = {
            "message_id": chat.take_message_id(),
            "from": dict(user),
            "chat": self._chat_dict(chat),
            "date": int(self.clock()),
            **content,
        }
        chat.history[message["message_id"]] = message
        self._forget_old(chat)
        return message

    def _user_message(
        self,
        user_id: int,
        chat_id: int | None,
        content: JsonDict,
        enqueue: bool,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        """Build, store and enqueue a message a user sends."""
        user = self._user(user_id)
        chat = self._chat_for(user_id, chat_id)
        if chat.type != "private":
            chat.members.setdefault(user_id, "member")
        else:
            self._started.add(user_id)
        if reply_to_message_id is not None:
            replied = chat.history.get(reply_to_message_id)
            if replied is None:
                raise LookupError(f"no message {reply_to_message_id} in chat {chat.id}")
            content = {**content, "reply_to_message": self._reply_copy(replied)}
        message = self._store_user_message(chat, user, content)
        return self._make_update("message", copy.deepcopy(message), enqueue)

    @staticmethod
    def _reply_copy(message: JsonDict) -> JsonDict:
        """A message as embedded in reply_to_message (without its own reply)."""
        replied = copy.deepcopy(message)
        replied.pop("reply_to_message", None)
        return replied
