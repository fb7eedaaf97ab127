"""The emulator's model: Bot API limits, errors, and the records of users' chats, the bot's
messages, files, calls and injected faults."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

from buurtsignaal.bot.emulator.formatting import _strip_html

JsonDict = dict[str, Any]
Listener = Callable[[str, "BotMessage"], object]


MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_CALLBACK_ANSWER_LENGTH: Final = 200
MAX_PLACEHOLDER_LENGTH: Final = 64
MAX_INLINE_BUTTONS: Final = 100
MAX_INLINE_ROW: Final = 8
MAX_REPLY_BUTTONS: Final = 300
MAX_REPLY_ROW: Final = 12
DELETE_WINDOW: Final = 48 * 3600  # seconds after which a message can't be deleted for everyone

# Calls that put something in a chat: these count towards Telegram's flood limits.
FLOOD_METHODS: Final = frozenset(
    m.lower()
    for m in (
        "sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendChatAction",
        "editMessageText", "editMessageCaption", "editMessageReplyMarkup", "copyMessage",
        "forwardMessage",
    )
)  # fmt: skip
FAULT_KINDS: Final = ("429", "500", "502", "timeout", "403")

# Update types Telegram delivers when allowed_updates is empty (the default).
ALL_UPDATE_TYPES: Final = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post",
        "business_connection", "business_message", "edited_business_message",
        "deleted_business_messages", "message_reaction", "message_reaction_count",
        "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
        "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
        "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
        "removed_chat_boost",
    }
)  # fmt: skip
DEFAULT_UPDATE_TYPES: Final = ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

# Form parameters that are always plain strings (everything else is JSON-decoded when possible).
_STRING_PARAMS: Final = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "url", "title", "description",
        "short_description", "name", "language_code", "file_id", "action", "emoji", "photo",
        "document", "sticker", "voice", "audio", "video", "animation", "video_note",
        "thumbnail", "inline_message_id", "address", "business_connection_id",
        "message_effect_id", "secret_token", "ip_address", "question", "query", "custom_title",
        "first_name", "last_name", "phone_number", "vcard", "foursquare_id", "google_place_id",
        "certificate", "payload", "currency",
    }
)  # fmt: skip

_INLINE_BUTTON_ACTIONS: Final = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip

_CHAT_ACTIONS: Final = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)  # fmt: skip

_ADMIN_RIGHTS: Final = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_change_info", "can_invite_users", "can_pin_messages",
)  # fmt: skip
_RESTRICTED_RIGHTS: Final = (
    "can_change_info", "can_invite_users", "can_pin_messages", "can_send_messages",
    "can_send_polls", "can_send_other_messages", "can_add_web_page_previews",
    "can_manage_topics", "can_send_audios", "can_send_documents", "can_send_photos",
    "can_send_videos", "can_send_video_notes", "can_send_voice_notes", "can_edit_tag",
    "can_react_to_messages",
)  # fmt: skip
_MENU_BUTTON_TYPES: Final = frozenset({"default", "commands", "web_app"})
_CONTENT_KINDS: Final = ("text", "photo", "document", "location", "sticker", "voice")
_MEDIA_KINDS: Final = frozenset({"photo", "document", "voice", "audio", "video", "animation"})
_NOT_MODIFIED: Final = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_COMMAND_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_BOT_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: JsonDict | None = None) -> None:
        """Create the error."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JsonDict:
        """Return the JSON body Telegram sends for this error."""
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    """Return a 400 Bad Request error with Telegram's description prefix."""
    return ApiError(400, f"Bad Request: {description}")


def _error(status: int, retry_after: int | None = None, description: str | None = None) -> ApiError:
    """An injected HTTP error as Telegram words it (429 always carries retry_after)."""
    if status == 429 and retry_after is None:
        retry_after = 1
    if description is None:
        if status == 429:
            description = f"Too Many Requests: retry after {retry_after}"
        else:
            try:
                description = HTTPStatus(status).phrase
            except ValueError:
                description = f"Error {status}"
    parameters = None if retry_after is None else {"retry_after": retry_after}
    return ApiError(status, description, parameters)


@dataclass(frozen=True)
class UploadedFile:
    """A file part received in a multipart request."""

    field: str
    filename: str
    content_type: str
    content: bytes


