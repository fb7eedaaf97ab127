"""Updates handled side by side: different chats concurrently, one chat strictly in order, and
the database (SQLite and PostgreSQL) correct under a burst."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update

from buurtsignaal.bot.processor import ChatOrderedProcessor, order_key
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage.db import GroupCommit
from buurtsignaal.storage.models import Signup
from buurtsignaal.storage.residents import ensure_resident
from tests.conftest import Clock, make_settings
from tests.harness import BotUnderTest, grant_role
from tests.test_koffie import GROUP, moments, plan_koffie, run_job

ANSWERS = {"/help": "Wat ik kan", "/privacy": "Wie ziet wat", "hallo": "Dank je voor je bericht"}


def queue(bot: BotUnderTest, update: dict[str, Any]) -> None:
    """Put an update in the application's queue, as the inbox does when polling: from there
    python-telegram-bot hands it to the update processor."""
    assert bot.app is not None
    bot.app.update_queue.put_nowait(Update.de_json(update, bot.app.bot))


def processor(bot: BotUnderTest) -> ChatOrderedProcessor:
    assert bot.app is not None
    found = bot.app.update_processor
    assert isinstance(found, ChatOrderedProcessor)
    return found


async def all_handled(bot: BotUnderTest) -> None:
    assert bot.app is not None
    await asyncio.wait_for(bot.app.update_queue.join(), timeout=30)


async def test_one_chat_in_order_while_other_chats_go_on(bot: BotUnderTest) -> None:
    emu = bot.emulator
    for user_id, name in ((1001, "Anna"), (1002, "Bram"), (1003, "Cem")):
        emu.add_user(user_id, name)
    emu.hold("sendMessage")  # every answer waits until released
    said = [(1001, "/help"), (1001, "/privacy"), (1002, "/help"), (1001, "hallo"), (1003, "/help")]
    for user_id, text in said:
        queue(bot, emu.text(user_id, text, enqueue=False))

    # Bram and Cem are answered while Anna's first answer still hangs: chats run side by side.
    await emu.wait_until(lambda: emu.held("sendMessage") == 3)
    assert bot.app is not None and bot.app.update_queue.qsize() == 0
    for _ in range(20):  # let every queued update go as far as it can
        await asyncio.sleep(0)
    held = [c for c in emu.calls if c.method == "sendMessage" and c.status == 0]
    # One update per chat at a time: Anna's next two wait for her first, without a slot.
    assert sorted(int(c.params["chat_id"]) for c in held) == [1001, 1002, 1003]
    assert processor(bot).running == 3

    emu.release("sendMessage")
    await all_handled(bot)
    for user_id in (1001, 1002, 1003):
        answers = [m.plain_text for m in emu.messages(user_id)]
        expected = [ANSWERS[text] for who, text in said if who == user_id]
        assert len(answers) == len(expected)
        assert all(a.startswith(e) for a, e in zip(answers, expected, strict=True)), answers


async def test_concurrency_is_bounded_and_a_busy_chat_takes_one_slot(
    start_bot: Callable[[Settings], Awaitable[BotUnderTest]], sqlite_url: str
) -> None:
    settings = make_settings(sqlite_url, telegram={"concurrent_updates": 2})
    bot = await start_bot(settings)
    emu = bot.emulator
    for user_id in range(2001, 2005):
        emu.add_user(user_id, f"Buur {user_id}")
    emu.hold("sendMessage")
    for _ in range(3):  # one chat with several updates first: it takes one slot, not all
        queue(bot, emu.text(2001, "/help", enqueue=False))
    for user_id in range(2002, 2005):
        queue(bot, emu.text(user_id, "/help", enqueue=False))
    await emu.wait_until(lambda: emu.held("sendMessage") == 2)
    for _ in range(20):
        await asyncio.sleep(0)
    held = sorted(int(c.params["chat_id"]) for c in emu.calls if c.status == 0)
    assert held == [2001, 2002]  # at most two at once, and 2001 only once
    emu.release("sendMessage")
    await all_handled(bot)
    assert len(emu.sent) == 6


def test_the_order_key_is_the_chat_or_the_presser() -> None:
    from buurtsignaal.bot.emulator import BotApiEmulator

    emu = BotApiEmulator()
    emu.add_user(1001, "Anna")
    emu.add_group(GROUP, "Buurtgroep")
    private = Update.de_json(emu.text(1001, "hallo", enqueue=False), None)
    in_group = Update.de_json(emu.text(1001, "hallo", chat_id=GROUP, enqueue=False), None)
    assert order_key(private) == 1001
    assert order_key(in_group) == GROUP


async def test_fifty_residents_press_ik_kom_at_once_and_each_counts_once(
    bot: BotUnderTest, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep Schilderswijk")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=10)).date())
    first, *_ = await moments(bot)
    [announcement] = emu.messages(GROUP)
    residents = range(5001, 5051)
    assert bot.db is not None
    async with bot.db.begin() as session:  # fifty neighbours who talked to the bot before
        for user_id in residents:
            emu.add_user(user_id, f"Buur{user_id}")
            await ensure_resident(session, user_id, "nl")
    caplog.set_level(logging.WARNING)

    # Everyone presses at once, and half of them twice (a double tap).
    data = f"koffie:rsvp:{first.id}"
    pressers = [*residents, *residents[::2]]
    for user_id in pressers:
        queue(bot, emu.press(user_id, announcement.message_id, data, chat_id=GROUP, enqueue=False))
    await all_handled(bot)

    alerts = [str(a.get("text", "")) for a in emu.callback_answers[-len(pressers) :]]
    assert sum("Je bent aangemeld" in a for a in alerts) == 50
    assert sum("al aangemeld" in a for a in alerts) == 25
    async with bot.db.begin() as session:
        signed_up = await session.scalar(
            select(func.count(func.distinct(Signup.resident_id))).where(
                Signup.moment_id == first.id, Signup.cancelled_at.is_(None)
            )
        )
        rows = await session.scalar(select(func.count()).select_from(Signup))
    assert signed_up == rows == 50
    await run_job(bot, f"koffie:count:{first.id}")
    assert emu.message(GROUP, announcement.message_id).button_labels == ["Ik kom ☕ (50)"]
    # Nobody was told something went wrong, and the database never said it was locked.
    assert not [m for m in emu.sent if "er ging iets mis" in m.plain_text.lower()]
    assert not [r for r in caplog.records if "locked" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_writes_made_at_the_same_time_share_one_commit_and_its_outcome() -> None:
    """storage.db.GroupCommit: what arrives while a batch is written goes into the next one,
    each caller gets its own result, and a batch that fails fails for everyone in it."""
    batches: list[list[str]] = []

    async def serve(items: Sequence[str]) -> list[str]:
        batches.append(list(items))
        await asyncio.sleep(0)  # the others arrive while this batch is written
        if "kapot" in items:
            raise OSError("disk full")
        return [f"{item} opgeslagen" for item in items]

    commit: GroupCommit[str, str] = GroupCommit(serve)
    results = await asyncio.gather(*(commit(f"u{n}") for n in range(5)))
    assert results == [f"u{n} opgeslagen" for n in range(5)]
    assert batches == [["u0"], ["u1", "u2", "u3", "u4"]]

    batches.clear()
    outcome = await asyncio.gather(
        commit("a"), commit("kapot"), commit("c"), return_exceptions=True
    )
    assert batches == [["a"], ["kapot", "c"]]
    assert outcome[0] == "a opgeslagen"
    assert [type(o) for o in outcome[1:]] == [OSError, OSError]
