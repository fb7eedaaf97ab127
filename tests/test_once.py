"""Finish steps that happen once: publishing a koffiemoment, adding to a report, relaying a
professional's reply. Double taps, lost answers and a restart in between store and send
nothing twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from storage.models import Moment, Series
from tests.conftest import Clock
from tests.harness import BotUnderTest, Person, grant_role


async def count(bot: BotUnderTest, model: type) -> int:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def at_publish(organiser: Person, clock: Clock) -> tuple[int, str]:
    """Up to the summary; the message id and data of its "Publiceren" button."""
    await organiser.says("/koffieplannen")
    await organiser.says("Buurthuis De Mussen")
    await organiser.says((clock.now + dt.timedelta(days=4)).strftime("%d-%m-%Y"))
    await organiser.says("10:00")
    await organiser.taps("Eenmalig")
    reply = await organiser.taps("Geen maximum")
    summary = reply.last
    [data] = [d for row in summary.buttons for label, d in row if "Publiceren" in label]
    assert data is not None
    return summary.message_id, data


async def test_publish_pressed_twice_publishes_once(bot: BotUnderTest, clock: Clock) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    summary, publish = await at_publish(organiser, clock)
    reply = await organiser.taps("Publiceren")
    assert "Gepubliceerd" in reply.text
    reply = await organiser.presses(summary, publish)  # the double tap
    assert "al gepubliceerd" in reply.text and "Buurthuis De Mussen" in reply.text
    assert await count(bot, Series) == 1 and await count(bot, Moment) == 1


async def test_publish_answer_lost_then_pressed_again_publishes_once(
    bot: BotUnderTest, clock: Clock
) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    summary, publish = await at_publish(organiser, clock)
    bot.emulator.lose_response_next("sendMessage", times=99)
    await organiser.taps("Publiceren")
    bot.emulator.clear_failures()
    reply = await organiser.presses(summary, publish)
    assert "al gepubliceerd" in reply.text
    assert await count(bot, Series) == 1


async def test_killed_after_publishing_then_pressed_again_publishes_once(
    bot: BotUnderTest, clock: Clock
) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    summary, publish = await at_publish(organiser, clock)
    await bot.killed_after(lambda: organiser.taps("Publiceren"))
    assert await count(bot, Series) == 1
    reply = await organiser.presses(summary, publish)
    assert "al gepubliceerd" in reply.text
    reply = await organiser.says("/koffieplannen")  # the next one is a new plan
    assert "Waar?" in reply.text
    assert await count(bot, Series) == 1
