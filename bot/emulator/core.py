"""The emulator: people act (actors, user-caused updates) and tests look (inspection)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from buurtsignaal.bot.emulator.formatting import (
    utf16_len,
)
from buurtsignaal.bot.emulator.model import (
    _COMMAND_RE,
    _INLINE_BUTTON_ACTIONS,
    ApiCall,
    BotMessage,
    JsonDict,
    Listener,
    _Chat,
    _scope_key,
)
from buurtsignaal.bot.emulator.state import _FrontState


class BotApiEmulator(_FrontState):
    """A fake Telegram Bot API server on localhost with scripted users, groups and failures."""

    # ---------------------------------------------------------------- actors

    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "nl",
        started: bool = False,
    ) -> JsonDict:
        """Register a user and the private chat with them; return the User dict.

        Like on Telegram, the bot can write to a user only after they started the bot: sent
        it anything in their private chat (``text``, ``photo``, ...). Until then a send to
        them fails with 403 "bot can't initiate conversation with a user". ``started=True``
        is for a user who did so before the test begins.
        """
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self.users[user_id] = user
        if started:
            self._started.add(user_id)
        if user_id not in self._chats:
            self._chats[user_id] = _Chat(id=user_id, type="private", user_id=user_id)
        return dict(user)

    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        bot_is_admin: bool = False,
        username: str | None = None,
    ) -> JsonDict:
        """Register a supergroup the bot is a member of; return the Chat dict."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(id=chat_id, type="supergroup")
        chat.title = title
        chat.username = username
        chat.bot_is_admin = bot_is_admin
        chat.bot_member = True
        return self._chat_dict(chat)

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Set a user's status in a group (creator, administrator, member, restricted, ...)."""
        if status not in {"creator", "administrator", "member", "restricted", "left", "kicked"}:
            raise ValueError(f"unknown member status {status!r}")
        self._user(user_id)
        self._group(chat_id).members[user_id] = status

    def set_bot_admin(self, chat_id: int, is_admin: bool = True) -> None:
        """Make the bot an administrator of a group (or not)."""
        self._group(chat_id).bot_is_admin = is_admin

    def set_started(self, user_id: int, started: bool = True) -> None:
        """Mark whether a user has started the bot (see ``add_user``)."""
        self._user(user_id)
        if started:
            self._started.add(user_id)
        else:
            self._started.discard(user_id)

    def has_started(self, user_id: int) -> bool:
        """Whether the user started the bot, so the bot may write to them."""
        return user_id in self._started

    def serve_url(self, url: str, content: bytes, content_type: str = "image/jpeg") -> None:
        """Make ``url`` reachable for sendPhoto/sendDocument by URL (others fail like Telegram)."""
        self.web[url] = (content, content_type)

    def block_bot(self, user_id: int) -> None:
        """Let the user block the bot: sends to their private chat then fail with 403."""
        self._user(user_id)
        self._blocked.add(user_id)

    def unblock_bot(self, user_id: int) -> None:
        """Undo ``block_bot``."""
        self._blocked.discard(user_id)

    def chat_ids(self) -> list[int]:
        """Return the ids of all known chats."""
        return list(self._chats)

    # ---------------------------------------------------------------- user-caused updates

    def text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        enqueue: bool = True,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        """The user sends a text message; a leading /command gets a bot_command entity."""
        if not text.strip():
            raise ValueError("Telegram does not deliver empty text messages")
        content: JsonDict = {"text": text}
        match = _COMMAND_RE.match(text)
        if match:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(match.group())}
            ]
        return self._user_message(user_id, chat_id, content, enqueue, reply_to_message_id)

    def press(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        enqueue: bool = True,
    ) -> JsonDict:
        """The user presses a callback button with arbitrary ``data`` on a bot message."""
        user = self._user(user_id)
        chat = self._chat_for(user_id, chat_id)
        sent = chat.bot_messages.get(message_id)
        if sent is None:
            # Telegram only delivers presses on buttons of messages the bot sent; the data
            # itself may be forged (a modified client), the message not.
            raise LookupError(f"the bot sent no message {message_id} in chat {chat.id}")
        message = sent.raw
        query_id = f"{self.id_prefix}{self.bot_id}{next(self._query_ids):010d}"
        self._open_queries.add(query_id)
        query = {
            "id": query_id,
            "from": dict(user),
            "message": copy.deepcopy(message),
            "chat_instance": str(abs(chat.id) * 7919 + self.bot_id),
            "data": data,
        }
        return self._make_update("callback_query", query, enqueue)

    def press_button(
        self,
        user_id: int,
        message_id: int,
        label_or_index: str | int,
        *,
        chat_id: int | None = None,
        enqueue: bool = True,
    ) -> JsonDict:
        """Press an inline button by its text or flat row-major index; LookupError if absent."""
        chat = self._chat_for(user_id, chat_id)
        message = chat.bot_messages.get(message_id)
        if message is None or message.deleted:
            raise LookupError(f"no bot message {message_id} in chat {chat.id}")
        markup = message.raw.get("reply_markup") or {}
        flat: list[JsonDict] = [b for row in markup.get("inline_keyboard", []) for b in row]
        button: JsonDict | None = None
        if isinstance(label_or_index, int):
            if 0 <= label_or_index < len(flat):
                button = flat[label_or_index]
        else:
            exact = [b for b in flat if b["text"] == label_or_index]
            loose = [b for b in flat if b["text"].strip().casefold() == label_or_index.casefold()]
            matches = exact or loose
            button = matches[0] if matches else None
        if button is None:
            labels = [b["text"] for b in flat]
            raise LookupError(f"no button {label_or_index!r} on message {message_id}: {labels}")
        if "callback_data" not in button:
            action = next((a for a in _INLINE_BUTTON_ACTIONS if a in button), "?")
            raise ValueError(f"button {button['text']!r} is a {action} button, not a callback")
        data = button["callback_data"]
        return self.press(user_id, message_id, data, chat_id=chat.id, enqueue=enqueue)

    def location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        enqueue: bool = True,
    ) -> JsonDict:
        """The user shares a location."""
        content = {"location": {"latitude": float(latitude), "longitude": float(longitude)}}
        return self._user_message(user_id, chat_id, content, enqueue)

    def photo(
        self,
        user_id: int,
        content: bytes,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        enqueue: bool = True,
    ) -> JsonDict:
        """The user sends a photo; its sizes are downloadable through getFile."""
        body: JsonDict = {"photo": [self._photo_size(f) for f in self._store_photo(content)]}
        if caption:
            body["caption"] = caption
        return self._user_message(user_id, chat_id, body, enqueue)

    def document(
        self,
        user_id: int,
        content: bytes,
        file_name: str,
        mime_type: str = "application/octet-stream",
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        enqueue: bool = True,
    ) -> JsonDict:
        """The user sends a file as a document."""
        stored = self._store_file("documents", content, file_name=file_name, mime_type=mime_type)
        body: JsonDict = {"document": self._document_dict(stored)}
        if caption:
            body["caption"] = caption
        return self._user_message(user_id, chat_id, body, enqueue)

    def sticker(
        self, user_id: int, *, chat_id: int | None = None, enqueue: bool = True
    ) -> JsonDict:
        """The user sends a (fake) sticker."""
        stored = self._store_file(
            "stickers", b"RIFF\x00\x00\x00\x00WEBPVP8 ", suffix=".webp", mime_type="image/webp"
        )
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
            "file_size": len(stored.content),
        }
        return self._user_message(user_id, chat_id, {"sticker": sticker}, enqueue)

    def voice(self, user_id: int, *, chat_id: int | None = None, enqueue: bool = True) -> JsonDict:
        """The user sends a (fake) voice note."""
        stored = self._store_file(
            "voice", b"OggS\x00\x02" + bytes(58), suffix=".oga", mime_type="audio/ogg"
        )
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": 2,
            "mime_type": "audio/ogg",
            "file_size": len(stored.content),
        }
        return self._user_message(user_id, chat_id, {"voice": voice}, enqueue)

    def new_chat_members(
        self, chat_id: int, user_ids: list[int], *, enqueue: bool = True
    ) -> JsonDict:
        """Users join a group (service message sent by the first of them)."""
        if not user_ids:
            raise ValueError("user_ids must not be empty")
        chat = self._group(chat_id)
        users = [dict(self._user(uid)) for uid in user_ids]
        for uid in user_ids:
            chat.members[uid] = "member"
        message = self._store_user_message(chat, users[0], {"new_chat_members": users})
        return self._make_update("message", message, enqueue)

    def bot_added_to_group(
        self, chat_id: int, by_user_id: int, *, enqueue: bool = True
    ) -> JsonDict:
        """A user adds the bot to a group: a my_chat_member update."""
        chat = self._group(chat_id)
        user = self._user(by_user_id)
        chat.bot_member = True
        chat.members.setdefault(by_user_id, "member")
        payload = {
            "chat": self._chat_dict(chat),
            "from": dict(user),
            "date": int(self.clock()),
            "old_chat_member": {"user": self._bot_user(), "status": "left"},
            "new_chat_member": self._bot_member(chat),
        }
        return self._make_update("my_chat_member", payload, enqueue)

    # ---------------------------------------------------------------- inspection

    def messages(self, chat_id: int) -> list[BotMessage]:
        """Current bot messages in a chat (edits applied, deleted ones left out)."""
        return [m for m in self._known_chat(chat_id).bot_messages.values() if not m.deleted]

    def message(self, chat_id: int, message_id: int) -> BotMessage:
        """One bot message (possibly flagged deleted); LookupError if the bot never sent it."""
        found = self._known_chat(chat_id).bot_messages.get(message_id)
        if found is None:
            raise LookupError(f"the bot sent no message {message_id} in chat {chat_id}")
        return found

    def last_sent(self, chat_id: int | None = None) -> BotMessage:
        """The most recent message the bot sent (optionally in one chat)."""
        for message in reversed(self.sent):
            if chat_id is None or message.chat_id == chat_id:
                return message
        raise LookupError(f"the bot sent nothing{'' if chat_id is None else f' to {chat_id}'}")

    def history(self, chat_id: int) -> list[JsonDict]:
        """All live messages in a chat (user and bot) as Bot API dicts, oldest first."""
        return [copy.deepcopy(m) for m in self._known_chat(chat_id).history.values()]

    def calls_to(self, method: str) -> list[ApiCall]:
        """Recorded calls of one method (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def commands_for(
        self, scope: Mapping[str, Any] | None = None, language_code: str = ""
    ) -> list[JsonDict] | None:
        """Commands stored for a scope (default scope if None) and language, or None."""
        return self.commands.get((_scope_key(scope), language_code))

    scope_key = staticmethod(_scope_key)

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(event, message)`` on "sent", "edited" and "deleted"."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling a listener added with ``add_listener``."""
        self._listeners.remove(callback)

    def add_answer_listener(self, callback: Callable[[JsonDict], object]) -> None:
        """Call ``callback(params)`` for every successful answerCallbackQuery."""
        self._answer_listeners.append(callback)

    def add_change_listener(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after every change of state (an API call, a new update)."""
        self._change_listeners.append(callback)
