"""``buurtsignaal shell``: chat with the real bot in a terminal, through the local emulator.

The real Application runs with long polling (getUpdates, through the inbox of bot.inbox)
against :class:`BotApiEmulator` on 127.0.0.1, on the configured database. No token and no
network are needed; nothing here ever contacts Telegram. Every line typed is an action of the
current person (a text, a button press, a location, ...); every bot message in the current
chat is printed as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from buurtsignaal.bot.app import build_application
from buurtsignaal.bot.context import BuurtApplication
from buurtsignaal.bot.emulator import (
    BotApiEmulator,
    BotMessage,
    deep_link_payload,
    inline_rows,
    newest_with_buttons,
    numbered_rows,
    pressable_buttons,
)
from buurtsignaal.bot.inbox import polling
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage import inbox as stored_inbox
from buurtsignaal.storage import migrate
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.messengers import SIGNAL_BASE

__all__ = ["ShellSession", "quiet_library_logs", "render_text", "run_shell"]

JsonDict = dict[str, Any]

# How long the bot must stay silent before the prompt returns, and the longest wait per action.
QUIET_SECONDS = 0.3
MAX_WAIT_SECONDS = 5.0

DEMO_GROUP_ID = -100123
DEMO_GROUP_TITLE = "Buurtgroep (demo)"
FALLBACK_ADMIN_ID = 900001
EXAMPLE_LOCATION = "52.07 4.30"

_BOLD, _NOT_BOLD = "\x1b[1m", "\x1b[22m"
_NUMBER_RE = re.compile(r"[0-9]{1,3}")
_QUIET_LOGGERS = ("telegram", "apscheduler", "alembic", "aiohttp", "httpx")

HELP = f"""\
Shell-commando's (al het andere gaat als bericht naar de bot):
  tekst of /commando    stuur een bericht als de huidige persoon, in de huidige chat
  N                     druk op knop [N] van het nieuwste bericht met knoppen
  :locatie LAT LON      deel een locatie, bijv. :locatie {EXAMPLE_LOCATION}
  :foto PAD             stuur een foto uit een bestand
  :bestand PAD          stuur een bestand (document)
  :sticker              stuur een sticker
  :tekst TEKST          stuur TEKST letterlijk (ook een getal of iets dat met : begint)
  :als NAAM             wissel van persoon (anna, bram, admin of een eigen persoon)
  :als ID NAAM          maak een nieuwe persoon met Telegram-id ID en wissel ernaartoe
  :chat prive           de privéchat van de huidige persoon met de bot
  :chat groep [SLUG]    de buurtgroep (van de wijk SLUG)
  :nieuwlid             (in de groep) de huidige persoon komt de groep binnen
  :wie                  wie je bent en in welke chat
  :help                 dit overzicht
  :stop                 stoppen (Ctrl-D of Ctrl-C kan ook)"""


@dataclass
class Persona:
    """Someone the shell user can be: a Telegram user with a private chat with the bot."""

    key: str
    user_id: int
    name: str


@dataclass
class GroupChat:
    """A group the bot is in (a wijk's neighbourhood group, or the demo group)."""

    chat_id: int
    title: str
    slug: str | None = None


def render_text(
    text: str, entities: Sequence[Mapping[str, Any]] = (), *, bold: bool = False
) -> str:
    """Render message text for a terminal: bold as ANSI if asked, link targets after links."""
    if not entities:
        return text
    index: dict[int, int] = {}
    offset = 0
    for position, char in enumerate(text):
        index[offset] = position
        offset += 2 if ord(char) > 0xFFFF else 1
    index[offset] = len(text)
    inserts: list[tuple[int, int, int, str]] = []  # (position, closing first, order, text)
    for order, entity in enumerate(entities):
        start = index.get(int(entity.get("offset", -1)))
        end = index.get(int(entity.get("offset", -1)) + int(entity.get("length", 0)))
        if start is None or end is None:
            continue
        kind = entity.get("type")
        if kind == "bold" and bold:
            inserts += [(start, 1, order, _BOLD), (end, 0, -order, _NOT_BOLD)]
        elif kind == "text_link" and entity.get("url") and entity["url"] != text[start:end]:
            inserts.append((end, 0, -order, f" ({entity['url']})"))
    parts: list[str] = []
    previous = 0
    for position, _, _, insert in sorted(inserts):
        parts += [text[previous:position], insert]
        previous = position
    parts.append(text[previous:])
    return "".join(parts)


class _LineReader:
    """Reads lines from a (blocking) text stream in a daemon thread, one line per request."""

    def __init__(self, stream: TextIO) -> None:
        """Start the reader thread for ``stream``."""
        self._stream = stream
        self._loop = asyncio.get_running_loop()
        self._requests: queue.SimpleQueue[asyncio.Future[str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="shell-stdin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Thread body: answer each request with the next line ("" at end of input)."""
        while (future := self._requests.get()) is not None:
            try:
                line = self._stream.readline()
            except (OSError, ValueError, UnicodeDecodeError):
                line = ""
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                self._loop.call_soon_threadsafe(self._deliver, future, line)
            if not line:
                return

    @staticmethod
    def _deliver(future: asyncio.Future[str], line: str) -> None:
        """Hand a line to the waiting coroutine (if it still waits)."""
        if not future.done():
            future.set_result(line)

    def readline(self) -> asyncio.Future[str]:
        """A future for the next line; "" means end of input."""
        future: asyncio.Future[str] = self._loop.create_future()
        self._requests.put(future)
        return future

    def close(self) -> None:
        """Let the thread end once it is not blocked in a read."""
        self._requests.put(None)


class ShellSession:
    """One terminal chat: the personas, the current chat, and the bot's output as it arrives."""

    def __init__(
        self,
        settings: Settings,
        emulator: BotApiEmulator,
        application: BuurtApplication,
        out: TextIO,
        *,
        echo_input: bool = False,
        color: bool = False,
    ) -> None:
        """Register the personas and groups with the emulator and start listening."""
        self.settings = settings
        self.emu = emulator
        self.app = application
        self.out = out
        self.echo_input = echo_input
        self.color = color
        self.personas: dict[str, Persona] = {}
        self.groups: list[GroupChat] = []
        self.admin_configured = settings.admins != [FALLBACK_ADMIN_ID]
        self.running = True
        self._joined: set[tuple[int, int]] = set()
        self._shown: dict[tuple[int, int], str] = {}
        self._unseen: dict[int, list[int]] = {}
        self._events = 0
        self._scanned = 0
        self._polls = 0
        self._api_calls = 0
        self._at_prompt = False
        self._setup_actors()
        self.persona = self.personas["anna"]
        self.chat_id = self.persona.user_id
        self._commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "help": self._cmd_help,
            "stop": self._cmd_stop,
            "als": self._cmd_als,
            "chat": self._cmd_chat,
            "nieuwlid": self._cmd_nieuwlid,
            "locatie": self._cmd_locatie,
            "foto": self._cmd_foto,
            "bestand": self._cmd_bestand,
            "sticker": self._cmd_sticker,
            "tekst": self._cmd_tekst,
            "wie": self._cmd_wie,
        }
        for alias, name in (("q", "stop"), ("quit", "stop"), ("exit", "stop"), ("hulp", "help")):
            self._commands[alias] = self._commands[name]
        emulator.add_listener(self._on_bot_message)
        emulator.add_answer_listener(self._on_answer)

    # ------------------------------------------------------------------ setup

    def _add_persona(self, key: str, user_id: int, name: str) -> Persona:
        """Register a user with the emulator and remember them as a persona."""
        self.emu.add_user(user_id, name, language_code="nl")
        persona = Persona(key, user_id, name)
        self.personas[key] = persona
        return persona

    def _setup_actors(self) -> None:
        """Anna, Bram, the admin(s) and the wijk groups (or a demo group)."""
        self._add_persona("anna", 1001, "Anna")
        self._add_persona("bram", 1002, "Bram")
        admins = list(self.settings.admins) or [FALLBACK_ADMIN_ID]
        for number, admin_id in enumerate(admins, start=1):
            if admin_id in (1001, 1002):
                continue
            key = "admin" if number == 1 else f"admin{number}"
            self._add_persona(key, admin_id, "Beheerder" if number == 1 else f"Beheerder {number}")
        for wijk in self.settings.wijken:
            if wijk.group_chat_id is not None and wijk.group_chat_id < 0:
                group = GroupChat(wijk.group_chat_id, f"Buurtgroep {wijk.name}", wijk.slug)
                self.emu.add_group(group.chat_id, group.title)
                self.groups.append(group)
        if not self.groups:
            self.emu.add_group(DEMO_GROUP_ID, DEMO_GROUP_TITLE)
            self.groups.append(GroupChat(DEMO_GROUP_ID, DEMO_GROUP_TITLE))

    # ------------------------------------------------------------------ output

    def write(self, text: str = "") -> None:
        """Print lines (redrawing the prompt if the bot spoke while the user was typing)."""
        if self._at_prompt:
            self.out.write("\n")
        self.out.write(text + "\n")
        if self._at_prompt:
            self.out.write(self.prompt)
        self.out.flush()

    @property
    def prompt(self) -> str:
        """The prompt: who you are (and "in de groep" when in a group)."""
        if self.group is None:
            return f"{self.persona.name}> "
        return f"{self.persona.name} (groep)> "

    @property
    def group(self) -> GroupChat | None:
        """The current group, or None in a private chat."""
        return next((g for g in self.groups if g.chat_id == self.chat_id), None)

    def banner(self) -> str:
        """The Dutch welcome shown at start."""
        lines = [
            "Buurtsignaal-shell: je praat hier met de echte bot, lokaal op deze computer.",
            "Geen token en geen internet nodig: een nagebootste Telegram-server draait op "
            f"{self.emu.host}:{self.emu.port}.",
            f"Je bent {self.persona.name} (bewoner, id {self.persona.user_id}) in je privéchat "
            "met de bot. Begin met /start.",
            "Knoppen druk je in met hun nummer; :help toont alle shell-commando's, :stop stopt.",
        ]
        if not self.settings.wijken:
            lines.append(
                "Let op: er zijn geen wijken ingesteld, dus melden kan nog niet. Zie "
                "config.example.toml voor een voorbeeld van [[wijken]]."
            )
        if not self.admin_configured:
            lines.append(
                f"Er is geen beheerder ingesteld; in deze shell is ':als admin' (id "
                f"{FALLBACK_ADMIN_ID}) beheerder, zodat je /uitnodigen kunt proberen."
            )
        return "\n".join(lines)

    def _header(self, message: BotMessage, note: str = "") -> str:
        """The line above a bot message: who it is for."""
        target = "groep" if message.chat_id < 0 else self._chat_name(message.chat_id)
        return f"[Buurtsignaal → {target}]" + (f" {note}" if note else "")

    def _chat_name(self, chat_id: int) -> str:
        """The display name of a private chat's user (or a group's title)."""
        for persona in self.personas.values():
            if persona.user_id == chat_id:
                return persona.name
        for group in self.groups:
            if group.chat_id == chat_id:
                return group.title
        user = self.emu.users.get(chat_id)
        return str(user["first_name"]) if user else str(chat_id)

    def _text_of(self, message: BotMessage) -> tuple[str, list[JsonDict]]:
        """The visible text (or caption) of a message and its entities."""
        raw = message.raw
        if "text" in raw:
            return str(raw["text"]), list(raw.get("entities") or [])
        if "caption" in raw:
            return str(raw["caption"]), list(raw.get("caption_entities") or [])
        return "", []

    def _media_line(self, message: BotMessage) -> str | None:
        """A one-line description of the message's media, if any."""
        raw = message.raw
        if raw.get("photo"):
            size = raw["photo"][-1].get("file_size", len(message.file_bytes or b""))
            return f"(foto: {size} bytes)"
        if isinstance(raw.get("document"), dict):
            document = raw["document"]
            name = document.get("file_name") or "zonder naam"
            return f"(bestand: {name}, {document.get('file_size', 0)} bytes)"
        if isinstance(raw.get("location"), dict):
            location = raw["location"]
            return f"(locatie: {location['latitude']}, {location['longitude']})"
        if message.kind in ("text", "other") or "text" in raw:
            return None
        names = {"sticker": "sticker", "voice": "spraakbericht"}
        return f"({names.get(message.kind, message.kind)})"

    def _button_lines(self, message: BotMessage) -> list[str]:
        """The inline buttons, numbered as typing N presses them, and url buttons with their URL."""
        lines: list[str] = []
        for row in numbered_rows(message):
            pressable: list[str] = []
            for number, button in row:
                label = str(button.get("text", ""))
                if number is not None:
                    pressable.append(f"[{number}] {label}")
                elif "url" in button:
                    url = str(button["url"])
                    lines.append(f"  [link] {label} → {url}")
                    payload = deep_link_payload(url, self.emu.bot_username)
                    if payload is not None:
                        lines.append(f"         (in de shell: :chat prive en dan /start {payload})")
                else:
                    lines.append(f"  [–] {label} (kan de shell niet indrukken)")
            if pressable:
                lines.append("  " + "   ".join(pressable))
        return lines

    def _keyboard_lines(self, message: BotMessage) -> list[str]:
        """Hints for a reply keyboard (buttons under the input field)."""
        markup = message.reply_markup or {}
        lines: list[str] = []
        for row in markup.get("keyboard", []):
            for button in row:
                if isinstance(button, str):
                    button = {"text": button}
                label = str(button.get("text", ""))
                if button.get("request_location"):
                    lines.append(
                        f"  (knop onder het typveld: {label} → typ hier "
                        f":locatie LAT LON, bijv. :locatie {EXAMPLE_LOCATION})"
                    )
                else:
                    lines.append(f"  (knop onder het typveld: {label} → typ die tekst zelf)")
        return lines

    def _render(self, message: BotMessage, *, note: str = "", edit_of: str | None = None) -> None:
        """Print a bot message of the current chat: header, media, text, buttons."""
        text, entities = self._text_of(message)
        lines = [self._header(message, note)]
        media = self._media_line(message)
        if media:
            lines.append(media)
        if edit_of is not None and edit_of == text:
            lines.append(
                "(tekst ongewijzigd; knoppen aangepast)"
                if inline_rows(message)
                else "(knoppen weggehaald)"
            )
        elif edit_of and text.startswith(edit_of):
            lines.append("… " + text[len(edit_of) :].strip())
        elif text:
            lines.append(render_text(text, entities, bold=self.color))
        if edit_of is None or edit_of != text or inline_rows(message):
            lines += self._button_lines(message)
        if edit_of is None:
            lines += self._keyboard_lines(message)
        self._shown[(message.chat_id, message.message_id)] = text
        self.write("\n".join(lines))

    def _elsewhere(self, chat_id: int) -> str:
        """One line saying a message went to another chat, and how to look there."""
        for group in self.groups:
            if group.chat_id == chat_id:
                how = ":chat groep" + (f" {group.slug}" if len(self.groups) > 1 else "")
                return f"(bericht in de groep {group.title} — bekijk met {how})"
        if chat_id == self.persona.user_id:
            return "(bericht voor jou in je privéchat — bekijk met :chat prive)"
        for persona in self.personas.values():
            if persona.user_id == chat_id:
                return (
                    f"(bericht voor {persona.name} in diens privéchat — bekijk met "
                    f":als {persona.key})"
                )
        return f"(bericht in chat {chat_id})"

    def _on_bot_message(self, event: str, message: BotMessage) -> None:
        """Emulator listener: print what the bot does in the current chat, note the rest."""
        self._events += 1
        if message.chat_id != self.chat_id:
            if event == "sent":
                self._unseen.setdefault(message.chat_id, []).append(message.message_id)
                self.write(self._elsewhere(message.chat_id))
            return
        if event == "sent":
            self._render(message)
        elif event == "edited":
            before = self._shown.get((message.chat_id, message.message_id))
            self._render(message, note="(bewerkt)", edit_of=before or "")
        elif event == "deleted":
            self._shown.pop((message.chat_id, message.message_id), None)
            self.write(f"{self._header(message)} (bericht verwijderd)")

    def _on_answer(self, params: JsonDict) -> None:
        """Emulator answer listener: a toast or alert after a button press."""
        self._events += 1
        text = params.get("text")
        if text:
            self.write(f"(melding: {text})")
        url = params.get("url")
        payload = deep_link_payload(url, self.emu.bot_username) if isinstance(url, str) else None
        if payload is not None:
            self.write(
                "(Telegram opent nu een privégesprek met de bot; "
                f"in de shell: :chat prive en dan /start {payload})"
            )

    def _show_unseen(self) -> None:
        """Print the messages that arrived in the (new) current chat while it was not shown."""
        for message_id in self._unseen.pop(self.chat_id, []):
            with contextlib.suppress(LookupError):
                message = self.emu.message(self.chat_id, message_id)
                if not message.deleted:
                    self._render(message, note="(eerder ontvangen)")

    # ------------------------------------------------------------------ waiting for the bot

    def _scan_calls(self) -> None:
        """Count the bot's API calls so far: polls (getUpdates) and everything else."""
        calls = self.emu.calls
        for call in calls[self._scanned :]:
            if call.method.lower() == "getupdates":
                self._polls += 1
            else:
                self._api_calls += 1
        self._scanned = len(calls)

    def _activity(self) -> tuple[int, int]:
        """A snapshot that changes whenever the bot does something visible or calls the API."""
        self._scan_calls()
        return self._events, self._api_calls

    def _app_idle(self) -> bool:
        """No update queued or being processed by the application."""
        processor = self.app.update_processor
        return self.app.update_queue.qsize() == 0 and processor.current_concurrent_updates == 0

    async def settle(self) -> None:
        """Wait until the bot fetched and handled the last update and then went quiet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_WAIT_SECONDS
        try:
            await self.emu.wait_for_fetch(MAX_WAIT_SECONDS)
            self._scan_calls()
            polls = self._polls

            def polled_again() -> bool:
                self._scan_calls()
                return self._polls > polls

            # The inbox asks again only after it queued what it got: then join the queue.
            await self.emu.wait_until(polled_again, max(deadline - loop.time(), 0.01))
            await asyncio.wait_for(self.app.update_queue.join(), max(deadline - loop.time(), 0.01))
        except TimeoutError:
            self.write(f"(de bot reageerde niet binnen {MAX_WAIT_SECONDS:.0f} seconden)")
            return
        mark = self._activity()
        while loop.time() < deadline:
            await asyncio.sleep(min(QUIET_SECONDS, max(deadline - loop.time(), 0)))
            now = self._activity()
            if now == mark and self._app_idle():
                return
            mark = now

    # ------------------------------------------------------------------ input

    async def handle(self, line: str) -> None:
        """Carry out one input line."""
        text = line.strip()
        if not text:
            return
        if text.startswith(":"):
            name, _, rest = text[1:].partition(" ")
            command = self._commands.get(name.casefold())
            if command is None:
                self.write(f"Onbekend shell-commando ':{name}'. :help toont wat er is.")
                return
            await command(rest.strip())
        elif _NUMBER_RE.fullmatch(text):
            await self._press(int(text))
        else:
            await self._send_text(text)

    async def _act(self, action: Callable[[], object]) -> None:
        """Make the emulator deliver one user action, then wait for the bot."""
        try:
            action()
        except (LookupError, ValueError) as exc:
            self.write(f"(lukt niet: {exc})")
            return
        events = self._events
        await self.settle()
        if self._events == events:
            self.write("(geen reactie van de bot)")

    async def _send_text(self, text: str) -> None:
        """A text message from the current person in the current chat."""
        user, chat = self.persona.user_id, self.chat_id
        await self._act(lambda: self.emu.text(user, text, chat_id=chat))

    def _newest_with_buttons(self) -> BotMessage | None:
        """The newest bot message in the current chat that has inline buttons."""
        return newest_with_buttons(self.emu.messages(self.chat_id))

    async def _press(self, number: int) -> None:
        """Press button ``number`` of the newest message with inline buttons."""
        message = self._newest_with_buttons()
        if message is None:
            self.write(
                "(er zijn hier geen knoppen om in te drukken; "
                f"wil je het getal als tekst sturen, typ dan :tekst {number})"
            )
            return
        buttons = pressable_buttons(message)
        if not buttons:
            links = [b for row in inline_rows(message) for b in row if "url" in b]
            target = f": {links[0]['url']}" if links else ""
            self.write(
                "(dit bericht heeft alleen een link-knop; die opent iets buiten de chat en kan "
                f"de shell niet indrukken{target})"
            )
            return
        if not 1 <= number <= len(buttons):
            self.write(f"(geen knop [{number}]; kies 1 t/m {len(buttons)})")
            return
        button = buttons[number - 1]
        self.write(f"(je drukt op: {button['text']})")
        user, chat, data = self.persona.user_id, self.chat_id, str(button["callback_data"])
        await self._act(lambda: self.emu.press(user, message.message_id, data, chat_id=chat))

    # ------------------------------------------------------------------ shell commands

    async def _cmd_help(self, args: str) -> None:
        """:help."""
        self.write(HELP)

    async def _cmd_stop(self, args: str) -> None:
        """:stop."""
        self.running = False

    async def _cmd_wie(self, args: str) -> None:
        """:wie: who you are and where."""
        persona = self.persona
        group = self.group
        where = (
            "in je privéchat met de bot"
            if group is None
            else f"in de groep {group.title} (chat {group.chat_id})"
        )
        self.write(f"Je bent {persona.name} (id {persona.user_id}), {where}.")
        others = ", ".join(f"{p.key} ({p.user_id})" for p in self.personas.values())
        self.write(f"Personen: {others}. Wissel met :als NAAM.")

    def _find_persona(self, word: str) -> Persona | None:
        """A persona by key, name or user id."""
        wanted = word.casefold()
        for persona in self.personas.values():
            if wanted in (persona.key, persona.name.casefold(), str(persona.user_id)):
                return persona
        return None

    async def _cmd_als(self, args: str) -> None:
        """:als NAAM or :als ID NAAM: switch person (creating one if needed)."""
        first, _, rest = args.partition(" ")
        if not first:
            names = ", ".join(p.key for p in self.personas.values())
            self.write(f"Gebruik :als NAAM ({names}) of :als ID NAAM voor een nieuwe persoon.")
            return
        persona = self._find_persona(first) if not rest.strip() else None
        if persona is None and first.isdigit() and rest.strip():
            persona = self._find_persona(first)
            if persona is None:
                name = rest.strip()
                key = name.casefold()
                if key in self.personas:
                    self.write(f"(er is al een persoon '{name}'; kies een andere naam)")
                    return
                try:
                    persona = self._add_persona(key, int(first), name)
                except ValueError as exc:
                    self.write(f"(lukt niet: {exc})")
                    return
                self.write(f"(nieuwe persoon: {name}, id {persona.user_id})")
        if persona is None:
            self.write(f"(onbekende persoon '{first}'; maak er een met :als ID NAAM)")
            return
        in_group = self.group is not None
        self.persona = persona
        if not in_group:
            self.chat_id = persona.user_id
        self._enter_chat()
        await self._cmd_wie_short()

    async def _cmd_wie_short(self) -> None:
        """Say who and where after a switch."""
        group = self.group
        where = "je privéchat" if group is None else f"de groep {group.title}"
        self.write(f"Je bent nu {self.persona.name} (id {self.persona.user_id}), in {where}.")
        self._show_unseen()

    def _enter_chat(self) -> None:
        """Make sure the current person is a member of the current group."""
        group = self.group
        if group is None:
            return
        key = (group.chat_id, self.persona.user_id)
        if key not in self._joined:
            self.emu.set_member_status(group.chat_id, self.persona.user_id, "member")
            self._joined.add(key)

    async def _cmd_chat(self, args: str) -> None:
        """:chat prive | :chat groep [SLUG]."""
        which, _, slug = args.partition(" ")
        which = which.casefold()
        if which in ("prive", "privé", "privechat", "privéchat"):
            self.chat_id = self.persona.user_id
        elif which in ("groep", "group"):
            group = self.groups[0]
            if slug.strip():
                found = [g for g in self.groups if g.slug == slug.strip().casefold()]
                if not found:
                    slugs = ", ".join(g.slug for g in self.groups if g.slug) or "geen"
                    self.write(f"(geen groep voor wijk '{slug.strip()}'; groepen: {slugs})")
                    return
                group = found[0]
            self.chat_id = group.chat_id
        else:
            self.write("Gebruik :chat prive of :chat groep.")
            return
        self._enter_chat()
        await self._cmd_wie_short()

    async def _cmd_nieuwlid(self, args: str) -> None:
        """:nieuwlid: the current person joins the current group."""
        group = self.group
        if group is None:
            self.write("(:nieuwlid werkt alleen in een groep; ga eerst naar :chat groep)")
            return
        self._joined.add((group.chat_id, self.persona.user_id))
        user = self.persona.user_id
        await self._act(lambda: self.emu.new_chat_members(group.chat_id, [user]))

    async def _cmd_locatie(self, args: str) -> None:
        """:locatie LAT LON."""
        parts = args.replace(",", " ").split()
        try:
            latitude, longitude = (float(p) for p in parts)
        except ValueError:
            self.write(f"Gebruik :locatie LAT LON, bijv. :locatie {EXAMPLE_LOCATION}")
            return
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            self.write("(die locatie bestaat niet: LAT tussen -90 en 90, LON tussen -180 en 180)")
            return
        user, chat = self.persona.user_id, self.chat_id
        await self._act(lambda: self.emu.location(user, latitude, longitude, chat_id=chat))

    async def _read_file(self, args: str, usage: str) -> tuple[str, bytes] | None:
        """Read the file a :foto/:bestand command names (name and bytes), or explain why not."""
        raw = args.strip().strip("\"'")
        if not raw:
            self.write(f"Gebruik {usage}")
            return None
        try:
            found = await asyncio.to_thread(_load_file, raw)
        except OSError as exc:
            self.write(f"(kan {raw} niet lezen: {exc.strerror or exc})")
            return None
        if found is None:
            self.write(f"(bestand niet gevonden: {raw})")
        elif not found[1]:
            self.write(f"(bestand {raw} is leeg; Telegram verstuurt geen lege bestanden)")
            return None
        return found

    async def _cmd_foto(self, args: str) -> None:
        """:foto PATH."""
        found = await self._read_file(args, ":foto PAD (een afbeelding op deze computer)")
        if found is None:
            return
        user, chat = self.persona.user_id, self.chat_id
        await self._act(lambda: self.emu.photo(user, found[1], chat_id=chat))

    async def _cmd_bestand(self, args: str) -> None:
        """:bestand PATH."""
        found = await self._read_file(args, ":bestand PAD (een bestand op deze computer)")
        if found is None:
            return
        name, content = found
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        user, chat = self.persona.user_id, self.chat_id
        await self._act(lambda: self.emu.document(user, content, name, mime, chat_id=chat))

    async def _cmd_sticker(self, args: str) -> None:
        """:sticker."""
        user, chat = self.persona.user_id, self.chat_id
        await self._act(lambda: self.emu.sticker(user, chat_id=chat))

    async def _cmd_tekst(self, args: str) -> None:
        """:tekst TEXT: send TEXT literally."""
        if not args:
            self.write("Gebruik :tekst TEKST")
            return
        await self._send_text(args)

    # ------------------------------------------------------------------ main loop

    async def run(self, reader: _LineReader, interrupted: asyncio.Event) -> None:
        """Read and carry out lines until :stop, end of input or Ctrl-C."""
        self.write(self.banner())
        stop: asyncio.Future[Any] = asyncio.ensure_future(interrupted.wait())
        try:
            while self.running and not interrupted.is_set():
                self.out.write(self.prompt)
                self.out.flush()
                self._at_prompt = True
                pending = reader.readline()
                waiting: set[asyncio.Future[Any]] = {pending, stop}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                self._at_prompt = False
                if not pending.done():
                    self.out.write("\n")
                    break
                line = pending.result()
                if self.echo_input:
                    self.out.write(line if line.endswith("\n") else line + "\n")
                elif not line:
                    self.out.write("\n")
                if not line:
                    break
                await self.handle(line)
        finally:
            stop.cancel()
            self._at_prompt = False
        self.write("Tot ziens!")


@contextlib.contextmanager
def quiet_library_logs() -> Iterator[None]:
    """Keep the libraries' INFO logs out of the chat (unless logging is at DEBUG)."""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _ctrl_c_sets(event: asyncio.Event, *, enabled: bool) -> Iterator[None]:
    """Let the first Ctrl-C set ``event`` (a clean stop); a second one interrupts as usual."""
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)

    def restore() -> None:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    def first_ctrl_c() -> None:
        event.set()
        restore()

    installed = False
    if enabled and threading.current_thread() is threading.main_thread():
        try:
            loop.add_signal_handler(signal.SIGINT, first_ctrl_c)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # e.g. Windows: keep the default
            pass
    try:
        yield
    finally:
        if installed:
            restore()


async def run_shell(
    settings: Settings, *, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Chat with the real bot in this terminal, through the local emulator; 0 on a normal exit."""
    out = stdout or sys.stdout
    source = stdin or sys.stdin
    interactive = _isatty(source)
    # Locally, ':als admin' should be able to try the admin commands even when the
    # configuration names no admins yet (this never touches a real bot's settings).
    if not settings.admins:
        settings = settings.model_copy(update={"admins": [FALLBACK_ADMIN_ID]})
    interrupted = asyncio.Event()
    with _ctrl_c_sets(interrupted, enabled=stdin is None), quiet_library_logs():
        await asyncio.to_thread(migrate.upgrade, settings.database.url)
        emulator = BotApiEmulator(first_update_id=await _next_update_id(settings.database.url))
        async with emulator:
            application = build_application(
                settings,
                token=emulator.token,
                base_url=emulator.base_url,
                base_file_url=emulator.base_file_url,
            )
            async with polling(application, wait=1):
                session = ShellSession(
                    settings,
                    emulator,
                    application,
                    out,
                    echo_input=not interactive,
                    color=_isatty(out) and "NO_COLOR" not in os.environ,
                )
                reader = _LineReader(source)
                try:
                    await session.run(reader, interrupted)
                finally:
                    reader.close()
    return 0


async def _next_update_id(url: str) -> int:
    """Where the emulator's update ids start: after the last one this database received.

    Telegram numbers updates upwards across restarts of a bot; the emulator starts afresh
    with every shell, so without this the inbox would take the new updates for ones it had
    handled in an earlier session of the same demo database, and the bot would stay silent."""
    db = Database(url)
    try:
        async with db.begin() as session:
            return await stored_inbox.last_update_id(session, below=SIGNAL_BASE) + 1
    finally:
        await db.dispose()


def _load_file(raw: str) -> tuple[str, bytes] | None:
    """The name and bytes of the file at ``raw`` (``~`` expanded), or None if there is none."""
    path = Path(raw).expanduser()
    if not path.is_file():
        return None
    return path.name, path.read_bytes()


def _isatty(stream: TextIO) -> bool:
    """Whether a stream is a terminal (False for anything that cannot tell)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
