"""Checking a call's parameters as Telegram does, and making and editing the bot's messages."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from buurtsignaal.bot.emulator.files import _Files
from buurtsignaal.bot.emulator.formatting import (
    HtmlParseError,
    MarkdownParseError,
    _trim,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    utf16_len,
)
from buurtsignaal.bot.emulator.model import (
    _INLINE_BUTTON_ACTIONS,
    _NOT_MODIFIED,
    MAX_CALLBACK_DATA_BYTES,
    MAX_CAPTION_LENGTH,
    MAX_INLINE_BUTTONS,
    MAX_INLINE_ROW,
    MAX_PLACEHOLDER_LENGTH,
    MAX_REPLY_BUTTONS,
    MAX_REPLY_ROW,
    ApiError,
    BotMessage,
    JsonDict,
    StoredFile,
    _bad,
    _Chat,
    _content_kind,
)


class _Params(_Files):
    """Parameters checked like Telegram checks them, and the bot's messages made from them."""

    # ---------------------------------------------------------------- internals: validation

    def _resolve_chat(self, value: Any) -> _Chat:
        """Find the chat a chat_id parameter refers to."""
        if value is None or value == "":
            raise _bad("chat_id is empty")
        chat: _Chat | None = None
        if isinstance(value, str) and value.startswith("@"):
            wanted = value[1:].lower()
            chat = next(
                (c for c in self._chats.values() if c.username and c.username.lower() == wanted),
                None,
            )
        elif isinstance(value, int) and not isinstance(value, bool):
            chat = self._chats.get(value)
        elif isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            chat = self._chats.get(int(value))
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _send_target(self, params: JsonDict) -> _Chat:
        """The chat a send-like method targets, checking the bot may write there."""
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.type == "private" and chat.user_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.type == "private" and chat.user_id not in self._started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat.type != "private" and not chat.bot_member:
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
        return chat

    @staticmethod
    def _int_param(params: JsonDict, key: str, missing: str | None = None) -> int | None:
        """An integer parameter; None if absent (or a Bad Request with ``missing``)."""
        value = params.get(key)
        if value is None or value == "":
            if missing is not None:
                raise _bad(missing)
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _bad(f"invalid {key} specified")
        try:
            return int(value)
        except ValueError:
            raise _bad(f"invalid {key} specified") from None

    @staticmethod
    def _float_param(params: JsonDict, key: str) -> float:
        """A required float parameter."""
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
            raise _bad(f"wrong {key} specified")
        try:
            return float(value)
        except ValueError:
            raise _bad(f"wrong {key} specified") from None

    @staticmethod
    def _str_param(params: JsonDict, key: str) -> str | None:
        """A string parameter (numbers from JSON bodies are turned into text)."""
        value = params.get(key)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    @staticmethod
    def _json_param(params: JsonDict, key: str) -> Any:
        """A parameter that should hold JSON (already decoded when possible)."""
        value = params.get(key)
        if isinstance(value, str) and value:
            try:
                return json.loads(value)
            except ValueError:
                raise _bad(f"can't parse {key} JSON object") from None
        return value

    @staticmethod
    def _parse_mode(params: JsonDict) -> str | None:
        """The parse_mode parameter, validated."""
        mode = params.get("parse_mode")
        if not mode:
            return None
        if not isinstance(mode, str) or mode.lower() not in {"html", "markdown", "markdownv2"}:
            raise _bad("unsupported parse_mode")
        return mode

    def _format(
        self, text: str, parse_mode: str | None, entities: Any
    ) -> tuple[str, list[JsonDict]]:
        """Turn text + parse_mode (or else explicit entities) into trimmed plain text and
        entities, refusing what Telegram refuses."""
        parsers = {"html": parse_html, "markdownv2": parse_markdown_v2, "markdown": parse_markdown}
        if parse_mode is not None:
            try:
                plain, found = parsers[parse_mode.lower()](text)
            except (HtmlParseError, MarkdownParseError) as exc:
                raise _bad(f"can't parse entities: {exc}") from None
            return _trim(plain, found)
        if isinstance(entities, list) and entities:
            given = [e for e in entities if isinstance(e, dict)]
            self._check_entities(text, given)
            return _trim(text, given)
        return _trim(text, [])

    @staticmethod
    def _check_entities(text: str, entities: list[JsonDict]) -> None:
        """Explicit entities must lie within the text (UTF-16 offsets), as Telegram checks."""
        total = utf16_len(text)
        for entity in entities:
            offset, length = entity.get("offset"), entity.get("length")
            if not isinstance(offset, int) or not 0 <= offset <= 1_000_000:
                raise _bad(f"receive an entity with incorrect offset {offset}")
            if not isinstance(length, int) or not 0 <= length <= 1_000_000:
                raise _bad(f"receive an entity with incorrect length {length}")
            if length and offset >= total:
                raise _bad(f"entity begins after the end of the text at UTF-16 offset {offset}")
            if offset + length > total:
                raise _bad(
                    f"entity beginning at UTF-16 offset {offset} ends after the end of the "
                    f"text at UTF-16 offset {offset + length}"
                )

    def _caption(self, params: JsonDict) -> tuple[str | None, JsonDict]:
        """Validate an optional caption; return the raw caption and the message fields."""
        caption = self._str_param(params, "caption")
        if caption is None:
            return None, {}
        mode = self._parse_mode(params)
        plain, entities = self._format(caption, mode, self._json_param(params, "caption_entities"))
        if utf16_len(plain) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        fields: JsonDict = {}
        if plain:
            fields["caption"] = plain
            if entities:
                fields["caption_entities"] = entities
        return caption, fields

    def _markup(self, params: JsonDict, *, inline_only: bool = False) -> JsonDict | None:
        """Validate the reply_markup parameter like Telegram."""
        markup = self._json_param(params, "reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
            self._check_size(rows, MAX_INLINE_BUTTONS, MAX_INLINE_ROW)
            for row in rows:
                for button in row:
                    self._check_inline_button(button)
        elif inline_only:
            raise _bad("inline keyboard expected")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array')
            self._check_size(rows, MAX_REPLY_BUTTONS, MAX_REPLY_ROW)
            for row in rows:
                for button in row:
                    label = button if isinstance(button, str) else (button or {}).get("text")
                    if not isinstance(label, str) or not label:
                        raise _bad("can't parse keyboard button: Text must be non-empty")
        elif "remove_keyboard" not in markup and "force_reply" not in markup:
            raise _bad("can't parse reply keyboard markup JSON object")
        placeholder = markup.get("input_field_placeholder")
        if placeholder is not None and (
            not isinstance(placeholder, str) or len(placeholder) > MAX_PLACEHOLDER_LENGTH
        ):
            # Telegram allows 1-64 characters; its wording for more is not documented.
            raise _bad("input field placeholder is too long")
        return markup

    @staticmethod
    def _check_size(rows: list[list[Any]], most: int, per_row: int) -> None:
        """Telegram's keyboard limits: ``most`` buttons in all, ``per_row`` in one row."""
        if sum(len(row) for row in rows) > most or any(len(row) > per_row for row in rows):
            raise _bad("reply markup is too long")

    @staticmethod
    def _check_inline_button(button: Any) -> None:
        """Validate one InlineKeyboardButton."""
        prefix = "can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise _bad(prefix + "InlineKeyboardButton must be an Object")
        label = button.get("text")
        if not isinstance(label, str) or not label:
            raise _bad(prefix + 'Field "text" must be a non-empty String')
        if not any(action in button for action in _INLINE_BUTTON_ACTIONS):
            raise _bad(prefix + "Text buttons are unallowed in the inline keyboard")
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not data:
                raise _bad("BUTTON_DATA_INVALID")
            if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
        if "url" in button:
            url = button["url"]
            parts = urlsplit(url) if isinstance(url, str) else None
            if (
                parts is None
                or any(c.isspace() for c in url)
                or parts.scheme.lower() not in {"http", "https", "tg"}
                or not (parts.netloc or parts.path)
            ):
                raise _bad("BUTTON_URL_INVALID")

    def _reply_fields(self, chat: _Chat, params: JsonDict) -> JsonDict:
        """Resolve reply_parameters / reply_to_message_id into a reply_to_message field."""
        reply = self._json_param(params, "reply_parameters")
        message_id: int | None = None
        allow_missing = bool(self._json_param(params, "allow_sending_without_reply"))
        if isinstance(reply, dict):
            message_id = self._int_param(reply, "message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
            if reply.get("chat_id") not in (None, chat.id):
                chat = self._resolve_chat(reply.get("chat_id"))
        else:
            message_id = self._int_param(params, "reply_to_message_id")
        if message_id is None:
            return {}
        replied = chat.history.get(message_id)
        if replied is None:
            if allow_missing:
                return {}
            raise _bad("message to be replied not found")
        return {"reply_to_message": self._reply_copy(replied)}

    # ---------------------------------------------------------------- internals: bot messages

    def _new_bot_message(
        self,
        chat: _Chat,
        method: str,
        content: JsonDict,
        params: JsonDict,
        *,
        text: str | None = None,
        markup: JsonDict | None = None,
        stored: StoredFile | None = None,
    ) -> BotMessage:
        """Create, store and announce a message sent by the bot."""
        now = int(self.clock())
        raw: JsonDict = {
            "message_id": chat.take_message_id(),
            "from": self._bot_user(),
            "chat": self._chat_dict(chat),
            "date": now,
            **self._reply_fields(chat, params),
            **content,
        }
        if markup is not None and "inline_keyboard" in markup:
            raw["reply_markup"] = markup
        location = content.get("location") or {}
        message = BotMessage(
            message_id=raw["message_id"],
            chat_id=chat.id,
            kind=_content_kind(content),
            text=text,
            parse_mode=self._parse_mode(params),
            reply_markup=markup,
            file_bytes=stored.content if stored else None,
            file_name=stored.file_name if stored else None,
            file_id=stored.file_id if stored else None,
            mime_type=stored.mime_type if stored else None,
            latitude=location.get("latitude"),
            longitude=location.get("longitude"),
            date=now,
            method=method,
            raw=raw,
        )
        chat.history[message.message_id] = raw
        chat.bot_messages[message.message_id] = message
        self._forget_old(chat)
        self.sent.append(message)
        self._emit("sent", message)
        return message

    def _edit_target(self, params: JsonDict) -> BotMessage:
        """The bot message an edit method refers to."""
        if params.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        chat = self._resolve_chat(params.get("chat_id"))
        message_id = self._int_param(params, "message_id", "message identifier is not specified")
        assert message_id is not None
        message = chat.bot_messages.get(message_id)
        if message is None or message.deleted:
            if message_id in chat.history:
                raise _bad("message can't be edited")
            raise _bad("message to edit not found")
        return message

    def _apply_edit(self, message: BotMessage, fields: JsonDict, markup: JsonDict | None) -> None:
        """Apply an edit unless it changes nothing, then announce it."""
        raw = message.raw
        changed = any(raw.get(k) != v for k, v in fields.items() if v is not None)
        changed |= any(k in raw for k, v in fields.items() if v is None)
        new_inline = markup if markup is not None and "inline_keyboard" in markup else None
        if not changed and raw.get("reply_markup") != new_inline:
            changed = True
        if not changed:
            raise _bad(_NOT_MODIFIED)
        for key, value in fields.items():
            if value is None:
                raw.pop(key, None)
            else:
                raw[key] = value
        if new_inline is None:
            raw.pop("reply_markup", None)
        else:
            raw["reply_markup"] = new_inline
        raw["edit_date"] = int(self.clock())
        message.reply_markup = markup
        message.edited += 1
        self._emit("edited", message)
