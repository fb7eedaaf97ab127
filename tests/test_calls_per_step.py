"""What a resident's step costs in Bot API calls: about one each (Telegram's limits count every
message and edit to a chat; a button press is answered for free). After a button press the
question turns into the next one in the same message; typed input gets a new message."""

from __future__ import annotations

import datetime as dt

from buurtsignaal.bot.emulator import ApiCall
from tests.conftest import Clock
from tests.harness import BotUnderTest, Person, Reply, grant_role
from tests.test_koffie import plan_koffie
from tests.test_report import PNG

BUDGET = 1.1  # chat-bound calls per resident step, on average over a whole flow


def chat_bound(calls: list[ApiCall]) -> list[str]:
    """The calls that count against Telegram's limits: aimed at a chat (answering a button
    press is not)."""
    return [c.method for c in calls if c.method != "answerCallbackQuery" and "chat_id" in c.params]


class Steps:
    """A resident's steps, each with the chat-bound calls the bot made for it."""

    def __init__(self, bot: BotUnderTest, person: Person) -> None:
        self.bot, self.person = bot, person
        self.calls: list[list[str]] = []

    async def _step(self, act: object) -> Reply:
        before = len(self.bot.emulator.calls)
        reply = await act  # type: ignore[misc]
        self.calls.append(chat_bound(self.bot.emulator.calls[before:]))
        return reply  # type: ignore[no-any-return]

    async def says(self, text: str) -> Reply:
        return await self._step(self.person.says(text))

    async def taps(self, label: str) -> Reply:
        return await self._step(self.person.taps(label))

    async def shares_location(self, latitude: float, longitude: float) -> Reply:
        return await self._step(self.person.shares_location(latitude, longitude))

    async def sends_photo(self, content: bytes) -> Reply:
        return await self._step(self.person.sends_photo(content))

    @property
    def per_step(self) -> float:
        return sum(len(c) for c in self.calls) / len(self.calls)


async def test_a_whole_report_costs_about_one_call_per_step(bot: BotUnderTest) -> None:
    anna = Steps(bot, bot.user(1001, "Anna"))
    question = (await anna.says("/melden")).last
    reply = await anna.taps("Nee, niemand is in gevaar")
    # The question became the next one: what she chose stays visible above it.
    assert [m.message_id for m in reply.edited] == [question.message_id] and not reply.messages
    shown = reply.last.plain_text
    assert shown.index("✔️ Nee, niemand is in gevaar") < shown.index("Waar gaat het over?")
    assert "Geluidsoverlast" in reply.last.button_labels
    await anna.taps("Geluidsoverlast")
    await anna.says("Elke nacht harde muziek en geschreeuw vanaf de galerij.")
    await anna.shares_location(52.0705, 4.3007)  # two: the location keyboard goes away
    await anna.taps("Vandaag")
    await anna.taps("Het gebeurt vaker")
    await anna.sends_photo(PNG)
    reply = await anna.taps("Pseudoniem")
    assert "Wat: Geluidsoverlast" in reply.text and "Foto: ja" in reply.text
    reply = await anna.taps("Melding versturen")
    assert "Wanneer: Vandaag" in reply.text and "opgeslagen als" in reply.text
    assert reply.last.buttons == []
    assert anna.per_step <= BUDGET, anna.calls


async def test_a_mediation_intake_costs_about_one_call_per_step(bot: BotUnderTest) -> None:
    await grant_role(bot, bot.user(3001, "Carla"), "bemiddelaar")
    bea = Steps(bot, bot.user(1002, "Bea"))
    await bea.says("/bemiddeling")
    await bea.taps("Ik wil bemiddeling aanvragen")
    await bea.taps("Nee")
    await bea.taps("Geluid")
    await bea.taps("Langer dan een half jaar")
    await bea.taps("Geprobeerd")
    await bea.says("Elke nacht harde muziek tot twee uur.")
    await bea.says("De bovenburen")
    await bea.says("Vermeerstraat 14")
    await bea.taps("Overslaan")
    await bea.taps("Bel me")
    await bea.says("06 1234 5678")
    await bea.taps("'s Avonds")
    reply = await bea.taps("Ja, het bemiddelingsteam mag")
    assert "Telefoon: 06 1234 5678" in reply.text or "06 1234 5678" in reply.text
    reply = await bea.taps("Aanvraag versturen")  # the coordinator's notice counts too
    assert "opgeslagen als" in reply.text
    assert bea.per_step <= BUDGET, bea.calls


async def test_a_koffie_sign_up_costs_about_one_call_per_step(
    bot: BotUnderTest, clock: Clock
) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=10)).date())
    cor = Steps(bot, bot.user(1003, "Cor"))
    await cor.says("/koffie")
    reply = await cor.taps("Aanmelden")
    assert "Je bent aangemeld" in reply.text
    await cor.taps("+1")
    assert cor.per_step <= BUDGET, cor.calls
