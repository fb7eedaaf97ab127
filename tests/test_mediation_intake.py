"""/bemiddeling as a resident experiences it: the intake, the unsafe path, consent, restart."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from buurtsignaal.storage.models import GuardCount, MediationCase
from tests.harness import BotUnderTest, Person, grant_role


async def cases(bot: BotUnderTest) -> list[MediationCase]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        result = await session.scalars(
            select(MediationCase)
            .options(selectinload(MediationCase.parties), selectinload(MediationCase.history))
            .order_by(MediationCase.id)
        )
        return list(result.all())


async def until_other_party(anna: Person) -> None:
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Langer dan een half jaar")
    await anna.taps("Geprobeerd")
    await anna.says("Elke nacht harde muziek tot twee uur.")


async def test_full_intake(bot: BotUnderTest) -> None:
    coordinator = bot.user(3001, "Carla")
    await grant_role(bot, coordinator, "bemiddelaar")
    agent = bot.user(3002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    anna = bot.user(1001, "Anna")

    reply = await anna.says("/bemiddeling")
    assert "Twee getrainde vrijwillige bemiddelaars" in reply.text
    assert "niet voor geweld of bedreiging" in reply.text
    reply = await anna.taps("Ik wil bemiddeling aanvragen")
    assert "voelt iemand zich onveilig" in reply.text
    reply = await anna.taps("Nee")
    assert "Waar gaat het conflict over?" in reply.text
    assert "Tuin of parkeren" in reply.last.button_labels
    reply = await anna.taps("Geluid")
    assert "Hoe lang speelt het al?" in reply.text
    reply = await anna.taps("Langer dan een half jaar")
    assert "met je buur over gepraat" in reply.text
    reply = await anna.taps("Geprobeerd")
    assert "Wat speelt er?" in reply.text
    assert "Beschrijf gedrag, niet hoe mensen eruitzien" in reply.text
    assert "Hoogstens 1000 tekens" in reply.text
    reply = await anna.says("Ja")
    assert "Beschrijf in een paar woorden wat er speelt." in reply.text
    reply = await anna.says("x" * 1001)
    assert "Die tekst is 1001 tekens lang; het maximum is 1000." in reply.text
    reply = await anna.says("Elke nacht <harde> muziek & gebonk tot twee uur.")
    assert "Namen zijn niet nodig" in reply.text
    reply = await anna.says("De bovenburen op nummer 14 <3e verdieping>")
    assert "Straat en huisnummer van de andere partij?" in reply.text
    assert reply.last.button_labels == ["Overslaan"]
    reply = await anna.says("Vermeerstraat 14")
    assert "Jouw straat en huisnummer?" in reply.text
    assert "nooit de andere partij" in reply.text
    reply = await anna.taps("Overslaan")
    assert "Hoe mag het bemiddelingsteam je bereiken?" in reply.text
    reply = await anna.taps("Bel me")
    assert "telefoonnummer" in reply.text
    reply = await anna.says("bel me maar")
    assert "Dat lijkt geen telefoonnummer" in reply.text
    reply = await anna.says("06 1234 5678")
    assert "Wanneer ben je het best bereikbaar?" in reply.text
    reply = await anna.taps("'s Avonds")
    assert "Mag het bemiddelingsteam contact met je opnemen" in reply.text
    reply = await anna.taps("Ja, het bemiddelingsteam mag")
    summary = reply.last.plain_text
    for line in (
        "Over: Geluid",
        "Speelt al: Langer dan een half jaar",
        "Met de buur gepraat: Geprobeerd, maar het lukte niet",
        "Wat speelt er: Elke nacht <harde> muziek & gebonk tot twee uur.",
        "Andere partij: De bovenburen op nummer 14 <3e verdieping>",
        "Straat en huisnummer andere partij: Vermeerstraat 14",
        "Jouw straat en huisnummer: —",
        "Contact: Bel me: 06 1234 5678",
        "Best bereikbaar: 's Avonds",
    ):
        assert line in summary
    # Both addresses can still be changed at the summary (and "Overslaan" clears one again).
    await anna.taps("Jouw adres")
    reply = await anna.says("Vermeerstraat 12")
    assert "Jouw straat en huisnummer: Vermeerstraat 12" in reply.text
    await anna.taps("Adres andere partij")
    reply = await anna.taps("Overslaan")
    assert "Straat en huisnummer andere partij: —" in reply.text
    await anna.taps("Adres andere partij")
    await anna.says("Vermeerstraat 14")
    await anna.taps("Wat speelt er")
    reply = await anna.says("Elke nacht <harde> muziek & gebonk tot twee uur, al maanden.")
    assert "Wat speelt er: Elke nacht <harde> muziek & gebonk tot twee uur, al maanden." in (
        reply.text
    )
    reply = await anna.taps("Aanvraag versturen")
    assert "opgeslagen als BM-2026-0001" in reply.text or "opgeslagen als BM-" in reply.text
    assert "binnen 5 werkdagen" in reply.text

    [case] = await cases(bot)
    assert case.stage == "aangemeld"
    assert (case.topic, case.duration, case.talked) == ("geluid", "lang", "geprobeerd")
    assert case.other_party == "De bovenburen op nummer 14 <3e verdieping>"
    assert case.situation == "Elke nacht <harde> muziek & gebonk tot twee uur, al maanden."
    assert (case.requester_address, case.other_address) == ("Vermeerstraat 12", "Vermeerstraat 14")
    [party] = case.parties
    assert (party.number, party.status, party.contact_via) == (1, "agreed", "telefoon")
    assert party.phone == "06 1234 5678" and party.reachable == "avond"
    assert party.consent_at is not None
    assert [e.kind for e in case.history] == ["created"]

    # The coordinator hears of it; the wijkagent hears nothing.
    note = bot.emulator.messages(3001)[-1].plain_text
    assert f"Nieuwe aanvraag voor bemiddeling {case.reference} (Geluid)" in note
    assert "bovenburen" not in note and "Vermeerstraat" not in note and "muziek" not in note
    assert bot.emulator.messages(3002) == []


async def test_unsafe_means_police_route_and_nothing_stored(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    reply = await anna.taps("Ja, iemand voelt zich onveilig")
    assert "Bel 112" in reply.text and "0900-8844" in reply.text
    assert "Slachtofferhulp" in reply.text
    assert await cases(bot) == []
    reply = await anna.says("hallo")
    assert "Wil je iets melden? Tik /melden." in reply.text  # the flow has ended


async def test_no_consent_no_case(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_other_party(anna)
    await anna.says("Buren links")
    await anna.taps("Overslaan")
    await anna.taps("Overslaan")
    await anna.taps("Via deze bot")
    await anna.taps("Maakt niet uit")
    reply = await anna.taps("Nee")
    assert "Zonder je toestemming" in reply.text
    assert await cases(bot) == []


async def test_cancel_edit_and_restart(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_other_party(anna)
    await bot.restart(crash=True)
    reply = await anna.says("Het gezin op de hoek")
    assert "Straat en huisnummer van de andere partij?" in reply.text
    await anna.taps("Overslaan")
    await bot.restart(crash=True)
    reply = await anna.says("Hoefkade 3")
    assert "Hoe mag het bemiddelingsteam je bereiken?" in reply.text
    await anna.taps("Via deze bot")
    await bot.restart()
    await anna.taps("Overdag")
    await anna.taps("Ja, het bemiddelingsteam mag")

    await anna.taps("Over")
    reply = await anna.taps("Huisdieren")
    assert "Over: Huisdieren" in reply.text
    await anna.taps("Contact")
    await anna.taps("Bel me")
    reply = await anna.says("+31 6 12345678")
    assert "Contact: Bel me: +31 6 12345678" in reply.text
    await anna.taps("Contact")
    reply = await anna.taps("Via deze bot")  # the number is dropped again
    assert "Contact: Via deze bot" in reply.text
    reply = await anna.says("/bemiddeling")
    assert "we gaan verder waar je was" in reply.text

    reply = await anna.says("/annuleren")
    assert "geannuleerd" in reply.text
    assert await cases(bot) == []


async def test_not_now(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/bemiddeling")
    reply = await anna.taps("Nu niet")
    assert "altijd bemiddeling aanvragen" in reply.text
    assert await cases(bot) == []


async def test_what_is_going_on_is_behaviour_first(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Eén tot zes maanden")
    await anna.taps("Nee, nog niet")
    reply = await anna.says("Die Marokkaanse buren zijn altijd luidruchtig")
    assert "wat deden mensen, waar en wanneer?" in reply.text
    assert reply.last.button_labels == ["Mijn tekst zo houden"]
    reply = await anna.taps("Mijn tekst zo houden")
    assert "Wie is de andere partij?" in reply.text
    await anna.says("De buren van nummer 3")
    await anna.taps("Overslaan")
    await anna.taps("Overslaan")
    await anna.taps("Via deze bot")
    await anna.taps("Overdag")
    reply = await anna.taps("Ja, het bemiddelingsteam mag")
    assert "Wat speelt er: Die Marokkaanse buren zijn altijd luidruchtig" in reply.text
    assert "Jouw straat en huisnummer: —" in reply.text
    await anna.taps("Aanvraag versturen")
    [case] = await cases(bot)
    assert case.situation == "Die Marokkaanse buren zijn altijd luidruchtig"
    assert (case.requester_address, case.other_address) == (None, None)
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert (await session.scalars(select(GuardCount.count))).all() == [1]


# --- a request is stored once, however the reply fares ------------------------------------


async def intake_at_summary(anna: Person) -> None:
    await until_other_party(anna)
    await anna.says("Buren links")
    await anna.taps("Overslaan")
    await anna.taps("Overslaan")
    await anna.taps("Via deze bot")
    await anna.taps("Maakt niet uit")
    await anna.taps("Ja, het bemiddelingsteam mag")


async def test_lost_reference_send_again_shows_the_one_request(bot: BotUnderTest) -> None:
    coordinator = bot.user(3001, "Carla")
    await grant_role(bot, coordinator, "bemiddelaar")
    anna = bot.user(1001, "Anna")
    await intake_at_summary(anna)

    # The message with the reference fails, also after the rate limiter's retries.
    bot.emulator.fail_next("editMessageText", status=500, times=4)
    reply = await anna.taps("Aanvraag versturen")
    assert "BM-" not in reply.text
    assert "Wat je al had ingevuld is bewaard" in reply.text
    [case] = await cases(bot)
    # The coordinator hears of it all the same, once.
    told = [m for m in bot.emulator.messages(3001) if case.reference in m.plain_text]
    assert len(told) == 1

    reply = await anna.taps("Aanvraag versturen")
    assert f"Je aanvraag was al opgeslagen als {case.reference}" in reply.text
    assert len(await cases(bot)) == 1
    told = [m for m in bot.emulator.messages(3001) if case.reference in m.plain_text]
    assert len(told) == 1
    reply = await anna.says("/bemiddeling")
    assert "Twee getrainde vrijwillige bemiddelaars" in reply.text  # a new request


async def test_killed_after_storing_the_request_resumes_with_the_one_reference(
    bot: BotUnderTest,
) -> None:
    anna = bot.user(1001, "Anna")
    await intake_at_summary(anna)

    await bot.killed_after(lambda: anna.taps("Aanvraag versturen"))
    [case] = await cases(bot)
    reply = await anna.says("/bemiddeling")
    assert f"Je aanvraag was al opgeslagen als {case.reference}" in reply.text
    assert len(await cases(bot)) == 1

    # Sending the old summary once more stores nothing either.
    reply = await anna.taps("Aanvraag versturen")
    assert f"Je aanvraag was al opgeslagen als {case.reference}" in reply.text
    assert len(await cases(bot)) == 1
