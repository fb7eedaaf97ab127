"""Signal as a second messenger, end to end: a stand-in signal-cli, the real gateway, the real
bot polling the gateway, and a professional on (the emulated) Telegram.

The stand-in speaks signal-cli's HTTP daemon: JSON-RPC 2.0 on ``POST /api/v1/rpc`` (``send``,
``getAttachment``) and ``receive`` events as server-sent events on ``GET /api/v1/events``. Like
Signal's servers with ``--receive-mode on-connection``, it keeps messages while nobody listens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select, text

from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.bot.inbox import Inbox
from buurtsignaal.bot.messenger import SIGNAL, SIGNAL_BASE, is_signal_chat
from buurtsignaal.bot.settings import Settings, SignalSettings
from buurtsignaal.bot.signal_gateway import SignalGateway, location_from
from buurtsignaal.storage.models import Resident, Signal
from tests.conftest import make_settings
from tests.harness import BotUnderTest, grant_role

ACCOUNT = "+31612345678"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
REFERENCE = re.compile(r"BS-\d{4}-\d{4}")


class StandInSignalCli:
    """signal-cli's HTTP daemon as far as the gateway uses it; no network."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []  # params of every accepted send
        self.refuse_sends = 0  # answer this many sends with an error (signal-cli trouble)
        self.delivered = 0  # events written to a listener
        self.attachments: dict[str, bytes] = {}
        self._events: deque[dict[str, Any]] = deque()
        self._changed = asyncio.Event()
        self._timestamps = iter(range(1_700_000_000_000, 1_800_000_000_000))
        self.generation = 0  # event-stream connections so far
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/rpc", self._rpc)
        app.router.add_get("/api/v1/events", self._stream)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise TimeoutError("condition not met")
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), 0.02)
            except TimeoutError:
                pass

    async def _rpc(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body["jsonrpc"] == "2.0" and body["params"]["account"] == ACCOUNT
        method, params = body["method"], body["params"]
        if method == "send":
            if self.refuse_sends:
                self.refuse_sends -= 1
                self._notify()
                return web.json_response(
                    {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -1, "message": "down"}}
                )
            assert bool(params.get("recipient")) != bool(params.get("groupId"))
            self.sent.append(params)
            self._notify()
            return web.json_response(
                {
                    "jsonrpc": "2.0",
                    "id": body["id"],
                    "result": {"timestamp": next(self._timestamps)},
                }
            )
        if method == "getAttachment":
            data = base64.b64encode(self.attachments[params["id"]]).decode()
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": {"data": data}})
        return web.json_response(
            {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": "no"}}
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.generation += 1
        mine = self.generation
        self._notify()
        while mine == self.generation:  # a newer connection replaces this one
            if not self._events:
                changed = self._changed
                await changed.wait()
                continue
            if request.transport is None or request.transport.is_closing():
                break  # the gateway went away: keep the events for the next connection
            event = self._events.popleft()
            try:
                await response.write(f"event:receive\ndata:{json.dumps(event)}\n\n".encode())
            except ConnectionResetError:
                self._events.appendleft(event)
                break
            self.delivered += 1
            self._notify()
        return response

    def receive(self, envelope: dict[str, Any]) -> None:
        """A message arrives for the bot's account."""
        envelope = {"timestamp": next(self._timestamps), **envelope}
        self._events.append({"envelope": envelope, "account": ACCOUNT})
        self._notify()

    @property
    def waiting(self) -> int:
        return len(self._events)


@dataclass
class SignalResident:
    """Someone on Signal writing to the bot's number."""

    world: SignalWorld
    uuid: str
    number: str
    name: str

    def _envelope(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "source": self.number,
            "sourceNumber": self.number,
            "sourceUuid": self.uuid,
            "sourceName": self.name,
            "sourceDevice": 1,
            "dataMessage": {"timestamp": 1, **data},
        }

    def sends(self, message: str, *, group: str | None = None) -> None:
        data: dict[str, Any] = {"message": message}
        if group:
            data["groupInfo"] = {"groupId": group, "type": "DELIVER"}
        self.world.cli.receive(self._envelope(data))

    async def says(self, message: str, *, group: str | None = None) -> str:
        """Send a message; what the bot answered (every message, in order)."""
        before = len(self.inbox())
        self.sends(message, group=group)
        await self.world.settled()
        return "\n---\n".join(m["message"] for m in self.inbox()[before:])

    async def sends_photo(self, content: bytes, caption: str = "") -> str:
        before = len(self.inbox())
        attachment_id = f"att{len(self.world.cli.attachments)}.jpg"
        self.world.cli.attachments[attachment_id] = content
        data = {
            "message": caption or None,
            "attachments": [
                {"contentType": "image/jpeg", "id": attachment_id, "size": len(content)}
            ],
        }
        self.world.cli.receive(self._envelope(data))
        await self.world.settled()
        return "\n---\n".join(m["message"] for m in self.inbox()[before:])

    async def chooses(self, label: str) -> str:
        """Answer the newest numbered options with the number of ``label``."""
        for sent in reversed(self.inbox()):
            options = dict(
                (text.strip(), number)
                for number, text in re.findall(r"^(\d+)\. (.+)$", sent["message"], re.M)
            )
            found = [n for text, n in options.items() if label.lower() in text.lower()]
            if found:
                return await self.says(found[0])
        raise AssertionError(f"no option {label!r} in {self.inbox()[-1]['message']!r}")

    def inbox(self) -> list[dict[str, Any]]:
        return [s for s in self.world.cli.sent if s.get("recipient") == [self.uuid]]


class SignalWorld:
    """The stand-in signal-cli, the gateway, and the bot's Signal inbox."""

    def __init__(self, cli: StandInSignalCli, config: SignalSettings, bot: BotUnderTest) -> None:
        self.cli = cli
        self.config = config
        self.bot = bot
        self.gateway: SignalGateway | None = None
        self.inbox: Inbox | None = None
        self.port = 0

    async def start_gateway(self) -> None:
        connections = self.cli.generation
        self.gateway = SignalGateway(self.config, retry_delay=0.02)
        await self.gateway.start(port=self.port)
        self.port = self.gateway.core.port
        await self.cli.wait_until(lambda: self.cli.generation > connections)

    async def stop_gateway(self) -> None:
        assert self.gateway is not None
        await self.gateway.stop()
        self.gateway = None

    async def start_inbox(self) -> None:
        assert self.bot.app is not None
        self.inbox = Inbox(self.bot.app, wait=0.2, messenger=SIGNAL)
        self.bot.app.inboxes = (self.inbox,)
        await self.inbox.start()

    async def settled(self) -> None:
        """Wait until every Signal message was handled and every answer reached signal-cli."""

        def done() -> bool:
            gateway, inbox = self.gateway, self.inbox
            if gateway is None or inbox is None or self.cli.waiting:
                return False
            core = gateway.core
            return (
                self.cli.delivered == self._delivered_base + gateway.handled
                and core.pending_updates == 0
                and all(u["update_id"] < (inbox.offset or 0) for u in core._queue)
                and inbox.in_hand == 0
                and not gateway.store.outbox()
            )

        await self.cli.wait_until(done)

    _delivered_base = 0

    def resident(self, name: str, number: str, uuid: str) -> SignalResident:
        return SignalResident(self, uuid, number, name)


@pytest.fixture
def settings(sqlite_url: str, request: pytest.FixtureRequest) -> Settings:
    from tests.conftest import fill_migrated

    fill_migrated(sqlite_url, request)
    return make_settings(sqlite_url)


@pytest.fixture
async def world(
    emulator: BotApiEmulator, settings: Settings, tmp_path: Path
) -> AsyncIterator[SignalWorld]:
    cli = StandInSignalCli()
    await cli.start()
    config = SignalSettings(
        cli_url=cli.url, account=ACCOUNT, listen_port=1, state_path=tmp_path / "gateway.db"
    )
    world = SignalWorld(cli, config, BotUnderTest(emulator, settings))
    await world.start_gateway()
    assert world.gateway is not None
    world.bot.signal_url = world.gateway.core.base_url.removesuffix("/bot")
    await world.bot.start()
    await world.start_inbox()
    yield world
    assert world.inbox is not None
    await world.inbox.stop()
    await world.bot.stop()
    if world.gateway is not None:
        await world.gateway.stop()
    await cli.stop()


async def melden_over_signal(anna: SignalResident) -> str:
    """The whole /melden flow, answering numbered options with numbers."""
    reply = await anna.says("/melden")
    assert "1. Ja, er is nu gevaar" in reply and "2. Nee, niemand is in gevaar" in reply
    assert "Antwoord met het nummer van je keuze." in reply
    reply = await anna.says("2")  # nobody is in danger
    # The question is edited to show the choice and the next question: on Signal a new
    # message says only what was added, not the question already read.
    assert reply.split("\n---\n")[0].startswith("✔️ Nee, niemand is in gevaar\n\nWaar gaat")
    assert "1. Burenruzie" in reply
    await anna.chooses("Geluidsoverlast")
    reply = await anna.says("Elke nacht harde muziek vanaf de galerij.")
    assert "kaartlink" in reply  # Signal has no location button
    await anna.says("https://www.google.com/maps/@52.0705,4.3007,17z")
    await anna.chooses("Vandaag")
    await anna.chooses("Dit is de eerste keer")
    reply = await anna.sends_photo(JPEG)
    # Told truly what "contactable" means on Signal: through the bot, never the number.
    assert "ze zien ook je naam in Signal en kunnen je via deze bot schrijven" in reply
    await anna.chooses("Pseudoniem")
    reply = await anna.chooses("Melding versturen")
    match = REFERENCE.search(reply)
    assert match, reply
    return match.group(0)


async def test_a_signal_resident_reports_and_gets_the_wijkagents_anonymous_answer(
    world: SignalWorld,
) -> None:
    bot = world.bot
    bram = bot.user(2001, "Bram")
    await grant_role(bot, bram, "wijkagent")
    anna = world.resident("Anna", "+31687654321", "4f6c2a1e-8f1d-4d7a-9a55-2b1f0c9e7d11")

    reference = await melden_over_signal(anna)

    # The report is stored with the Signal chat, the shared location and the photo.
    assert bot.db is not None
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal).where(Signal.reference == reference))
        assert signal is not None
        resident = await session.get(Resident, signal.resident_id)
    assert resident is not None and is_signal_chat(resident.telegram_id)
    assert signal.latitude == pytest.approx(52.0705) and signal.photo_file_id

    # Bram, on Telegram, got the alert, opens the report (with the photo from Signal) and
    # answers the reporter anonymously.
    await bot.drain_outbox()  # the alert (decided when the report was stored) first
    await bram.says(f"/melding {reference}")
    assert any(m.kind == "photo" for m in bot.emulator.messages(bram.id))
    await bram.taps("Antwoord aan melder")
    reply = await bram.says("Hoe laat begint de muziek meestal?")
    assert f"Verstuurd naar de melder van {reference}" in reply.text
    await world.settled()

    relayed = anna.inbox()[-1]["message"]
    assert relayed.startswith(f"Bericht over je melding {reference}:")
    assert "Hoe laat begint de muziek meestal?" in relayed and "— de wijkagent" in relayed
    assert "1. ↩️ Antwoorden" in relayed
    for secret in ("Bram", "2001"):
        assert secret not in relayed

    # Anna answers back over Signal; Bram gets it without her name or number.
    await anna.chooses("Antwoorden")
    await anna.says("Meestal rond middernacht.")
    await bot.drain_outbox()  # relays go through the outbox
    answer = bot.emulator.messages(bram.id)[-1].plain_text
    assert answer == f"Antwoord van de melder van {reference}:\n\nMeestal rond middernacht."


