"""Tests for the local fake Bot API server, driven through the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import html
import json
import struct
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
import time_machine
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from buurtsignaal.bot.emulator import (
    BotApiEmulator,
    BotMessage,
    HtmlParseError,
    MarkdownParseError,
    image_size,
    parse_html,
    parse_markdown_v2,
)

ANNA = 1001
BERT = 1002
CAROL = 1003
DIRK = 1004
GROUP = -100123


def seconds(retry_after: int | dtm.timedelta) -> float:
    """A RetryAfter's wait in seconds (python-telegram-bot gives an int or a timedelta)."""
    return retry_after.total_seconds() if isinstance(retry_after, dtm.timedelta) else retry_after


def png_bytes(width: int, height: int) -> bytes:
    """Build a tiny but valid greyscale PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        """One PNG chunk with its CRC."""
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes(width) for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# A JPEG header with an SOF0 segment for a 800x600 image (enough for the size parser).
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    b"\xff\xc0\x00\x11\x08\x02\x58\x03\x20\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    b"\xff\xd9"
)


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    """A running emulator with two users and a group."""
    async with BotApiEmulator() as emulator:
        # Both have started the bot before (test_send_needs_a_started_bot covers who has not).
        emulator.add_user(ANNA, "Anna", last_name="de Vries", username="anna", started=True)
        emulator.add_user(BERT, "Bert", started=True)
        emulator.add_group(GROUP, "Buurt Oost", bot_is_admin=True)
        yield emulator


@pytest.fixture
async def client(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    """A real PTB Bot talking to the emulator."""
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url) as ptb_bot:
        yield ptb_bot


def keyboard() -> InlineKeyboardMarkup:
    """A small keyboard with two callback buttons and a URL button."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Ja", callback_data="answer:yes"),
                InlineKeyboardButton("Nee", callback_data="answer:no"),
            ],
            [InlineKeyboardButton("Meer info", url="https://example.org/info")],
        ]
    )


# ------------------------------------------------------------------------------ basics


async def test_get_me(emu: BotApiEmulator, client: Bot) -> None:
    """getMe answers with the configured bot identity."""
    me = await client.get_me()
    assert me.id == emu.bot_id
    assert me.username == "buurtsignaal_bot"
    assert me.is_bot
    assert client.username == emu.bot_username
    assert emu.base_url.startswith("http://127.0.0.1:") and emu.base_url.endswith("/bot")
    assert emu.base_file_url.endswith("/file/bot")
    assert [c.method for c in emu.calls] == ["getMe", "getMe"]


async def test_wrong_token_is_unauthorized(emu: BotApiEmulator) -> None:
    """A bot with another token gets 401 Unauthorized."""
    other = Bot("999:WRONG", base_url=emu.base_url, base_file_url=emu.base_file_url)
    with pytest.raises(InvalidToken):
        async with other:
            pass
    assert emu.calls[-1].status == 401


async def test_unknown_method_is_404_and_recorded(emu: BotApiEmulator, client: Bot) -> None:
    """Methods the emulator does not know answer 404 and show up in calls."""
    with pytest.raises(EndPointNotFound):
        await client.do_api_request("sendHologram", api_kwargs={"chat_id": ANNA})
    assert emu.calls[-1].method == "sendHologram"
    assert emu.calls[-1].status == 404
    assert emu.calls[-1].params == {"chat_id": ANNA}


