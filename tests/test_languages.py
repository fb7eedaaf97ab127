"""Residents in Turkish, Arabic and Polish, tried through the real bot: the language comes from
Telegram until one is chosen with /taal, every message reads in it, and in Arabic (right to
left) a reference keeps its punctuation because filled-in values are isolated."""

from __future__ import annotations

import re

from buurtsignaal.bot.i18n import FSI, PDI, Translator
from tests.harness import BotUnderTest, grant_role

REFERENCE = re.compile(r"BS-\d{4}-\d{4}")
# Words that only a Dutch text has: none may reach a resident who reads Turkish.
DUTCH = re.compile(r"\b(je|jij|jouw|een|het|melding|niet|wijkagent|bemiddeling|Dank)\b")


async def test_a_turkish_resident_reports_in_turkish_throughout(bot: BotUnderTest) -> None:
    ayse = bot.user(2001, "Ayşe", language_code="tr")
    agent = bot.user(3001, "Wim")
    await grant_role(bot, agent, "wijkagent")

    reply = await ayse.says("/start")  # Telegram's language, before anything is chosen
    assert "Buurtsignaal'e hoş geldiniz." in reply.text
    assert "Kim neyi görür" in reply.text
    assert "Hangi dili tercih edersiniz?" in reply.text
    assert reply.last.button_labels == ["Nederlands", "English", "Türkçe", "العربية", "Polski"]
    reply = await ayse.taps("Türkçe")
    assert reply.edited[0].plain_text == "Dil: Türkçe."
    assert "Her şey hazır." in reply.text
    assert "/melden: erken bir sinyal bildirin" in reply.text

    reply = await ayse.says("/melden")
    assert "şu anda tehlikede olan biri var mı?" in reply.text
    assert reply.last.button_labels == ["Evet, şu anda tehlike var", "Hayır, kimse tehlikede değil"]
    reply = await ayse.taps("Hayır, kimse tehlikede değil")
    assert "Konu nedir?" in reply.text
    reply = await ayse.taps("Gürültü rahatsızlığı")
    assert "davranışlarını anlatın" in reply.text
    reply = await ayse.says("Her gece galeride yüksek sesle müzik ve bağırış.")
    assert "Nerede oldu?" in reply.text
    reply = await ayse.says("Hobbemaplein, otobüs durağı")
    assert "Yer not edildi." in reply.text
    reply = await ayse.taps("Bugün")
    assert "Bu ne sıklıkla oluyor?" in reply.text
    await ayse.taps("Daha sık oluyor")
    reply = await ayse.taps("Atla")
    assert "Profesyoneller sizinle iletişime geçebilir mi?" in reply.text
    reply = await ayse.taps("Takma adla")
    assert "Ne: Gürültü rahatsızlığı" in reply.text
    assert "Nerede: Hobbemaplein, otobüs durağı" in reply.text
    reply = await ayse.taps("Bildirimi gönder")
    assert reply.alert == "Bildirim gönderildi"
    match = REFERENCE.search(reply.text)
    assert match is not None
    assert f"Bildiriminiz {match.group(0)} numarasıyla kaydedildi." in reply.text
    assert "Kim olduğunuzu görmezler." in reply.text

    reply = await ayse.says("/mijnmeldingen")
    assert f"{match.group(0)} · Gürültü rahatsızlığı · " in reply.text
    assert "Yeni" in reply.text

    # Everything Ayşe was sent reads in Turkish; the wijkagent reads the same report in Dutch.
    for message in bot.emulator.messages(ayse.chat_id):
        words = re.sub(r"/\w+", "", message.plain_text)  # the commands stay Dutch
        assert not DUTCH.search(words), message.plain_text
    alert = bot.emulator.messages(agent.chat_id)[-1].plain_text
    assert f"Nieuwe melding {match.group(0)}" in alert


async def test_the_telegram_language_is_used_until_taal_chooses_another(bot: BotUnderTest) -> None:
    piotr = bot.user(2002, "Piotr", language_code="pl-PL")
    reply = await piotr.says("/taal")
    assert reply.last.button_labels[-1] == "Polski"
    ayse = bot.user(2003, "Ayşe", language_code="tr-TR")
    reply = await ayse.says("/help")
    assert "Neler yapabilirim" in reply.text
    await ayse.says("/taal")
    reply = await ayse.taps("Nederlands")
    assert reply.edited[0].plain_text == "Taal: Nederlands."
    reply = await ayse.says("/help")
    assert "Wat ik kan" in reply.text


async def test_an_arabic_report_keeps_its_reference_whole(bot: BotUnderTest) -> None:
    """Right to left, "BS-2026-0001." would be reordered around its hyphens and full stop: the
    reference arrives wrapped in isolates (FSI ... PDI), and still bold as a whole."""
    ar = Translator("ar")  # the labels as the Arabic catalog has them (Dutch while it has none)
    salma = bot.user(2004, "Salma", language_code="ar")
    reply = await salma.says("/start")
    assert "العربية" in reply.last.button_labels
    await salma.taps("العربية")
    await salma.says("/melden")
    await salma.taps(ar("No, nobody is in danger"))
    await salma.taps(ar("Noise nuisance"))
    await salma.says("موسيقى عالية كل ليلة على الشرفة")
    await salma.says("Hobbemaplein 12")
    await salma.taps(ar("Right now"))
    await salma.taps(ar("This is the first time"))
    await salma.taps(ar("Skip"))
    reply = await salma.taps(ar("Pseudonymous"))
    assert f"{FSI}Hobbemaplein 12{PDI}" in reply.last.plain_text  # what she typed, isolated
    reply = await salma.taps(ar("Send report"))
    reference = REFERENCE.search(reply.text)
    assert reference is not None
    # The reference comes in the summary, edited (one call per step).
    message = next(
        m for m in (*reply.messages, *reply.edited) if reference.group(0) in m.plain_text
    )
    assert f"<b>{FSI}{reference.group(0)}{PDI}</b>" in (message.text or "")
    assert message.plain_text.count(FSI) == message.plain_text.count(PDI)


async def test_command_menus_in_every_language(bot: BotUnderTest) -> None:
    emu = bot.emulator
    turkish = emu.commands_for({"type": "all_private_chats"}, "tr")
    assert turkish is not None
    assert {"command": "melden", "description": "Erken bir sinyal bildirin"} in turkish
    assert {"command": "taal", "description": "Dilinizi seçin"} in turkish
    for language in ("ar", "pl"):
        menu = emu.commands_for({"type": "all_private_chats"}, language)
        assert menu is not None
        assert [c["command"] for c in menu] == [c["command"] for c in turkish]
