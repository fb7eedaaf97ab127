"""One flow at a time: starting another asks first, and typed text and /annuleren always go to
the flow whose question is on screen."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from buurtsignaal.conversations.flow import ACTIVE
from buurtsignaal.storage.models import MediationCase, Signal
from tests.harness import BotUnderTest
from tests.test_cases import melden, pair
from tests.test_report import until_description


async def stored(bot: BotUnderTest, model: type) -> list[Any]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(model))).all())


async def test_a_second_flow_asks_before_leaving_the_first(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna)

    reply = await anna.says("/bemiddeling")
    assert "Je bent nog bezig met je melding (/melden)" in reply.text
    assert reply.last.button_labels == ["Bewaar voor later", "Stop ermee", "Ga ermee verder"]
    assert "bemiddelaars" not in reply.text  # nothing of the mediation yet

    reply = await anna.taps("Bewaar voor later")
    assert "Met /melden ga je later verder" in reply.text
    assert "Twee getrainde vrijwillige bemiddelaars" in reply.text  # the mediation starts
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Langer dan een half jaar")
    await anna.taps("Geprobeerd")
    # Typed while the mediation question is on screen: it answers that, not the report.
    reply = await anna.says("Elke avond harde muziek van de bovenburen.")
    assert "Wie is de andere partij?" in reply.text

    # /annuleren stops the mediation on screen, not the report kept for later.
    reply = await anna.says("/annuleren")
    assert "Aanvraag voor bemiddeling geannuleerd" in reply.text
    assert "Melding geannuleerd" not in reply.text
    assert await stored(bot, MediationCase) == []

    reply = await anna.says("/melden")
    assert "we gaan verder waar je was" in reply.text
    assert "Wat is er gebeurd?" in reply.text
    reply = await anna.says("Elke nacht harde muziek.")
    assert "Waar was het?" in reply.text
    assert await stored(bot, Signal) == []


async def test_stopping_the_first_flow_forgets_it(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna)
    await anna.says("/bemiddeling")
    reply = await anna.taps("Stop ermee")
    assert "Twee getrainde vrijwillige bemiddelaars" in reply.text
    await anna.says("/annuleren")
    reply = await anna.says("/melden")
    assert "is er nu iemand in gevaar" in reply.text  # a fresh report, not the old one


async def test_going_back_keeps_the_first_flow(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna)
    await anna.says("/bemiddeling")
    reply = await anna.taps("Ga ermee verder")
    assert "Wat is er gebeurd?" in reply.text
    reply = await anna.says("Elke nacht harde muziek.")
    assert "Waar was het?" in reply.text


async def test_text_typed_while_the_switch_question_waits_is_not_taken(
    bot: BotUnderTest,
) -> None:
    """The report waits for its description behind "what to do with your report?": text typed
    then is not stored as the description, but shown back; the question still counts."""
    anna = bot.user(1001, "Anna")
    await until_description(anna)
    await anna.says("/bemiddeling")
    reply = await anna.says("Ik wil eigenlijk iets anders vragen.")
    assert "Kies eerst met de knoppen hierboven wat je wilt met je melding (/melden)" in reply.text
    assert "Ik wil eigenlijk iets anders vragen." in reply.text  # shown back, not lost
    assert "Waar was het?" not in reply.text  # not taken as the description
    reply = await anna.taps("Ga ermee verder")
    assert "Wat is er gebeurd?" in reply.text
    reply = await anna.says("Elke nacht harde muziek.")
    assert "Waar was het?" in reply.text


async def test_a_pending_answer_does_not_swallow_melden_and_expires(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    await anna.says("/start")  # anything; anna's side does not matter here
    reply = await anna.says("/mijnmeldingen")
    assert reference in reply.text

    # Anna taps "Antwoorden" on the relayed message, then starts /melden instead of typing.
    await bram.says("Wanneer begint het meestal?")
    relayed = anna.last_with_buttons()
    await anna.taps("Antwoorden", message=relayed)
    reply = await anna.says("/melden")
    assert "Je bent nog bezig met je tekst bij een melding" in reply.text
    reply = await anna.taps("Stop ermee")
    assert "is er nu iemand in gevaar" in reply.text

    # A pending answer expires: after half an hour, /melden starts at once.
    await anna.says("/annuleren")
    await anna.taps("Antwoorden", message=relayed)
    assert bot.app is not None
    data = bot.app.user_data[anna.id]
    earlier = dt.datetime.fromisoformat(data[ACTIVE]["at"]) - dt.timedelta(hours=1)
    data[ACTIVE]["at"] = earlier.isoformat()  # as if it waited an hour
    reply = await anna.says("/melden")
    assert "bezig met" not in reply.text
    assert "is er nu iemand in gevaar" in reply.text


async def test_text_typed_after_an_answer_expired_is_shown_back_not_sent(
    bot: BotUnderTest,
) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    await bram.says("Wanneer begint het meestal?")
    await anna.taps("Antwoorden")
    assert bot.app is not None
    data = bot.app.user_data[anna.id]
    earlier = dt.datetime.fromisoformat(data[ACTIVE]["at"]) - dt.timedelta(minutes=31)
    data[ACTIVE]["at"] = earlier.isoformat()
    bram_before = len(bot.emulator.messages(bram.chat_id))

    reply = await anna.says("Rond middernacht <meestal>")
    assert "wachtte al meer dan 30 minuten" in reply.text
    assert "Rond middernacht <meestal>" in reply.text  # shown back, so nothing is lost
    assert len(bot.emulator.messages(bram.chat_id)) == bram_before  # and not sent
    reply = await anna.says("Nog iets")
    assert "wachtte" not in reply.text  # the step is over: ordinary text again