async def test_unknown_chat_and_blocked_user(emu: BotApiEmulator, client: Bot) -> None:
    """Unknown chats give "chat not found"; a user who blocked the bot gives 403."""
    with pytest.raises(BadRequest, match="Chat not found"):
        await client.send_message(424242, "hallo")
    emu.block_bot(BERT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await client.send_message(BERT, "hallo")
    assert emu.calls[-1].status == 403
    emu.unblock_bot(BERT)
    await client.send_message(BERT, "hallo")
    assert [m.plain_text for m in emu.messages(BERT)] == ["hallo"]


# ------------------------------------------------------------------------------ messages


async def test_send_message_with_keyboard_and_press_button(
    emu: BotApiEmulator, client: Bot
) -> None:
    """A sent keyboard can be pressed; the update parses and can be answered once."""
    sent = await client.send_message(
        ANNA, "<b>Melding</b> opgeslagen?", parse_mode="HTML", reply_markup=keyboard()
    )
    assert sent.message_id == 1
    assert sent.text == "Melding opgeslagen?"
    assert sent.text_html == "<b>Melding</b> opgeslagen?"
    assert sent.reply_markup == keyboard()

    msg = emu.sent[-1]
    assert isinstance(msg, BotMessage)
    assert (msg.chat_id, msg.kind, msg.parse_mode) == (ANNA, "text", "HTML")
    assert msg.text == "<b>Melding</b> opgeslagen?"
    assert msg.plain_text == "Melding opgeslagen?"
    assert msg.buttons == [
        [("Ja", "answer:yes"), ("Nee", "answer:no")],
        [("Meer info", "https://example.org/info")],
    ]

    raw = emu.press_button(ANNA, sent.message_id, "Nee")
    update = Update.de_json(raw, client)
    query = update.callback_query
    assert isinstance(query, CallbackQuery)
    assert query.data == "answer:no"
    assert query.from_user.id == ANNA
    assert query.message is not None and query.message.message_id == sent.message_id
    assert isinstance(query.message, Message)
    assert query.message.text == "Melding opgeslagen?"

    by_index = Update.de_json(emu.press_button(ANNA, sent.message_id, 0), client)
    assert by_index.callback_query is not None
    assert by_index.callback_query.data == "answer:yes"
    assert emu.pending_updates == 2

    with pytest.raises(LookupError):
        emu.press_button(ANNA, sent.message_id, "Misschien")
    with pytest.raises(LookupError):
        emu.press_button(ANNA, sent.message_id, 7)
    with pytest.raises(ValueError, match="url"):
        emu.press_button(ANNA, sent.message_id, "Meer info")

    assert await query.answer("Bedankt", show_alert=True)
    assert emu.callback_answers[-1]["text"] == "Bedankt"
    assert emu.callback_answers[-1]["show_alert"] is True
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer()


async def test_press_forged_data_but_never_an_unknown_message(
    emu: BotApiEmulator, client: Bot
) -> None:
    """Tests may forge callback data (a modified client can), but only on a message the bot
    really sent: Telegram delivers no press for a message that never existed."""
    sent = await client.send_message(ANNA, "kies", reply_markup=keyboard())
    update = Update.de_json(emu.press(ANNA, sent.message_id, "forged:data", enqueue=False), client)
    assert update.callback_query is not None
    assert update.callback_query.data == "forged:data"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == sent.message_id
    assert emu.pending_updates == 0
    with pytest.raises(LookupError, match="no message 99"):
        emu.press(ANNA, 99, "forged:data")
    user_message = emu.text(ANNA, "hallo")["message"]["message_id"]
    with pytest.raises(LookupError):  # users' own messages carry no bot buttons
        emu.press(ANNA, user_message, "forged:data")


async def test_user_text_and_bot_command_entity(emu: BotApiEmulator, client: Bot) -> None:
    """User messages share the chat's message id counter and carry command entities."""
    await client.send_message(ANNA, "eerst")
    update = Update.de_json(emu.text(ANNA, "/start@buurtsignaal_bot abc"), client)
    message = update.message
    assert message is not None
    assert message.message_id == 2
    assert message.chat.type == "private"
    assert message.from_user is not None and message.from_user.language_code == "nl"
    assert message.parse_entities() != {}
    entity = message.entities[0]
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 23)
    assert (await client.send_message(ANNA, "daarna")).message_id == 3

    group = Update.de_json(emu.text(BERT, "hallo buurt", chat_id=GROUP), client)
    assert group.message is not None
    assert group.message.chat.title == "Buurt Oost"
    assert group.message.message_id == 1


async def test_edit_message_text(emu: BotApiEmulator, client: Bot) -> None:
    """Edits change the stored state, notify listeners and reject no-op edits."""
    events: list[tuple[str, int, str]] = []
    emu.add_listener(lambda event, m: events.append((event, m.edited, m.plain_text)))
    sent = await client.send_message(ANNA, "Versie 1", reply_markup=keyboard())
    edited = await client.edit_message_text(
        "<i>Versie 2</i>", chat_id=ANNA, message_id=sent.message_id, parse_mode="HTML"
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Versie 2"
    assert edited.edit_date is not None
    msg = emu.message(ANNA, sent.message_id)
    assert msg.text == "<i>Versie 2</i>"
    assert msg.edited == 1
    assert msg.reply_markup is None  # editMessageText without markup drops the keyboard
    assert events == [("sent", 0, "Versie 1"), ("edited", 1, "Versie 2")]

    with pytest.raises(BadRequest, match="not modified"):
        await client.edit_message_text(
            "<i>Versie 2</i>", chat_id=ANNA, message_id=sent.message_id, parse_mode="HTML"
        )
    await client.edit_message_reply_markup(ANNA, sent.message_id, reply_markup=keyboard())
    assert emu.message(ANNA, sent.message_id).buttons[0][0] == ("Ja", "answer:yes")
    with pytest.raises(BadRequest, match="not modified"):
        await client.edit_message_reply_markup(ANNA, sent.message_id, reply_markup=keyboard())
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await client.edit_message_text("x", chat_id=ANNA, message_id=500)

    user_msg = emu.text(ANNA, "van Anna")["message"]["message_id"]
    with pytest.raises(BadRequest, match="can't be edited"):
        await client.edit_message_text("x", chat_id=ANNA, message_id=user_msg)


async def test_delete_message_and_current_state(emu: BotApiEmulator, client: Bot) -> None:
    """Deleted messages leave messages() but stay in sent, flagged."""
    first = await client.send_message(ANNA, "een")
    await client.send_message(ANNA, "twee")
    assert await client.delete_message(ANNA, first.message_id)
    assert [m.plain_text for m in emu.messages(ANNA)] == ["twee"]
    assert emu.sent[0].deleted
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await client.delete_message(ANNA, first.message_id)
    assert emu.last_sent(ANNA).plain_text == "twee"


async def test_copy_and_forward(emu: BotApiEmulator, client: Bot) -> None:
    """copyMessage and forwardMessage create bot messages with the same content."""
    photo_update = emu.photo(ANNA, JPEG, caption="kapotte lantaarn")
    source_id = photo_update["message"]["message_id"]
    copied = await client.copy_message(
        GROUP, ANNA, source_id, caption="<b>Nieuw</b>", parse_mode="HTML"
    )
    msg = emu.message(GROUP, copied.message_id)
    assert msg.kind == "photo"
    assert msg.file_bytes == JPEG
    assert msg.plain_text == "Nieuw"
    forwarded = await client.forward_message(GROUP, ANNA, source_id)
    assert forwarded.forward_origin is not None
    assert forwarded.caption == "kapotte lantaarn"
    assert emu.sent[-1].method == "forwardMessage"


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a < b", 'Unsupported start tag ""'),
        ("1<2", "Unclosed start tag"),
        ("<b>vet", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>vet</i>", "Unmatched end tag"),
        ("<foo>x</foo>", 'Unsupported start tag "foo"'),
        ("<br/>", 'Unsupported start tag "br/"'),
        ("R&D", "Can't find end of the entity"),
        ("x</b>", "Unexpected end tag"),
        ('<span class="x">y</span>', 'must have class "tg-spoiler"'),
    ],
)
async def test_html_errors(emu: BotApiEmulator, client: Bot, text: str, reason: str) -> None:
    """Invalid HTML is refused like Telegram does."""
    with pytest.raises(BadRequest, match="an't parse entities") as caught:
        await client.send_message(ANNA, text, parse_mode="HTML")
    assert reason.lower() in str(caught.value).lower()
    assert emu.calls[-1].status == 400
    assert emu.sent == []


