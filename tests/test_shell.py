"""The terminal shell: a scripted chat with the real bot through the emulator."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any, cast

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.bot.settings import Settings
from buurtsignaal.bot.shell import ShellSession, render_text, run_shell
from tests.conftest import make_settings

TINY_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 4, 3) + b"\x08\x02\x00\x00\x00"
)


async def chat(settings: Settings, *lines: str) -> tuple[int, str]:
    """Run the shell on a script of input lines; return its exit code and transcript."""
    out = io.StringIO()
    code = await run_shell(
        settings, stdin=io.StringIO("".join(f"{x}\n" for x in lines)), stdout=out
    )
    return code, out.getvalue()


def after(transcript: str, marker: str) -> str:
    """The transcript after the first occurrence of ``marker`` (which must be there)."""
    assert marker in transcript, f"{marker!r} not in transcript:\n{transcript}"
    return transcript.split(marker, 1)[1]


async def test_a_whole_report_by_numbers_location_and_photo(
    sqlite_url: str, tmp_path: Path
) -> None:
    photo = tmp_path / "graffiti.png"
    photo.write_bytes(TINY_PNG)
    code, transcript = await chat(
        make_settings(sqlite_url),
        "/start",
        "1",  # Nederlands
        "/melden",
        "2",  # Nee, niemand is in gevaar
        "2",  # Geluidsoverlast
        "Buren draaien elke nacht harde muziek tot drie uur",
        ":locatie 52.07 4.30",
        "1",  # Nu
        "1",  # Dit is de eerste keer
        f":foto {photo}",
        "1",  # Pseudoniem
        "8",  # Melding versturen (after the seven edit buttons)
    )
    assert code == 0
    assert transcript.startswith("Buurtsignaal-shell")
    assert ":help" in transcript.split("Anna> ", 1)[0]

    welcome = after(transcript, "Anna> /start\n")
    assert welcome.startswith("[Buurtsignaal → Anna]\nWelkom bij Buurtsignaal.")
    assert "[1] Nederlands   [2] English" in welcome

    rest = after(welcome, "Anna> 1\n(je drukt op: Nederlands)\n")
    assert rest.startswith("[Buurtsignaal → Anna] (bewerkt)\nTaal: Nederlands.")

    safety = after(rest, "Anna> /melden\n")
    assert "[1] Ja, er is nu gevaar\n  [2] Nee, niemand is in gevaar" in safety
    category = after(safety, "(je drukt op: Nee, niemand is in gevaar)\n")
    assert "✔️ Nee, niemand is in gevaar" in category
    assert "[2] Geluidsoverlast" in category
    assert "(je drukt op: Geluidsoverlast)" in category

    where = after(category, "Anna> Buren draaien elke nacht harde muziek tot drie uur\n")
    assert "Waar was het?" in where
    assert "📍 Deel mijn locatie → typ hier :locatie LAT LON" in where
    located = after(where, "Anna> :locatie 52.07 4.30\n")
    assert located.startswith("[Buurtsignaal → Anna]\n📍 Locatie ontvangen.")
    assert "Wanneer gebeurde het?" in located

    sent = after(located, f"Anna> :foto {photo}\n")
    assert sent.startswith("[Buurtsignaal → Anna]\n📷 Foto ontvangen.")
    assert "Foto: ja" in sent
    assert "[8] ✅ Melding versturen" in sent
    done = after(sent, "Anna> 8\n")
    assert "(melding: Melding verstuurd)" in done
    assert "Je melding is opgeslagen als" in done
    assert transcript.endswith("Anna> \nTot ziens!\n")


async def test_personas_group_deep_link_and_clear_errors(sqlite_url: str) -> None:
    code, transcript = await chat(
        make_settings(sqlite_url),
        ":als bram",
        "/start",
        ":chat groep",
        "/melden",
        "1",
        ":foto /nonexistent/foto.jpg",
        ":wie",
        ":bestaatniet",
        ":stop",
        "/help",
    )
    assert code == 0
    assert "Je bent nu Bram (id 1002), in je privéchat." in transcript
    assert "Bram> /start\n[Buurtsignaal → Bram]\nWelkom bij Buurtsignaal." in transcript

    group = after(transcript, "Bram (groep)> /melden\n")
    assert group.startswith("[Buurtsignaal → groep]\nMelden doe je in een privégesprek met mij")
    assert (
        "  [link] Open een privégesprek → https://t.me/buurtsignaal_bot?start=w-schilderswijk"
        in group
    )
    assert ":chat prive en dan /start w-schilderswijk" in group
    pressed = after(group, "Bram (groep)> 1\n")
    assert pressed.startswith("(dit bericht heeft alleen een link-knop")

    assert "(bestand niet gevonden: /nonexistent/foto.jpg)" in transcript
    assert "Je bent Bram (id 1002), in de groep Buurtgroep Schilderswijk (chat -1001)." in (
        transcript
    )
    assert "Onbekend shell-commando ':bestaatniet'" in transcript
    # :stop ends the shell; what follows is not read.
    assert transcript.endswith("Bram (groep)> :stop\nTot ziens!\n")


async def test_each_person_keeps_their_own_private_chat(sqlite_url: str) -> None:
    code, transcript = await chat(
        make_settings(sqlite_url),
        "/start",
        ":als bram",
        "/help",
        ":als anna",
        "1",
        ":als 1234 Fatima",
        "/melden",
        ":wie",
    )
    assert code == 0
    assert "Bram> /help\n[Buurtsignaal → Bram]\nWat ik kan" in transcript
    # Back as Anna, her language question is still the newest message with buttons.
    assert "Anna> 1\n(je drukt op: Nederlands)" in transcript
    assert "(nieuwe persoon: Fatima, id 1234)" in transcript
    assert "Fatima> /melden\n[Buurtsignaal → Fatima]" in transcript
    assert "Personen: anna (1001), bram (1002), admin (900001), fatima (1234)." in transcript


async def test_without_wijken_and_admins_it_says_so_and_still_runs(sqlite_url: str) -> None:
    code, transcript = await chat(
        make_settings(sqlite_url, wijken=[], admins=[]),
        "/melden",
        "3",
        ":chat groep",
        ":nieuwlid",
        "hallo allemaal",
        ":als admin",
    )
    assert code == 0
    banner = transcript.split("Anna> ", 1)[0]
    assert "geen wijken ingesteld" in banner
    assert "config.example.toml" in banner
    assert "in deze shell is ':als admin' (id 900001) beheerder" in banner
    assert "nog geen wijk ingesteld, dus melden kan nog niet" in transcript
    assert "Anna> 3\n(er zijn hier geen knoppen" in transcript
    assert "in de groep Buurtgroep (demo)" in transcript
    assert "Anna (groep)> :nieuwlid\n" in transcript
    # The bot ignores group chatter; the shell says so instead of staying silent.
    assert "Anna (groep)> hallo allemaal\n(geen reactie van de bot)" in transcript
    assert "Je bent nu Beheerder (id 900001), in de groep Buurtgroep (demo)." in transcript


async def test_shell_commands_explain_their_usage(sqlite_url: str) -> None:
    code, transcript = await chat(
        make_settings(sqlite_url),
        ":help",
        ":locatie hier",
        ":locatie 91 4",
        ":nieuwlid",
        ":als niemand",
        ":chat zolder",
        ":tekst 12",
    )
    assert code == 0
    assert ":locatie LAT LON" in transcript and ":als ID NAAM" in transcript
    assert "Gebruik :locatie LAT LON, bijv. :locatie 52.07 4.30" in transcript
    assert "(die locatie bestaat niet" in transcript
    assert "(:nieuwlid werkt alleen in een groep" in transcript
    assert "(onbekende persoon 'niemand'" in transcript
    assert "Gebruik :chat prive of :chat groep." in transcript
    assert "Anna> :tekst 12\n[Buurtsignaal → Anna]\nDank je voor je bericht." in transcript


async def test_messages_elsewhere_alerts_and_unseen_messages(
    emulator: BotApiEmulator, sqlite_url: str
) -> None:
    out = io.StringIO()
    session = ShellSession(make_settings(sqlite_url), emulator, cast(Any, None), out)
    for person in (1001, 1002):  # both wrote to the bot before, so it may write to them
        emulator.set_started(person)
    async with Bot(emulator.token, base_url=emulator.base_url) as bot:
        await bot.send_message(1002, "<b>Hoi</b> Bram", parse_mode="HTML")
        await bot.send_message(-1001, "Iets voor de groep")
        mine = await bot.send_message(
            1001,
            "Kies",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Oké", callback_data="x")]]),
        )
        update = emulator.press(1001, mine.message_id, "x")
        await bot.answer_callback_query(update["callback_query"]["id"], text="Klaar")
        await bot.edit_message_reply_markup(1001, mine.message_id, reply_markup=None)
    text = out.getvalue()
    assert "(bericht voor Bram in diens privéchat — bekijk met :als bram)" in text
    assert "(bericht in de groep Buurtgroep Schilderswijk — bekijk met :chat groep)" in text
    assert "[Buurtsignaal → Anna]\nKies\n  [1] Oké" in text
    assert "(melding: Klaar)" in text
    assert "[Buurtsignaal → Anna] (bewerkt)\n(knoppen weggehaald)" in text

    await session.handle(":als bram")
    assert out.getvalue().endswith(
        "Je bent nu Bram (id 1002), in je privéchat.\n"
        "[Buurtsignaal → Bram] (eerder ontvangen)\nHoi Bram\n"
    )


def test_render_text_bold_only_for_terminals_and_link_targets() -> None:
    text = "😀 Hallo wereld, lees dit"
    entities = [
        {"type": "bold", "offset": 3, "length": 5},
        {"type": "text_link", "offset": 22, "length": 3, "url": "https://example.org/x"},
    ]
    assert render_text(text, entities) == "😀 Hallo wereld, lees dit (https://example.org/x)"
    assert render_text(text, entities, bold=True) == (
        "😀 \x1b[1mHallo\x1b[22m wereld, lees dit (https://example.org/x)"
    )
    assert render_text("zonder opmaak") == "zonder opmaak"


async def test_a_button_answered_with_a_deep_link_says_how_to_go_on(
    emulator: BotApiEmulator, sqlite_url: str
) -> None:
    """ "Ik kom" under a koffiemoment, pressed by someone the bot does not know yet: Telegram
    opens the private chat with /start <code>; the shell says how to do that."""
    out = io.StringIO()
    ShellSession(make_settings(sqlite_url), emulator, cast(Any, None), out)
    async with Bot(emulator.token, base_url=emulator.base_url) as bot:
        announcement = await bot.send_message(
            -1001,
            "Koffiemoment",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Ik kom ☕ (0)", callback_data="koffie:rsvp:7")]]
            ),
        )
        update = emulator.press(1002, announcement.message_id, "koffie:rsvp:7", chat_id=-1001)
        await bot.answer_callback_query(
            update["callback_query"]["id"], url=f"https://t.me/{emulator.bot_username}?start=k-7"
        )
    text = out.getvalue()
    assert (
        "(Telegram opent nu een privégesprek met de bot; in de shell: :chat prive en dan "
        "/start k-7)" in text
    )


async def test_a_second_shell_on_the_same_database_is_answered(sqlite_url: str) -> None:
    """`make demo` again on the demo's database: the bot answers as the first time (the
    emulator's update ids go on after the ones the database has; Telegram's never restart)."""
    settings = make_settings(sqlite_url)
    code, first = await chat(settings, "/start", "1", "/help")
    assert code == 0 and "(geen reactie van de bot)" not in first
    code, second = await chat(settings, "/help", "/start")
    assert code == 0
    assert "(geen reactie van de bot)" not in second
    assert "[Buurtsignaal → Anna]" in after(second, "Anna> /help\n")
    assert "[Buurtsignaal → Anna]" in after(second, "Anna> /start\n")