async def test_a_restart_of_the_gateway_loses_no_message(world: SignalWorld) -> None:
    anna = world.resident("Anna", "+31687654321", "0b5e9c3d-1a2b-4c3d-8e9f-001122334455")
    await anna.says("/melden")
    await anna.says("2")

    # The gateway stops in the middle of the flow; Anna goes on typing meanwhile.
    await world.stop_gateway()
    anna.sends(str(_number_of(anna, "Geluidsoverlast")))
    assert world.cli.waiting == 1
    # signal-cli is in trouble too when the gateway comes back: sends fail for a while.
    world.cli.refuse_sends = 3
    world._delivered_base = world.cli.delivered
    await world.start_gateway()
    await world.settled()
    assert "Beschrijf" in anna.inbox()[-1]["message"] or "beschrijf" in anna.inbox()[-1]["message"]

    # A message the bot sent is in the gateway's outbox when it stops before signal-cli took
    # it: it goes out after the start.
    world.cli.refuse_sends = 1_000
    anna.sends("Elke nacht harde muziek.")
    await world.cli.wait_until(
        lambda: world.gateway is not None and bool(world.gateway.store.outbox())
    )
    await world.stop_gateway()
    world.cli.refuse_sends = 0
    world._delivered_base = world.cli.delivered
    await world.start_gateway()
    await world.settled()
    assert "kaartlink" in anna.inbox()[-1]["message"]

    # Nothing was lost or sent twice: every question came once, in order.
    texts = [m["message"] for m in anna.inbox()]
    assert len(texts) == len(set(texts))
    reply = await anna.says("Dorpsstraat 12")
    assert "Vandaag" in reply


