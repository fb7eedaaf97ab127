"""The Signal gateway: the Telegram Bot API towards the bot, signal-cli towards Signal.

Signal has no bot API. signal-cli holds a Signal account and offers JSON-RPC over HTTP
(``signal-cli -a +31... daemon --http 127.0.0.1:8080``): ``POST /api/v1/rpc`` for requests such
as ``send``, ``GET /api/v1/events`` for incoming messages as server-sent events. The gateway is
a front of the emulator's core (bot/emulator/): the same state of chats, messages and updates
and the same strict HTTP API, served to the bot, which polls it like Telegram (bot/inbox.py,
bot/messenger.py). So python-telegram-bot stays the one conversation engine.

What the gateway translates:

- a Signal user is a private chat, a Signal group a group chat, with ids in their own range
  (bot.messenger); only signal-cli's account-independent id (ACI uuid) and a group's id are
  kept for routing, never a phone number;
- inline buttons become numbered options; a number typed back presses that button of the
  newest message with buttons (as the terminal shell does);
- a maps link becomes a shared location, other text stays text (a typed place); an image
  becomes a photo;
- an edit becomes a short new message (what changed), a deep link the words "send START
  <code> to <number>", and "START <code>" typed in a private chat the ``/start <code>`` it
  stands for; a button the bot answers with a deep link (the koffie announcement's "Ik kom"
  in a group) starts the private conversation at once: the member is told so in a private
  message and the bot gets ``/start <code>`` from them there;
- in a group only commands reach the bot, as with Telegram's privacy mode.

What the gateway keeps, and for how long (the minimum): the chats' 30 newest messages (for
numbered answers and edits), until ``chat_days`` after a chat's last message; a received photo
until the bot has its own copy (the bot says so with ``forgetFile``) and at most
``photo_days``; a person's Signal id, name, chats, messages and photos until their /vergeetmij
(the bot says so with ``forgetChat``). ``forgetChat`` and ``forgetFile`` are the gateway's only
additions to the Bot API (bot.messenger calls them; Telegram has no such methods).

Nothing is lost in a restart: every change of the core's state is written to the gateway's
SQLite file before anything else happens (an incoming message is stored as an update before
the next event is read; a message from the bot is stored in the outbox before the bot hears
it was sent), updates stay until the bot confirms them, and the outbox is sent in order, each
message retried until signal-cli took it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import aiohttp

from buurtsignaal.bot.emulator import (
    ApiError,
    BotApiEmulator,
    BotMessage,
    StoredFile,
    deep_link_payload,
    newest_with_buttons,
    numbered_rows,
    pressable_buttons,
)
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.bot.messenger import GATEWAY_TOKEN, SIGNAL_BASE, SIGNAL_ID_PREFIX
from buurtsignaal.bot.settings import Settings, SignalSettings

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

KEEP_MESSAGES: Final = 30  # per chat: enough for the newest buttons and recent edits
MAX_SEND_ATTEMPTS: Final = 12  # a message signal-cli refuses this often is given up (logged)
MAX_BACKOFF: Final = 30.0
RECEIVE_ATTEMPTS: Final = 6  # an incoming message signal-cli fails on this often is skipped
_START_RE: Final = re.compile(r"^\s*start(?:\s+(\S{1,64}))?\s*$", re.IGNORECASE)
_NUMBER_RE: Final = re.compile(r"^\s*(\d{1,3})[.)]?\s*$")
EXPIRE_EVERY: Final = 600.0  # seconds between looks for photos and chats whose time is up
_COORDS_RE: Final = re.compile(r"(-?\d{1,2}\.\d+)\s*,\s*(-?\d{1,3}\.\d+)")


class SignalCliError(Exception):
    """signal-cli could not be reached or refused a request."""


# ------------------------------------------------------------------------------ signal-cli


class SignalCli:
    """A client of signal-cli's HTTP daemon (JSON-RPC 2.0 and server-sent events)."""

    def __init__(self, url: str, account: str) -> None:
        """``url`` is the daemon's origin, ``account`` the bot's registered number."""
        self.url = url.rstrip("/")
        self.account = account
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (created on first use)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def rpc(self, method: str, params: JsonDict) -> Any:
        """One JSON-RPC request; its result, or SignalCliError."""
        body = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": {**params, "account": self.account},
        }
        try:
            async with self.session.post(
                f"{self.url}/api/v1/rpc", json=body, timeout=aiohttp.ClientTimeout(total=60)
            ) as response:
                if response.status >= 400:
                    raise SignalCliError(f"{method}: HTTP {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SignalCliError(f"{method}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise SignalCliError(f"{method}: not a JSON-RPC answer")
        if answer.get("error"):
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise SignalCliError(f"{method}: {message}")
        return answer.get("result")

    async def send(self, payload: JsonDict) -> None:
        """``send`` with recipient or groupId, message and attachments (data URIs)."""
        await self.rpc("send", payload)

    async def attachment(self, attachment_id: str, where: JsonDict) -> bytes:
        """The bytes of a received attachment (``getAttachment``)."""
        result = await self.rpc("getAttachment", {"id": attachment_id, **where})
        data = result.get("data") if isinstance(result, dict) else result
        if not isinstance(data, str):
            raise SignalCliError("getAttachment: no data")
        return base64.b64decode(data)

    async def events(self) -> AsyncIterator[JsonDict]:
        """Incoming ``receive`` events, as long as the connection lasts."""
        async with self.session.get(
            f"{self.url}/api/v1/events",
            headers={"Accept": "text/event-stream"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        ) as response:
            if response.status >= 400:
                raise SignalCliError(f"events: HTTP {response.status}")
            kind, data = "message", []
            async for raw in response.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith(":"):
                    continue  # a comment: keep-alive
                if line:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        kind = value
                    elif field == "data":
                        data.append(value)
                    continue
                if data and kind == "receive":
                    try:
                        event = json.loads("\n".join(data))
                    except ValueError:
                        log.warning("signal-cli sent an event that is not JSON; skipped")
                    else:
                        if isinstance(event, dict):
                            # a JSON-RPC notification's params, or the params themselves
                            yield event.get("params", event)
                kind, data = "message", []


# ------------------------------------------------------------------------------ the state


class GatewayStore:
    """The gateway's state in one SQLite file: the core's state, the Signal ids behind the
    chats, the outbox, and the files (photos) the bot may still ask for."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        """Open (and create) the file; ``clock`` dates files of an earlier version."""
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("pragma journal_mode=wal")
        self.db.executescript(
            """
            create table if not exists state (key text primary key, value text not null);
            create table if not exists contacts (
                number integer primary key autoincrement,
                kind text not null check (kind in ('user', 'group')),
                signal_id text not null,
                unique (kind, signal_id)
            );
            create table if not exists outbox (
                id integer primary key autoincrement,
                chat_id integer not null,
                payload text not null,
                attempts integer not null default 0
            );
            create table if not exists files (
                file_id text primary key, file_unique_id text not null, file_path text not null,
                file_name text, mime_type text, width integer, height integer,
                content blob not null
            );
            """
        )
        columns = {row[1] for row in self.db.execute("pragma table_info(files)")}
        if "user_id" not in columns:  # a file of an earlier version: who sent it, and when
            self.db.execute("alter table files add column user_id integer")
            self.db.execute("alter table files add column received real")
            self.db.execute("update files set received = ?", (clock(),))

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    def load_core(self) -> JsonDict | None:
        """The core's state as last saved."""
        row = self.db.execute("select value from state where key = 'core'").fetchone()
        return json.loads(row[0]) if row else None

    def files(self) -> list[StoredFile]:
        """Every stored file."""
        rows = self.db.execute(
            "select file_id, file_unique_id, content, file_path, file_name, mime_type, width, "
            "height from files"
        )
        return [StoredFile(*row) for row in rows]

    def save(
        self,
        core: JsonDict,
        new_files: list[StoredFile] = (),  # type: ignore[assignment]
        outgoing: tuple[int, JsonDict] | None = None,
        *,
        owner: int | None = None,
        now: float = 0.0,
    ) -> None:
        """Save the core's state, new files (sent by ``owner``, received ``now``) and a
        message for the outbox, in one transaction."""
        with self._transaction():
            self.db.execute(
                "insert into state (key, value) values ('core', ?) "
                "on conflict (key) do update set value = excluded.value",
                (json.dumps(core, separators=(",", ":")),),
            )
            for f in new_files:
                self.db.execute(
                    "insert or ignore into files (file_id, file_unique_id, file_path, file_name, "
                    "mime_type, width, height, content, user_id, received) "
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        f.file_id,
                        f.file_unique_id,
                        f.file_path,
                        f.file_name,
                        f.mime_type,
                        f.width,
                        f.height,
                        f.content,
                        owner,
                        now,
                    ),
                )
            if outgoing is not None:
                chat_id, payload = outgoing
                self.db.execute(
                    "insert into outbox (chat_id, payload) values (?, ?)",
                    (chat_id, json.dumps(payload)),
                )

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self.db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self.db.execute("rollback")
            raise
        self.db.execute("commit")

    def chat_for(self, kind: str, signal_id: str) -> int:
        """The chat id of a Signal user (ACI uuid) or group (group id); new ones get the next
        number of the Signal range."""
        row = self.db.execute(
            "select number from contacts where kind = ? and signal_id = ?", (kind, signal_id)
        ).fetchone()
        if row is None:
            cursor = self.db.execute(
                "insert into contacts (kind, signal_id) values (?, ?)", (kind, signal_id)
            )
            number = int(cursor.lastrowid or 0)
        else:
            number = int(row[0])
        return SIGNAL_BASE + number if kind == "user" else -(SIGNAL_BASE + number)

    def signal_id(self, chat_id: int) -> tuple[str, str] | None:
        """The kind and Signal id behind a chat id."""
        row = self.db.execute(
            "select kind, signal_id from contacts where number = ?", (abs(chat_id) - SIGNAL_BASE,)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def drop_files(self, file_ids: list[str]) -> None:
        """Forget files."""
        self.db.executemany("delete from files where file_id = ?", [(i,) for i in file_ids])

    def files_of(self, user_id: int) -> list[str]:
        """The ids of the files a person sent."""
        rows = self.db.execute("select file_id from files where user_id = ?", (user_id,))
        return [str(row[0]) for row in rows]

    def files_before(self, received: float) -> list[str]:
        """The ids of the files received before a time."""
        rows = self.db.execute("select file_id from files where received < ?", (received,))
        return [str(row[0]) for row in rows]

    def forget_contact(self, chat_id: int) -> None:
        """Forget the Signal id behind a private chat (a message to it already in the outbox
        still goes: it carries its recipient)."""
        self.db.execute(
            "delete from contacts where kind = 'user' and number = ?", (chat_id - SIGNAL_BASE,)
        )

    def outbox(self) -> list[tuple[int, int, JsonDict, int]]:
        """Messages not yet taken by signal-cli, oldest first: id, chat, payload, attempts."""
        rows = self.db.execute("select id, chat_id, payload, attempts from outbox order by id")
        return [(int(i), int(c), json.loads(p), int(a)) for i, c, p, a in rows]

    def sent(self, outbox_id: int) -> None:
        """signal-cli took the message: forget it."""
        self.db.execute("delete from outbox where id = ?", (outbox_id,))

    def attempted(self, outbox_id: int) -> None:
        """Count a failed attempt."""
        self.db.execute("update outbox set attempts = attempts + 1 where id = ?", (outbox_id,))


# ------------------------------------------------------------------------------ rendering


def location_from(text: str) -> tuple[float, float] | None:
    """The coordinates in a shared maps link (Google, Apple, OpenStreetMap, geo:)."""
    text = text.strip()
    if not re.match(r"^(https?://\S+|geo:\S+)$", text):
        return None
    if text.startswith("geo:"):
        found = _COORDS_RE.search(text)
    else:
        parts = urlsplit(text)
        query = parse_qs(parts.query)
        if "mlat" in query and "mlon" in query:
            return _valid(query["mlat"][0], query["mlon"][0])
        candidates = [*query.get("q", []), *query.get("ll", []), *query.get("query", [])]
        candidates.append(parts.path)
        candidates.append(parts.fragment)
        found = next((m for c in candidates if (m := _COORDS_RE.search(c))), None)
    return _valid(found.group(1), found.group(2)) if found else None


def _valid(lat: str, lon: str) -> tuple[float, float] | None:
    try:
        latitude, longitude = float(lat), float(lon)
    except ValueError:
        return None
    if -90 <= latitude <= 90 and -180 <= longitude <= 180:
        return latitude, longitude
    return None


class Renderer:
    """Bot messages as Signal text: the text, then the buttons as numbered options."""

    def __init__(self, t: Translator, account: str) -> None:
        """``t`` in the installation's default language (Signal tells no language)."""
        self.t = t
        self.account = account

    def body(self, message: BotMessage) -> str:
        """The message's text or caption; a location as a maps link."""
        if message.latitude is not None and message.longitude is not None:
            return (
                "https://www.openstreetmap.org/?mlat="
                f"{message.latitude:.5f}&mlon={message.longitude:.5f}"
            )
        return message.plain_text

    def options(self, message: BotMessage) -> str:
        """The buttons as lines a resident can answer."""
        lines: list[str] = []
        numbered = False
        for row in numbered_rows(message):
            for number, button in row:
                label = str(button.get("text", ""))
                if number is not None:
                    numbered = True
                    lines.append(f"{number}. {label}")
                elif "url" in button:
                    url = str(button["url"])
                    code = deep_link_payload(url)
                    if code is not None:
                        lines.append(
                            self.t(
                                "{label}: send START {code} to {number} in a private message.",
                                label=label,
                                code=code,
                                number=self.account,
                            )
                        )
                    else:
                        lines.append(f"{label}: {url}")
        if numbered:
            lines.append(self.t("Reply with the number of your choice."))
        markup = message.reply_markup or {}
        if any(
            isinstance(b, dict) and b.get("request_location")
            for row in markup.get("keyboard", [])
            for b in row
        ):
            lines.append(self.t("On Signal: send a maps link, or type the street or place."))
        return "\n".join(lines)

    def full(self, message: BotMessage) -> str:
        """The whole message."""
        return "\n\n".join(p for p in (self.body(message), self.options(message)) if p)


# ------------------------------------------------------------------------------ the gateway


class SignalGateway:
    """The Bot API core served to the bot, fed from signal-cli and sending through it."""

    def __init__(
        self,
        config: SignalSettings,
        *,
        language: str = "nl",
        retry_delay: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the gateway; :meth:`start` serves it. ``clock`` gives the time (seconds
        since the epoch) for keeping photos and chats no longer than configured."""
        self.config = config
        self.clock = clock
        self.cli = SignalCli(config.cli_url, config.account)
        self.store = GatewayStore(config.state_path, clock=clock)
        self.retry_delay = retry_delay
        self.core = BotApiEmulator(
            token=GATEWAY_TOKEN,
            bot_id=1,
            id_prefix=SIGNAL_ID_PREFIX,
            first_update_id=SIGNAL_BASE,
            keep_messages=KEEP_MESSAGES,
            clock=clock,
        )
        self.render = Renderer(Translator(language), config.account)
        self._saved_files: set[str] = set()
        self._shown: dict[tuple[int, int], tuple[str, str]] = {}  # what Signal shows
        # callback query -> (chat, who pressed, the button's label), for answers
        self._queries: dict[str, tuple[int, int, str]] = {}
        self._sender: int | None = None  # whose message is being received (owns new files)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.handled = 0  # events from signal-cli handled since the start
        state = self.store.load_core()
        files = self.store.files()
        if state is not None:
            self.core.restore_state(state, files)
        self._saved_files = {f.file_id for f in files}
        self.core.add_listener(self._on_bot_message)
        self.core.add_answer_listener(self._on_answer)
        self.core.add_change_listener(self._save)
        self.core.add_method("forgetChat", self._api_forget_chat)
        self.core.add_method("forgetFile", self._api_forget_file)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> SignalGateway:
        """The gateway of a configuration with a ``[signal]`` section."""
        if settings.signal is None:
            raise ValueError("no [signal] section in the configuration")
        return cls(settings.signal, language=settings.default_language, **kwargs)

    # -------------------------------------------------------------- lifecycle

    async def start(self, *, port: int | None = None) -> None:
        """Serve the Bot API, listen to signal-cli and send the outbox."""
        listen = self.config.listen_port if port is None else port
        await self.core.start(self.config.listen_host, listen)
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="signal:receive"),
            asyncio.create_task(self._send_loop(), name="signal:send"),
            asyncio.create_task(self._expire_loop(), name="signal:expire"),
        ]
        self._wake.set()

    async def stop(self) -> None:
        """Stop everything; what was not sent yet stays in the outbox for the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.core.stop()
        await self.cli.close()
        self.store.close()

    async def __aenter__(self) -> SignalGateway:
        """Start."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop."""
        await self.stop()

    def _save(self, outgoing: tuple[int, JsonDict] | None = None) -> None:
        """Write the core's state (and new files, and a message for the outbox) to disk."""
        new_files = [f for i, f in self.core.files.items() if i not in self._saved_files]
        if outgoing is not None:
            # The message carries its recipient: it still goes after a /vergeetmij.
            chat_id, payload = outgoing
            outgoing = (chat_id, {**(self._target(chat_id) or {}), **payload})
        self.store.save(
            self.core.export_state(), new_files, outgoing, owner=self._sender, now=self.clock()
        )
        self._saved_files.update(f.file_id for f in new_files)
        # The gateway never reads back what the bot sent or called: keep memory flat.
        self.core.clear()

    # -------------------------------------------------------------- from Signal to the bot

    async def _receive_loop(self) -> None:
        """Read signal-cli's events for as long as the gateway runs; reconnect on failure."""
        backoff = self.retry_delay
        while True:
            try:
                async for event in self.cli.events():
                    backoff = self.retry_delay
                    await self._receive_patiently(event)
                    self.handled += 1
            except (aiohttp.ClientError, SignalCliError, TimeoutError) as exc:
                log.warning("signal-cli events: %s; again in %g s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _receive_patiently(self, event: Mapping[str, Any]) -> None:
        """Handle one event; when signal-cli fails meanwhile (an attachment), try again."""
        delay = self.retry_delay
        for attempt in range(1, RECEIVE_ATTEMPTS + 1):
            try:
                await self.receive(event)
                return
            except SignalCliError as exc:
                if attempt == RECEIVE_ATTEMPTS:
                    log.error("a Signal message could not be handled, skipped: %s", exc)
                    return
                log.warning("a Signal message waits for signal-cli (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            except Exception:
                log.exception("could not handle a Signal message; skipped")
                return

    async def receive(self, event: Mapping[str, Any]) -> None:
        """One ``receive`` event: a message becomes an update for the bot (stored first)."""
        envelope = event.get("envelope")
        if not isinstance(envelope, dict):
            return
        data = envelope.get("dataMessage")
        uuid = envelope.get("sourceUuid")
        if not isinstance(data, dict) or not isinstance(uuid, str) or not uuid:
            return  # receipts, typing, sync messages, or no account-independent id
        user_id = self.store.chat_for("user", uuid)
        # A name the resident chose in Signal, never their number.
        name = str(envelope.get("sourceName") or "").strip()[:64] or "Signal"
        if user_id not in self.core.users or self.core.users[user_id]["first_name"] != name:
            self.core.add_user(user_id, name, language_code=None)
        text = str(data.get("message") or "").strip()
        group = (data.get("groupInfo") or {}).get("groupId")
        chat_id: int | None = None
        where: JsonDict = {"recipient": uuid}
        if isinstance(group, str) and group:
            chat_id = self.store.chat_for("group", group)
            where = {"groupId": group}
            if chat_id not in self.core.chat_ids():
                self.core.add_group(chat_id, "Signal")
            if not text.startswith("/") and not self._presses_button(chat_id, text):
                return  # as Telegram's privacy mode: only commands (and answers) reach the bot
        images = [
            a
            for a in data.get("attachments") or []
            if isinstance(a, dict) and str(a.get("contentType", "")).startswith("image/")
        ]
        if images and isinstance(images[0].get("id"), str):
            content = await self.cli.attachment(images[0]["id"], where)
            self._sender = user_id
            try:
                self.core.photo(user_id, content, caption=text or None, chat_id=chat_id)
            finally:
                self._sender = None
        elif text:
            self._text(user_id, chat_id, text)

    def _text(self, user_id: int, chat_id: int | None, text: str) -> None:
        """Typed text: a number for a button, a maps link, START code, or just text."""
        chat = user_id if chat_id is None else chat_id
        number = _NUMBER_RE.match(text)
        if number:
            newest = self._newest_with_buttons(chat)
            if newest is not None:
                buttons = pressable_buttons(newest)
                index = int(number.group(1))
                if 1 <= index <= len(buttons):
                    button = buttons[index - 1]
                    update = self.core.press(
                        user_id, newest.message_id, str(button["callback_data"]), chat_id=chat_id
                    )
                    query_id = update["callback_query"]["id"]
                    self._queries[query_id] = (chat, user_id, str(button.get("text", "")))
                    return
        if chat_id is None:
            start = _START_RE.match(text)
            if start:
                text = f"/start {start.group(1)}" if start.group(1) else "/start"
            coords = location_from(text)
            if coords is not None:
                self.core.location(user_id, *coords)
                return
        self.core.text(user_id, text, chat_id=chat_id)

    def _presses_button(self, chat_id: int, text: str) -> bool:
        """Whether a group message is a number answering the newest buttons (such as "Ik kom"
        under a koffiemoment)."""
        number = _NUMBER_RE.match(text)
        newest = self._newest_with_buttons(chat_id)
        return bool(
            number and newest and 1 <= int(number.group(1)) <= len(pressable_buttons(newest))
        )

    def _newest_with_buttons(self, chat_id: int) -> BotMessage | None:
        """The message a typed number answers: the newest with buttons, if they are
        pressable (a newer message with only links means a number is just text)."""
        newest = newest_with_buttons(self.core.messages(chat_id))
        return newest if newest is not None and pressable_buttons(newest) else None

    # -------------------------------------------------------------- from the bot to Signal

    def _on_bot_message(self, event: str, message: BotMessage) -> None:
        """The bot sent or edited a message: put what Signal should show in the outbox,
        together with the core's state, before the bot hears it was sent."""
        key = (message.chat_id, message.message_id)
        body, options = self.render.body(message), self.render.options(message)
        before = self._shown.get(key)
        self._shown[key] = (body, options)
        if len(self._shown) > 10_000:
            self._shown.pop(next(iter(self._shown)))
        if event == "sent":
            text = "\n\n".join(p for p in (body, options) if p)
        elif event == "edited":
            if before is not None and before[0] == body:
                # Only the buttons changed: new options are worth a message, none are not.
                text = options if options and options != before[1] else ""
            elif before is not None and before[0] and (added := _added(before[0], body)):
                # Something added (a choice made, "✔️ Nee", and the next question): only what
                # was added, not the question the resident has already read.
                text = "\n\n".join(p for p in (added, options) if p)
            else:
                text = "\n\n".join(p for p in (body, options) if p)
        else:
            return  # a deleted message stays on the phone: Signal cannot take it back here
        attachments: list[str] = []
        if event == "sent" and message.file_bytes is not None:
            mime = message.mime_type or "application/octet-stream"
            name = (message.file_name or "bestand").replace(";", "_").replace(",", "_")
            encoded = base64.b64encode(message.file_bytes).decode("ascii")
            attachments.append(f"data:{mime};filename={name};base64,{encoded}")
        if not text and not attachments:
            return
        payload: JsonDict = {"message": text}
        if attachments:
            payload["attachments"] = attachments
        self._save((message.chat_id, payload))
        self._wake.set()

    def _on_answer(self, params: JsonDict) -> None:
        """A callback answer with text (a toast in Telegram, seen only by who pressed)
        becomes a short private message to them; one with a deep link to the bot (Telegram
        opens the private chat with ``/start <code>``) starts the private conversation: the
        member is told so there, and the bot gets ``/start <code>`` from them."""
        pressed = self._queries.pop(str(params.get("callback_query_id")), None)
        if pressed is None:
            return
        chat, user_id, label = pressed
        text = params.get("text")
        url = params.get("url")
        code = deep_link_payload(url) if isinstance(url, str) else None
        if code is not None and user_id in self.core.users:
            if chat != user_id:
                told = self.render.t(
                    "You chose “{label}” in the group. We continue here, in a private chat "
                    "with the bot.",
                    label=label,
                )
                self._save((user_id, {"message": told}))
            self.core.text(user_id, f"/start {code}")
        elif isinstance(text, str) and text.strip() and user_id in self.core.users:
            self._save((user_id, {"message": text.strip()}))
        elif isinstance(url, str) and url and user_id in self.core.users:
            self._save((user_id, {"message": url}))
        else:
            return
        self._wake.set()

    # -------------------------------------------------------------- keeping the minimum

    def _api_forget_chat(self, params: JsonDict) -> bool:
        """forgetChat (the gateway's addition to the Bot API, after a /vergeetmij): forget a
        Signal person: their Signal id, name, private chat, messages in groups and photos.
        What the bot already sent them still goes; a new message from them is a new chat."""
        value = params.get("chat_id")
        try:
            user_id = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat_id is empty") from None
        if user_id not in self.core.users:
            raise ApiError(400, "Bad Request: chat not found")
        self._drop_files(self.store.files_of(user_id))
        self.store.forget_contact(user_id)
        self.core.forget_user(user_id)
        for key in [k for k in self._shown if k[0] == user_id]:
            del self._shown[key]
        for query_id in [q for q, (_, u, _) in self._queries.items() if u == user_id]:
            del self._queries[query_id]
        log.info("a Signal person was forgotten (/vergeetmij)")
        return True

    def _api_forget_file(self, params: JsonDict) -> bool:
        """forgetFile (the gateway's addition to the Bot API): the bot has its own copy of a
        photo, so the gateway drops it."""
        file_id = params.get("file_id")
        if not isinstance(file_id, str) or file_id not in self.core.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        self._drop_files([file_id])
        return True

    def _drop_files(self, file_ids: list[str]) -> None:
        for file_id in file_ids:
            self.core.drop_file(file_id)
        gone = [i for i in self._saved_files if i not in self.core.files]
        self.store.drop_files(gone)
        self._saved_files.difference_update(gone)

    def expire(self, now: float | None = None) -> None:
        """Drop photos older than ``photo_days`` and the messages of chats quiet for longer
        than ``chat_days`` (the chat itself stays, for routing)."""
        now = self.clock() if now is None else now
        self._drop_files(self.store.files_before(now - self.config.photo_days * 86_400))
        quiet = now - self.config.chat_days * 86_400
        for chat_id in self.core.chat_ids():
            history = self.core.history(chat_id)
            if history and max(int(m.get("date", 0)) for m in history) < quiet:
                self.core.forget_messages(chat_id)
                for key in [k for k in self._shown if k[0] == chat_id]:
                    del self._shown[key]
        self._save()

    async def _expire_loop(self) -> None:
        """Look for photos and chats whose time is up, now and then."""
        while True:
            try:
                self.expire()
            except Exception:
                log.exception("could not expire the gateway's old photos and chats")
            await asyncio.sleep(EXPIRE_EVERY)

    async def _send_loop(self) -> None:
        """Send the outbox in order; a failed message is tried again, waiting longer."""
        backoff = self.retry_delay
        while True:
            await self._wake.wait()
            self._wake.clear()
            for outbox_id, chat_id, payload, attempts in self.store.outbox():
                carried = "recipient" in payload or "groupId" in payload
                target = {} if carried else self._target(chat_id)
                if target is None:
                    self.store.sent(outbox_id)
                    continue
                try:
                    await self.cli.send({**target, **payload})
                except SignalCliError as exc:
                    self.store.attempted(outbox_id)
                    if attempts + 1 >= MAX_SEND_ATTEMPTS:
                        log.error(
                            "gave up a Signal message after %d attempts: %s", attempts + 1, exc
                        )
                        self.store.sent(outbox_id)
                        continue
                    log.warning("signal-cli send failed (%s); again in %g s", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    self._wake.set()
                    break
                self.store.sent(outbox_id)
                backoff = self.retry_delay

    def _target(self, chat_id: int) -> JsonDict | None:
        """signal-cli's recipient or groupId for a chat."""
        found = self.store.signal_id(chat_id)
        if found is None:
            return None
        kind, signal_id = found
        return {"recipient": [signal_id]} if kind == "user" else {"groupId": signal_id}


async def serve(settings: Settings) -> None:
    """Run the gateway until cancelled (``buurtsignaal signal-gateway``)."""
    async with SignalGateway.from_settings(settings) as gateway:
        log.info(
            "Signal gateway: Bot API on %s, signal-cli at %s",
            gateway.core.base_url.removesuffix("/bot"),
            gateway.config.cli_url,
        )
        await asyncio.Event().wait()


def _added(shown: str, edited: str) -> str:
    """What an edit adds to a message already shown: the edited text without its leading
    paragraphs that were already there ("question" -> "question ✔️ choice, next question";
    an intro may have been dropped). Empty when nothing leading was kept (a rewrite)."""
    paragraphs = edited.split("\n\n")
    kept = 0
    while kept < len(paragraphs) and paragraphs[kept].strip() and paragraphs[kept] in shown:
        kept += 1
    if kept == 0:
        return ""
    return "\n\n".join(paragraphs[kept:]).strip()
