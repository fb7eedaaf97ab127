"""Drive the real Application against the Bot API emulator and read what happened.

Tests read as transcripts::

    anna = bot.resident(1001, "Anna")
    reply = await anna.says("/melden")
    assert "in gevaar" in reply.text
    await anna.taps("Nee, niemand is in gevaar")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update

from buurtsignaal.bot.app import build_application
from buurtsignaal.bot.context import BuurtApplication
from buurtsignaal.bot.emulator import BotApiEmulator, BotMessage
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage import bot_state, migrate
from buurtsignaal.storage.db import Database

# What a handler calls after its unit of work; in killed_after none of them gets through.
KILLED_AT = (
    "answerCallbackQuery",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "setMyCommands",
)


@dataclass
class Reply:
    """What the bot did in answer to one user action.

    After a button press the bot usually edits the question into the next one instead of
    sending a new message (one Bot API call per step): ``text`` and ``last`` cover what it
    showed either way, ``messages`` and ``edited`` tell the two apart."""

    messages: list[BotMessage] = field(default_factory=list)
    edited: list[BotMessage] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    @property
    def shown(self) -> list[BotMessage]:
        """The edited messages (as they are now), then the new ones."""
        new = {m.message_id for m in self.messages}
        return [m for m in self.edited if m.message_id not in new] + self.messages

    @property
    def text(self) -> str:
        """The plain text of every edited and new message, one after another."""
        return "\n".join(m.plain_text for m in self.shown)

    @property
    def last(self) -> BotMessage:
        """The last new message, else the last edited one."""
        assert self.shown, "the bot sent nothing"
        return self.shown[-1]

    @property
    def alert(self) -> str:
        """The text of the callback answer (toast or alert), if any."""
        return "\n".join(self.alerts)


class BotUnderTest:
    """The real Application on a real database, talking to the emulator over HTTP."""

    def __init__(
        self, emulator: BotApiEmulator, settings: Settings, *, signal_url: str | None = None
    ) -> None:
        self.emulator = emulator
        self.settings = settings
        self.signal_url = signal_url  # the Signal gateway, for residents on Signal
        self.app: BuurtApplication | None = None
        self.db: Database | None = None
        # Whether what a person's action wrote to the outbox is sent right after it.
        self.draining = True

    async def start(self) -> BotUnderTest:
        """Migrate the database, build, initialise and start the application."""
        await asyncio.to_thread(migrate.upgrade, self.settings.database.url)
        self.db = Database(self.settings.database.url)
        self.app = build_application(
            self.settings,
            db=self.db,
            token=self.emulator.token,
            base_url=self.emulator.base_url,
            base_file_url=self.emulator.base_file_url,
            signal_url=self.signal_url,
        )
        # The tests send what the outbox holds by hand (drain_outbox), never in the background,
        # and one message at a time, so which send a scripted failure hits is certain.
        self.app.outbox.paused = True
        self.app.outbox.concurrency = 1
        # The same order as Application.run_polling: initialize, post_init, start.
        await self.app.initialize()
        if self.app.post_init is not None:
            await self.app.post_init(self.app)
        await self.app.start()
        return self

    async def stop(self) -> None:
        """Stop cleanly, as on a normal shutdown."""
        if self.app is not None:
            app, self.app = self.app, None
            await app.stop()
            await app.shutdown()
            if app.post_shutdown is not None:
                await app.post_shutdown(app)

    async def crash(self) -> None:
        """Drop the application without any shutdown work, as when the process is killed."""
        if self.app is not None:
            app, self.app = self.app, None
            # Stop its background tasks so the test stays clean, but never flush anything:
            # a killed process gets no chance to.
            app.persistence = None
            await app.stop()
            await app.shutdown()
            assert self.db is not None
            await self.db.dispose()

    async def killed_after(self, action: Callable[[], Awaitable[object]]) -> None:
        """Do ``action`` in a process that is killed before anything it says reaches the user
        (handlers commit before they answer): what it committed stays, nothing it changed in
        memory (drafts, conversation states) is written, nothing it sends arrives. Then the
        bot starts again on the same database."""
        assert self.app is not None
        self.app.persistence = None
        self.draining = False  # what it wrote to the outbox is sent after the restart
        for method in KILLED_AT:  # a dead process sends nothing: fail fast, without retries
            self.emulator.fail_next(method, status=400, description="Bad Request: killed", times=99)
        try:
            await action()
        finally:
            self.emulator.clear_failures()
            self.draining = True
        await self.restart(crash=True)

    async def restart(self, *, crash: bool = False) -> None:
        """Stop (or crash) and start a fresh application on the same database."""
        await (self.crash() if crash else self.stop())
        await self.start()

    async def drain_outbox(self) -> int:
        """Send what the outbox holds and is due now, as the sender would; how many were
        settled (sent or failed)."""
        assert self.app is not None, "bot not started"
        return await self.app.outbox.drain()

    async def run_job(self, name: str) -> None:
        """Run the scheduled job ``name`` now, then send what it wrote to the outbox."""
        assert self.app is not None and self.app.job_queue is not None
        jobs = self.app.job_queue.get_jobs_by_name(name)
        assert jobs, f"no job {name!r}"
        await jobs[0].run(self.app)
        await self.drain_outbox()

    async def process(self, update: dict[str, Any]) -> None:
        """Feed one update (as the emulator built it) through the application."""
        assert self.app is not None, "bot not started"
        await self.app.process_update(Update.de_json(update, self.app.bot))

    def user(self, user_id: int, first_name: str, language_code: str | None = "nl") -> Person:
        """A person who talks to the bot in a private chat. As on Telegram, the bot can write
        to them only once they wrote to it (or got a role, see ``grant_role``)."""
        self.emulator.add_user(user_id, first_name, language_code=language_code)
        return Person(self, user_id, first_name)


class Person:
    """One user, sending messages and pressing buttons in their private chat (or a group)."""

    def __init__(self, bot: BotUnderTest, user_id: int, name: str) -> None:
        self.bot = bot
        self.id = user_id
        self.name = name
        self.chat_id = user_id

    @property
    def emulator(self) -> BotApiEmulator:
        """The emulator the person talks through."""
        return self.bot.emulator

    async def _act(self, update: dict[str, Any], *, drain: bool = True) -> Reply:
        emu = self.emulator
        sent_before = len(emu.sent)
        calls_before = len(emu.calls)
        answers_before = len(emu.callback_answers)
        await self.bot.process(update)
        if drain and self.bot.draining:  # what it wrote to the outbox arrives a moment later
            await self.bot.drain_outbox()
        reply = Reply(messages=[m for m in emu.sent[sent_before:] if m.chat_id == self.chat_id])
        edited_ids = {
            int(c.params["message_id"])
            for c in emu.calls[calls_before:]
            if c.method.startswith("editMessage")
            and "message_id" in c.params
            and str(c.params.get("chat_id")) == str(self.chat_id)
        }
        reply.edited = [emu.message(self.chat_id, mid) for mid in sorted(edited_ids)]
        reply.alerts = [
            str(a.get("text", "")) for a in emu.callback_answers[answers_before:] if a.get("text")
        ]
        return reply

    async def says(self, text: str, *, drain: bool = True) -> Reply:
        """Send a text message (commands included). With ``drain=False`` the reply holds only
        what the handler itself sent, not what it wrote to the outbox."""
        return await self._act(
            self.emulator.text(self.id, text, chat_id=self.chat_id, enqueue=False), drain=drain
        )

    async def shares_location(self, latitude: float, longitude: float) -> Reply:
        """Share a location."""
        return await self._act(
            self.emulator.location(
                self.id, latitude, longitude, chat_id=self.chat_id, enqueue=False
            )
        )

    async def sends_photo(self, content: bytes, caption: str | None = None) -> Reply:
        """Send a photo."""
        return await self._act(
            self.emulator.photo(
                self.id, content, caption=caption, chat_id=self.chat_id, enqueue=False
            )
        )

    async def sends_sticker(self) -> Reply:
        """Send a sticker (unexpected media)."""
        return await self._act(self.emulator.sticker(self.id, chat_id=self.chat_id, enqueue=False))

    async def sends_document(self, content: bytes, file_name: str, mime_type: str) -> Reply:
        """Send a file."""
        return await self._act(
            self.emulator.document(
                self.id, content, file_name, mime_type, chat_id=self.chat_id, enqueue=False
            )
        )

    def last_with_buttons(self) -> BotMessage:
        """The newest bot message in this chat that still has inline buttons."""
        for message in reversed(self.emulator.messages(self.chat_id)):
            if message.buttons and any(data for row in message.buttons for _, data in row):
                return message
        raise AssertionError("no message with buttons in this chat")

    async def taps(
        self, label: str, *, message: BotMessage | None = None, drain: bool = True
    ) -> Reply:
        """Press the button whose label contains ``label`` on the newest message with buttons."""
        target = message or self.last_with_buttons()
        for row in target.buttons:
            for text, data in row:
                if label.lower() in text.lower():
                    assert data is not None, f"{text!r} is a link, not a button to press"
                    return await self.presses(target.message_id, data, drain=drain)
        labels = [text for row in target.buttons for text, _ in row]
        raise AssertionError(f"no button {label!r} on message {target.message_id}: {labels}")

    async def presses(self, message_id: int, data: str, *, drain: bool = True) -> Reply:
        """Send callback data for a message, as a (possibly forged or stale) button press."""
        return await self._act(
            self.emulator.press(self.id, message_id, data, chat_id=self.chat_id, enqueue=False),
            drain=drain,
        )

    async def forges(self, data: str) -> Reply:
        """A forged press (a modified client): any callback data, sent from the newest bot
        message in this chat; Telegram accepts presses only on messages that exist."""
        messages = self.emulator.messages(self.chat_id)
        assert messages, f"the bot has not written in chat {self.chat_id}: nothing to press on"
        return await self.presses(messages[-1].message_id, data)


async def grant_role(
    bot: BotUnderTest, person: Person, role: str, wijk_slug: str = "schilderswijk"
) -> None:
    """Give ``person`` a role directly in the database (tests of other features use this;
    the invite flow itself is tested in test_roles.py)."""
    from sqlalchemy import select

    from buurtsignaal.storage.models import RoleGrant, Wijk

    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk).where(Wijk.slug == wijk_slug))
        assert wijk is not None, wijk_slug
        session.add(
            RoleGrant(telegram_id=person.id, role=role, wijk_id=wijk.id, display_name=person.name)
        )
    # A professional accepts the invite with /start in a private chat, so the bot may write to
    # them from then on: this shortcut of the invite flow does the same.
    bot.emulator.set_started(person.id)


async def rewrite_user_data(bot: BotUnderTest, user_id: int, change: Callable[[Any], Any]) -> None:
    """With the bot stopped: rewrite what is stored of a person's user data, as an older
    release would have left it."""
    database = Database(bot.settings.database.url)
    try:
        async with database.begin() as session:
            data = await bot_state.load_one(session, "user", str(user_id))
            await bot_state.save(session, "user", str(user_id), change(dict(data or {})))
    finally:
        await database.dispose()