def _number_of(resident: SignalResident, label: str) -> int:
    for number, option in re.findall(r"^(\d+)\. (.+)$", resident.inbox()[-1]["message"], re.M):
        if label.lower() in option.lower():
            return int(number)
    raise AssertionError(label)


async def test_no_phone_number_is_stored_or_shown(world: SignalWorld, tmp_path: Path) -> None:
    bot = world.bot
    bram = bot.user(2001, "Bram")
    await grant_role(bot, bram, "wijkagent")
    anna = world.resident("Anna", "+31687654321", "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6")
    reference = await melden_over_signal(anna)
    reply = await anna.says("/mijngegevens")
    assert reference in reply
    # The JSON file arrives as an attachment, and says which messenger, not the number.
    [attachment] = anna.inbox()[-1]["attachments"]
    header, _, encoded = attachment.partition(";base64,")
    assert header.startswith("data:application/json;filename=")
    exported = json.loads(base64.b64decode(encoded))
    assert exported["messenger"] == "signal" and "telegram_id" not in exported
    assert "687654321" not in json.dumps(exported)

    # Neither the bot's database nor the gateway's file holds the number; the gateway keeps
    # the account-independent id (ACI) for routing.
    assert bot.db is not None
    async with bot.db.begin() as session:
        tables = (
            await session.execute(text("select name from sqlite_master where type='table'"))
        ).all()
        dump = ""
        for (name,) in tables:
            rows = (await session.execute(text(f'select * from "{name}"'))).all()
            dump += repr(rows)
    assert "687654321" not in dump
    assert world.gateway is not None
    gateway_file = sqlite3.connect(world.config.state_path)
    content = repr(gateway_file.execute("select * from state").fetchall())
    content += repr(gateway_file.execute("select * from contacts").fetchall())
    assert "687654321" not in content and anna.uuid in content
    # Nor does any professional see it.
    for message in bot.emulator.messages(bram.id):
        assert "687654321" not in message.plain_text

    # /vergeetmij works for a Signal resident too.
    reply = await anna.says("/vergeetmij")
    reply = await anna.chooses("verwijder")
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal).where(Signal.reference == reference))
    assert signal is not None and signal.resident_id is None