async def test_escaped_html_and_allowed_tags(emu: BotApiEmulator, client: Bot) -> None:
    """Escaped text and every allowed tag are accepted."""
    raw = "a < b & R&D > \"c\" 's'"
    sent = await client.send_message(ANNA, html.escape(raw), parse_mode="HTML")
    assert sent.text == raw
    assert emu.sent[-1].plain_text == raw
    rich = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>"
        '<strike>t</strike><del>d</del><span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler>'
        '<a href="https://example.org/?a=1&amp;b=2">link</a><code>c</code>'
        '<pre><code class="language-python">x = 1</code></pre>'
        "<blockquote expandable>quote</blockquote>&#65;&#x42;"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    sent = await client.send_message(ANNA, rich, parse_mode="html")
    types = {e.type for e in sent.entities}
    assert {"bold", "italic", "underline", "strikethrough", "spoiler", "text_link", "code"} <= types
    assert {"pre", "expandable_blockquote", "custom_emoji"} <= types
    pre = next(e for e in sent.entities if e.type == "pre")
    assert pre.language == "python"
    link = next(e for e in sent.entities if e.type == "text_link")
    assert link.url == "https://example.org/?a=1&b=2"
    assert sent.text is not None and sent.text.endswith("AB👍")


async def test_plain_text_is_not_parsed(emu: BotApiEmulator, client: Bot) -> None:
    """Without parse_mode, "<" and "&" are ordinary characters."""
    sent = await client.send_message(ANNA, "a < b & <c>")
    assert sent.text == "a < b & <c>"
    with pytest.raises(BadRequest, match="Unsupported parse_mode"):
        await client.send_message(ANNA, "x", parse_mode="HTM")


async def test_text_length_limits(emu: BotApiEmulator, client: Bot) -> None:
    """The 4096 limit applies after entity parsing and counts UTF-16 code units."""
    await client.send_message(ANNA, "x" * 4096)
    await client.send_message(ANNA, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    await client.send_message(ANNA, "&amp;" * 4096, parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await client.send_message(ANNA, "x" * 4097)
    await client.send_message(ANNA, "😀" * 2048)  # 4096 UTF-16 code units
    with pytest.raises(BadRequest, match="Message is too long"):
        await client.send_message(ANNA, "😀" * 2049)  # only 2049 characters, but 4098 units
    with pytest.raises(BadRequest, match="Message text is empty"):
        await client.send_message(ANNA, "  \n ")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await client.send_message(ANNA, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="caption is too long"):
        await client.send_photo(ANNA, JPEG, caption="y" * 1025)
    assert len(emu.sent) == 4


async def test_callback_data_limit(emu: BotApiEmulator, client: Bot) -> None:
    """callback_data is limited to 64 UTF-8 bytes."""
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="d" * 64)]])
    await client.send_message(ANNA, "ok", reply_markup=ok)
    for data in ("d" * 65, "é" * 33):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("te lang", callback_data=data)]])
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await client.send_message(ANNA, "nee", reply_markup=markup)
    no_action = {"inline_keyboard": [[{"text": "zonder actie"}]]}
    async with httpx.AsyncClient(base_url=f"{emu.base_url}{emu.token}/") as http:
        reply = await http.post(
            "sendMessage",
            data={"chat_id": ANNA, "text": "x", "reply_markup": json.dumps(no_action)},
        )
    assert reply.status_code == 400
    assert reply.json()["description"].startswith(
        "Bad Request: can't parse inline keyboard button: "
    )
    assert len(emu.sent) == 1


# ------------------------------------------------------------------------------ failures


