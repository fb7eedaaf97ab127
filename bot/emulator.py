"""Local fake Telegram Bot API server for the test suite and the terminal shell.

The real python-telegram-bot ``Bot``/``Application`` talks to it over HTTP::

    async with BotApiEmulator() as emu:
        emu.add_user(42, "Anna")
        bot = Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url)

Nothing here ever contacts Telegram. The emulator is single-threaded: call its methods from the
event loop it was started in.

The emulator is a core (the state of users, chats, messages, files and updates, and the HTTP
API over it) driven by a *front*: the methods under "actors" and "user-caused updates" put what
people do into it, the listeners (``add_listener``) hear what the bot did. The test harness,
the terminal shell (bot/shell.py) and the Signal gateway (bot/signal_gateway.py) are such
fronts. A front that must survive a restart keeps the core's state with ``export_state`` (after
every change: ``add_change_listener``) and gives it back with ``restore_state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import logging
import math
import random
import re
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

__all__ = [
    "ApiCall",
    "ApiError",
    "BotApiEmulator",
    "BotMessage",
    "HtmlParseError",
    "InjectedFault",
    "MarkdownParseError",
    "StoredFile",
    "UploadedFile",
    "deep_link_payload",
    "image_size",
    "inline_rows",
    "newest_with_buttons",
    "numbered_rows",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "pressable_buttons",
    "utf16_len",
]

JsonDict = dict[str, Any]
Listener = Callable[[str, "BotMessage"], object]

_log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------------------------
# Telegram-flavoured HTML
# --------------------------------------------------------------------------------------------

_HTML_SPACES: Final = frozenset(" \t\r\n\v\f")
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE: Final = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7})|([A-Za-z]{1,10}));")
_TAG_ENTITY_TYPES: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
}


class HtmlParseError(ValueError):
    """Raised for HTML that Telegram would refuse with "can't parse entities"."""


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the HTML entity starting at ``pos`` (an "&"), returning (char, end) or None."""
    match = _ENTITY_RE.match(text, pos)
    if match is None:
        return None
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        value = _NAMED_ENTITIES.get(name)
        return None if value is None else (value, match.end())
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def _byte_offset(text: str, pos: int) -> int:
    """Return the UTF-8 byte offset of character index ``pos`` (Telegram reports bytes)."""
    return len(text[:pos].encode("utf-8", "surrogatepass"))


