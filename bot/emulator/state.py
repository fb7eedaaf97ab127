"""The state of a front (the Signal gateway): export and restore, and forgetting a person,
a chat's messages or a file."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from buurtsignaal.bot.emulator.methods import _Methods
from buurtsignaal.bot.emulator.model import (
    BotMessage,
    JsonDict,
    StoredFile,
    _Chat,
)


class _FrontState(_Methods):
    """What a front keeps over a restart, and what it forgets."""

    # ---------------------------------------------------------------- state of a front

    def export_state(self) -> JsonDict:
        """The state a front needs after a restart, as JSON-ready data: users, chats with
        their recent messages, the updates not yet confirmed and the id counters. File
        contents are not in it (see ``files``)."""
        chats = []
        for chat in self._chats.values():
            chats.append(
                {
                    "id": chat.id,
                    "type": chat.type,
                    "title": chat.title,
                    "user_id": chat.user_id,
                    "username": chat.username,
                    "bot_is_admin": chat.bot_is_admin,
                    "bot_member": chat.bot_member,
                    "next_message_id": chat.next_message_id,
                    "history": list(chat.history.values()),
                    "bot_messages": [
                        {
                            "message_id": m.message_id,
                            "kind": m.kind,
                            "text": m.text,
                            "parse_mode": m.parse_mode,
                            "reply_markup": m.reply_markup,
                            "edited": m.edited,
                            "deleted": m.deleted,
                            "date": m.date,
                            "method": m.method,
                            "raw": m.raw,
                        }
                        for m in chat.bot_messages.values()
                    ],
                    "members": {str(k): v for k, v in chat.members.items()},
                }
            )
        return copy.deepcopy(
            {
                "users": list(self.users.values()),
                "started": sorted(self._started),
                "blocked": sorted(self._blocked),
                "chats": chats,
                "queue": self._queue,
                "fetched_upto": self._fetched_upto,
                "allowed_updates": sorted(self._allowed_updates),
                "next_update_id": self._peek(self._update_ids),
                "next_file_id": self._peek(self._file_ids),
                "next_query_id": self._peek(self._query_ids),
                "open_queries": sorted(self._open_queries),
            }
        )

    @staticmethod
    def _peek(counter: Iterator[int]) -> int:
        """The next number of an ``itertools.count`` without taking it."""
        return int(repr(counter).removeprefix("count(").removesuffix(")"))

    def restore_state(self, state: Mapping[str, Any], files: Iterable[StoredFile] = ()) -> None:
        """Take back what ``export_state`` gave (and the stored files), before serving."""
        state = copy.deepcopy(dict(state))
        self.users = {int(u["id"]): u for u in state.get("users", [])}
        self._started = set(state.get("started", []))
        self._blocked = set(state.get("blocked", []))
        self._chats = {}
        for item in state.get("chats", []):
            chat = _Chat(
                id=item["id"],
                type=item["type"],
                title=item.get("title"),
                user_id=item.get("user_id"),
                username=item.get("username"),
                bot_is_admin=item.get("bot_is_admin", False),
                bot_member=item.get("bot_member", True),
                next_message_id=item.get("next_message_id", 1),
                members={int(k): v for k, v in item.get("members", {}).items()},
            )
            chat.history = {m["message_id"]: m for m in item.get("history", [])}
            for m in item.get("bot_messages", []):
                message = BotMessage(chat_id=chat.id, **m)
                # the history and the message share one raw dict, as when it was sent
                chat.history.setdefault(message.message_id, message.raw)
                message.raw = chat.history[message.message_id]
                chat.bot_messages[message.message_id] = message
            self._chats[chat.id] = chat
        self._queue = list(state.get("queue", []))
        self._fetched_upto = int(state.get("fetched_upto", 0))
        self._open_queries = set(state.get("open_queries", []))
        if state.get("allowed_updates"):
            self._allowed_updates = frozenset(state["allowed_updates"])
        for key, attribute in (
            ("next_update_id", "_update_ids"),
            ("next_file_id", "_file_ids"),
            ("next_query_id", "_query_ids"),
        ):
            if key in state:
                setattr(self, attribute, itertools.count(int(state[key])))
        for stored in files:
            self.files[stored.file_id] = stored
            self._files_by_path[stored.file_path] = stored

    def clear(self) -> None:
        """Forget sent messages, calls and callback answers (chats, users and files stay)."""
        self.sent.clear()
        self.calls.clear()
        self.callback_answers.clear()

    def forget_user(self, user_id: int) -> None:
        """Forget everything about a user: the user, the private chat with its messages, and
        their membership and messages in groups (updates not yet confirmed stay until they
        are). Files are the front's to drop (``drop_file``): the core does not know whose
        they are once a message is forgotten."""
        self.users.pop(user_id, None)
        self._started.discard(user_id)
        self._blocked.discard(user_id)
        private = self._chats.get(user_id)
        if private is not None and private.type == "private":
            del self._chats[user_id]
        for chat in self._chats.values():
            chat.members.pop(user_id, None)
            for message_id, message in list(chat.history.items()):
                if (message.get("from") or {}).get("id") == user_id:
                    del chat.history[message_id]
        self._notify()

    def forget_messages(self, chat_id: int) -> None:
        """Forget the messages of a chat (the chat and its members stay)."""
        chat = self._known_chat(chat_id)
        chat.history.clear()
        chat.bot_messages.clear()
        chat.pinned.clear()
        self._notify()

    def drop_file(self, file_id: str) -> None:
        """Forget a stored file (and the other sizes of the same photo)."""
        single = self.files.get(file_id)
        for stored in self._photo_sets.pop(file_id, None) or ([single] if single else []):
            self.files.pop(stored.file_id, None)
            self._files_by_path.pop(stored.file_path, None)
            self._photo_sets.pop(stored.file_id, None)

    def add_method(self, name: str, handler: Callable[[JsonDict], Any]) -> None:
        """Serve one more method (a front's extension of the Bot API): ``handler(params)``
        returns the result, or raises :class:`ApiError`."""
        self._handlers[name.lower()] = handler
