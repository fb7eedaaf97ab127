"""Thousands of random and hostile updates through the real Application and the emulator.

Residents, professionals and an admin send texts (with HTML, emoji, huge, zero and negative
numbers, far-away dates), every command the bot knows with random arguments, /start with random
payloads, presses of the real buttons of the bot's messages with their data kept or mutated
(oversized, negative or odd ids, cut, lengthened), stickers, locations, photos, files and voice
notes, in their private chats and in the neighbourhood group. Afterwards:

- no update reached the bot's error handler ("error while handling an update");
- the emulator never answered a 4xx (other than "message is not modified", which the limiter
  counts as success) and never failed itself;
- every person still gets the welcome on /start.

``make test`` runs a short, reproducible run (FUZZ_UPDATES, default 300); ``make fuzz`` runs
10,000 updates with a fresh random seed. A failure shows the last twenty actions before it (all
examples share one bot, so hypothesis does not shrink them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler

from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.storage.models import MediationCase, Moment, Signal, Signup
from tests.conftest import ADMIN_ID, make_settings
from tests.harness import BotUnderTest, Person, grant_role

UPDATES = int(os.environ.get("FUZZ_UPDATES", "300"))
BATCH = 25  # updates per hypothesis example, all on one long-lived bot
RANDOM_SEED = os.environ.get("FUZZ_RANDOM", "") == "1"  # make fuzz: a new seed every run
GROUP = -1001
TWO_WIJKEN = [
    {"name": "Schilderswijk", "slug": "schilderswijk", "group_chat_id": GROUP},
    {"name": "Transvaal", "slug": "transvaal"},
]

# --- what people send ---------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**31 - 1, 2**63, -(2**63), 10**9, 999999999]),
).map(str)
WEIRD_NUMBERS = st.sampled_from(["²", "١٢٣", "１２", "1e9", "0x10", "NaN", "-0", "+5", "1_000"])
DATES = st.sampled_from(
    [
        "01-01-0001",
        "31-12-9999",
        "29-02-2027",
        "31-04-2027",
        "00-00-0000",
        "9999-12-31",
        "32-13-2026",
        "25:61",
        "23:59",
        "24u",
        "10.00",
        "05-12-2026 10:00",
        "31-12-9999 23:59",
        "01-01-0001 om 00:00",
        "99-99-9999 99:99",
    ]
)
HTML = st.sampled_from(
    ["<b>", "</i>", "<a href='x'>", "&amp;", "&", "<", ">", "&#x1F600;", "<tg-spoiler>", "\\"]
)
WORDS = st.sampled_from(
    [
        "schilderswijk",
        "transvaal",
        "wijkagent",
        "opbouwwerker",
        "organisator",
        "bemiddelaar",
        "sleutelfiguur",
        "beheerder",
        "BS-2026-0001",
        "BM-2026-0001",
        "BS-9999-99999999999",
        "ja",
        "nee",
        "Turkse buren",
        "Hoofdstraat 1",
        "06-12345678",
        "+31612345678",
    ]
)
EMOJI = st.sampled_from(["👍", "☕", "🏳️‍🌈", "👨‍👩‍👧", "\u200b", "\u202e", "\ufeff", "🇳🇱"])
PIECES = st.one_of(NUMBERS, WEIRD_NUMBERS, DATES, HTML, WORDS, EMOJI, st.text(max_size=20))
TEXTS = st.one_of(
    st.lists(PIECES, min_size=1, max_size=6).map(" ".join),
    st.text(min_size=1, max_size=200),
    st.integers(min_value=1, max_value=4096).map(lambda n: "a" * n),
    st.integers(min_value=1, max_value=2048).map(lambda n: "😀" * n),
).filter(lambda s: bool(s.strip()))
ARGUMENTS = st.lists(st.one_of(NUMBERS, WEIRD_NUMBERS, DATES, HTML, WORDS), max_size=3)
PAYLOADS = st.one_of(
    st.tuples(st.sampled_from(["w-", "k-", "inv-", "sf-", "bm-", ""]), PIECES).map("".join),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
)


def _png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png()


# What is drawn never depends on the bot's state (hypothesis requires that): a button is picked
# by drawn numbers taken modulo what is there, and a mutation is drawn before it is applied.
MUTATIONS = st.one_of(
    st.none(),
    st.none(),
    st.tuples(st.just("huge"), st.integers(min_value=10**9, max_value=10**40)),
    st.tuples(st.just("negative"), st.integers(min_value=0, max_value=10**12)),
    st.tuples(st.just("odd"), WEIRD_NUMBERS),
    st.tuples(st.just("cut"), st.integers(min_value=0, max_value=64)),
    st.tuples(st.just("longer"), st.text(max_size=20)),
    st.tuples(st.just("random"), st.text(min_size=1, max_size=64)),
)


def mutate(data: str, mutation: tuple[str, Any] | None) -> str:
    """Callback data changed the way a forger or an old client would."""
    if mutation is None:
        return data
    how, value = mutation
    head = data.rpartition(":")[0]
    if how in ("huge", "odd"):
        return f"{head}:{value}"[:64]
    if how == "negative":
        return f"{head}:-{value}"
    if how == "cut":
        return data[: min(value, len(data) - 1)] or "x"
    if how == "longer":
        return (data + ":" + str(value))[:64]
    return str(value)


# --- the bot under fuzz ---------------------------------------------------------------------


def commands_of(handlers: Any) -> set[str]:
    """Every command a handler (or a conversation, with its states) answers."""
    found: set[str] = set()
    for handler in handlers:
        if isinstance(handler, CommandHandler):
            found |= set(handler.commands)
        elif isinstance(handler, ConversationHandler):
            found |= commands_of(handler.entry_points)
            for state in handler.states.values():
                found |= commands_of(state)
            found |= commands_of(handler.fallbacks)
    return found


class Errors(logging.Handler):
    """Collects every record at ERROR or above (the bot's error handler logs there)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Fuzzer:
    """One bot, several people, and what they did so far."""

    def __init__(self, bot: BotUnderTest, people: list[Person]) -> None:
        self.bot = bot
        self.people = people
        self.sent = 0
        self.log: list[str] = []  # the last actions, shown when something fails
        assert bot.app is not None
        handlers: list[BaseHandler[Any, Any, Any]] = [
            h for group in bot.app.handlers.values() for h in group
        ]
        self.commands = sorted(commands_of(handlers))

    @property
    def emulator(self) -> BotApiEmulator:
        return self.bot.emulator

    def act(self, draw: Any, run: Any) -> None:
        """Draw one thing a person does (here, in hypothesis' thread), and do it (``run``
        takes a coroutine to the bot's event loop and waits for it)."""
        person = draw(st.sampled_from(self.people))
        in_group = draw(st.integers(min_value=0, max_value=9)) == 0
        chat_id = GROUP if in_group else person.id
        kind = draw(
            st.sampled_from(
                ["text"] * 3
                + ["command"] * 4
                + ["start"]
                + ["press"] * 6
                + ["sticker", "location", "photo", "document", "voice"]
            )
        )
        emu = self.emulator
        who: dict[str, Any] = {"chat_id": chat_id, "enqueue": False}
        make: Any
        if kind == "text":
            text = draw(TEXTS)
            make = lambda: emu.text(person.id, text, **who)  # noqa: E731
        elif kind == "command":
            command = draw(st.sampled_from(self.commands))
            at = draw(st.sampled_from(["", "", "", "@" + emu.bot_username]))
            text = " ".join([f"/{command}{at}", *draw(ARGUMENTS)])
            make = lambda: emu.text(person.id, text, **who)  # noqa: E731
        elif kind == "start":
            text = f"/start {draw(PAYLOADS)}".strip()
            make = lambda: emu.text(person.id, text, **who)  # noqa: E731
        elif kind == "press":
            pick, which = draw(st.tuples(st.integers(0, 99), st.integers(0, 99)))
            mutation = draw(MUTATIONS)
            messages = run(self.buttons_in(chat_id))
            if not messages:
                text = ["/start", "/help", "/koffie", "/melden"][pick % 4]
                make = lambda: emu.text(person.id, text, **who)  # noqa: E731
            else:
                message_id, datas = messages[pick % len(messages)]
                data = mutate(datas[which % len(datas)], mutation)
                make = lambda: emu.press(person.id, message_id, data, **who)  # noqa: E731
                text = f"[press {data!r} on {message_id}]"
        elif kind == "sticker":
            make, text = lambda: emu.sticker(person.id, **who), "[sticker]"
        elif kind == "location":
            latitude = draw(st.floats(min_value=-90, max_value=90, allow_nan=False))
            longitude = draw(st.floats(min_value=-180, max_value=180, allow_nan=False))
            make = lambda: emu.location(person.id, latitude, longitude, **who)  # noqa: E731
            text = f"[location {latitude}, {longitude}]"
        elif kind == "photo":
            caption = draw(st.one_of(st.none(), TEXTS.map(lambda s: s[:1024])))
            make = lambda: emu.photo(person.id, PNG, caption=caption, **who)  # noqa: E731
            text = f"[photo {caption!r}]"
        elif kind == "document":
            make = lambda: emu.document(  # noqa: E731
                person.id, b"%PDF-1.4\n", "brief.pdf", "application/pdf", **who
            )
            text = "[document]"
        else:
            make, text = lambda: emu.voice(person.id, **who), "[voice]"
        where = "group" if in_group else "private"
        self.log = [*self.log[-19:], f"{person.name} ({where}): {text[:120]!r}"]
        run(self.send(make))

    async def buttons_in(self, chat_id: int) -> list[tuple[int, list[str]]]:
        """The bot's last 20 messages in a chat with callback buttons: (id, their data)."""
        found: list[tuple[int, list[str]]] = []
        for message in reversed(self.emulator.messages(chat_id)):
            datas = [data for row in message.buttons for _, data in row if data]
            if datas:
                found.append((message.message_id, datas))
                if len(found) == 20:
                    break
        return found

    async def send(self, make: Any) -> None:
        """Build the update in the emulator and let the bot handle it."""
        await self.bot.process(make())
        self.sent += 1


@pytest.fixture
def errors() -> Iterator[Errors]:
    collector = Errors()
    root = logging.getLogger()
    root.addHandler(collector)
    yield collector
    root.removeHandler(collector)


async def test_random_and_hostile_updates_never_crash_the_bot(
    tmp_path: Path, errors: Errors
) -> None:
    async with BotApiEmulator() as emu:
        emu.add_group(GROUP, "Buurtgroep Schilderswijk")
        bot = BotUnderTest(
            emu,
            make_settings(f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}", wijken=TWO_WIJKEN),
        )
        await bot.start()
        try:
            await _run(bot, errors)
        finally:
            await bot.stop()


async def _run(bot: BotUnderTest, errors: Errors) -> None:
    residents = [bot.user(1000 + n, name) for n, name in enumerate(["Anna", "Bram", "Cor"], 1)]
    english = bot.user(1004, "Dee", language_code="en")
    pros = {
        "wijkagent": bot.user(2001, "Sanne"),
        "opbouwwerker": bot.user(2002, "Omar"),
        "bemiddelaar": bot.user(2003, "Cato"),
        "organisator": bot.user(2004, "Olga"),
        "sleutelfiguur": bot.user(2005, "Sem"),
    }
    for role, person in pros.items():
        await grant_role(bot, person, role)
    admin = bot.user(ADMIN_ID, "Admin")
    people = [*residents, english, *pros.values(), admin]
    await seed(bot, residents, pros)
    fuzzer = Fuzzer(bot, people)
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=max(UPDATES // BATCH, 1),
        derandomize=not RANDOM_SEED,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # one bot for all examples: no shrinking
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def batch(data: st.DataObject) -> None:
        def run(coroutine: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

        for _ in range(BATCH):
            fuzzer.act(data.draw, run)
        check(fuzzer, errors)

    # Hypothesis is synchronous: it runs in a thread while this loop serves the bot.
    await asyncio.to_thread(batch)
    check(fuzzer, errors)
    assert fuzzer.sent >= UPDATES
    for person in people:
        reply = await person.says("/start")
        assert "Buurtsignaal" in reply.text, person.name
    check(fuzzer, errors)


async def seed(bot: BotUnderTest, residents: list[Person], pros: dict[str, Person]) -> None:
    """A lived-in wijk, so the fuzz reaches deep buttons: a koffiemoment, a report, a mediation
    case, each with the buttons that act on them."""
    anna, bram, _ = residents
    for person in residents:
        await person.says("/start")
        await person.taps("Schilderswijk")
        await person.taps("Nederlands")
    olga = pros["organisator"]
    await olga.says("/koffieplannen")
    await olga.says("Buurthuis De Mussen")
    await olga.says((dt.date.today() + dt.timedelta(days=3)).strftime("%d-%m-%Y"))
    await olga.says("10:00")
    await olga.taps("Om de week")
    await olga.taps("Geen maximum")
    await olga.taps("Publiceren")
    await anna.says("/koffie")
    await anna.taps("Aanmelden")
    await bram.says("/melden")
    await bram.taps("Nee, niemand is in gevaar")
    await bram.taps("Geluidsoverlast")
    await bram.says("Elke nacht harde muziek vanaf de galerij.")
    await bram.says("Dorpsstraat 12")
    await bram.taps("Vandaag")
    await bram.taps("Dit is de eerste keer")
    await bram.taps("Overslaan")
    await bram.taps("Jullie mogen contact opnemen")
    await bram.taps("Melding versturen")
    await pros["wijkagent"].says("/open")
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Langer dan een half jaar")
    await anna.taps("Geprobeerd")
    await anna.says("Elke nacht harde muziek tot twee uur.")
    await anna.says("De bovenburen op nummer 14")
    await anna.says("Vermeerstraat 16")
    await anna.says("Vermeerstraat 12")
    await anna.taps("Bel me")
    await anna.says("06 1234 5678")
    await anna.taps("'s Avonds")
    await anna.taps("Ja, het bemiddelingsteam mag")
    await anna.taps("Aanvraag versturen")
    await pros["bemiddelaar"].says("/zaken")
    assert bot.db is not None
    async with bot.db.begin() as session:
        for table in (Moment, Signup, Signal, MediationCase):
            assert await session.scalar(select(func.count()).select_from(table)), table


def check(fuzzer: Fuzzer, errors: Errors) -> None:
    """Nothing crashed, nothing was refused by the emulator."""
    emu = fuzzer.emulator
    recent = "\n".join(fuzzer.log)
    crashes = [r for r in errors.records if r.levelno >= logging.ERROR]
    assert not crashes, f"{crashes[0].getMessage()}: {crashes[0].exc_info!r}\nlast:\n{recent}"
    assert not emu.internal_errors, f"{emu.internal_errors[0]!r}\nlast:\n{recent}"
    refused = [
        c
        for c in emu.calls
        if 400 <= c.status < 500 and "message is not modified" not in (c.description or "")
    ]
    assert not refused, (
        f"{refused[0].method} {refused[0].status} {refused[0].description}: "
        f"{refused[0].params!r}\nlast:\n{recent}"
    )