def _parse_attributes(text: str, pos: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Parse the attributes of a start tag from ``pos``; return them and the index after '>'."""
    attrs: dict[str, str] = {}
    n = len(text)
    where = f"at byte offset {_byte_offset(text, begin)}"
    while True:
        while pos < n and text[pos] in _HTML_SPACES:
            pos += 1
        if pos >= n:
            raise HtmlParseError(f'Unclosed start tag "{tag}" {where}')
        if text[pos] == ">":
            return attrs, pos + 1
        name_start = pos
        while pos < n and text[pos] not in _HTML_SPACES and text[pos] not in "=>":
            pos += 1
        name = text[name_start:pos].lower()
        if not name:
            raise HtmlParseError(f'Empty attribute name in the tag "{tag}" {where}')
        while pos < n and text[pos] in _HTML_SPACES:
            pos += 1
        if pos >= n or text[pos] != "=":
            if tag == "blockquote" and name == "expandable":
                attrs[name] = ""
                continue
            raise HtmlParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" {where}'
            )
        pos += 1
        while pos < n and text[pos] in _HTML_SPACES:
            pos += 1
        if pos >= n:
            raise HtmlParseError(f'Unclosed start tag "{tag}" {where}')
        if text[pos] in "\"'":
            quote = text[pos]
            pos += 1
            value: list[str] = []
            while pos < n and text[pos] != quote:
                decoded = _decode_entity(text, pos) if text[pos] == "&" else None
                if decoded is None:
                    value.append(text[pos])
                    pos += 1
                else:
                    value.append(decoded[0])
                    pos = decoded[1]
            if pos >= n:
                raise HtmlParseError(f"Unclosed start tag {where}")
            pos += 1
            attrs[name] = "".join(value)
        else:
            token_start = pos
            while pos < n and (text[pos].isalnum() or text[pos] in ".-"):
                pos += 1
            if pos < n and text[pos] not in _HTML_SPACES and text[pos] != ">":
                raise HtmlParseError(
                    f"Unexpected end of name token at byte offset {_byte_offset(text, token_start)}"
                )
            attrs[name] = text[token_start:pos].lower()


def _make_entity(tag: str, argument: str, offset: int, length: int) -> JsonDict | None:
    """Build the MessageEntity dict for a closed tag, or None if it yields no entity."""
    kind = _TAG_ENTITY_TYPES[tag]
    entity: JsonDict = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        if not argument:
            return None
        entity["url"] = argument
    elif kind == "code" and argument:
        entity["language"] = argument
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = argument
    elif kind == "blockquote" and argument:
        entity["type"] = "expandable_blockquote"
    return entity


def parse_html(text: str, *, strict: bool = True) -> tuple[str, list[JsonDict]]:
    """Parse Telegram HTML into (plain text, entities), raising HtmlParseError like Telegram.

    With ``strict`` (the default) an "&" that does not start a valid entity is an error too;
    real Telegram shows such an ampersand literally, but a bot should always escape it.
    """
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, str, int]] = []
    entities: list[JsonDict] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                pos16 += utf16_len(decoded[0])
                i = decoded[1]
                continue
            if strict:
                raise HtmlParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
        if char != "<":
            out.append(char)
            pos16 += utf16_len(char)
            i += 1
            continue
        begin = i
        where = f"at byte offset {_byte_offset(text, begin)}"
        if i + 1 < n and text[i + 1] == "/":
            if not stack:
                raise HtmlParseError(f"Unexpected end tag {where}")
            j = i + 2
            while j < n and text[j] not in _HTML_SPACES and text[j] != ">":
                j += 1
            end_name = text[i + 2 : j].lower()
            while j < n and text[j] in _HTML_SPACES:
                j += 1
            if j >= n or text[j] != ">":
                raise HtmlParseError(f"Unclosed end tag {where}")
            tag, argument, start = stack.pop()
            if end_name and end_name != tag:
                raise HtmlParseError(
                    f'Unmatched end tag {where}, expected "</{tag}>", found "</{end_name}>"'
                )
            if pos16 > start:
                entity = _make_entity(tag, argument, start, pos16 - start)
                if entity is not None:
                    last = entities[-1] if entities else None
                    if (
                        tag == "pre"
                        and last is not None
                        and last["type"] == "code"
                        and (last["offset"], last["length"]) == (start, pos16 - start)
                    ):
                        entities.pop()
                        if "language" in last:
                            entity["language"] = last["language"]
                    entities.append(entity)
            i = j + 1
            continue
        j = i + 1
        while j < n and text[j] not in _HTML_SPACES and text[j] != ">":
            j += 1
        if j >= n:
            raise HtmlParseError(f"Unclosed start tag {where}")
        tag = text[i + 1 : j].lower()
        if tag not in _TAG_ENTITY_TYPES:
            raise HtmlParseError(f'Unsupported start tag "{tag}" {where}')
        attrs, i = _parse_attributes(text, j, tag, begin)
        argument = ""
        if tag == "a":
            argument = attrs.get("href", "")
        elif tag == "span":
            if attrs.get("class") != "tg-spoiler":
                raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" {where}')
        elif tag == "code":
            css = attrs.get("class", "")
            argument = css.removeprefix("language-") if css.startswith("language-") else ""
        elif tag == "tg-emoji":
            argument = attrs.get("emoji-id", "")
            if not argument:
                raise HtmlParseError(f'Tag "tg-emoji" must have attribute "emoji-id" {where}')
        elif tag == "blockquote" and "expandable" in attrs:
            argument = "expandable"
        stack.append((tag, argument, pos16))
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _trim(text: str, entities: Iterable[JsonDict]) -> tuple[str, list[JsonDict]]:
    """Strip surrounding whitespace like Telegram does and shift the entities accordingly."""
    left = text.lstrip()
    lead = utf16_len(text[: len(text) - len(left)])
    result = left.rstrip()
    total = utf16_len(result)
    trimmed: list[JsonDict] = []
    for entity in entities:
        start = max(int(entity["offset"]) - lead, 0)
        end = min(int(entity["offset"]) + int(entity["length"]) - lead, total)
        if end > start:
            trimmed.append({**entity, "offset": start, "length": end - start})
    return result, trimmed


def _strip_html(text: str) -> str:
    """Best-effort HTML to plain text, used only for text that never passed validation."""
    try:
        return parse_html(text, strict=False)[0]
    except HtmlParseError:
        plain = re.sub(r"<[^>]*>", "", text)
        for name, value in _NAMED_ENTITIES.items():
            plain = plain.replace(f"&{name};", value)
        return plain


# --------------------------------------------------------------------------------------------
# Telegram-flavoured Markdown
# --------------------------------------------------------------------------------------------


class MarkdownParseError(ValueError):
    """Raised for Markdown or MarkdownV2 that Telegram would refuse with "can't parse entities"."""


_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
# How Telegram names an entity type in its MarkdownV2 errors.
_MDV2_NAMES: Final = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _reserved(char: str) -> MarkdownParseError:
    return MarkdownParseError(
        f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    )


def _closes(kind: str, text: str, i: int) -> bool:
    """Whether the MarkdownV2 markup at ``i`` ends an open entity of ``kind``."""
    char, after = text[i], text[i + 1 : i + 3]
    return {
        "bold": char == "*",
        "italic": char == "_" and after[:1] != "_",
        "underline": text.startswith("__", i),
        "strikethrough": char == "~",
        "spoiler": text.startswith("||", i),
        "code": char == "`",
        "pre": text.startswith("```", i),
        "text_link": char == "]",
        "custom_emoji": char == "]",
    }[kind]


def _link_target(text: str, i: int) -> tuple[str | None, int]:
    """Read "(url)" at ``i`` (backslash escapes allowed); return (url or None, index after)."""
    if i >= len(text) or text[i] != "(":
        return None, i
    start = i + 1
    url: list[str] = []
    i = start
    while i < len(text) and text[i] != ")":
        if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
            i += 1
        url.append(text[i])
        i += 1
    if i >= len(text):
        raise MarkdownParseError(
            f"Can't find end of a URL at byte offset {_byte_offset(text, start)}"
        )
    return "".join(url), i + 1


def parse_markdown_v2(text: str) -> tuple[str, list[JsonDict]]:
    """Parse MarkdownV2 into (plain text, entities), raising MarkdownParseError like Telegram:
    every reserved character outside an entity's markup must be escaped with a backslash."""
    out: list[str] = []
    pos16 = 0
    entities: list[JsonDict] = []
    stack: list[tuple[str, int, int, str]] = []  # kind, UTF-16 start, index in text, argument
    quote_start: int | None = None
    line_start = True
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            pos16 += 1
            line_start = text[i + 1] == "\n"
            i += 2
            continue
        in_code = bool(stack) and stack[-1][0] in {"code", "pre"}
        if char == "\n":
            if quote_start is not None and not text.startswith(">", i + 1):
                if pos16 > quote_start:
                    entities.append(
                        {"type": "blockquote", "offset": quote_start, "length": pos16 - quote_start}
                    )
                quote_start = None
            out.append(char)
            pos16 += 1
            line_start = True
            i += 1
            continue
        if char == ">" and line_start and not in_code:
            if quote_start is None:
                quote_start = pos16
            line_start = False
            i += 1
            continue
        line_start = False
        if (in_code and char != "`") or (not in_code and char not in _MDV2_RESERVED):
            out.append(char)
            pos16 += utf16_len(char)
            i += 1
            continue
        if stack and _closes(stack[-1][0], text, i):
            kind, start, _, argument = stack.pop()
            i += {"underline": 2, "spoiler": 2, "pre": 3}.get(kind, 1)
            entity: JsonDict = {"type": kind, "offset": start, "length": pos16 - start}
            if kind == "text_link":
                url, i = _link_target(text, i)
                entity["url"] = url if url is not None else _plain_since(out, start)
            elif kind == "custom_emoji":
                url, i = _link_target(text, i)
                if url is None:
                    raise MarkdownParseError(
                        "The entity must contain a tg://emoji or tg://time URL"
                    )
                entity["custom_emoji_id"] = url.rsplit("=", 1)[-1]
            elif kind == "pre" and argument:
                entity["language"] = argument
            if pos16 > start:
                entities.append(entity)
            continue
        begin = i
        argument = ""
        if text.startswith("__", i):
            kind, i = "underline", i + 2
        elif char == "_":
            kind, i = "italic", i + 1
        elif char == "*":
            kind, i = "bold", i + 1
        elif char == "~":
            kind, i = "strikethrough", i + 1
        elif text.startswith("||", i):
            kind, i = "spoiler", i + 2
        elif char == "[":
            kind, i = "text_link", i + 1
        elif text.startswith("![", i):
            kind, i = "custom_emoji", i + 2
        elif text.startswith("```", i):
            kind, i = "pre", i + 3
            end = i
            while end < n and not text[end].isspace() and text[end] != "`":
                end += 1
            if end > i and end < n and text[end] != "`":
                argument, i = text[i:end], end
            if text.startswith(("\r\n", "\n\r"), i):
                i += 2
            elif i < n and text[i] in "\r\n":
                i += 1
        elif char == "`":
            kind, i = "code", i + 1
        else:
            raise _reserved(char)
        stack.append((kind, pos16, begin, argument))
    if quote_start is not None and pos16 > quote_start:
        entities.append(
            {"type": "blockquote", "offset": quote_start, "length": pos16 - quote_start}
        )
    if stack:
        kind, _, begin, _ = stack[-1]
        raise MarkdownParseError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(text, begin)}"
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _plain_since(out: list[str], start16: int) -> str:
    """The plain text produced from UTF-16 offset ``start16`` on."""
    plain = "".join(out)
    units = plain.encode("utf-16-le", "surrogatepass")[start16 * 2 :]
    return units.decode("utf-16-le", "surrogatepass")


