"""Hostile input: oversized ids, odd digits, far-away dates, a flooded group, blocked residents."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
import time_machine
from sqlalchemy import select

from buurtsignaal.storage.models import Moment, Resident
from tests.conftest import ADMIN_ID, Clock
from tests.harness import BotUnderTest, Person, grant_role

GROUP = -1001
HUGE = "9" * 30  # far beyond any integer column, on SQLite and PostgreSQL


def in_group(person: Person) -> Person:
    """The same user, typing in the neighbourhood group."""
    twin = Person(person.bot, person.id, person.name)
    twin.chat_id = GROUP
    return twin


# --- numbers from outside -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        f"koffie:join:{HUGE}",
        f"koffie:rsvp:{HUGE}",
        f"koffie:guests:{HUGE}:2",
        f"start:wijk:{HUGE}",
        f"mine:withdraw:{HUGE}",
        f"cases:fu:{HUGE}:yes",
        f"mcase:nz:{HUGE}:good",
        f"mref:{HUGE}:yes",
        "start:wijk:1234567890",
    ],
)
async def test_an_oversized_id_is_a_stale_button(bot: BotUnderTest, data: str) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/start")
    reply = await anna.forges(data)
    assert "werkt niet meer" in reply.alert or "kan ik niet voor je doen" in reply.alert
    assert bot.emulator.internal_errors == []
    assert "er ging aan onze kant iets mis" not in reply.text


async def test_an_admin_presses_a_forged_revoke(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    await admin.says("/rollen")
    reply = await admin.forges(f"roles:revoke:{HUGE}")
    assert "werkt niet meer" in reply.alert
    assert "er ging aan onze kant iets mis" not in reply.text


async def test_an_oversized_start_payload_is_an_ordinary_start(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    for payload in (f"k-{HUGE}", f"w-{HUGE}", f"inv-{HUGE}", HUGE, "k-²"):
        reply = await anna.says(f"/start {payload}")
        assert reply.text  # a welcome, or "this invite link is not valid"
        assert "er ging aan onze kant iets mis" not in reply.text


async def test_typed_capacity_and_dates_are_range_checked(bot: BotUnderTest) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await organiser.says("/koffieplannen")
    await organiser.says("Huiskamer")
    reply = await organiser.says("31-12-9999")
    assert "meer dan een jaar" in reply.text
    await organiser.says((dt.date.today() + dt.timedelta(days=4)).strftime("%d-%m-%Y"))
    await organiser.says("14:00")
    await organiser.taps("Eenmalig")
    await organiser.taps("Maximum instellen")
    for typed in ("²", "0", "501", "99999", "-3", "1e3"):
        reply = await organiser.says(typed)
        assert "Typ een getal van 1 tot 500" in reply.text, typed
    reply = await organiser.says("12")
    assert "12" in reply.text and "Publiceren" in reply.last.button_labels[-2]


# --- the neighbourhood group --------------------------------------------------------------


async def test_a_flooded_group_gets_one_answer_a_minute(
    bot: BotUnderTest, travel: time_machine.Traveller
) -> None:
    bot.emulator.add_group(GROUP, "Buurtgroep Schilderswijk")
    members = [in_group(bot.user(1000 + n, f"Buur{n}")) for n in range(1, 7)]
    # Sixty commands would take three minutes at Telegram's 20 messages a minute per group.
    async with asyncio.timeout(20):
        for n in range(60):
            await members[n % len(members)].says("/melden")
        for n in range(10):
            await members[n % len(members)].says("/koffie@" + bot.emulator.bot_username)
        await members[0].says("/help")
        anna = bot.user(1001, "Anna")  # meanwhile, in a private chat
        reply = await anna.says("/help")
    assert "Wat ik kan" in reply.text
    texts = [m.plain_text for m in bot.emulator.messages(GROUP)]
    assert len(texts) == 2
    assert "privégesprek" in texts[0] and "koffiemoment" in texts[1]
    travel.shift(dt.timedelta(seconds=61))
    reply = await members[2].says("/melden")
    assert "privégesprek" in reply.text
    assert len(bot.emulator.messages(GROUP)) == 3


# --- residents who blocked the bot ---------------------------------------------------------


async def unreachable_since(bot: BotUnderTest, telegram_id: int) -> dt.datetime | None:
    assert bot.db is not None
    async with bot.db.begin() as session:
        resident = await session.scalar(select(Resident).where(Resident.telegram_id == telegram_id))
    assert resident is not None
    return resident.unreachable_since


async def test_a_resident_who_blocked_the_bot_is_marked_once_and_skipped(
    clock: Clock, bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    now = clock.now
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep Schilderswijk")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await organiser.says("/koffieplannen")
    await organiser.says("Buurthuis De Mussen")
    await organiser.says((now + dt.timedelta(days=10)).strftime("%d-%m-%Y"))
    await organiser.says("10:00")
    await organiser.taps("Eenmalig")
    await organiser.taps("Geen maximum")
    await organiser.taps("Publiceren")
    anna, bram = bot.user(1001, "Anna"), bot.user(1002, "Bram")
    for person in (anna, bram):
        await person.says("/koffie")
        reply = await person.taps("Aanmelden")
        assert "aangemeld" in reply.text
    assert bot.db is not None
    async with bot.db.begin() as session:
        moment = await session.scalar(select(Moment))
    assert moment is not None

    emu.block_bot(anna.id)
    caplog.set_level(logging.INFO)
    clock.now = moment.starts_at - dt.timedelta(hours=23)  # the day before: first reminder
    await run_job(bot, "koffie:sweep")
    assert any("Herinnering" in m.plain_text for m in emu.messages(bram.id))
    assert await unreachable_since(bot, anna.id) is not None
    refused = [c for c in emu.calls if c.status == 403]
    assert len(refused) == 1
    marked = [r for r in caplog.records if "marked unreachable" in r.getMessage()]
    assert [r.levelno for r in marked] == [logging.INFO]
    # Nothing of the bot's warns (the scheduler may say a run was missed: the clock jumped).
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.name.startswith("apscheduler")
    ]

    # The morning reminder skips her: nothing is tried, nothing more is logged.
    clock.now = moment.starts_at - dt.timedelta(hours=2)
    await run_job(bot, "koffie:sweep")
    assert len([m for m in emu.messages(bram.id) if "Herinnering" in m.plain_text]) == 2
    assert len([c for c in emu.calls if c.status == 403]) == 1
    assert len([r for r in caplog.records if "marked unreachable" in r.getMessage()]) == 1

    # She unblocks the bot and writes again: reachable again.
    emu.unblock_bot(anna.id)
    reply = await anna.says("/koffie")
    assert reply.text
    assert await unreachable_since(bot, anna.id) is None


async def run_job(bot: BotUnderTest, name: str) -> None:
    assert bot.app is not None and bot.app.job_queue is not None
    jobs = bot.app.job_queue.get_jobs_by_name(name)
    assert jobs, f"no job {name}"
    await jobs[0].run(bot.app)
    await bot.drain_outbox()


async def test_going_back_to_a_flow_after_the_switch_question_goes_on(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    await anna.says("/bemiddeling")  # another flow while /melden is on screen: asked first
    reply = await anna.taps("Ga ermee verder")
    assert "in gevaar" in reply.text
    assert "er ging aan onze kant iets mis" not in reply.text
    reply = await anna.taps("Nee, niemand is in gevaar")
    assert "Bekladding" in reply.last.button_labels
