"""The inbox: every update is stored before Telegram is told it arrived, handled from the inbox
and marked; one that cannot be read or handled is set aside without stalling the rest.

These tests poll the emulator over HTTP through ``bot.inbox``, as ``buurtsignaal run`` does
(tests/test_cli.py kills a real process in the middle of its work).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from telegram import Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
)

from buurtsignaal.bot import logs
from buurtsignaal.bot.app import build_application
from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.bot.inbox import ALLOWED_UPDATES, MAX_ATTEMPTS, Inbox, polling
from buurtsignaal.bot.persistence import Finish
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage import inbox as stored
from buurtsignaal.storage import migrate
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.models import InboxUpdate
from tests.conftest import make_settings
from tests.harness import BotUnderTest

# What each message gets as an answer (the first words, in Dutch).
ANSWERS = {
    "/help": "Wat ik kan",
    "/privacy": "Wie ziet wat",
    "hallo": "Dank je voor je bericht",
    "/mijnmeldingen": "Je hebt nog geen meldingen",
}
PEOPLE = {1001: "Anna", 1002: "Bram", 1003: "Cem"}
# Ten messages from three people, interleaved, as they come in within a second.
SAID = [
    (1001, "/help"),
    (1002, "/privacy"),
    (1001, "hallo"),
    (1003, "/mijnmeldingen"),
    (1002, "/help"),
    (1001, "/privacy"),
    (1003, "hallo"),
    (1002, "hallo"),
    (1003, "/help"),
    (1001, "/mijnmeldingen"),
]
# Telegram would refuse nothing here, but python-telegram-bot cannot read a date in words.
UNREADABLE = {
    "message": {
        "message_id": 77,
        "date": "yesterday",
        "chat": {"id": 1001, "type": "private", "first_name": "Anna"},
        "from": {"id": 1001, "is_bot": False, "first_name": "Anna"},
        "text": "hallo",
    }
}


@contextlib.asynccontextmanager
async def online(emulator: BotApiEmulator, settings: Settings) -> AsyncIterator[Inbox]:
    """The bot, polling the emulator through the inbox (as `buurtsignaal run`); stops cleanly."""
    await asyncio.to_thread(migrate.upgrade, settings.database.url)
    application = build_application(
        settings,
        token=emulator.token,
        base_url=emulator.base_url,
        base_file_url=emulator.base_file_url,
    )
    async with polling(application, wait=0.2) as inbox:
        yield inbox


async def handled(inbox: Inbox) -> None:
    """Wait until the application finished everything the inbox handed it."""
    for _ in range(500):
        if not inbox.in_hand:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{inbox.in_hand} update(s) still being handled after 5 s")


async def rows(settings: Settings) -> list[InboxUpdate]:
    """Everything in the inbox, by update id."""
    db = Database(settings.database.url)
    try:
        async with db.begin() as session:
            found = await session.scalars(select(InboxUpdate).order_by(InboxUpdate.update_id))
            return list(found.all())
    finally:
        await db.dispose()


def answers_per_chat(emulator: BotApiEmulator) -> dict[int, list[str]]:
    """Which message each answer in a private chat belongs to, in the order they were sent."""
    found: dict[int, list[str]] = {}
    for message in emulator.sent:
        said = [text for text, start in ANSWERS.items() if message.plain_text.startswith(start)]
        found.setdefault(message.chat_id, []).append(said[0] if said else message.plain_text)
    return found


def expected_per_chat() -> dict[int, list[str]]:
    """The answers each person should get: one per message, in the order they sent them."""
    found: dict[int, list[str]] = {}
    for user_id, text in SAID:
        found.setdefault(user_id, []).append(text)
    return found


async def test_a_crash_after_fetching_loses_nothing_and_answers_each_message_once(
    emulator: BotApiEmulator, settings: Settings
) -> None:
    for user_id, name in PEOPLE.items():
        emulator.add_user(user_id, name)
    for user_id, text in SAID[:6]:
        emulator.text(user_id, text)

    # The bot fetches six messages and stores them; the next getUpdates tells Telegram they
    # arrived. Four more come in and are stored, but the bot never asks again: it is killed
    # before it handled any of the ten.
    bot = await BotUnderTest(emulator, settings).start()
    assert bot.app is not None
    inbox = Inbox(bot.app, wait=0)
    assert len(await inbox.fetch()) == 6
    for user_id, text in SAID[6:]:
        emulator.text(user_id, text)
    assert len(await inbox.fetch()) == 4
    assert emulator.unconfirmed_updates == 4  # the first six are confirmed to Telegram
    await bot.crash()
    assert emulator.sent == []
    stored_rows = await rows(settings)
    assert [(r.state, r.chat_id) for r in stored_rows] == [("new", u) for u, _ in SAID]

    # After the restart every message is answered exactly once, each chat in its own order,
    # although Telegram sends the last four again.
    async with online(emulator, settings):
        await emulator.wait_until(lambda: len(emulator.sent) >= len(SAID), timeout=15)
        await emulator.wait_until(lambda: emulator.unconfirmed_updates == 0)
    assert answers_per_chat(emulator) == expected_per_chat()
    assert len(emulator.sent) == len(SAID)
    after = await rows(settings)
    assert [(r.state, r.attempts, r.raw) for r in after] == [("done", 1, None)] * len(SAID)


async def test_an_update_that_cannot_be_read_is_set_aside_and_the_rest_is_answered(
    emulator: BotApiEmulator, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(sqlite_url)
    emulator.add_user(1001, "Anna")
    emulator.text(1001, "/help")
    bad = emulator.enqueue_raw(UNREADABLE)
    emulator.text(1001, "/privacy")
    caplog.set_level(logging.INFO)

    async with online(emulator, settings):
        await emulator.wait_until(lambda: len(emulator.sent) >= 2, timeout=15)
        # It is not fetched again and again: the batch was confirmed and polling goes on.
        polls = len(emulator.calls_to("getUpdates"))
        await emulator.wait_until(lambda: len(emulator.calls_to("getUpdates")) >= polls + 3)
        assert emulator.unconfirmed_updates == 0

    assert answers_per_chat(emulator) == {1001: ["/help", "/privacy"]}
    states = {r.update_id: (r.state, r.error, r.raw) for r in await rows(settings)}
    state, error, raw = states.pop(bad["update_id"])
    assert state == "failed"
    assert error is not None and error.startswith("cannot be read: ")
    assert raw == bad  # kept, for whoever looks into it
    assert [s for s, _, _ in states.values()] == ["done", "done"]
    about = [r for r in caplog.records if f"update {bad['update_id']}" in r.getMessage()]
    assert len(about) == 1
    assert "set aside" in about[0].getMessage()
    assert about[0].levelno == logging.ERROR


async def test_an_update_that_stopped_the_bot_three_times_is_set_aside(
    emulator: BotApiEmulator, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An update whose handling never finished, three times (each time the process died), is
    not tried a fourth time; what came after it is answered."""
    settings = make_settings(sqlite_url)
    await asyncio.to_thread(migrate.upgrade, sqlite_url)
    emulator.add_user(1001, "Anna")
    poison = emulator.text(1001, "/help", enqueue=False)
    db = Database(sqlite_url)
    try:
        async with db.begin() as session:
            await stored.store(session, [stored.Received(poison["update_id"], 1001, poison)])
        for _ in range(MAX_ATTEMPTS):
            async with db.begin() as session:
                await stored.begin_attempt(session, poison["update_id"])
    finally:
        await db.dispose()
    emulator.text(1001, "/privacy")

    async with online(emulator, settings):
        await emulator.wait_until(lambda: len(emulator.sent) >= 1, timeout=15)
    assert answers_per_chat(emulator) == {1001: ["/privacy"]}
    first = (await rows(settings))[0]
    assert (first.state, first.attempts) == ("failed", MAX_ATTEMPTS)
    assert first.error is not None and "did not finish in 3 attempts" in first.error
    assert len([r for r in caplog.records if "set aside" in r.getMessage()]) == 1