def parse_markdown(text: str) -> tuple[str, list[JsonDict]]:
    """Parse legacy Markdown (*bold*, _italic_, `code`, ```pre```, [text](url)) like Telegram:
    an entity that is opened and never closed is an error."""
    kinds = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}
    out: list[str] = []
    pos16 = 0
    entities: list[JsonDict] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in kinds:
            out.append(text[i + 1])
            pos16 += 1
            i += 2
            continue
        if char not in kinds:
            out.append(char)
            pos16 += utf16_len(char)
            i += 1
            continue
        begin, kind = i, kinds[char]
        closing = "]" if char == "[" else char
        i += 1
        language = ""
        if text.startswith("``", i) and char == "`":
            kind, closing, i = "pre", "```", i + 2
            end = i
            while end < n and not text[end].isspace() and text[end] != "`":
                end += 1
            if end > i and end < n and text[end] != "`":
                language, i = text[i:end], end
            if i < n and text[i] in "\r\n":
                i += 1
        end = text.find(closing, i)
        if end < 0:
            raise MarkdownParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        inner = text[i:end]
        start = pos16
        out.append(inner)
        pos16 += utf16_len(inner)
        i = end + len(closing)
        entity: JsonDict = {"type": kind, "offset": start, "length": pos16 - start}
        if kind == "text_link":
            url, after = inner, i
            if text.startswith("(", i):
                close = text.find(")", i)
                url, after = (text[i + 1 : close], close + 1) if close >= 0 else (text[i + 1 :], n)
            entity["url"], i = url, after
        elif language:
            entity["language"] = language
        if pos16 > start:
            entities.append(entity)
    return "".join(out), entities


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) of PNG, GIF or JPEG bytes, or None if unknown."""
    size: tuple[int, int] | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        size = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker == 0x01 or 0xD0 <= marker <= 0xD9:
                pos += 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                size = (width, height)
                break
            pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _fit(size: tuple[int, int], limit: int) -> tuple[int, int]:
    """Scale ``size`` down (never up) so that its longest side is at most ``limit``."""
    width, height = size
    scale = min(1.0, limit / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


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


def inline_rows(message: BotMessage) -> list[list[JsonDict]]:
    """The inline keyboard rows of a bot message (empty when it has none)."""
    markup = message.raw.get("reply_markup") or {}
    return [list(row) for row in markup.get("inline_keyboard", [])]


def pressable_buttons(message: BotMessage) -> list[JsonDict]:
    """The callback buttons of a message in reading order: typing N presses button N - 1.

    The one numbering of buttons for fronts without buttons (the terminal shell, the Signal
    gateway): url buttons get no number, as pressing them opens something outside the chat.
    """
    return [b for row in inline_rows(message) for b in row if "callback_data" in b]


def numbered_rows(message: BotMessage) -> list[list[tuple[int | None, JsonDict]]]:
    """The inline keyboard rows with each button's number (None: not pressable by number),
    numbered as :func:`pressable_buttons`."""
    number = 0
    rows: list[list[tuple[int | None, JsonDict]]] = []
    for row in inline_rows(message):
        numbered: list[tuple[int | None, JsonDict]] = []
        for button in row:
            if "callback_data" in button:
                number += 1
                numbered.append((number, button))
            else:
                numbered.append((None, button))
        rows.append(numbered)
    return rows


def newest_with_buttons(messages: Iterable[BotMessage]) -> BotMessage | None:
    """The newest of ``messages`` (oldest first) that has inline buttons: the one a typed
    number answers."""
    for message in reversed(list(messages)):
        if inline_rows(message):
            return message
    return None


_DEEP_LINK_RE: Final = re.compile(r"^https://t\.me/([A-Za-z0-9_]+)\?start=([A-Za-z0-9_-]{1,64})$")


def deep_link_payload(url: str, bot_username: str | None = None) -> str | None:
    """The payload of a deep link that starts a private chat with the bot
    (``https://t.me/<bot>?start=<payload>``), optionally only for the bot ``bot_username``."""
    match = _DEEP_LINK_RE.match(url)
    if match is None or (bot_username is not None and match.group(1) != bot_username):
        return None
    return match.group(2)


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class BotApiEmulator:
    """A fake Telegram Bot API server on localhost with scripted users, groups and failures."""

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
    ) -> None:
        """Create the emulator; call ``start`` (or use ``async with``) to serve it.

        ``id_prefix`` starts every file id and callback query id, and ``first_update_id`` is
        the first update id, so a bot served by two such servers can tell their ids apart.
        ``keep_messages`` keeps only that many newest messages per chat (all when None).

        ``latency_ms`` delays every answer (getUpdates included) as a network would;
        ``flood_limits`` answers 429 like Telegram when the bot sends too fast (see
        :meth:`_check_flood`). Both are attributes that may be changed at any time.
        """
        self.token = token
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
        self._handlers: dict[str, Callable[[JsonDict], Any]] = {
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

    # ---------------------------------------------------------------- server lifecycle

    @property
    def base_url(self) -> str:
        """Bot API base URL for PTB (PTB appends the token)."""
        return f"{self._origin}/bot"

    @property
    def base_file_url(self) -> str:
        """File download base URL for PTB (PTB appends the token)."""
        return f"{self._origin}/file/bot"

    @property
    def _origin(self) -> str:
        """Scheme, host and port of the running server."""
        if self._runner is None:
            raise RuntimeError("BotApiEmulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is serving."""
        return self._runner is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on ``host``:``port`` (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("BotApiEmulator is already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._closing = False
        self._changed = asyncio.Event()
        self._runner = runner
        self.host = host
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop the server, releasing pending long polls first. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        self._notify()
        await runner.cleanup()

    async def __aenter__(self) -> BotApiEmulator:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the server."""
        await self.stop()

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
            "date": int(time.time()),
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

    # ---------------------------------------------------------------- failure injection

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        retry_after: int | None = None,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTTP error; the calls are not
        applied (nothing reaches the chat)."""
        self._queue_failure(method, _error(status, retry_after, description), times)

    def hang_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """A timeout: hold the next ``times`` calls of ``method`` for ``seconds`` (longer than
        the client waits), then drop the connection. The calls are not applied."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        error = ApiError(504, "Gateway Timeout")
        self._queue_failure(method, error, times, kind="timeout", hold=seconds)

    def lose_response_next(self, method: str, *, times: int = 1, status: int = 502) -> None:
        """The next ``times`` calls of ``method`` ARE applied (the message reaches the chat),
        but the bot gets an HTTP error instead of the result, as when a proxy or the network
        loses the answer. Unlike ``fail_next``, a bot that simply retries now sends twice."""
        self._queue_failure(method, _error(status), times, kind="lost", after_applying=True)

    def faults(
        self,
        rate: float = 0.2,
        *,
        methods: Iterable[str] | None = None,
        kinds: Iterable[str] = FAULT_KINDS,
        seed: int | None = None,
        retry_after: int = 1,
        hold: float = 6.0,
    ) -> None:
        """Fail calls at random, reproducibly with ``seed``: each call of ``methods`` (default:
        every method except getUpdates) fails with probability ``rate`` as one of ``kinds``:

        - "429": Too Many Requests with ``retry_after``;
        - "500", "502" (or any other status): a server error;
        - "403": "Forbidden: bot was blocked by the user" (in a group: the bot was kicked),
          for this call only; calls without a chat get another kind;
        - "timeout": held for ``hold`` seconds (longer than the client waits), then the
          connection is dropped;
        - "lost": applied, then answered 502 (see ``lose_response_next``).

        All but "lost" leave the chat untouched. ``rate=0`` stops. Every injected failure is
        recorded in ``injected``.
        """
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(kinds)
        for kind in chosen:
            if kind not in {"timeout", "lost"} and not (kind.isdigit() and 400 <= int(kind) < 600):
                raise ValueError(f"unknown fault kind {kind!r}")
        if rate and not chosen:
            raise ValueError("kinds must not be empty")
        self._fault_plan = (
            _FaultPlan(
                rate=rate,
                methods=None if methods is None else frozenset(m.lower() for m in methods),
                kinds=chosen,
                rng=random.Random(seed),
                retry_after=retry_after,
                hold=hold,
            )
            if rate
            else None
        )

    def _queue_failure(
        self,
        method: str,
        error: ApiError,
        times: int,
        *,
        kind: str | None = None,
        hold: float = 0.0,
        after_applying: bool = False,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        failure = _Failure(error, times, kind or str(error.status), hold, after_applying)
        self._failures.setdefault(method.lower(), []).append(failure)

    def hold(self, method: str) -> None:
        """Keep calls of ``method`` waiting (unanswered) until :meth:`release`.

        A held call whose client has gone away by then (a killed process) is dropped: it
        never happened, as when Telegram never received the request."""
        self._holds.setdefault(method.lower(), asyncio.Event())

    def release(self, method: str) -> None:
        """Let the held calls of ``method`` go on, and stop holding new ones."""
        gate = self._holds.pop(method.lower(), None)
        if gate is not None:
            gate.set()

    def held(self, method: str) -> int:
        """How many calls of ``method`` are waiting now."""
        return sum(1 for c in self.calls if c.method.lower() == method.lower() and c.status == 0)

    def _take_failure(self, method: str, params: JsonDict) -> _Failure | None:
        """The failure to inject into this call: a scripted one first, else a random one."""
        failures = self._failures.get(method.lower())
        if failures:
            failure = failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                failures.pop(0)
            return failure
        plan = self._fault_plan
        if plan is None:
            return None
        if plan.methods is None and method.lower() == "getupdates":
            return None
        if plan.methods is not None and method.lower() not in plan.methods:
            return None
        if plan.rng.random() >= plan.rate:
            return None
        chat = self._flood_chat(params)
        kinds = [k for k in plan.kinds if k != "403" or chat is not None] or ["500"]
        kind = plan.rng.choice(kinds)
        if kind == "timeout":
            return _Failure(ApiError(504, "Gateway Timeout"), 1, kind, hold=plan.hold)
        if kind == "lost":
            return _Failure(_error(502), 1, kind, after_applying=True)
        if kind == "403":
            assert chat is not None
            where = "blocked by the user" if chat > 0 else "kicked from the supergroup chat"
            return _Failure(ApiError(403, f"Forbidden: bot was {where}"), 1, kind)
        status = int(kind)
        return _Failure(_error(status, plan.retry_after if status == 429 else None), 1, kind)

    def clear_failures(self) -> None:
        """Forget the failures injected with ``fail_next`` that have not happened yet."""
        self._failures.clear()

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
            "date": int(time.time()),
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

    # ---------------------------------------------------------------- internals: files

    def _store_file(
        self,
        folder: str,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        suffix: str | None = None,
        size: tuple[int, int] | None = None,
        source_url: str | None = None,
    ) -> StoredFile:
        """Store bytes as a new file with fresh ids."""
        number = next(self._file_ids)
        if suffix is None:
            suffix = ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1][:10]
        stored = StoredFile(
            file_id=f"{self.id_prefix}EMU{folder[:3].upper()}{number:06d}-{self.bot_id}",
            file_unique_id=f"emu{number}",
            content=content,
            file_path=f"{folder}/file_{number}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
            width=size[0] if size else None,
            height=size[1] if size else None,
            source_url=source_url,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, content: bytes, source_url: str | None = None) -> list[StoredFile]:
        """Store a photo as two sizes (both download the original bytes); return them."""
        size = image_size(content) or (1280, 960)
        sizes = [_fit(size, 320), _fit(size, 1280)]
        stored = [
            self._store_file("photos", content, suffix=".jpg", size=s, source_url=source_url)
            for s in sizes
        ]
        for item in stored:
            self._photo_sets[item.file_id] = stored
        return stored

    @staticmethod
    def _photo_size(stored: StoredFile) -> JsonDict:
        """The PhotoSize dict of a stored photo size."""
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width or 0,
            "height": stored.height or 0,
            "file_size": len(stored.content),
        }

    @staticmethod
    def _document_dict(stored: StoredFile) -> JsonDict:
        """The Document dict of a stored file."""
        document: JsonDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return document

    def _content_file(self, content: Mapping[str, Any]) -> StoredFile | None:
        """The stored file behind a message's media, if any."""
        media = content.get("photo")
        if isinstance(media, list) and media:
            return self.files.get(media[-1]["file_id"])
        for key in ("document", "sticker", "voice", "audio", "video", "animation"):
            if isinstance(content.get(key), dict):
                return self.files.get(content[key]["file_id"])
        return None

    def _input_file(self, params: JsonDict, key: str) -> UploadedFile | StoredFile | str:
        """Resolve a media parameter: a new upload, a known file_id or an HTTP URL."""
        value = params.get(key)
        if value is None or value == "":
            raise _bad(f"there is no {key} in the request")
        if isinstance(value, UploadedFile):
            if not value.content:
                raise _bad("file must be non-empty")
            return value
        if isinstance(value, str):
            if value in self.files:
                return self.files[value]
            if re.match(r"https?://\S+$", value):
                if value not in self.web:  # Telegram could not fetch it
                    raise _bad("failed to get HTTP URL content")
                return value
        raise _bad("wrong file identifier/HTTP URL specified")

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
        now = int(time.time())
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
        raw["edit_date"] = int(time.time())
        message.reply_markup = markup
        message.edited += 1
        self._emit("edited", message)

    # ---------------------------------------------------------------- HTTP handling

    async def _read_params(self, request: web.Request) -> JsonDict:
        """Collect parameters from the query string and a JSON, urlencoded or multipart body."""
        raw: dict[str, Any] = {k: _decode_value(k, v) for k, v in request.query.items()}
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON request body") from None
                if not isinstance(body, dict):
                    raise _bad("JSON request body must be an object")
                raw.update(body)
            elif request.content_type in {
                "multipart/form-data",
                "application/x-www-form-urlencoded",
            }:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        with contextlib.closing(value.file):
                            content = value.file.read()
                        raw[key] = UploadedFile(key, value.filename, value.content_type, content)
                    elif isinstance(value, str):
                        raw[key] = _decode_value(key, value)
                    else:
                        raw[key] = _decode_value(key, bytes(value).decode("utf-8", "replace"))
        params: JsonDict = {}
        attached: set[str] = set()
        for key, value in raw.items():
            if isinstance(value, str) and value.startswith("attach://"):
                target = raw.get(value.removeprefix("attach://"))
                if isinstance(target, UploadedFile):
                    params[key] = target
                    attached.add(value.removeprefix("attach://"))
                    continue
            params[key] = value
        for key in attached:
            params.pop(key, None)
        return params

    async def _handle_api(self, request: web.Request) -> web.Response:
        """Serve one Bot API method call."""
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self.calls.append(ApiCall(method, {}, 401))
            self._notify()
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        call = ApiCall(method, {})
        self.calls.append(call)
        try:
            call.params = await self._read_params(request)
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000)
            gate = self._holds.get(method.lower())
            if gate is not None:
                call.status = 0  # waiting
                self._notify()
                await gate.wait()
                call.status = 200
                transport = request.transport
                if transport is None or transport.is_closing():
                    call.status = 499  # the client went away: the call is dropped
                    self._notify()
                    return web.Response(status=499)
            failure = self._take_failure(method, call.params)
            if failure is not None:
                call.injected = failure.kind
                if failure.hold:
                    return await self._drop(request, call, failure)
                if not failure.after_applying:
                    self._record_fault(call, failure, applied=False)
                    raise failure.error
            self._check_flood(method, call.params)
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = handler(call.params)
            if inspect.isawaitable(result):
                result = await result
            if failure is not None:  # applied, but the answer is lost on its way back
                self._record_fault(call, failure, applied=True)
                raise failure.error
        except ApiError as exc:
            call.status = exc.status
            call.description = exc.description
            body = exc.payload()
        except Exception as exc:  # a bug in the emulator: answer 500 and keep it for the tests
            _log.exception("emulator failed to handle %s", method)
            self.internal_errors.append(exc)
            call.status = 500
            body = ApiError(500, f"Internal Server Error: {exc!r}").payload()
        else:
            body = {"ok": True, "result": result}
        self._notify()
        return web.json_response(body, status=call.status)

    def _record_fault(self, call: ApiCall, failure: _Failure, *, applied: bool) -> None:
        """Remember an injected failure."""
        self.injected.append(
            InjectedFault(call.method, failure.kind, applied, self._flood_chat(call.params))
        )

    async def _drop(self, request: web.Request, call: ApiCall, failure: _Failure) -> web.Response:
        """An injected timeout: hold the request, never apply it, then drop the connection."""
        call.status = 0  # no answer
        self._record_fault(call, failure, applied=False)
        self._notify()
        await asyncio.sleep(failure.hold)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=failure.error.status)

    def _flood_chat(self, params: JsonDict) -> int | None:
        """The chat id a call aims at, if it names a known one."""
        value = params.get("chat_id")
        if value is None or value == "":
            return None
        try:
            return self._resolve_chat(value).id
        except ApiError:
            return None

    def _check_flood(self, method: str, params: JsonDict) -> None:
        """With ``flood_limits``, answer 429 like Telegram for a chat-bound call (a send, edit,
        copy or forward) over one of the limits: ``flood_overall`` messages a second in all,
        ``flood_group`` per group, ``flood_private`` per private chat (messages, seconds).
        ``retry_after`` is the time until the window has room again, at least a second."""
        if not self.flood_limits or method.lower() not in FLOOD_METHODS:
            return
        chat_id = self._flood_chat(params)
        now = asyncio.get_running_loop().time()
        longest = max(self.flood_overall[1], self.flood_group[1], self.flood_private[1])
        self._flood = [(at, chat) for at, chat in self._flood if now - at < longest]
        waits: list[float] = []
        rules: list[tuple[tuple[int, float], int | None]] = [(self.flood_overall, None)]
        if chat_id is not None:
            rules.append((self.flood_group if chat_id < 0 else self.flood_private, chat_id))
        for (limit, period), only in rules:
            recent = [at for at, chat in self._flood if now - at < period and only in (None, chat)]
            if len(recent) >= limit:
                waits.append(recent[-limit] + period - now)
        if waits:
            self.flood_errors += 1
            retry_after = max(1, math.ceil(max(waits)))
            raise ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        self._flood.append((now, chat_id))

    async def _handle_file(self, request: web.Request) -> web.Response:
        """Serve a file download."""
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        content_type = stored.mime_type or (
            "image/jpeg" if stored.file_path.startswith("photos/") else "application/octet-stream"
        )
        return web.Response(body=stored.content, content_type=content_type)

    async def _handle_unknown_path(self, request: web.Request) -> web.Response:
        """Answer any other URL like Telegram does."""
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)

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
            if int(time.time()) - int(live.get("date", 0)) >= DELETE_WINDOW:
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
