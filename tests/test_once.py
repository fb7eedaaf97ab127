"""Finish steps that happen once: publishing a koffiemoment, adding to a report, relaying a
professional's reply. Double taps, lost answers and a restart in between store and send
nothing twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from buurtsignaal.storage.models import Moment, Series, SignalEvent
from tests.conftest import Clock
from tests.harness import BotUnderTest, Person, grant_role
from tests.test_follow_up import melden, pair


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


async def additions(bot: BotUnderTest, kind: str) -> list[SignalEvent]:
    """History entries of ``kind`` (a reply counts also when marked undelivered)."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        query = select(SignalEvent).where(SignalEvent.kind.startswith(kind))
        return list(await session.scalars(query))


def received(bot: BotUnderTest, person: Person, words: str) -> int:
    return sum(words in m.plain_text for m in bot.emulator.messages(person.chat_id))


async def test_an_addition_sent_again_after_a_restart_is_stored_and_passed_on_once(
    bot: BotUnderTest,
) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)
    await anna.says("/mijnmeldingen")
    await anna.taps("Aanvullen")
    extra = "Vannacht weer tot vier uur."
    await bot.killed_after(lambda: anna.says(extra))  # stored; the answer never came
    assert len(await additions(bot, "addition")) == 1
    reply = await anna.says(extra)  # she sends it again
    assert f"Je aanvulling op {reference} was al opgeslagen" in reply.text
    assert len(await additions(bot, "addition")) == 1
    # The killed process decided to pass it on (in the outbox); the new one does, once.
    assert received(bot, bram, extra) == 1
    reply = await anna.says("/mijnmeldingen")  # nothing hangs
    assert reference in reply.text


async def test_a_reply_sent_again_after_a_restart_is_relayed_once(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    question = "Hoe laat begint de muziek meestal?"
    await bot.killed_after(lambda: bram.says(question))
    reply = await bram.says(question)
    assert f"Je bericht aan de melder van {reference} was al verstuurd" in reply.text
    assert len(await additions(bot, "reply_out")) == 1
    assert received(bot, anna, question) == 1  # decided before the kill, sent after the restart


async def test_a_reply_whose_answer_is_lost_is_relayed_once(bot: BotUnderTest) -> None:
    """Telegram applies every send but its answers are lost: the handler sends no relay
    itself (the interactive lane's retries repeated it), and the professional's second try,
    after he saw nothing, decides nothing new. (The outbox's own later retry of a send whose
    answer was lost is its one at-least-once window, see bot/outbox.py.)"""
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    question = "Hoe laat begint de muziek meestal?"
    bot.emulator.lose_response_next("sendMessage", times=99)
    await bram.says(question)
    bot.emulator.clear_failures()
    await bram.says(question)  # he saw nothing, so he sends it again
    assert received(bot, anna, question) == 1
    assert len(await additions(bot, "reply_out")) == 1


async def test_a_message_to_a_party_and_the_answer_sent_again_after_a_restart_arrive_once(
    bot: BotUnderTest,
) -> None:
    """The mediation desk keeps its relays per step as the signal desk does: stored and passed
    on once, also when the process dies after storing and the text is sent again."""
    from buurtsignaal.storage.models import MediationEvent
    from tests.test_mediation_cases import ask_mediation, coordinator, open_case

    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    await open_case(carla, reference)
    await carla.taps("Bericht aan partij 1")
    question = "Schikt donderdagavond om acht uur?"
    await bot.killed_after(lambda: carla.says(question))
    reply = await carla.says(question)  # she saw nothing, so she sends it again
    assert f"Verstuurd naar partij 1 van {reference}" in reply.text
    assert received(bot, anna, question) == 1

    await anna.taps("Antwoorden")
    answer = "Donderdag om acht kan ik."
    await bot.killed_after(lambda: anna.says(answer))
    reply = await anna.says(answer)
    assert "Je antwoord is doorgegeven aan het bemiddelingsteam" in reply.text
    assert received(bot, carla, answer) == 1
    assert bot.db is not None
    async with bot.db.begin() as session:
        kinds = list(await session.scalars(select(MediationEvent.kind)))
    assert (kinds.count("message_out"), kinds.count("message_in")) == (1, 1)
