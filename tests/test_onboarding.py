"""/start, /help, /taal, deep links, the group, command menus and the error handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage.models import BotState, Resident
from tests.conftest import make_settings
from tests.harness import BotUnderTest, grant_role

TWO_WIJKEN = [
    {"name": "Schilderswijk", "slug": "schilderswijk", "group_chat_id": -1001},
    {"name": "Transvaal", "slug": "transvaal"},
]


async def resident(bot: BotUnderTest, telegram_id: int) -> Resident | None:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return await session.scalar(select(Resident).where(Resident.telegram_id == telegram_id))


async def test_start_welcomes_explains_privacy_and_asks_language(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/start")
    assert "Welkom bij Buurtsignaal." in reply.text
    assert "Wie ziet wat" in reply.text
    assert "Niets van wat je meldt, komt ooit in de buurtgroep." in reply.text
    assert "Welke taal heeft je voorkeur?" in reply.text  # one wijk: no wijk question
    assert reply.last.button_labels == ["Nederlands", "English", "Türkçe", "العربية", "Polski"]
    stored = await resident(bot, 1001)
    assert stored is not None and stored.wijk is not None
    assert stored.wijk.slug == "schilderswijk"

    reply = await anna.taps("English")
    assert reply.edited[0].plain_text == "Language: English."
    assert "You're all set." in reply.text
    assert "/melden: report an early signal" in reply.text
    stored = await resident(bot, 1001)
    assert stored is not None and stored.language == "en"

    reply = await anna.says("/start")  # a returning resident gets no questions
    assert "Welcome to Buurtsignaal." in reply.text
    assert "Which language" not in reply.text


async def test_taal_switches_language_everywhere(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna", language_code="en")
    reply = await anna.says("/help")
    assert "What I can do" in reply.text  # Telegram's language is used until one is chosen
    reply = await anna.says("/taal")
    reply = await anna.taps("Nederlands")
    assert reply.edited[0].plain_text == "Taal: Nederlands."
    reply = await anna.says("/help")
    assert "Wat ik kan" in reply.text
    await bot.restart()
    reply = await anna.says("/help")
    assert "Wat ik kan" in reply.text  # remembered across a restart


async def test_several_wijken_choose_and_deep_link(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    bot = await start_bot(make_settings(db_url, wijken=TWO_WIJKEN))
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/start")
    assert "In welke wijk woon je?" in reply.text
    assert reply.last.button_labels == ["Schilderswijk", "Transvaal"]
    reply = await anna.taps("Transvaal")
    assert reply.edited[0].plain_text == "Je wijk: Transvaal."
    assert "Welke taal" in reply.text
    stored = await resident(bot, 1001)
    assert stored is not None and stored.wijk is not None and stored.wijk.slug == "transvaal"

    # A deep link from the Schilderswijk group selects that wijk.
    bram = bot.user(1002, "Bram")
    reply = await bram.says("/start w-schilderswijk")
    assert "Je wijk: Schilderswijk." in reply.text
    stored = await resident(bot, 1002)
    assert stored is not None and stored.wijk is not None and stored.wijk.slug == "schilderswijk"
    # An unknown payload is ignored politely.
    cor = bot.user(1003, "Cor")
    reply = await cor.says("/start w-atlantis")
    assert "In welke wijk woon je?" in reply.text
    # A forged wijk button.
    reply = await cor.presses(reply.last.message_id, "start:wijk:999")
    assert "niet beschikbaar" in reply.alert


async def test_group_gets_only_a_deep_link(bot: BotUnderTest) -> None:
    emu = bot.emulator
    emu.add_group(-1001, "Buurtgroep Schilderswijk")
    anna = bot.user(1001, "Anna")
    anna.chat_id = -1001
    reply = await anna.says("/melden@" + emu.bot_username)
    assert "privégesprek" in reply.text
    [[(label, url)]] = reply.last.buttons
    assert label == "Open een privégesprek"
    assert url == f"https://t.me/{emu.bot_username}?start=w-schilderswijk"
    # Ordinary chatter is ignored: nothing is sent and nothing is stored about the speaker.
    reply = await anna.says("Heeft iemand een ladder te leen?")
    assert reply.messages == []
    assert bot.db is not None
    async with bot.db.begin() as session:
        rows = (await session.scalars(select(BotState).where(BotState.kind == "user"))).all()
    assert rows == []


async def test_unknown_command_and_loose_text(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/vliegtuig")
    assert "Dat commando ken ik niet" in reply.text
    reply = await anna.says("hallo?")
    assert "Wil je iets melden? Tik /melden." in reply.text
    reply = await anna.forges("taal:xx")
    assert "werkt niet meer" in reply.alert


async def test_command_menus_per_scope_and_language(bot: BotUnderTest) -> None:
    emu = bot.emulator
    private_nl = emu.commands_for({"type": "all_private_chats"}, "")
    private_en = emu.commands_for({"type": "all_private_chats"}, "en")
    groups_nl = emu.commands_for({"type": "all_group_chats"}, "")
    assert private_nl is not None and private_en is not None and groups_nl is not None
    assert {c["command"] for c in private_nl} >= {"melden", "mijnmeldingen", "taal", "help"}
    assert {"command": "melden", "description": "Meld een vroeg signaal"} in private_nl
    assert {"command": "melden", "description": "Report an early signal"} in private_en
    assert [c["command"] for c in groups_nl] == ["melden", "koffie", "bemiddeling", "help"]


async def test_a_restart_sends_only_the_menus_that_changed(bot: BotUnderTest) -> None:
    """Menus are remembered: a restart does not set them all again (five calls per person and
    language before the bot answers anyone), a new professional's menu is set once."""
    emu = bot.emulator
    published = [c for c in emu.calls if c.method == "setMyCommands"]
    assert len(published) == 2 * 5 + 5  # private and group menus, the admin's, in 5 languages
    before = len(emu.calls)
    await bot.restart()
    assert not [c for c in emu.calls[before:] if c.method.endswith("MyCommands")]
    assert emu.commands_for({"type": "all_private_chats"}, "") is not None
    wijkagent = bot.user(1002, "Willem")
    await grant_role(bot, wijkagent, "wijkagent")
    before = len(emu.calls)
    await bot.restart()
    again = [c for c in emu.calls[before:] if c.method == "setMyCommands"]
    assert len(again) == 5 and all("1002" in str(c.params["scope"]) for c in again)
    personal = emu.commands_for({"type": "chat", "chat_id": 1002}, "")
    assert personal is not None and "overzicht" in {c["command"] for c in personal}


