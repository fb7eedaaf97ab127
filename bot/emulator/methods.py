"""The Bot API methods the emulator serves (getUpdates, sendMessage, editMessageText, ...)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
from collections.abc import Callable
from typing import Any, Final

from buurtsignaal.bot.emulator.files import image_size
from buurtsignaal.bot.emulator.formatting import (
    utf16_len,
)
from buurtsignaal.bot.emulator.model import (
    _BOT_COMMAND_RE,
    _CHAT_ACTIONS,
    _MEDIA_KINDS,
    _MENU_BUTTON_TYPES,
    DEFAULT_UPDATE_TYPES,
    DELETE_WINDOW,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_TEXT_LENGTH,
    ApiError,
    JsonDict,
    UploadedFile,
    _bad,
    _Chat,
    _content_kind,
    _scope_key,
)
from buurtsignaal.bot.emulator.server import _Server

_log = logging.getLogger("buurtsignaal.bot.emulator")


class _Methods(_Server):
    """The Bot API methods."""

    def _method_table(self) -> dict[str, Callable[[JsonDict], Any]]:
        """The Bot API methods served, by lower-case name."""
        return {
            name.lower(): handler
            for name, handler in {
                "getMe": self._api_get_me,
                "getUpdates": self._api_get_updates,
                "deleteWebhook": self._api_delete_webhook,
                "setWebhook": self._api_set_webhook,
                "getWebhookInfo": self._api_get_webhook_info,
                "close": self._api_true,
                "logOut": self._api_true,
                "setMyCommands": self._api_set_my_commands,
                "getMyCommands": self._api_get_my_commands,
                "deleteMyCommands": self._api_delete_my_commands,
                "setChatMenuButton": self._api_set_chat_menu_button,
                "getChatMenuButton": self._api_get_chat_menu_button,
                "setMyDescription": self._api_set_my_description,
                "getMyDescription": self._api_get_my_description,
                "setMyShortDescription": self._api_set_my_short_description,
                "getMyShortDescription": self._api_get_my_short_description,
                "setMyName": self._api_set_my_name,
                "getMyName": self._api_get_my_name,
                "sendMessage": self._api_send_message,
                "editMessageText": self._api_edit_message_text,
                "editMessageCaption": self._api_edit_message_caption,
                "editMessageReplyMarkup": self._api_edit_message_reply_markup,
                "deleteMessage": self._api_delete_message,
                "deleteMessages": self._api_delete_messages,
                "answerCallbackQuery": self._api_answer_callback_query,
                "sendPhoto": self._api_send_photo,
                "sendDocument": self._api_send_document,
                "sendLocation": self._api_send_location,
                "sendChatAction": self._api_send_chat_action,
                "getFile": self._api_get_file,
                "getChat": self._api_get_chat,
                "getChatMember": self._api_get_chat_member,
                "getChatAdministrators": self._api_get_chat_administrators,
                "getChatMemberCount": self._api_get_chat_member_count,
                "leaveChat": self._api_leave_chat,
                "copyMessage": self._api_copy_message,
                "forwardMessage": self._api_forward_message,
                "pinChatMessage": self._api_pin_chat_message,
                "unpinChatMessage": self._api_unpin_chat_message,
            }.items()
        }

    # ---------------------------------------------------------------- API: bot and updates

    def _api_true(self, params: JsonDict) -> bool:
        """Methods that just succeed (close, logOut)."""
        return True

    def _api_get_me(self, params: JsonDict) -> JsonDict:
        """getMe."""
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _confirm(self, offset: int | None) -> None:
        """Forget updates confirmed by a getUpdates offset."""
        if offset is None or offset == 0:
            return
        if offset < 0:
            dropped = self._queue[:offset]
            self._queue = self._queue[offset:]
        else:
            dropped = [u for u in self._queue if u["update_id"] < offset]
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        if dropped:
            self._fetched_upto = max(self._fetched_upto, dropped[-1]["update_id"])

    async def _api_get_updates(self, params: JsonDict) -> list[JsonDict]:
        """getUpdates with offset confirmation, limit, long polling and allowed_updates."""
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # an older long poll is terminated by this one
        limit = min(max(self._int_param(params, "limit") or 100, 1), 100)
        timeout = max(float(self._json_param(params, "timeout") or 0), 0.0)
        allowed = self._json_param(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        self._confirm(self._int_param(params, "offset"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request")
            kept = [u for u in self._queue if self._allowed_update(u)]
            if len(kept) != len(self._queue):
                self._queue = kept
            batch = self._queue[:limit]
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                break
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        if batch:
            self._fetched_upto = max(self._fetched_upto, batch[-1]["update_id"])
        return copy.deepcopy(batch)

    def _allowed_update(self, update: JsonDict) -> bool:
        """Whether an update's type passes the current allowed_updates setting."""
        return any(k in self._allowed_updates for k in update if k != "update_id")

    def _api_delete_webhook(self, params: JsonDict) -> bool:
        """deleteWebhook (optionally dropping pending updates)."""
        self.webhook_url = ""
        if self._json_param(params, "drop_pending_updates") is True and self._queue:
            self._fetched_upto = max(self._fetched_upto, self._queue[-1]["update_id"])
            self._queue = []
        return True

    def _api_set_webhook(self, params: JsonDict) -> bool:
        """setWebhook (stored only; nothing is ever posted to it)."""
        url = self._str_param(params, "url") or ""
        if url and not url.lower().startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url
        return True

    def _api_get_webhook_info(self, params: JsonDict) -> JsonDict:
        """getWebhookInfo."""
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }

    def _commands_key(self, params: JsonDict) -> tuple[str, str]:
        """The (scope, language_code) key of a *MyCommands call."""
        scope = self._json_param(params, "scope")
        if scope is not None and not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        return _scope_key(scope), self._language(params)

    def _language(self, params: JsonDict) -> str:
        """The language_code of a bot setting: empty, or two lower-case letters (ISO 639-1)."""
        language = self._str_param(params, "language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        return language

    def _api_set_my_commands(self, params: JsonDict) -> bool:
        """setMyCommands, validated and stored per scope and language."""
        commands = self._json_param(params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        cleaned: list[JsonDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _BOT_COMMAND_RE.fullmatch(name.removeprefix("/")):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name.removeprefix("/"), "description": description})
        key = self._commands_key(params)
        if cleaned:
            self.commands[key] = cleaned
        else:
            self.commands.pop(key, None)
        return True

    def _api_get_my_commands(self, params: JsonDict) -> list[JsonDict]:
        """getMyCommands."""
        return list(self.commands.get(self._commands_key(params), []))

    def _api_delete_my_commands(self, params: JsonDict) -> bool:
        """deleteMyCommands."""
        self.commands.pop(self._commands_key(params), None)
        return True

    def _api_set_chat_menu_button(self, params: JsonDict) -> bool:
        """setChatMenuButton (per chat, or the default with no chat_id)."""
        chat_id = self._int_param(params, "chat_id")
        if chat_id is not None:
            self._resolve_chat(chat_id)
        button = self._json_param(params, "menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in _MENU_BUTTON_TYPES:
            raise _bad("can't parse menu button JSON object")
        self.menu_buttons[chat_id] = button
        return True

    def _api_get_chat_menu_button(self, params: JsonDict) -> JsonDict:
        """getChatMenuButton."""
        chat_id = self._int_param(params, "chat_id")
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None)
        return button or {"type": "default"}

    def _set_text_setting(
        self, params: JsonDict, key: str, store: dict[str, str], limit: int
    ) -> bool:
        """Store a per-language bot text (description, short description, name)."""
        value = self._str_param(params, key) or ""
        if len(value) > limit:
            raise _bad(f"{key} is too long")
        language = self._language(params)
        if value:
            store[language] = value
        else:
            store.pop(language, None)
        return True

    def _api_set_my_description(self, params: JsonDict) -> bool:
        """setMyDescription."""
        return self._set_text_setting(params, "description", self.descriptions, 512)

    def _api_get_my_description(self, params: JsonDict) -> JsonDict:
        """getMyDescription."""
        language = self._language(params)
        return {"description": self.descriptions.get(language, self.descriptions.get("", ""))}

    def _api_set_my_short_description(self, params: JsonDict) -> bool:
        """setMyShortDescription."""
        return self._set_text_setting(params, "short_description", self.short_descriptions, 120)

    def _api_get_my_short_description(self, params: JsonDict) -> JsonDict:
        """getMyShortDescription."""
        language = self._language(params)
        store = self.short_descriptions
        return {"short_description": store.get(language, store.get("", ""))}

    def _api_set_my_name(self, params: JsonDict) -> bool:
        """setMyName."""
        return self._set_text_setting(params, "name", self.names, 64)

    def _api_get_my_name(self, params: JsonDict) -> JsonDict:
        """getMyName."""
        language = self._language(params)
        return {"name": self.names.get(language, self.names.get("", self.bot_first_name))}

    # ---------------------------------------------------------------- API: messages

    def _api_send_message(self, params: JsonDict) -> JsonDict:
        """sendMessage."""
        chat = self._send_target(params)
        text = self._str_param(params, "text")
        if text is None:
            raise _bad("message text is empty")
        plain, entities = self._format(
            text, self._parse_mode(params), self._json_param(params, "entities")
        )
        if not plain:
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        markup = self._markup(params)
        content: JsonDict = {"text": plain}
        if entities:
            content["entities"] = entities
        message = self._new_bot_message(
            chat, "sendMessage", content, params, text=text, markup=markup
        )
        return message.raw

    def _api_send_photo(self, params: JsonDict) -> JsonDict:
        """sendPhoto."""
        chat = self._send_target(params)
        source = self._input_file(params, "photo")
        caption, fields = self._caption(params)
        markup = self._markup(params)
        if isinstance(source, UploadedFile):
            sizes = self._store_photo(source.content)
        elif isinstance(source, str):
            fetched, content_type = self.web[source]
            if not content_type.startswith("image/") or image_size(fetched) is None:
                raise _bad("wrong type of the web page content")
            sizes = self._store_photo(fetched, source_url=source)
        else:
            sizes = self._photo_sets.get(source.file_id) or self._store_photo(source.content)
        content = {"photo": [self._photo_size(s) for s in sizes], **fields}
        if self._json_param(params, "has_spoiler") is True:
            content["has_media_spoiler"] = True
        message = self._new_bot_message(
            chat, "sendPhoto", content, params, text=caption, markup=markup, stored=sizes[-1]
        )
        message.mime_type = "image/jpeg"
        return message.raw

    def _api_send_document(self, params: JsonDict) -> JsonDict:
        """sendDocument."""
        chat = self._send_target(params)
        source = self._input_file(params, "document")
        caption, fields = self._caption(params)
        markup = self._markup(params)
        if isinstance(source, UploadedFile):
            stored = self._store_file(
                "documents",
                source.content,
                file_name=source.filename,
                mime_type=source.content_type or "application/octet-stream",
            )
        elif isinstance(source, str):
            name = source.rsplit("/", 1)[-1] or None
            fetched, content_type = self.web[source]
            stored = self._store_file(
                "documents", fetched, file_name=name, mime_type=content_type, source_url=source
            )
        else:
            stored = source
        content = {"document": self._document_dict(stored), **fields}
        message = self._new_bot_message(
            chat, "sendDocument", content, params, text=caption, markup=markup, stored=stored
        )
        return message.raw

    def _api_send_location(self, params: JsonDict) -> JsonDict:
        """sendLocation."""
        chat = self._send_target(params)
        latitude = self._float_param(params, "latitude")
        longitude = self._float_param(params, "longitude")
        if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
            raise _bad("wrong location specified")
        markup = self._markup(params)
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._new_bot_message(chat, "sendLocation", content, params, markup=markup).raw

    def _api_send_chat_action(self, params: JsonDict) -> bool:
        """sendChatAction."""
        self._send_target(params)
        if self._str_param(params, "action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    def _api_edit_message_text(self, params: JsonDict) -> JsonDict:
        """editMessageText."""
        message = self._edit_target(params)
        text = self._str_param(params, "text")
        if text is None:
            raise _bad("message text is empty")
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        plain, entities = self._format(
            text, self._parse_mode(params), self._json_param(params, "entities")
        )
        if not plain:
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        markup = self._markup(params, inline_only=True)
        self._apply_edit(message, {"text": plain, "entities": entities or None}, markup)
        message.text = text
        message.parse_mode = self._parse_mode(params)
        return message.raw

    def _api_edit_message_caption(self, params: JsonDict) -> JsonDict:
        """editMessageCaption."""
        message = self._edit_target(params)
        if message.kind not in _MEDIA_KINDS:
            raise _bad("there is no caption in the message to edit")
        caption, fields = self._caption(params)
        markup = self._markup(params, inline_only=True)
        update = {
            "caption": fields.get("caption"),
            "caption_entities": fields.get("caption_entities"),
        }
        self._apply_edit(message, update, markup)
        message.text = caption
        message.parse_mode = self._parse_mode(params) if caption is not None else None
        return message.raw

    def _api_edit_message_reply_markup(self, params: JsonDict) -> JsonDict:
        """editMessageReplyMarkup."""
        message = self._edit_target(params)
        self._apply_edit(message, {}, self._markup(params, inline_only=True))
        return message.raw

    def _delete(self, chat: _Chat, message_id: int) -> bool:
        """Delete one message; False if there is no such message.

        As on Telegram, a message older than 48 hours can't be deleted for everyone, unless
        the bot is an administrator of the (super)group.
        """
        message = chat.bot_messages.get(message_id)
        live = chat.history.get(message_id)
        if live is not None and not (chat.type != "private" and chat.bot_is_admin):
            if int(self.clock()) - int(live.get("date", 0)) >= DELETE_WINDOW:
                raise _bad("message can't be deleted for everyone")
        if message is not None and not message.deleted:
            message.deleted = True
            chat.history.pop(message_id, None)
            if message_id in chat.pinned:
                chat.pinned.remove(message_id)
            self._emit("deleted", message)
            return True
        if message_id not in chat.history:
            return False
        if chat.type != "private" and not chat.bot_is_admin:
            raise _bad("message can't be deleted")
        del chat.history[message_id]
        return True

    def _api_delete_message(self, params: JsonDict) -> bool:
        """deleteMessage."""
        chat = self._resolve_chat(params.get("chat_id"))
        message_id = self._int_param(params, "message_id", "message identifier is not specified")
        assert message_id is not None
        if not self._delete(chat, message_id):
            raise _bad("message to delete not found")
        return True

    def _api_delete_messages(self, params: JsonDict) -> bool:
        """deleteMessages (missing messages are skipped)."""
        chat = self._resolve_chat(params.get("chat_id"))
        ids = self._json_param(params, "message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message identifiers are not specified")
        for message_id in ids:
            with contextlib.suppress(ApiError):
                self._delete(chat, int(message_id))
        return True

    def _api_answer_callback_query(self, params: JsonDict) -> bool:
        """answerCallbackQuery."""
        query_id = self._str_param(params, "callback_query_id")
        if query_id not in self._open_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = self._str_param(params, "text") or ""
        if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        answer = dict(params)
        self.callback_answers.append(answer)
        for listener in list(self._answer_listeners):
            try:
                listener(answer)
            except Exception:
                _log.exception("emulator answer listener failed")
        return True

    def _copy_source(self, params: JsonDict) -> JsonDict:
        """The message a copy/forward refers to."""
        source_chat = self._resolve_chat(params.get("from_chat_id"))
        message_id = self._int_param(params, "message_id", "message identifier is not specified")
        assert message_id is not None
        source = source_chat.history.get(message_id)
        if source is None:
            raise _bad("message to copy not found")
        if _content_kind(source) == "other":
            raise _bad("message can't be copied")
        return source

    _ENVELOPE_KEYS: Final = frozenset(
        {"message_id", "from", "chat", "date", "edit_date", "reply_markup", "reply_to_message",
         "forward_origin"}
    )  # fmt: skip

    def _api_copy_message(self, params: JsonDict) -> JsonDict:
        """copyMessage."""
        source = self._copy_source(params)
        chat = self._send_target(params)
        content = {k: copy.deepcopy(v) for k, v in source.items() if k not in self._ENVELOPE_KEYS}
        text = content.get("text")
        if "caption" in params and _content_kind(content) in _MEDIA_KINDS:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            text, fields = self._caption(params)
            content.update(fields)
        elif "caption" in content:
            text = content["caption"]
        markup = self._markup(params)
        message = self._new_bot_message(
            chat,
            "copyMessage",
            content,
            params,
            text=text,
            markup=markup,
            stored=self._content_file(content),
        )
        return {"message_id": message.message_id}

    def _api_forward_message(self, params: JsonDict) -> JsonDict:
        """forwardMessage."""
        source = self._copy_source(params)
        chat = self._send_target(params)
        content = {k: copy.deepcopy(v) for k, v in source.items() if k not in self._ENVELOPE_KEYS}
        content["forward_origin"] = {
            "type": "user",
            "sender_user": copy.deepcopy(source["from"]),
            "date": source["date"],
        }
        message = self._new_bot_message(
            chat,
            "forwardMessage",
            content,
            {k: v for k, v in params.items() if k != "parse_mode"},
            text=content.get("text", content.get("caption")),
            stored=self._content_file(content),
        )
        return message.raw

    # ---------------------------------------------------------------- API: chats and files

    def _api_get_file(self, params: JsonDict) -> JsonDict:
        """getFile."""
        stored = self.files.get(self._str_param(params, "file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        return stored.file_dict()

    def _api_get_chat(self, params: JsonDict) -> JsonDict:
        """getChat (a ChatFullInfo)."""
        chat = self._resolve_chat(params.get("chat_id"))
        info = self._chat_dict(chat)
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        if chat.pinned:
            pinned = chat.history.get(chat.pinned[-1])
            if pinned is not None:
                info["pinned_message"] = self._reply_copy(pinned)
        return info

    def _api_get_chat_member(self, params: JsonDict) -> JsonDict:
        """getChatMember."""
        chat = self._resolve_chat(params.get("chat_id"))
        user_id = self._int_param(params, "user_id", "user not found")
        if user_id == self.bot_id:
            return self._bot_member(chat)
        if user_id not in self.users:
            raise _bad("user not found")
        status = "member" if chat.type == "private" else chat.members.get(user_id, "member")
        return self._member_dict(self.users[user_id], status)

    def _api_get_chat_administrators(self, params: JsonDict) -> list[JsonDict]:
        """getChatAdministrators."""
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.type == "private":
            raise _bad("there are no administrators in the private chat")
        admins = [
            self._member_dict(self.users[uid], status)
            for uid, status in chat.members.items()
            if status in {"creator", "administrator"} and uid in self.users
        ]
        if chat.bot_is_admin and chat.bot_member:
            admins.append(self._bot_member(chat))
        return admins

    def _api_get_chat_member_count(self, params: JsonDict) -> int:
        """getChatMemberCount."""
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.type == "private":
            return 2
        present = [s for s in chat.members.values() if s not in {"left", "kicked"}]
        return len(present) + (1 if chat.bot_member else 0)

    def _api_leave_chat(self, params: JsonDict) -> bool:
        """leaveChat."""
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.type == "private":
            raise _bad("chat member status can't be changed in private chats")
        chat.bot_member = False
        return True

    def _api_pin_chat_message(self, params: JsonDict) -> bool:
        """pinChatMessage."""
        chat = self._resolve_chat(params.get("chat_id"))
        message_id = self._int_param(params, "message_id", "message identifier is not specified")
        if message_id not in chat.history:
            raise _bad("message to pin not found")
        if chat.type != "private" and not chat.bot_is_admin:
            raise _bad("not enough rights to manage pinned messages in the chat")
        assert message_id is not None
        if message_id in chat.pinned:
            chat.pinned.remove(message_id)
        chat.pinned.append(message_id)
        return True

    def _api_unpin_chat_message(self, params: JsonDict) -> bool:
        """unpinChatMessage (the most recent pin if no message_id)."""
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.type != "private" and not chat.bot_is_admin:
            raise _bad("not enough rights to manage pinned messages in the chat")
        message_id = self._int_param(params, "message_id")
        if message_id is None:
            if chat.pinned:
                chat.pinned.pop()
        elif message_id in chat.pinned:
            chat.pinned.remove(message_id)
        else:
            raise _bad("message to unpin not found")
        return True