async def test_a_signal_group_gets_a_start_code_instead_of_a_deep_link(
    world: SignalWorld,
) -> None:
    anna = world.resident("Anna", "+31687654321", "aa11bb22-cc33-4d44-8e55-ff6677889900")
    anna.sends("hallo allemaal", group="R3JvZXAx")  # chatter: never reaches the bot
    anna.sends("/melden", group="R3JvZXAx")
    await world.settled()
    [answer] = [s for s in world.cli.sent if s.get("groupId") == "R3JvZXAx"]
    code = re.search(
        r"START (\S+) in een privébericht naar " + re.escape(ACCOUNT), answer["message"]
    )
    assert code, answer["message"]
    reply = await anna.says(f"START {code.group(1)}")
    assert "Welkom" in reply or "welkom" in reply


def test_maps_links_become_locations() -> None:
    assert location_from("https://maps.google.com/?q=52.07,4.30") == (52.07, 4.30)
    assert location_from("https://www.openstreetmap.org/?mlat=52.1&mlon=4.3#map=17/52.1/4.3") == (
        52.1,
        4.3,
    )
    assert location_from("geo:52.0705,4.3007") == (52.0705, 4.3007)
    assert location_from("https://maps.apple.com/?ll=52.07,4.30&q=Hier") == (52.07, 4.30)
    assert location_from("Dorpsstraat 12") is None
    assert location_from("https://example.org/") is None