async def test_handling_that_raises_is_tried_again_and_then_set_aside(
    emulator: BotApiEmulator, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What still raises after the error handler (the inbox's own wrapper) is tried again, up
    to three times in all; an attempt that succeeds marks the update done."""
    bot = await BotUnderTest(emulator, make_settings(sqlite_url)).start()
    try:
        assert bot.app is not None and bot.db is not None
        emulator.add_user(1001, "Anna")
        inbox = Inbox(bot.app, wait=0)
        for text in ("/help", "/privacy"):
            emulator.text(1001, text)
        first, second = await inbox.fetch()
        failures: list[int] = []

        async def fails_once(finish: Finish) -> None:
            failures.append(first.update_id)
            if len(failures) == 1:
                raise OSError("disk full")

        async def always_fails(finish: Finish) -> None:
            raise RuntimeError("boom")

        await inbox.handle(Update.de_json(first.raw, bot.app.bot), fails_once)
        await inbox.handle(Update.de_json(second.raw, bot.app.bot), always_fails)
        async with bot.db.begin() as session:
            done = await stored.get(session, first.update_id)
            failed = await stored.get(session, second.update_id)
        assert done is not None and (done.state, done.attempts, done.raw) == ("done", 2, None)
        assert failed is not None and (failed.state, failed.attempts) == ("failed", 3)
        assert failed.error == "handling failed 3 times, the last time with RuntimeError: boom"
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    finally:
        await bot.stop()


def _update_types(handler: BaseHandler[Any, Any, Any]) -> set[str]:
    """The update types a handler answers (none for one that sees every update)."""
    if isinstance(handler, ConversationHandler):
        inner = [*handler.entry_points, *handler.fallbacks]
        inner += [h for hs in handler.states.values() for h in hs]
        return set().union(*(_update_types(h) for h in inner))
    if isinstance(handler, CallbackQueryHandler):
        return {"callback_query"}
    if isinstance(handler, CommandHandler | MessageHandler):
        return {"message"}  # edits are not asked for: an edited command is not run again
    entry = getattr(handler, "entry", None)
    if isinstance(entry, BaseHandler):  # the flow engine's "leave this flow?" wrapper
        return _update_types(entry)
    if isinstance(handler, TypeHandler) and handler.type is Update:
        return set()  # sees every update that comes (the language lookup)
    raise AssertionError(f"add the update types of {handler!r} to bot.inbox.ALLOWED_UPDATES")


async def test_only_the_update_types_the_bot_handles_are_asked_for(
    emulator: BotApiEmulator, sqlite_url: str
) -> None:
    emulator.add_user(1001, "Anna")
    edited = emulator.enqueue_raw(
        {"edited_message": {**emulator.text(1001, "/help", enqueue=False)["message"]}}
    )
    emulator.text(1001, "/privacy")
    async with online(emulator, make_settings(sqlite_url)) as inbox:
        await emulator.wait_until(lambda: len(emulator.sent) >= 1, timeout=15)
        handled = set().union(
            *(_update_types(h) for hs in inbox.application.handlers.values() for h in hs)
        )
    assert handled == set(ALLOWED_UPDATES) == {"message", "callback_query"}
    assert emulator.allowed_updates == {"message", "callback_query"}
    assert all(
        call.params["allowed_updates"] == ["message", "callback_query"]
        for call in emulator.calls_to("getUpdates")
    )
    # Telegram keeps the other types to itself: the edit never arrives, nor is stored.
    assert answers_per_chat(emulator) == {1001: ["/privacy"]}
    assert edited["update_id"] not in {r.update_id for r in await rows(make_settings(sqlite_url))}


async def test_handled_updates_keep_no_text_and_leave_the_inbox_after_a_day(
    emulator: BotApiEmulator, db_url: str, travel: time_machine.Traveller
) -> None:
    settings = make_settings(db_url)
    emulator.add_user(1001, "Anna")
    emulator.text(1001, "/help")
    bad = emulator.enqueue_raw(UNREADABLE)
    async with online(emulator, settings) as inbox:
        await emulator.wait_until(lambda: len(emulator.sent) >= 1, timeout=15)
        await emulator.wait_until(lambda: emulator.unconfirmed_updates == 0)
        await handled(inbox)
        queue = inbox.application.job_queue
        assert queue is not None
        (cleanup,) = queue.get_jobs_by_name("inbox:cleanup")
        assert [(r.state, r.raw is None) for r in await rows(settings)] == [
            ("done", True),  # the text of the message is gone as soon as it was answered
            ("failed", False),
        ]
        travel.shift(dt.timedelta(hours=23))
        await cleanup.run(inbox.application)
        assert len(await rows(settings)) == 2
        travel.shift(dt.timedelta(hours=2))
        await cleanup.run(inbox.application)
        assert [r.update_id for r in await rows(settings)] == [bad["update_id"]]
        travel.shift(dt.timedelta(days=6))
        await cleanup.run(inbox.application)
        assert await rows(settings) == []


def test_a_line_repeated_many_times_a_minute_is_written_a_few_times_and_counted(
    travel: time_machine.Traveller,
) -> None:
    written: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record.getMessage())

    handler = Collect()
    handler.addFilter(logs.FoldRepeats(handler))
    logger = logging.getLogger("tests.flood")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for _ in range(5593):
            logger.critical("Something went wrong while getting updates")
        logger.warning("another line")
        assert written == ["Something went wrong while getting updates"] * logs.REPEAT_LIMIT + [
            "another line"
        ]
        travel.shift(dt.timedelta(seconds=61))
        logger.info("a minute later")
        assert written[-2:] == [
            "the line 'Something went wrong while getting updates' was repeated "
            f"{5593 - logs.REPEAT_LIMIT} more times in 60 s (not shown)",
            "a minute later",
        ]
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


async def test_forgetting_someone_removes_their_updates_that_were_set_aside(
    bot: BotUnderTest,
) -> None:
    assert bot.db is not None
    anna, bram = bot.user(1001, "Anna"), bot.user(1002, "Bram")
    kept = [
        bot.emulator.text(p.id, "mijn adres is Dorpsstraat 1", enqueue=False) for p in (anna, bram)
    ]
    async with bot.db.begin() as session:
        await stored.store(
            session, [stored.Received(u["update_id"], u["message"]["chat"]["id"], u) for u in kept]
        )
        for update in kept:
            await stored.set_aside(
                session, update["update_id"], "cannot be read", now=dt.datetime.now(dt.UTC)
            )

    await anna.says("/vergeetmij")
    reply = await anna.taps("Ja, verwijder mijn gegevens")
    assert "je persoonsgegevens zijn verwijderd" in reply.edited[-1].plain_text
    assert [r.chat_id for r in await rows(bot.settings)] == [bram.id]


async def test_the_inbox_fetches_no_more_than_it_has_room_for(
    emulator: BotApiEmulator, sqlite_url: str
) -> None:
    """Back-pressure: with at most three updates in hand, the inbox asks Telegram for three,
    leaves the rest with Telegram, and takes them once the first are handled."""
    bot = await BotUnderTest(emulator, make_settings(sqlite_url)).start()
    try:
        assert bot.app is not None
        emulator.add_user(1001, "Anna")
        inbox = Inbox(bot.app, wait=0, max_in_hand=3)
        bot.app.inboxes = (inbox,)
        for _ in range(5):
            emulator.text(1001, "/help")
        first = await inbox.fetch()
        assert len(first) == 3
        assert emulator.calls_to("getUpdates")[-1].params["limit"] == 3
        await inbox.hand_over(first)
        await emulator.wait_until(lambda: inbox.in_hand == 0, timeout=15)
        rest = await inbox.fetch()
        assert len(rest) == 2
    finally:
        await bot.stop()