async def test_retry_after_injection(
    emu: BotApiEmulator, client: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 becomes RetryAfter with the injected delay; the next call succeeds."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB warns about int retry_after otherwise
    emu.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await client.send_message(ANNA, "hallo")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert emu.calls[-1].status == 429
    await client.send_message(ANNA, "hallo")
    assert [m.plain_text for m in emu.sent] == ["hallo"]


async def test_server_error_injection(emu: BotApiEmulator, client: Bot) -> None:
    """A 500 becomes a NetworkError (not a BadRequest), for ``times`` calls."""
    emu.fail_next("SENDMESSAGE", status=500, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError) as caught:
            await client.send_message(ANNA, "hallo")
        assert not isinstance(caught.value, BadRequest)
    await client.send_message(ANNA, "hallo")
    assert [c.status for c in emu.calls_to("sendMessage")] == [500, 500, 200]
    emu.fail_next("sendMessage", status=400, description="Bad Request: custom")
    with pytest.raises(BadRequest, match="Custom"):
        await client.send_message(ANNA, "hallo")


# ------------------------------------------------------------------------------ files


async def test_photo_and_document_round_trip(emu: BotApiEmulator, client: Bot) -> None:
    """Files the bot uploads are stored and downloadable via getFile."""
    picture = png_bytes(640, 480)
    assert image_size(picture) == (640, 480)
    sent = await client.send_photo(ANNA, picture, caption="<i>kaart</i>", parse_mode="HTML")
    assert [(p.width, p.height) for p in sent.photo] == [(320, 240), (640, 480)]
    assert sent.caption == "kaart"
    file = await client.get_file(sent.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == picture
    msg = emu.sent[-1]
    assert (msg.kind, msg.file_bytes, msg.text) == ("photo", picture, "<i>kaart</i>")

    again = await client.send_photo(BERT, sent.photo[-1].file_id)
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    assert emu.sent[-1].file_bytes == picture

    doc = await client.send_document(ANNA, b"%PDF-1.4 rapport", filename="rapport.pdf")
    assert doc.document is not None
    assert doc.document.file_name == "rapport.pdf"
    assert doc.document.mime_type == "application/pdf"
    file = await client.get_file(doc.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"%PDF-1.4 rapport"
    assert emu.sent[-1].file_name == "rapport.pdf"
    assert emu.sent[-1].file_bytes == b"%PDF-1.4 rapport"

    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await client.send_photo(ANNA, "no-such-file-id")
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await client.get_file("no-such-file-id")


async def test_user_photo_and_document_download(emu: BotApiEmulator, client: Bot) -> None:
    """Photos and documents users send are downloadable by the bot."""
    update = Update.de_json(emu.photo(ANNA, JPEG, caption="graffiti"), client)
    assert update.message is not None
    assert update.message.caption == "graffiti"
    sizes = update.message.photo
    assert len(sizes) == 2
    assert (sizes[-1].width, sizes[-1].height) == (800, 600)
    file = await sizes[-1].get_file()
    assert bytes(await file.download_as_bytearray()) == JPEG

    update = Update.de_json(emu.document(BERT, b"a,b\n1,2\n", "data.csv", "text/csv"), client)
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_name == "data.csv"
    file = await update.message.document.get_file()
    assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"

    sticker, voice, location = (
        Update.de_json(raw, client).message
        for raw in (emu.sticker(ANNA), emu.voice(ANNA), emu.location(ANNA, 52.37, 4.89))
    )
    assert sticker is not None and sticker.sticker is not None
    assert voice is not None and voice.voice is not None
    assert location is not None and location.location is not None
    assert location.location.latitude == pytest.approx(52.37)


# ------------------------------------------------------------------------------ polling


async def test_long_polling_and_offset(emu: BotApiEmulator, client: Bot) -> None:
    """getUpdates waits for new updates, returns early, and offset confirms."""
    assert await client.get_updates(timeout=0) == ()
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(client.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done()
    emu.text(ANNA, "hallo")
    updates = await asyncio.wait_for(poll, 3)
    assert loop.time() - started < 3
    assert [u.message.text for u in updates if u.message] == ["hallo"]
    assert emu.pending_updates == 0
    await emu.wait_for_fetch(timeout=0.1)

    emu.text(ANNA, "tweede")
    assert emu.pending_updates == 1
    again = await client.get_updates(timeout=0)  # nothing confirmed yet: both come back
    assert [u.update_id for u in again] == [updates[0].update_id, updates[0].update_id + 1]
    last = again[-1].update_id
    assert await client.get_updates(offset=last + 1, timeout=0) == ()
    assert emu.unconfirmed_updates == 0


async def test_allowed_updates_and_limit(emu: BotApiEmulator, client: Bot) -> None:
    """allowed_updates filters update types; limit caps the batch."""
    sent = await client.send_message(ANNA, "kies", reply_markup=keyboard())
    emu.text(ANNA, "een")
    emu.press(ANNA, sent.message_id, "x")
    emu.text(ANNA, "twee")
    first = await client.get_updates(limit=1, timeout=0)
    assert len(first) == 1 and first[0].message is not None
    rest = await client.get_updates(offset=first[0].update_id + 1, allowed_updates=["message"])
    assert [u.message.text for u in rest if u.message] == ["twee"]
    assert len(rest) == 1


async def test_wait_for_fetch_times_out(emu: BotApiEmulator) -> None:
    """wait_for_fetch raises TimeoutError when nobody polls."""
    emu.text(ANNA, "hallo")
    with pytest.raises(TimeoutError):
        await emu.wait_for_fetch(timeout=0.05)


async def test_application_polling_end_to_end(emu: BotApiEmulator) -> None:
    """A real Application polls the emulator, handles a command and a button press."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Reply with a keyboard."""
        assert update.effective_message is not None
        await update.effective_message.reply_html("<b>Welkom</b>", reply_markup=keyboard())

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer the query and edit the message."""
        query = update.callback_query
        assert query is not None
        await query.answer("Genoteerd")
        await query.edit_message_text(f"Gekozen: {query.data}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Echo text."""
        assert update.effective_message is not None and update.effective_message.text
        await update.effective_message.reply_text(update.effective_message.text)

    app = (
        Application.builder()
        .token(emu.token)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0)
        try:
            emu.text(ANNA, "/start")
            (welcome,) = await emu.wait_for_sent(1)
            assert welcome.plain_text == "Welkom"
            assert welcome.buttons[0] == [("Ja", "answer:yes"), ("Nee", "answer:no")]
            emu.press_button(ANNA, welcome.message_id, "Ja")
            await emu.wait_until(lambda: emu.message(ANNA, welcome.message_id).edited == 1)
            assert emu.message(ANNA, welcome.message_id).plain_text == "Gekozen: answer:yes"
            assert emu.callback_answers[-1]["text"] == "Genoteerd"
            emu.text(BERT, "hoi")
            await emu.wait_for_sent(2)
            assert emu.last_sent().chat_id == BERT
        finally:
            await app.updater.stop()
            await app.stop()
    await emu.wait_for_confirm(timeout=1)
    assert all(c.status in (200, 409) for c in emu.calls)


# ------------------------------------------------------------------------------ settings


async def test_set_my_commands_per_scope_and_language(emu: BotApiEmulator, client: Bot) -> None:
    """Commands are stored per scope and language code."""
    await client.set_my_commands([BotCommand("start", "Begin"), BotCommand("melding", "Meld iets")])
    await client.set_my_commands([BotCommand("start", "Start")], language_code="en")
    await client.set_my_commands(
        [BotCommand("buurt", "Buurt")], scope=BotCommandScopeAllGroupChats()
    )
    await client.set_my_commands([BotCommand("admin", "Beheer")], scope=BotCommandScopeChat(GROUP))

    assert [c["command"] for c in emu.commands[('{"type":"default"}', "")]] == ["start", "melding"]
    assert emu.commands_for(language_code="en") == [{"command": "start", "description": "Start"}]
    assert emu.commands_for({"type": "all_group_chats"}) == [
        {"command": "buurt", "description": "Buurt"}
    ]
    assert emu.commands_for({"type": "chat", "chat_id": GROUP}) is not None
    assert len(emu.commands) == 4

    fetched = await client.get_my_commands(language_code="en")
    assert [c.command for c in fetched] == ["start"]
    assert await client.get_my_commands(language_code="de") == ()
    await client.delete_my_commands(language_code="en")
    assert emu.commands_for(language_code="en") is None
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await client.set_my_commands([BotCommand("Start", "hoofdletter")])

    await client.set_my_description("Een bot voor de buurt", language_code="nl")
    await client.set_my_short_description("Buurtbot")
    await client.set_my_name("Buurtsignaal NL", language_code="nl")
    assert emu.descriptions == {"nl": "Een bot voor de buurt"}
    assert emu.short_descriptions == {"": "Buurtbot"}
    assert emu.names == {"nl": "Buurtsignaal NL"}
    assert await client.set_chat_menu_button()
    assert await client.delete_webhook(drop_pending_updates=True)


async def test_chat_members_and_admins(emu: BotApiEmulator, client: Bot) -> None:
    """getChatMember and getChatAdministrators reflect the configured roles."""
    me = await client.get_chat_member(GROUP, emu.bot_id)
    assert me.status == "administrator"
    assert (await client.get_chat_member(GROUP, ANNA)).status == "member"
    emu.add_group(-100999, "Andere buurt")
    assert (await client.get_chat_member(-100999, emu.bot_id)).status == "member"
    emu.set_member_status(GROUP, BERT, "creator")
    admins = await client.get_chat_administrators(GROUP)
    assert {a.user.id for a in admins} == {BERT, emu.bot_id}
    chat = await client.get_chat(GROUP)
    assert chat.title == "Buurt Oost"
    private = await client.get_chat(ANNA)
    assert private.first_name == "Anna" and private.username == "anna"

    joined = Update.de_json(emu.new_chat_members(GROUP, [ANNA]), client)
    assert joined.message is not None and joined.message.new_chat_members[0].id == ANNA
    added = Update.de_json(emu.bot_added_to_group(-100999, BERT), client)
    assert added.my_chat_member is not None
    assert added.my_chat_member.new_chat_member.status == "member"
    assert await client.send_chat_action(GROUP, "typing")
    assert await client.pin_chat_message(GROUP, joined.message.message_id)
    assert await client.unpin_chat_message(GROUP)


# ------------------------------------------------------------------------------ wire formats


async def test_json_and_query_string_requests(emu: BotApiEmulator) -> None:
    """Besides PTB's form encoding, JSON bodies and query strings work too."""
    async with httpx.AsyncClient(base_url=f"{emu.base_url}{emu.token}/") as client:
        reply = await client.post(
            "sendMessage",
            json={
                "chat_id": ANNA,
                "text": "123",
                "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]},
            },
        )
        assert reply.status_code == 200
        assert reply.json()["result"]["text"] == "123"
        reply = await client.get("sendMessage", params={"chat_id": str(ANNA), "text": "true"})
        assert reply.json()["result"]["text"] == "true"
        reply = await client.get("getMe")
        assert reply.json()["result"]["username"] == emu.bot_username
        reply = await client.post("sendMessage", json={"chat_id": ANNA, "text": ""})
        assert reply.status_code == 400
        assert reply.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message text is empty",
        }
    assert emu.sent[0].buttons == [[("a", "b")]]
    assert emu.calls[0].params["chat_id"] == ANNA


# ------------------------------------------------------------------------------ html parser


def test_parse_html_offsets_count_utf16() -> None:
    """Entity offsets and lengths are in UTF-16 code units."""
    text, entities = parse_html("😀 <b>vet 😀</b> &lt;ok&gt;")
    assert text == "😀 vet 😀 <ok>"
    assert entities == [{"type": "bold", "offset": 3, "length": 6}]
    with pytest.raises(HtmlParseError, match="byte offset 5"):
        parse_html("😀 <x>")
    assert parse_html("R&D", strict=False)[0] == "R&D"


async def test_stop_releases_a_pending_long_poll() -> None:
    """Stopping the emulator answers a waiting getUpdates at once and closes cleanly."""
    emulator = BotApiEmulator()
    await emulator.start()
    async with Bot(
        emulator.token, base_url=emulator.base_url, base_file_url=emulator.base_file_url
    ) as ptb_bot:
        poll = asyncio.create_task(ptb_bot.get_updates(timeout=30))
        await emulator.wait_until(lambda: bool(emulator.calls_to("getUpdates")))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await emulator.stop()
        assert await asyncio.wait_for(poll, 5) == ()
        assert loop.time() - started < 2
    assert not emulator.running
    await emulator.stop()  # idempotent


# ------------------------------------------------------------------------------ never laxer
# Each check below is one where Telegram refuses what an earlier emulator accepted.


async def test_send_needs_a_started_bot(emu: BotApiEmulator, client: Bot) -> None:
    """A user who never wrote to the bot can't be written to; their first message opens it."""
    emu.add_user(CAROL, "Carol")
    assert not emu.has_started(CAROL)
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await client.send_message(CAROL, "hallo")
    emu.text(CAROL, "/start")
    assert emu.has_started(CAROL)
    await client.send_message(CAROL, "welkom")
    emu.set_started(CAROL, False)
    with pytest.raises(Forbidden, match="initiate"):
        await client.send_photo(CAROL, JPEG)
    emu.add_user(DIRK, "Dirk", started=True)
    await client.send_message(DIRK, "hallo")
    emu.text(CAROL, "ik ben er", chat_id=GROUP)  # a group message opens no private chat
    with pytest.raises(Forbidden):
        await client.send_message(CAROL, "hallo")
    assert [m.plain_text for m in emu.sent] == ["welkom", "hallo"]


def buttons(count: int, per_row: int) -> InlineKeyboardMarkup:
    """``count`` callback buttons in rows of ``per_row``."""
    flat = [InlineKeyboardButton(str(n), callback_data=f"n:{n}") for n in range(count)]
    return InlineKeyboardMarkup([flat[i : i + per_row] for i in range(0, count, per_row)])


async def test_keyboard_size_limits(emu: BotApiEmulator, client: Bot) -> None:
    """At most 100 inline buttons and 8 a row (reply keyboards: 300 and 12)."""
    await client.send_message(ANNA, "ok", reply_markup=buttons(100, 8))
    for markup in (buttons(101, 8), buttons(9, 9)):
        with pytest.raises(BadRequest, match="Reply markup is too long"):
            await client.send_message(ANNA, "te veel", reply_markup=markup)
    sent = await client.send_message(ANNA, "ok", reply_markup=buttons(2, 2))
    with pytest.raises(BadRequest, match="Reply markup is too long"):
        await client.edit_message_reply_markup(ANNA, sent.message_id, reply_markup=buttons(9, 9))
    await client.send_message(ANNA, "ok", reply_markup=ReplyKeyboardMarkup([["a"] * 12]))
    with pytest.raises(BadRequest, match="Reply markup is too long"):
        await client.send_message(ANNA, "nee", reply_markup=ReplyKeyboardMarkup([["a"] * 13]))
    assert len(emu.sent) == 3


async def test_placeholder_limit(emu: BotApiEmulator, client: Bot) -> None:
    """input_field_placeholder holds at most 64 characters."""
    await client.send_message(
        ANNA, "ok", reply_markup=ReplyKeyboardMarkup([["a"]], input_field_placeholder="p" * 64)
    )
    for markup in (
        ReplyKeyboardMarkup([["a"]], input_field_placeholder="p" * 65),
        ForceReply(input_field_placeholder="p" * 65),
    ):
        with pytest.raises(BadRequest, match="placeholder"):
            await client.send_message(ANNA, "nee", reply_markup=markup)


async def test_callback_answer_limit(emu: BotApiEmulator, client: Bot) -> None:
    """A callback answer holds at most 200 characters; a refused answer leaves the query open."""
    sent = await client.send_message(ANNA, "kies", reply_markup=keyboard())
    query = Update.de_json(emu.press_button(ANNA, sent.message_id, "Ja"), client).callback_query
    assert query is not None
    with pytest.raises(BadRequest, match="Message_too_long"):
        await query.answer("x" * 201, show_alert=True)
    assert await query.answer("x" * 200, show_alert=True)
    assert emu.callback_answers[-1]["text"] == "x" * 200


async def test_language_codes(emu: BotApiEmulator, client: Bot) -> None:
    """Bot settings per language take a two-letter ISO 639-1 code, or none."""
    commands = [BotCommand("start", "Begin")]
    await client.set_my_commands(commands, language_code="nl")
    for code in ("nld", "NL", "en-US", "e"):
        with pytest.raises(BadRequest, match="Invalid language code specified"):
            await client.set_my_commands(commands, language_code=code)
    with pytest.raises(BadRequest, match="Invalid language code"):
        await client.get_my_commands(language_code="dutch")
    with pytest.raises(BadRequest, match="Invalid language code"):
        await client.set_my_description("Buurtsignaal", language_code="en_GB")
    assert emu.commands_for(None, "nl") is not None
    assert emu.commands_for(None, "nld") is None


async def test_markdown_v2_is_parsed_like_telegram(emu: BotApiEmulator, client: Bot) -> None:
    """MarkdownV2 needs every reserved character escaped; Markdown needs entities closed."""
    with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
        await client.send_message(ANNA, "Om 9.30 uur", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)can't find end of bold entity at byte offset 0"):
        await client.send_message(ANNA, "*vet", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)can't find end of the entity starting"):
        await client.send_message(ANNA, "snake_case", parse_mode="Markdown")
    sent = await client.send_message(
        ANNA, "*Om* 9\\.30 _uur_ [hier](https://example.org/a\\)b)", parse_mode="MarkdownV2"
    )
    assert sent.text == "Om 9.30 uur hier"
    found = [(e.type, e.offset, e.length, e.url) for e in sent.entities]
    assert found == [
        ("bold", 0, 2, None),
        ("italic", 8, 3, None),
        ("text_link", 12, 4, "https://example.org/a)b"),
    ]
    legacy = await client.send_message(ANNA, "*vet* en `code`", parse_mode="Markdown")
    assert legacy.text == "vet en code"
    assert parse_markdown_v2("||geheim||\n>citaat")[1] == [
        {"type": "spoiler", "offset": 0, "length": 6},
        {"type": "blockquote", "offset": 7, "length": 6},
    ]
    with pytest.raises(MarkdownParseError, match="Can't find end of a URL"):
        parse_markdown_v2("[a](https://x")


async def test_entities_must_lie_within_the_text(emu: BotApiEmulator, client: Bot) -> None:
    """Explicit entities past the end of the text are refused (offsets in UTF-16 units)."""
    await client.send_message(ANNA, "hallo😀", entities=[MessageEntity("bold", 5, 2)])
    with pytest.raises(BadRequest, match=r"Entity beginning at utf-16 offset 3 ends after"):
        await client.send_message(ANNA, "hallo", entities=[MessageEntity("bold", 3, 5)])
    with pytest.raises(BadRequest, match="Entity begins after the end of the text"):
        await client.send_photo(
            ANNA, JPEG, caption="foto", caption_entities=[MessageEntity("italic", 9, 1)]
        )
    assert len(emu.sent) == 1


async def test_delete_only_within_48_hours(
    emu: BotApiEmulator, client: Bot, travel: time_machine.Traveller
) -> None:
    """After 48 hours a message can't be deleted for everyone, unless the bot is a group
    admin."""
    early = await client.send_message(ANNA, "oud")
    later = await client.send_message(ANNA, "nieuwer")
    in_group = await client.send_message(GROUP, "in de groep")
    travel.shift(dtm.timedelta(hours=47))
    assert await client.delete_message(ANNA, later.message_id)
    travel.shift(dtm.timedelta(hours=1))
    with pytest.raises(BadRequest, match="Message can't be deleted for everyone"):
        await client.delete_message(ANNA, early.message_id)
    assert await client.delete_message(GROUP, in_group.message_id)  # the bot is admin there
    assert [m.plain_text for m in emu.messages(ANNA)] == ["oud"]


async def test_photo_by_url_must_be_reachable(emu: BotApiEmulator, client: Bot) -> None:
    """Telegram fetches a photo URL itself: an unreachable URL or a web page is refused."""
    with pytest.raises(BadRequest, match="Failed to get http url content"):
        await client.send_photo(ANNA, "https://example.org/kaart.png")
    emu.serve_url("https://example.org/kaart.png", png_bytes(40, 30), "image/png")
    emu.serve_url("https://example.org/", b"<html></html>", "text/html")
    sent = await client.send_photo(ANNA, "https://example.org/kaart.png")
    assert (sent.photo[-1].width, sent.photo[-1].height) == (40, 30)
    with pytest.raises(BadRequest, match="Wrong type of the web page content"):
        await client.send_photo(ANNA, "https://example.org/")
    document = await client.send_document(ANNA, "https://example.org/")
    assert document.document is not None
    downloaded = await (await client.get_file(document.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"<html></html>"


# ------------------------------------------------------------------------------ the network


async def test_latency_delays_each_answer_without_blocking_others(
    emu: BotApiEmulator, client: Bot
) -> None:
    """latency_ms holds every answer (getUpdates too), but calls run side by side."""
    loop = asyncio.get_running_loop()
    emu.latency_ms = 300
    started = loop.time()
    await asyncio.gather(*(client.send_message(ANNA, f"{n}") for n in range(4)), client.get_me())
    elapsed = loop.time() - started
    assert 0.3 <= elapsed < 1.0
    started = loop.time()
    assert await client.get_updates(timeout=0) == ()
    assert loop.time() - started >= 0.3
    emu.latency_ms = 0
    started = loop.time()
    await client.send_message(ANNA, "snel")
    assert loop.time() - started < 0.3


async def test_flood_limits_per_private_chat_and_group(
    emu: BotApiEmulator, client: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With flood_limits, a burst to one private chat or a group answers 429 with retry_after;
    answering a button press or getMe does not count."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    emu.flood_limits = True
    for n in range(5):
        await client.send_message(ANNA, f"{n}")
    with pytest.raises(RetryAfter) as caught:
        await client.send_message(ANNA, "te snel")
    assert 1 <= seconds(caught.value.retry_after) <= 5
    await client.send_message(BERT, "een ander mag wel")
    for _ in range(10):
        await client.get_me()
    for n in range(20):
        await client.send_message(GROUP, f"{n}")
    with pytest.raises(RetryAfter) as caught:
        await client.send_message(GROUP, "te veel")
    assert 55 <= seconds(caught.value.retry_after) <= 60
    assert emu.flood_errors == 2
    assert len(emu.sent) == 5 + 1 + 20
    emu.flood_limits = False
    await client.send_message(ANNA, "weer gewoon")


async def test_flood_limit_for_all_chats_together(
    emu: BotApiEmulator, client: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than flood_overall messages a second in all is refused, whatever the chats."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    emu = BotApiEmulator(flood_limits=True)
    emu.flood_overall = (3, 1.0)
    async with emu:
        for uid in (ANNA, BERT, CAROL):
            emu.add_user(uid, str(uid), started=True)
        async with Bot(emu.token, base_url=emu.base_url) as bot:
            for uid in (ANNA, BERT, CAROL):
                await bot.send_message(uid, "hallo")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(ANNA, "nog een")
            assert seconds(caught.value.retry_after) == 1
            await asyncio.sleep(1.05)
            await bot.send_message(ANNA, "nog een")
        assert emu.flood_errors == 1


# ------------------------------------------------------------------------------ fault injection


async def test_random_faults_are_seeded_recorded_and_not_applied(
    emu: BotApiEmulator, client: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faults() fails a share of the calls, the same ones for the same seed; none reaches the
    chat, and each is recorded."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")

    async def run() -> list[str]:
        emu.faults(0.5, methods=["sendMessage"], kinds=("429", "500", "403"), seed=11)
        outcome: list[str] = []
        for n in range(30):
            try:
                await client.send_message(ANNA, f"{n}")
                outcome.append("ok")
            except RetryAfter:
                outcome.append("429")
            except Forbidden as exc:
                assert "bot was blocked by the user" in exc.message
                outcome.append("403")
            except NetworkError:
                outcome.append("500")
        emu.faults(0)
        return outcome

    first = await run()
    assert {"ok", "429", "500", "403"} <= set(first)
    assert [f.kind for f in emu.injected] == [o for o in first if o != "ok"]
    assert not any(f.applied for f in emu.injected)
    assert len(emu.sent) == first.count("ok")
    assert [c.injected for c in emu.calls_to("sendMessage")] == [
        None if o == "ok" else o for o in first
    ]
    emu.injected.clear()
    assert await run() == first
    await client.get_me()  # other methods were never touched
    assert all(c.injected is None for c in emu.calls_to("getMe"))


async def test_timeout_holds_the_call_and_never_applies_it(emu: BotApiEmulator) -> None:
    """hang_next: the client times out (or sees the connection dropped); nothing is sent."""
    quick = HTTPXRequest(read_timeout=0.2)
    async with Bot(emu.token, base_url=emu.base_url, request=quick) as impatient:
        emu.hang_next("sendMessage", 0.5)
        with pytest.raises(TimedOut):
            await impatient.send_message(ANNA, "hallo")
        await asyncio.sleep(0.4)  # the emulator gives up on the request, unapplied
    async with Bot(emu.token, base_url=emu.base_url) as patient:
        emu.hang_next("sendMessage", 0.2)
        with pytest.raises(NetworkError):
            await patient.send_message(ANNA, "hallo")
        await patient.send_message(ANNA, "eindelijk")
    assert [m.plain_text for m in emu.sent] == ["eindelijk"]
    assert [(f.kind, f.applied, f.chat_id) for f in emu.injected] == [("timeout", False, ANNA)] * 2
    assert [c.injected for c in emu.calls_to("sendMessage")] == ["timeout", "timeout", None]


async def test_lost_response_is_applied_so_a_retry_sends_twice(
    emu: BotApiEmulator, client: Bot
) -> None:
    """lose_response_next: the message arrives, the bot hears 502; retrying doubles it. With
    fail_next the same 502 means nothing arrived."""
    emu.lose_response_next("sendMessage")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await client.send_message(ANNA, "eenmaal")
    await client.send_message(ANNA, "eenmaal")  # a naive retry
    emu.fail_next("sendMessage", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await client.send_message(BERT, "niet aangekomen")
    assert [m.plain_text for m in emu.messages(ANNA)] == ["eenmaal", "eenmaal"]
    assert emu.messages(BERT) == []
    assert [(f.kind, f.applied) for f in emu.injected] == [("lost", True), ("502", False)]
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.faults(0.1, kinds=("teapot",))