def test_signal_ids_never_collide_with_telegram_ids() -> None:
    assert is_signal_chat(SIGNAL_BASE + 1) and is_signal_chat(-(SIGNAL_BASE + 1))
    assert not is_signal_chat(8_999_999_999) and not is_signal_chat(-1_009_999_999_999)


async def test_the_bot_starts_while_the_gateway_is_down(
    emulator: BotApiEmulator, settings: Settings
) -> None:
    bot = BotUnderTest(emulator, settings, signal_url="http://127.0.0.1:9")
    await bot.start()
    try:
        anna = bot.user(1001, "Anna")
        reply = await anna.says("/help")  # Telegram residents are not held up
        assert "/melden" in reply.text
    finally:
        await bot.stop()


async def test_a_signal_group_presses_a_button_with_its_number_and_chatter_stays_out(
    emulator: BotApiEmulator, settings: Settings, tmp_path: Path
) -> None:
    """The koffie announcement's "Ik kom" in a Signal group, on the gateway alone."""
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

    from buurtsignaal.bot.messenger import GATEWAY_TOKEN

    cli = StandInSignalCli()
    await cli.start()
    config = SignalSettings(cli_url=cli.url, account=ACCOUNT, state_path=tmp_path / "gw.db")
    gateway = SignalGateway(config, retry_delay=0.02)
    await gateway.start(port=0)
    bot = Bot(GATEWAY_TOKEN, base_url=gateway.core.base_url)
    await bot.initialize()
    try:
        await cli.wait_until(lambda: cli.generation == 1)
        anna = SignalResident(None, "aa11bb22-0000-4d44-8e55-ff6677889900", "+31600000001", "A")  # type: ignore[arg-type]
        envelope = anna._envelope(
            {"message": "/koffie", "groupInfo": {"groupId": "R3JvZXAy", "type": "DELIVER"}}
        )
        cli.receive(envelope)
        await cli.wait_until(lambda: gateway.core.pending_updates == 1)
        [command] = await bot.get_updates()
        group = command.effective_chat
        assert group is not None and group.type == "supergroup" and is_signal_chat(group.id)
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Ik kom ☕ (0)", callback_data="k:1")]]
        )
        await bot.send_message(group.id, "Koffie op woensdag", reply_markup=markup)
        await cli.wait_until(lambda: len(cli.sent) == 1)
        assert cli.sent[0]["groupId"] == "R3JvZXAy"
        assert "1. Ik kom ☕ (0)" in cli.sent[0]["message"]

        for text in ("hallo allemaal", "1"):
            cli.receive(
                anna._envelope(
                    {"message": text, "groupInfo": {"groupId": "R3JvZXAy", "type": "DELIVER"}}
                )
            )
        await cli.wait_until(lambda: gateway.handled == 3)
        [press] = await bot.get_updates(offset=command.update_id + 1)
        assert press.callback_query is not None and press.callback_query.data == "k:1"
    finally:
        await bot.shutdown()
        await gateway.stop()
        await cli.stop()


