"""Hostile input: oversized ids, odd digits, far-away dates, a flooded group, blocked residents."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import time_machine

from tests.conftest import ADMIN_ID
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
    reply = await anna.presses(1, data)
    assert "werkt niet meer" in reply.alert or "kan ik niet voor je doen" in reply.alert
    assert bot.emulator.internal_errors == []
    assert "er ging aan onze kant iets mis" not in reply.text


async def test_an_admin_presses_a_forged_revoke(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    reply = await admin.presses(1, f"roles:revoke:{HUGE}")
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
    bot: BotUnderTest, travel: time_machine.Coordinates
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
