"""/melden as a resident experiences it, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from buurtsignaal.bot.emulator import BotMessage
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage.models import BotState, Signal, SignalEvent
from tests.conftest import make_settings
from tests.harness import BotUnderTest, Person

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x00\xc0" + b"\x00" * 64
REFERENCE = re.compile(r"BS-\d{4}-\d{4}")


async def signals(bot: BotUnderTest) -> list[Signal]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(Signal).order_by(Signal.id))).all())


async def until_description(anna: Person, category: str = "Geluidsoverlast") -> None:
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps(category)


async def test_full_report_in_dutch(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")

    reply = await anna.says("/melden")
    assert "is er nu iemand in gevaar" in reply.text
    assert reply.last.button_labels == ["Ja, er is nu gevaar", "Nee, niemand is in gevaar"]

    reply = await anna.taps("Nee, niemand is in gevaar")
    # The question turns into the next one (one call): the answer stays visible above it, and
    # its buttons are replaced by the next question's.
    assert not reply.messages
    assert "✔️ Nee, niemand is in gevaar" in reply.edited[0].plain_text
    assert "Ja, er is nu gevaar" not in reply.edited[0].button_labels
    assert "Waar gaat het over?" in reply.text
    assert "Kinderen zonder toezicht" in reply.last.button_labels

    reply = await anna.taps("Geluidsoverlast")
    assert "Beschrijf gedrag, niet hoe mensen eruitzien" in reply.text

    reply = await anna.says("Elke nacht harde muziek en geschreeuw vanaf de galerij.")
    assert "Waar was het?" in reply.text
    assert reply.last.reply_markup is not None
    assert reply.last.reply_markup["keyboard"][0][0]["request_location"] is True

    reply = await anna.shares_location(52.0705, 4.3007)
    assert "Locatie ontvangen" in reply.text
    assert reply.messages[0].reply_markup == {"remove_keyboard": True}
    assert "Wanneer gebeurde het?" in reply.text

    reply = await anna.taps("Vandaag")
    assert "Hoe vaak gebeurt dit?" in reply.text

    reply = await anna.taps("Het gebeurt vaker")
    assert "Fotografeer geen mensen" in reply.text

    reply = await anna.sends_photo(PNG)
    assert "Foto ontvangen" in reply.text
    assert "Pseudoniem (aanbevolen)" in reply.text

    reply = await anna.taps("Pseudoniem")
    summary = reply.last.plain_text
    for line in (
        "Wijk: Schilderswijk",
        "Wat: Geluidsoverlast",
        "Beschrijving: Elke nacht harde muziek en geschreeuw vanaf de galerij.",
        "Waar: locatie gedeeld (52.07050, 4.30070)",
        "Wanneer: Vandaag",
        "Hoe vaak: Het gebeurt vaker",
        "Foto: ja",
        "Contact: pseudoniem",
    ):
        assert line in summary

    reply = await anna.taps("Melding versturen")
    assert reply.alert == "Melding verstuurd"
    match = REFERENCE.search(reply.text)
    assert match, reply.text
    assert "Zij zien niet wie je bent" in reply.text

    [stored] = await signals(bot)
    assert stored.reference == match.group(0)
    assert stored.category == "geluidsoverlast"
    assert stored.description == "Elke nacht harde muziek en geschreeuw vanaf de galerij."
    assert (stored.latitude, stored.longitude) == (52.0705, 4.3007)
    assert stored.location_text is None
    assert (stored.occurred, stored.frequency) == ("today", "recurring")
    assert stored.photo_file_id
    assert stored.contactable is False and stored.contact_name is None
    assert stored.status == "nieuw"
    assert stored.created_at.tzinfo is not None
    assert bot.db is not None
    async with bot.db.begin() as session:
        events = (await session.scalars(select(SignalEvent))).all()
        drafts = await session.scalar(
            select(func.count()).select_from(BotState).where(BotState.kind == "conversation")
        )
    assert [(e.kind, e.to_status) for e in events] == [("created", "nieuw")]
    assert drafts == 0  # the finished conversation leaves no state behind

    reply = await anna.says("/mijnmeldingen")
    assert f"{stored.reference} · Geluidsoverlast · " in reply.text
    assert "Nieuw" in reply.text


async def test_full_report_in_english_with_typed_place_and_contact(bot: BotUnderTest) -> None:
    john = bot.user(1002, "John", language_code="en-GB")
    bot.emulator.add_user(1002, "John", username="john_nl", language_code="en-GB")

    reply = await john.says("/melden")
    assert "is anyone in danger right now?" in reply.text
    await john.taps("No, nobody is in danger")
    reply = await john.taps("Graffiti")
    assert "Please describe behaviour" in reply.text
    await john.says("Someone sprayed tags on the bus shelter.")
    reply = await john.says("Hobbemaplein, bus stop")
    assert "Place noted." in reply.text
    reply = await john.taps("Earlier")
    assert "When was it, roughly?" in reply.text
    reply = await john.says("Last Saturday night")
    assert "How often does this happen?" in reply.text
    await john.taps("This is the first time")
    await john.taps("Skip")
    reply = await john.taps("You may contact me")
    assert "Where: Hobbemaplein, bus stop" in reply.text
    assert "When: Earlier: Last Saturday night" in reply.text
    assert "Photo: no" in reply.text
    reply = await john.taps("Send report")
    assert "Your report has been saved as" in reply.text
    assert "They can see that you are willing to be contacted." in reply.text

    [stored] = await signals(bot)
    assert stored.category == "bekladding"
    assert stored.location_text == "Hobbemaplein, bus stop"
    assert stored.latitude is None
    assert (stored.occurred, stored.occurred_text) == ("earlier", "Last Saturday night")
    assert stored.photo_file_id is None
    assert stored.contactable is True
    assert stored.contact_name == "John (@john_nl)"

    reply = await john.says("/mijnmeldingen")
    assert "Graffiti" in reply.text and "New" in reply.text


async def test_danger_means_112_and_nothing_is_stored(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    reply = await anna.taps("Ja, er is nu gevaar")
    assert "Bel nu 112" in reply.text
    assert "0900-8844" in reply.text
    assert await signals(bot) == []
    # The conversation is over: ordinary text is not taken as a description.
    reply = await anna.says("hallo")
    assert "Wil je iets melden? Tik /melden." in reply.text


async def test_cancel_midway_stores_nothing(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna)
    await anna.says("De buren schreeuwen al de hele avond.")
    reply = await anna.says("/annuleren")
    assert "Melding geannuleerd. Er is niets opgeslagen." in reply.text
    assert reply.last.reply_markup == {"remove_keyboard": True}
    assert await signals(bot) == []
    reply = await anna.says("/annuleren")
    assert "niets om te annuleren" in reply.text
    reply = await anna.says("/melden")
    assert "is er nu iemand in gevaar" in reply.text  # a fresh start


async def complete_after_description(anna: Person) -> None:
    await anna.says("Dorpsstraat 12")
    await anna.taps("Nu")
    await anna.taps("Dit is de eerste keer")
    await anna.taps("Overslaan")
    await anna.taps("Pseudoniem")


async def test_change_fields_at_the_summary(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna, "Vernieling")
    await anna.says("Fietsenrek kapotgetrapt.")
    await complete_after_description(anna)

    reply = await anna.taps("Beschrijving")
    assert "Wat is er gebeurd?" in reply.text
    reply = await anna.says("Twee fietsenrekken kapotgetrapt bij de school.")
    assert "Beschrijving: Twee fietsenrekken kapotgetrapt bij de school." in reply.text

    reply = await anna.taps("Waar")
    reply = await anna.shares_location(52.07, 4.31)
    assert "Waar: locatie gedeeld (52.07000, 4.31000)" in reply.text

    await anna.taps("Wat")
    reply = await anna.taps("Bekladding")
    assert "Wat: Bekladding" in reply.text

    await anna.taps("Wanneer")
    await anna.taps("Eerder")
    reply = await anna.says("gisteravond")
    assert "Wanneer: Eerder: gisteravond" in reply.text

    await anna.taps("Foto")
    reply = await anna.sends_photo(PNG)
    assert "Foto: ja" in reply.text

    await anna.taps("Melding versturen")
    [stored] = await signals(bot)
    assert stored.category == "bekladding"
    assert stored.description == "Twee fietsenrekken kapotgetrapt bij de school."
    assert (stored.latitude, stored.location_text) == (52.07, None)
    assert stored.occurred_text == "gisteravond"
    assert stored.photo_file_id


async def test_restart_mid_conversation_loses_nothing(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna, "Burenruzie")
    await anna.says("Buren hebben elke dag ruzie over de heg.")

    await bot.restart()  # a clean stop and start
    reply = await anna.says("Tuinpad achter nummer 4")
    assert "Wanneer gebeurde het?" in reply.text

    await bot.restart(crash=True)  # killed without any shutdown work
    await anna.taps("Vandaag")
    await anna.taps("Het gebeurt vaker")
    await anna.taps("Overslaan")
    reply = await anna.taps("Pseudoniem")
    assert "Beschrijving: Buren hebben elke dag ruzie over de heg." in reply.text
    assert "Waar: Tuinpad achter nummer 4" in reply.text

    await bot.restart(crash=True)
    reply = await anna.taps("Melding versturen")
    assert REFERENCE.search(reply.text)
    [stored] = await signals(bot)
    assert stored.category == "burenruzie"
    assert stored.location_text == "Tuinpad achter nummer 4"


async def test_resuming_with_melden_asks_the_current_question_again(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna)
    reply = await anna.says("/melden")
    assert "we gaan verder waar je was" in reply.text
    assert "Wat is er gebeurd?" in reply.text
    reply = await anna.says("/help")  # other commands still work mid-report
    assert "/mijnmeldingen" in reply.text
    reply = await anna.says("Feest met harde bas tot diep in de nacht.")
    assert "Waar was het?" in reply.text


async def test_stale_double_tapped_and_forged_buttons_change_nothing(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    safety = anna.last_with_buttons()
    safety_no = _data(safety, "Nee")
    await anna.taps("Nee, niemand is in gevaar")
    category = anna.last_with_buttons()
    vandalism = _data(category, "Vernieling")
    await anna.taps("Geluidsoverlast")

    # The safety question again (a double tap): politely refused, still at the description.
    reply = await anna.presses(safety.message_id, safety_no)
    assert "werkt niet meer" in reply.alert
    assert reply.messages == []
    # A category button from the spent question.
    reply = await anna.presses(category.message_id, vandalism)
    assert "werkt niet meer" in reply.alert
    # Forged data: an unknown step, another draft's nonce, garbage.
    for data in ("melden:deadbeef:summary:send", "melden:00000000:category:anders", "x" * 64):
        reply = await anna.presses(category.message_id, data)
        assert "werkt niet meer" in reply.alert
        assert reply.messages == []

    reply = await anna.says("Harde muziek bij de buren.")
    assert "Waar was het?" in reply.text  # the draft is intact and continues
    await complete_after_description(anna)
    send = anna.last_with_buttons()
    send_data = _data(send, "versturen")
    first = await anna.presses(send.message_id, send_data)
    second = await anna.presses(send.message_id, send_data)  # the double tap
    match = REFERENCE.search(first.text)
    assert match
    # Not stored again: the second press shows the reference the first one stored.
    assert f"Je melding was al opgeslagen als {match.group(0)}" in second.text
    assert len(await signals(bot)) == 1


async def test_html_emoji_and_over_long_input(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await until_description(anna, "Uitschelden of intimidatie")

    too_long = "Lawaai " * 200  # 1400 characters
    reply = await anna.says(too_long)
    assert "1399 tekens" in reply.text and "1000" in reply.text
    assert "Wat is er gebeurd?" not in reply.text  # the same step, not a new question
    reply = await anna.says("Hoi")
    assert "in een paar woorden" in reply.text

    tricky = 'Ze riepen <b>"ga weg"</b> & gooiden 🥚🥚 naar <deur> — R&D <3'
    reply = await anna.says(tricky)
    assert "Waar was het?" in reply.text
    reply = await anna.says("<Plein> & 🎪")
    await anna.taps("Nu")
    await anna.taps("Dit is de eerste keer")
    await anna.taps("Overslaan")
    reply = await anna.taps("Pseudoniem")
    summary = reply.last
    assert f"Beschrijving: {tricky}" in summary.plain_text  # shown exactly as typed
    assert "&lt;b&gt;" in (summary.text or "")  # because it was escaped in the HTML
    await anna.taps("Melding versturen")
    [stored] = await signals(bot)
    assert stored.description == tricky
    assert stored.location_text == "<Plein> & 🎪"
    assert all(call.status == 200 for call in bot.emulator.calls)


async def test_unexpected_media_gets_a_clear_answer_and_the_step_again(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    reply = await anna.says("nee hoor")
    assert "Kies een van de knoppen" in reply.text
    assert "is er nu iemand in gevaar" in reply.text
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Anders")
    reply = await anna.sends_sticker()
    assert "Stuur dit als tekstbericht" in reply.text
    assert "Wat is er gebeurd?" in reply.text
    await anna.says("Kinderen van een jaar of zes spelen 's avonds laat alleen op straat.")
    reply = await anna.sends_photo(PNG)
    assert "Deel een locatie of typ een straat of plek" in reply.text
    reply = await anna.says("📍 Deel mijn locatie")
    assert "Je app deelde geen locatie" in reply.text
    await anna.says("Speeltuin Jacob Catsstraat")
    await anna.taps("Vandaag")
    await anna.taps("Het gebeurt vaker")
    reply = await anna.says("geen foto")
    assert "Stuur een foto, of druk op Overslaan" in reply.text
    reply = await anna.sends_document(PNG, "speeltuin.png", "image/png")  # an image as a file
    assert "Foto ontvangen" in reply.text
    await anna.taps("Pseudoniem")
    await anna.taps("Melding versturen")
    [stored] = await signals(bot)
    assert stored.photo_file_id
    assert stored.category == "anders"


async def test_my_reports_shows_only_my_own(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    bram = bot.user(1003, "Bram")
    reply = await anna.says("/mijnmeldingen")
    assert "nog geen meldingen" in reply.text
    for category in ("Geluidsoverlast", "Vernieling"):
        await until_description(anna, category)
        await anna.says("Iets wat ik zag gebeuren.")
        await complete_after_description(anna)
        await anna.taps("Melding versturen")
    await until_description(bram, "Bekladding")
    await bram.says("Tekst op de muur van de moskee.")
    await complete_after_description(bram)
    await bram.taps("Melding versturen")

    mine = (await anna.says("/mijnmeldingen")).text
    references = [s.reference for s in await signals(bot)]
    assert references[0] in mine and references[1] in mine
    assert references[2] not in mine
    assert "Bekladding" not in mine
    # Newest first.
    assert mine.index(references[1]) < mine.index(references[0])


async def test_several_wijken_ask_which_one(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    wijken = [
        {"name": "Schilderswijk", "slug": "schilderswijk"},
        {"name": "Transvaal", "slug": "transvaal"},
    ]
    bot = await start_bot(make_settings(db_url, wijken=wijken))
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    reply = await anna.taps("Nee, niemand is in gevaar")
    assert "Over welke wijk gaat het?" in reply.text
    await anna.taps("Transvaal")
    await anna.taps("Vernieling")
    await anna.says("Ruit van het buurthuis ingegooid.")
    await complete_after_description(anna)
    await anna.taps("Melding versturen")
    [stored] = await signals(bot)
    assert stored.wijk.slug == "transvaal"


async def test_a_city_of_120_wijken_pages_the_wijk_question(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    """The wijk question of /melden pages through 120 wijken within Telegram's limits; a page
    button of an older draft changes nothing."""
    wijken = [{"name": f"Wijk {n:03d}", "slug": f"wijk-{n:03d}"} for n in range(1, 121)]
    bot = await start_bot(make_settings(db_url, wijken=wijken))
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    reply = await anna.taps("Nee, niemand is in gevaar")
    assert "Over welke wijk gaat het?" in reply.text
    question = reply.last
    assert len(question.button_labels) == 25 and question.button_labels[-1] == "Meer ▶️"
    stale_page = _data(question, "Meer")
    reply = await anna.taps("Meer")
    assert reply.edited[0].button_labels[0] == "Wijk 025"
    assert reply.edited[0].button_labels[-2:] == ["◀️ Terug", "Meer ▶️"]
    await anna.taps("Wijk 030")
    await anna.taps("Vernieling")
    await anna.says("Ruit van het buurthuis ingegooid.")
    await complete_after_description(anna)
    await anna.taps("Melding versturen")
    [stored] = await signals(bot)
    assert stored.wijk.slug == "wijk-030"
    await anna.says("/melden")
    reply = await anna.presses(question.message_id, stale_page)
    assert "Deze knop werkt niet meer" in reply.alert


def _data(message: BotMessage, label: str) -> str:
    for row in message.buttons:
        for text, data in row:
            if label in text and data:
                return data
    raise AssertionError(label)


# --- a report is stored once, however the reply fares -------------------------------------


async def at_summary(anna: Person) -> None:
    await until_description(anna)
    await anna.says("Elke nacht harde muziek vanaf de galerij.")
    await complete_after_description(anna)


async def test_lost_reference_send_again_shows_the_one_reference(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await at_summary(anna)
    summary = anna.last_with_buttons()
    send = _data(summary, "versturen")

    # The reference, added to the summary, fails, also after the rate limiter's retries.
    bot.emulator.fail_next("editMessageText", status=502, times=4)
    reply = await anna.taps("Melding versturen")
    assert not REFERENCE.search(reply.text)
    assert "Wat je al had ingevuld is bewaard; probeer het zo nog eens." in reply.text
    [stored] = await signals(bot)

    # What the error promised is true: the same summary is still there and can be sent again.
    assert anna.last_with_buttons().message_id == summary.message_id
    reply = await anna.taps("Melding versturen")
    assert f"Je melding was al opgeslagen als {stored.reference}" in reply.text
    assert "er is niets dubbel verstuurd" in reply.text
    assert len(await signals(bot)) == 1
    assert bot.emulator.message(anna.chat_id, summary.message_id).buttons == []

    # The draft is gone: /melden starts a new report, and an old send button stores nothing.
    reply = await anna.says("/melden")
    assert "is er nu iemand in gevaar" in reply.text
    reply = await anna.presses(summary.message_id, send)
    assert f"Je melding was al opgeslagen als {stored.reference}" in reply.text
    assert len(await signals(bot)) == 1


async def test_killed_after_storing_the_report_resumes_with_the_one_reference(
    bot: BotUnderTest,
) -> None:
    anna = bot.user(1001, "Anna")
    await at_summary(anna)

    await bot.killed_after(lambda: anna.taps("Melding versturen"))
    [stored] = await signals(bot)

    # After the restart Anna still sees only her summary; she goes on with /melden.
    reply = await anna.says("/melden")
    assert f"Je melding was al opgeslagen als {stored.reference}" in reply.text
    assert "controleer hem even" not in reply.text  # not the summary again
    assert len(await signals(bot)) == 1
    reply = await anna.says("/melden")
    assert "is er nu iemand in gevaar" in reply.text  # the next report is a new one


async def test_killed_after_storing_then_the_summary_is_sent_again(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await at_summary(anna)

    await bot.killed_after(lambda: anna.taps("Melding versturen"))
    reply = await anna.taps("Melding versturen")  # the button she still sees
    [stored] = await signals(bot)
    assert f"Je melding was al opgeslagen als {stored.reference}" in reply.text
