"""A professional refers a resident to mediation only with the resident's consent in the bot;
a sleutelfiguur reports and asks for mediation on behalf of someone else."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from buurtsignaal.storage.models import GuardCount, MediationCase, Signal
from tests.conftest import this_year
from tests.harness import BotUnderTest, Person, grant_role


def texts(bot: BotUnderTest, chat_id: int) -> list[str]:
    return [m.plain_text for m in bot.emulator.messages(chat_id)]


async def report(person: Person, description: str = "Ruzie over de schutting, al weken.") -> None:
    await person.says("/melden")
    await person.taps("Nee, niemand is in gevaar")
    await person.taps("Burenruzie")
    await person.says(description)
    await person.says("Tuinpad achter nummer 4")
    await person.taps("Vandaag")
    await person.taps("Het gebeurt vaker")
    await person.taps("Overslaan")


async def mediation_until_other(person: Person) -> None:
    await person.taps("Ik wil bemiddeling aanvragen")
    await person.taps("Nee")


async def finish_mediation(person: Person, other: str = "De buren van nummer 6") -> None:
    await person.taps("Tuin of parkeren")
    await person.taps("Langer dan een half jaar")
    await person.taps("Geprobeerd")
    await person.says("De schutting wordt steeds verzet, en er wordt geschreeuwd.")
    await person.says(other)
    await person.taps("Overslaan")
    await person.taps("Overslaan")
    await person.taps("Via deze bot")
    await person.taps("'s Avonds")
    await person.taps("Ja, het bemiddelingsteam mag")
    await person.taps("Aanvraag versturen")


async def test_referral_needs_the_residents_yes(bot: BotUnderTest) -> None:
    year = this_year()  # references carry the year they were made in
    agent = bot.user(3002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    carla = bot.user(3001, "Carla")
    await grant_role(bot, carla, "bemiddelaar")
    anna = bot.user(1001, "Anna")
    await report(anna)
    await anna.taps("Pseudoniem")
    await anna.taps("Melding versturen")

    await agent.says(f"/melding BS-{year}-0001")
    reply = await agent.taps("Bemiddeling voorstellen")
    assert reply.alert == "Voorstel verstuurd"
    proposal = bot.emulator.messages(1001)[-1]
    assert (
        f"De wijkagent stelt buurtbemiddeling voor bij je melding BS-{year}-0001"
        in proposal.plain_text
    )
    assert "Wim" not in proposal.plain_text
    assert bot.emulator.messages(3001) == []  # nothing reaches the coordinator yet

    assert "Twee getrainde vrijwillige bemiddelaars" in proposal.plain_text
    reply = await anna.taps("Ja, ik wil bemiddeling aanvragen", message=proposal)
    # The proposal explained mediation; the intake goes straight to the safety question.
    assert "Twee getrainde vrijwillige bemiddelaars" not in reply.last.plain_text
    assert "Er volgen een paar korte vragen" in reply.text
    assert "voelt iemand zich onveilig" in reply.last.plain_text
    await anna.taps("Nee")
    await finish_mediation(anna)
    explained = [m for m in texts(bot, 1001) if "Twee getrainde vrijwillige bemiddelaars" in m]
    assert len(explained) == 1
    assert bot.db is not None
    async with bot.db.begin() as session:
        case = await session.scalar(select(MediationCase))
        signal = await session.scalar(select(Signal).options(selectinload(Signal.history)))
    assert case is not None and signal is not None
    assert (case.referred_by, case.signal_id) == (3002, signal.id)
    kinds = [e.kind for e in signal.history]
    assert "mediation_proposed" in kinds and "mediation_accepted" in kinds
    # The proposal's buttons are spent; replaying them changes nothing.
    reply = await anna.presses(proposal.message_id, f"mref:{signal.id}:yes")
    assert "werkt niet meer" in reply.alert
    # Someone else cannot answer Anna's proposal.
    bram = bot.user(1002, "Bram")
    await bram.says("/start")
    reply = await bram.forges(f"mref:{signal.id}:yes")
    assert "werkt niet meer" in reply.alert


async def test_referral_declined(bot: BotUnderTest) -> None:
    year = this_year()  # references carry the year they were made in
    agent = bot.user(3002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    anna = bot.user(1001, "Anna")
    await report(anna)
    await anna.taps("Pseudoniem")
    await anna.taps("Melding versturen")
    await agent.says(f"/melding BS-{year}-0001")
    await agent.taps("Bemiddeling voorstellen")
    reply = await anna.taps("Nee, liever niet")
    assert "er wordt niets doorgegeven" in reply.text
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert (await session.scalars(select(MediationCase))).all() == []


async def test_a_key_figure_reports_and_asks_on_behalf_of_someone(bot: BotUnderTest) -> None:
    fatima = bot.user(2020, "Fatima")
    await grant_role(bot, fatima, "sleutelfiguur")
    await fatima.says("/melden")
    reply = await fatima.taps("Nee, niemand is in gevaar")
    assert "Meld je voor jezelf, of namens iemand anders?" in reply.text
    await fatima.taps("Namens iemand anders")
    await fatima.taps("Burenruzie")
    await fatima.says("Mijn buurvrouw wordt steeds uitgescholden als ze haar fiets stalt.")
    await fatima.says("Fietsenstalling Hobbemaplein")
    await fatima.taps("Vandaag")
    await fatima.taps("Het gebeurt vaker")
    reply = await fatima.taps("Overslaan")
    assert "Contact: jij, namens iemand anders" in reply.text  # no contact question
    await fatima.taps("Melding versturen")

    await fatima.says("/bemiddeling")
    await fatima.taps("Ik wil bemiddeling aanvragen")
    await fatima.taps("Nee")
    reply = await fatima.taps("Namens iemand anders")
    assert "Waar gaat het conflict over?" in reply.text
    await finish_mediation(fatima)

    assert bot.db is not None
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal))
        case = await session.scalar(select(MediationCase))
    assert signal is not None and case is not None
    assert signal.on_behalf and signal.contactable
    assert signal.contact_name == "sleutelfiguur Fatima"
    assert case.on_behalf

    anna = bot.user(1001, "Anna")  # an ordinary resident is not asked
    await anna.says("/melden")
    reply = await anna.taps("Nee, niemand is in gevaar")
    assert "namens iemand anders" not in reply.text


async def test_guard_on_the_other_party_in_mediation(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/bemiddeling")
    await mediation_until_other(anna)
    await anna.taps("Geluid")
    await anna.taps("Eén tot zes maanden")
    await anna.taps("Nee, nog niet")
    await anna.says("Elke avond gebonk op de vloer tot laat.")
    reply = await anna.says("Het Turkse gezin boven ons")
    assert "wat deden mensen, waar en wanneer?" in reply.text
    reply = await anna.says("Het gezin op de tweede verdieping, nummer 14")
    assert "Straat en huisnummer van de andere partij?" in reply.text
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert (await session.scalars(select(GuardCount.count))).all() == [1]


async def test_the_reporter_is_asked_about_mediation_once_whoever_presses(
    bot: BotUnderTest,
) -> None:
    """Both of the Koppel pair look at the report; the second press does not ask again."""
    year = this_year()
    agent, worker = bot.user(3002, "Wim"), bot.user(3003, "Olga")
    await grant_role(bot, agent, "wijkagent")
    await grant_role(bot, worker, "opbouwwerker")
    anna = bot.user(1001, "Anna")
    await report(anna)
    await anna.taps("Pseudoniem")
    await anna.taps("Melding versturen")
    await worker.says(f"/melding BS-{year}-0001")
    stale_view = worker.last_with_buttons()

    await agent.says(f"/melding BS-{year}-0001")
    reply = await agent.taps("Bemiddeling voorstellen")
    assert reply.alert == "Voorstel verstuurd"
    asked = len(texts(bot, 1001))
    reply = await worker.taps("Bemiddeling voorstellen", message=stale_view)
    assert reply.alert == "Bemiddeling is al voorgesteld; de melder heeft nog niet geantwoord."
    assert len(texts(bot, 1001)) == asked
    # A fresh view no longer offers it; after Anna's "no" it may be proposed again.
    reply = await worker.says(f"/melding BS-{year}-0001")
    assert "🤝 Bemiddeling voorstellen" not in reply.last.button_labels
    await anna.taps("Nee, liever niet")
    reply = await worker.says(f"/melding BS-{year}-0001")
    assert "🤝 Bemiddeling voorstellen" in reply.last.button_labels