@dataclass
class StoredFile:
    """A file known to the emulator; downloadable via getFile and the file URL."""

    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    source_url: str | None = None

    def file_dict(self) -> JsonDict:
        """Return the Bot API File object."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
            "file_path": self.file_path,
        }


@dataclass
class ApiCall:
    """One HTTP call the bot made: method name, parsed parameters, the HTTP status answered
    and the kind of failure injected into it, if any (see :class:`InjectedFault`), and,
    for an error, Telegram's description of it."""

    method: str
    params: JsonDict
    status: int = 200
    injected: str | None = None
    description: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return 200 <= self.status < 300


@dataclass
class BotMessage:
    """A message the bot sent, in its current state (edits applied, deletion flagged)."""

    message_id: int
    chat_id: int
    kind: str
    text: str | None = None
    parse_mode: str | None = None
    reply_markup: JsonDict | None = None
    file_bytes: bytes | None = None
    file_name: str | None = None
    file_id: str | None = None
    mime_type: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    edited: int = 0
    deleted: bool = False
    date: int = 0
    method: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False)

    @property
    def plain_text(self) -> str:
        """Text or caption as the user sees it: tags stripped, entities unescaped."""
        for key in ("text", "caption"):
            if key in self.raw:
                return str(self.raw[key])
        if self.text is None:
            return ""
        if (self.parse_mode or "").lower() == "html":
            return _strip_html(self.text).strip()
        return self.text.strip()

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Keyboard rows as (text, callback_data or url) tuples; reply keyboards give None."""
        markup = self.reply_markup or {}
        rows: list[list[tuple[str, str | None]]] = []
        for row in markup.get("inline_keyboard", []):
            rows.append([(b["text"], b.get("callback_data", b.get("url"))) for b in row])
        for row in markup.get("keyboard", []):
            rows.append([(b if isinstance(b, str) else b["text"], None) for b in row])
        return rows

    @property
    def button_labels(self) -> list[str]:
        """All button texts, row-major."""
        return [label for row in self.buttons for label, _ in row]


@dataclass
class _Chat:
    """Internal state of one chat."""

    id: int
    type: str
    title: str | None = None
    user_id: int | None = None
    username: str | None = None
    bot_is_admin: bool = False
    bot_member: bool = True
    next_message_id: int = 1
    history: dict[int, JsonDict] = field(default_factory=dict)
    bot_messages: dict[int, BotMessage] = field(default_factory=dict)
    members: dict[int, str] = field(default_factory=dict)
    pinned: list[int] = field(default_factory=list)

    def take_message_id(self) -> int:
        """Allocate the next message id of this chat."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass(frozen=True)
class InjectedFault:
    """A failure the emulator injected into one call.

    ``kind`` is the HTTP status ("429", "500", "502", "403", ...), "timeout" (held, never
    applied, connection dropped) or "lost" (applied, then answered 502: the response was lost).
    ``applied`` says whether the call took effect in the chat despite the failure.
    """

    method: str
    kind: str
    applied: bool = False
    chat_id: int | None = None


@dataclass
class _Failure:
    """An injected failure for the next calls of one method."""

    error: ApiError
    remaining: int
    kind: str = ""
    hold: float = 0.0  # a timeout: hold the request this long, then drop the connection
    after_applying: bool = False  # apply the call, then answer with ``error`` anyway


@dataclass
class _FaultPlan:
    """Seeded random failures (see :meth:`BotApiEmulator.faults`)."""

    rate: float
    methods: frozenset[str] | None
    kinds: tuple[str, ...]
    rng: random.Random
    retry_after: int
    hold: float


def _decode_value(key: str, value: str) -> Any:
    """Decode one form value: JSON for non-string parameters, raw text otherwise."""
    if key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _content_kind(message: Mapping[str, Any]) -> str:
    """Return the kind of content a message dict carries."""
    for kind in _CONTENT_KINDS:
        if kind in message:
            return kind
    return "other"


def _scope_key(scope: Mapping[str, Any] | None) -> str:
    """Return the canonical JSON of a BotCommandScope, used as key in ``commands``."""
    return json.dumps(dict(scope or {"type": "default"}), sort_keys=True, separators=(",", ":"))