def _gateway_file(world: SignalWorld) -> str:
    """Everything in the gateway's state file, as text (photos as their byte count)."""
    db = sqlite3.connect(world.config.state_path)
    try:
        content = repr(db.execute("select * from state").fetchall())
        content += repr(db.execute("select * from contacts").fetchall())
        content += repr(db.execute("select * from outbox").fetchall())
        files = db.execute("select file_id, length(content) from files").fetchall()
    finally:
        db.close()
    return content + repr(files)


def _gateway_photos(world: SignalWorld) -> int:
    db = sqlite3.connect(world.config.state_path)
    try:
        return int(db.execute("select count(*) from files").fetchone()[0])
    finally:
        db.close()


async def test_the_gateway_keeps_a_photo_until_the_bot_has_its_copy_and_forgets_on_vergeetmij(
    world: SignalWorld,
) -> None:
    bot = world.bot
    bram = bot.user(2001, "Bram")
    await grant_role(bot, bram, "wijkagent")
    anna = world.resident("Anna", "+31687654321", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b")
    reference = await melden_over_signal(anna)
    assert _gateway_photos(world) == 2  # the photo's two sizes, until the bot copies it

    # Bram sees the photo: the bot keeps Telegram's copy and the gateway drops its own.
    await bot.drain_outbox()
    await bram.says(f"/melding {reference}")
    await world.settled()
    assert _gateway_photos(world) == 0
    # Shown again later, from the copy.
    await bram.says(f"/melding {reference}")
    assert len([m for m in bot.emulator.messages(bram.id) if m.kind == "photo"]) == 2

    # Anna's /vergeetmij: she gets the confirmation over Signal, then the gateway keeps
    # nothing of her: no Signal id, no name, no messages.
    await anna.says("/vergeetmij")
    reply = await anna.chooses("verwijder")
    assert "je persoonsgegevens zijn verwijderd" in reply
    assert world.gateway is not None
    await world.cli.wait_until(lambda: anna.uuid not in _gateway_file(world))
    kept = _gateway_file(world)
    for trace in (anna.uuid, "Anna", "harde muziek", "Geluidsoverlast"):
        assert trace not in kept, trace
    assert bot.db is not None
    async with bot.db.begin() as session:
        copies = (await session.execute(text("select * from file_copies"))).all()
    assert copies == []  # the report lost its photo, and so did the bot's copy

    # Writing again, she is someone new to the bot (a new chat).
    reply = await anna.says("/start")
    assert "Welkom" in reply


async def test_the_gateway_keeps_unfetched_photos_and_quiet_chats_no_longer_than_configured(
    world: SignalWorld,
) -> None:
    bot = world.bot
    bram = bot.user(2001, "Bram")
    await grant_role(bot, bram, "wijkagent")
    anna = world.resident("Anna", "+31687654321", "6f7a8b9c-0d1e-4f2a-9b3c-4d5e6f7a8b9c")
    reference = await melden_over_signal(anna)
    gateway = world.gateway
    assert gateway is not None and _gateway_photos(world) == 2
    [chat] = [c for c in gateway.core.chat_ids() if is_signal_chat(c)]

    gateway.expire(now=gateway.clock() + 6 * 86_400)  # within photo_days and chat_days
    assert _gateway_photos(world) == 2 and gateway.core.messages(chat)
    gateway.expire(now=gateway.clock() + 8 * 86_400)
    assert _gateway_photos(world) == 0 and gateway.core.messages(chat)
    gateway.expire(now=gateway.clock() + 31 * 86_400)
    assert gateway.core.messages(chat) == []
    assert "harde muziek" not in _gateway_file(world)

    # Bram opens the report after the photo expired: the rest of it still shows.
    await bot.drain_outbox()
    reply = await bram.says(f"/melding {reference}")
    assert reference in reply.text
    assert not [m for m in bot.emulator.messages(bram.id) if m.kind == "photo"]
    # Anna goes on: the chat is still hers.
    answer = await anna.says("/mijnmeldingen")
    assert reference in answer


async def test_ik_kom_in_a_signal_group_starts_the_private_chat_with_the_bot(
    emulator: BotApiEmulator, settings: Settings, tmp_path: Path
) -> None:
    """A button the bot answers with a deep link (the koffie announcement's "Ik kom"): on
    Telegram the private chat opens with /start <code>; on Signal the member is told and the
    bot gets /start <code> from them in their private chat."""
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

    from buurtsignaal.bot.messenger import GATEWAY_TOKEN

    cli = StandInSignalCli()
    await cli.start()
    config = SignalSettings(cli_url=cli.url, account=ACCOUNT, state_path=tmp_path / "gw.db")
    gateway = SignalGateway(config, retry_delay=0.02)
    await gateway.start(port=0)
    bot = Bot(GATEWAY_TOKEN, base_url=gateway.core.base_url)
    await bot.initialize()
    try:
        await cli.wait_until(lambda: cli.generation == 1)
        anna = SignalResident(None, "bb11bb22-0000-4d44-8e55-ff6677889900", "+31600000002", "A")  # type: ignore[arg-type]
        in_group = {"groupId": "R3JvZXAz", "type": "DELIVER"}
        cli.receive(anna._envelope({"message": "/koffie", "groupInfo": in_group}))
        await cli.wait_until(lambda: gateway.core.pending_updates == 1)
        [command] = await bot.get_updates()
        group = command.effective_chat
        assert group is not None
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Ik kom ☕ (0)", callback_data="k:7")]]
        )
        await bot.send_message(group.id, "Koffie op woensdag", reply_markup=markup)
        await cli.wait_until(lambda: len(cli.sent) == 1)

        cli.receive(anna._envelope({"message": "1", "groupInfo": in_group}))
        await cli.wait_until(lambda: gateway.core.pending_updates == 1)
        [press] = await bot.get_updates(offset=command.update_id + 1)
        assert press.callback_query is not None
        await press.callback_query.answer(url="https://t.me/buurtsignaal_bot?start=k-7")

        # Anna is told privately, and the bot gets /start k-7 from her in her private chat.
        await cli.wait_until(lambda: len(cli.sent) == 2)
        told = cli.sent[1]
        assert told["recipient"] == [anna.uuid] and "groupId" not in told
        assert told["message"] == (
            "Je koos ‘Ik kom ☕ (0)’ in de groep. We gaan hier verder, in een privégesprek met "
            "de bot."
        )
        [start] = await bot.get_updates(offset=press.update_id + 1)
        assert start.message is not None and start.message.text == "/start k-7"
        assert start.effective_chat is not None and start.effective_chat.type == "private"
        assert start.effective_user is not None
        assert start.effective_chat.id == start.effective_user.id
        # Nothing of it reached the group.
        assert [s for s in cli.sent if s.get("groupId")] == [cli.sent[0]]

        # Pressed again, now known: the answer (a toast on Telegram) reaches only her.
        cli.receive(anna._envelope({"message": "1", "groupInfo": in_group}))
        await cli.wait_until(lambda: gateway.core.pending_updates == 1)
        [again] = await bot.get_updates(offset=start.update_id + 1)
        assert again.callback_query is not None
        await again.callback_query.answer("Je bent aangemeld!", show_alert=True)
        await cli.wait_until(lambda: len(cli.sent) == 3)
        assert cli.sent[2] == {"recipient": [anna.uuid], "message": "Je bent aangemeld!"} | {
            "account": ACCOUNT
        }
    finally:
        await bot.shutdown()
        await gateway.stop()
        await cli.stop()