async def test_errors_get_a_kind_answer_and_keep_the_draft(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Bekladding")
    bot.emulator.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
    reply = await anna.says("Tags op de speeltuinmuur.")
    assert "er ging aan onze kant iets mis" in reply.text
    reply = await anna.says("/melden")  # the description was kept before the send failed
    assert "we gaan verder waar je was" in reply.text
    assert "Waar was het?" in reply.text


MANY_WIJKEN = [{"name": f"Wijk {n:03d}", "slug": f"wijk-{n:03d}"} for n in range(1, 121)]


async def test_a_city_of_120_wijken_comes_a_page_at_a_time(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    """Telegram refuses a keyboard of more than 100 buttons or 8 a row: the wijken come in
    pages with "Meer" and "Terug"."""
    bot = await start_bot(make_settings(db_url, wijken=MANY_WIJKEN))
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/start")
    assert "In welke wijk woon je?" in reply.text
    first = reply.last
    assert first.button_labels[:3] == ["Wijk 001", "Wijk 002", "Wijk 003"]
    assert first.button_labels[-1] == "Meer ▶️"
    assert len(first.button_labels) == 24 + 1
    assert all(len(row) <= 8 for row in first.buttons)
    for _ in range(4):
        reply = await anna.taps("Meer")
    last = reply.edited[0]
    assert last.message_id == first.message_id  # the same question, another page
    assert last.button_labels[0] == "Wijk 097"
    assert last.button_labels[-2:] == ["Wijk 120", "◀️ Terug"]
    reply = await anna.taps("Terug")
    assert reply.edited[0].button_labels[0] == "Wijk 073"
    reply = await anna.taps("Wijk 080")
    assert reply.edited[0].plain_text == "Je wijk: Wijk 080."
    stored = await resident(bot, 1001)
    assert stored is not None and stored.wijk is not None and stored.wijk.slug == "wijk-080"
