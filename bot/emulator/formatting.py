"""Telegram's text formatting as the emulator checks it: HTML and MarkdownV2 (and legacy
Markdown) parsed into plain text and entities, refusing what Telegram refuses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

JsonDict = dict[str, Any]


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
