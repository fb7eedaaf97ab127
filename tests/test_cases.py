"""Case handling in chat: /open, /melding, taking, status, notes, the anonymous relay between
a professional and the reporter, and the "is het opgelost?" follow-up. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from babel.dates import format_date
from sqlalchemy import select

from buurtsignaal.bot.emulator import BotMessage
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage.models import RoleGrant, Signal, SignalEvent, Wijk, utcnow
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.signals import NewSignal, create_signal
from tests.conftest import AMSTERDAM, Clock, make_settings
from tests.harness import BotUnderTest, Person, grant_role

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x00\xc0" + b"\x00" * 64
REFERENCE = re.compile(r"BS-\d{4}-\d{4}")
NOT_ALLOWED = "Sorry, dat kan ik niet voor je doen."
WIJKEN = [
    {"name": "Schilderswijk", "slug": "schilderswijk", "group_chat_id": -1001},
    {"name": "Transvaal", "slug": "transvaal", "group_chat_id": -1002},
]


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Two wijken, so access per wijk can be tried."""
    return make_settings(db_url, wijken=WIJKEN)


# --- helpers -----------------------------------------------------------------------------


async def melden(
    person: Person,
    description: str = "Elke nacht harde muziek vanaf de galerij.",
    *,
    place: str = "Dorpsstraat 12",
    photo: bytes | None = None,
    contactable: bool = False,
) -> str:
    """Report through the real /melden flow; returns the reference."""
    await person.says("/melden")
    reply = await person.taps("Nee, niemand is in gevaar")
    if "Over welke wijk" in reply.text:
        await person.taps("Schilderswijk")
    await person.taps("Geluidsoverlast")
    await person.says(description)
    await person.says(place)
    await person.taps("Vandaag")
    await person.taps("Dit is de eerste keer")
    if photo is None:
        await person.taps("Overslaan")
    else:
        await person.sends_photo(photo)
    await person.taps("Jullie mogen contact opnemen" if contactable else "Pseudoniem")
    reply = await person.taps("Melding versturen")
    match = REFERENCE.search(reply.text)
    assert match, reply.text
    return match.group(0)


async def stored_signal(
    bot: BotUnderTest,
    reporter: Person | None,
    *,
    wijk: str = "schilderswijk",
    place: str = "Dorpsstraat 1",
    category: str = "geluidsoverlast",
    at: dt.datetime | None = None,
    status: str | None = None,
) -> Signal:
    """A signal put straight into the database (for lists and access checks)."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk_row = await session.scalar(select(Wijk).where(Wijk.slug == wijk))
        assert wijk_row is not None
        resident = await ensure_resident(session, reporter.id, "nl") if reporter else None
        signal = await create_signal(
            session,
            NewSignal(
                wijk_id=wijk_row.id,
                resident_id=resident.id if resident else None,
                category=category,
                description="Harde muziek",
                occurred="today",
                frequency="first",
                contactable=False,
                location_text=place,
            ),
            year=dt.datetime.now(bot.settings.tz).year,
            now=at or utcnow(),
        )
        if status:
            signal.status = status
        return signal


async def signal_row(bot: BotUnderTest, reference: str) -> Signal:
    assert bot.db is not None
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal).where(Signal.reference == reference))
        assert signal is not None
        return signal


async def events(bot: BotUnderTest, reference: str) -> list[SignalEvent]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        result = await session.scalars(
            select(SignalEvent)
            .join(Signal)
            .where(Signal.reference == reference)
            .order_by(SignalEvent.id)
        )
        return list(result.all())


async def snapshot(bot: BotUnderTest) -> list[Any]:
    """Everything case handling may change, to prove that nothing did."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        signals = (await session.scalars(select(Signal).order_by(Signal.id))).all()
        history = (await session.scalars(select(SignalEvent).order_by(SignalEvent.id))).all()
        return [
            [
                (s.id, s.status, s.assigned_to, s.closed_at, s.followup_due_at, s.updated_at)
                for s in signals
            ],
            [(e.id, e.kind, e.note, e.actor) for e in history],
        ]


def chat(bot: BotUnderTest, person: Person) -> list[BotMessage]:
    return bot.emulator.messages(person.id)


def texts(bot: BotUnderTest, person: Person) -> str:
    return "\n".join(m.plain_text for m in chat(bot, person))


async def pair(bot: BotUnderTest) -> tuple[Person, Person]:
    """Bram the wijkagent and Olga the opbouwwerker of the Schilderswijk."""
    bram = bot.user(2001, "Bram")
    olga = bot.user(2002, "Olga")
    await grant_role(bot, bram, "wijkagent")
    await grant_role(bot, olga, "opbouwwerker")
    return bram, olga


def job(bot: BotUnderTest) -> Any:
    assert bot.app is not None and bot.app.job_queue is not None
    [found] = bot.app.job_queue.get_jobs_by_name("cases:followups")
    return found


# --- /open -------------------------------------------------------------------------------


async def test_open_pages_oldest_first_and_only_my_wijk(bot: BotUnderTest) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    start = utcnow() - dt.timedelta(days=10)
    refs = [
        (
            await stored_signal(bot, anna, place=f"Straat {i}", at=start + dt.timedelta(days=i))
        ).reference
        for i in range(7)
    ]
    await stored_signal(bot, anna, wijk="transvaal", place="Elders")
    await stored_signal(bot, anna, place="Afgehandeld pad", status="afgehandeld")

    await olga.says(f"/melding {refs[0]}")
    await olga.taps("Oppakken")

    reply = await bram.says("/open")
    page1 = reply.last.plain_text
    assert "Open meldingen: 7 (oudste eerst) · pagina 1 van 2" in page1
    assert [r for r in REFERENCE.findall(page1)] == refs[:5]
    assert "Straat 0 · eerste keer" in page1
    assert "10 dagen open · In behandeling · opgepakt door Olga" in page1
    assert "nog niet opgepakt" in page1
    assert "Elders" not in page1 and "Afgehandeld pad" not in page1
    assert reply.last.button_labels[-1] == "volgende ›"
    assert not any("vorige" in label for label in reply.last.button_labels)

    reply = await bram.taps("volgende")
    [page2] = reply.edited
    assert "pagina 2 van 2" in page2.plain_text
    assert REFERENCE.findall(page2.plain_text) == refs[5:]
    assert page2.button_labels[-1] == "‹ vorige"

    reply = await bram.taps(refs[5])  # a report's button shows it
    assert f"{refs[5]} · Schilderswijk" in reply.text
    assert "Straat 5" in reply.text


async def test_open_with_nothing_open_is_friendly(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    reply = await bram.says("/open")
    assert reply.text == "Er zijn nu geen open meldingen in je wijk."


# --- /melding ----------------------------------------------------------------------------


async def test_melding_shows_photo_place_and_details(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    bot.emulator.add_user(1001, "Anna", username="anna_nl", language_code="nl")
    reference = await melden(
        anna, "Iemand <b>bekladt</b> de muur & de deur.", photo=PNG, place="Hof <7>"
    )
    stored = await signal_row(bot, reference)
    assert stored.photo_file_id

    reply = await bram.says(f"/melding {reference.lower()}")
    [photo_call] = [c for c in bot.emulator.calls_to("sendPhoto") if c.params["chat_id"] == 2001]
    assert photo_call.params["photo"] == stored.photo_file_id
    assert reply.messages[0].kind == "photo"
    assert reference in reply.messages[0].plain_text
    details = reply.last.plain_text
    for line in (
        f"{reference} · Schilderswijk",
        "Wat: Geluidsoverlast",
        "Beschrijving: Iemand <b>bekladt</b> de muur & de deur.",  # escaped, shown literally
        "Waar: Hof <7>",
        # "Vandaag" would be wrong when read tomorrow: the day of the report is named.
        "Wanneer: op de dag van de melding, "
        + format_date(stored.created_at.astimezone(AMSTERDAM), "EEEE dd-MM-yyyy", locale="nl"),
        "Hoe vaak: eerste keer",
        "Status: Nieuw",
        "Opgepakt door: nog niemand",
        "Contact: pseudoniem",
        "Foto: zie hierboven",
        "Geschiedenis",
        "gemeld · melder",
    ):
        assert line in details, line
    assert "Anna" not in reply.text and "anna_nl" not in reply.text
    assert reply.last.button_labels == [
        "✋ Oppakken",
        "🔄 Status",
        "📝 Notitie",
        "✉️ Antwoord aan melder",
        "🤝 Bemiddeling voorstellen",
    ]

    # The bare number and the year-number form find it too.
    number = reference.rsplit("-", 1)[1]
    assert reference in (await bram.says(f"/melding {int(number)}")).text
    assert reference in (await bram.says(f"/melding {reference[3:]}")).text
    reply = await bram.says("/melding")
    assert "Welke melding?" in reply.text
    reply = await bram.says("/melding BS-1999-0042")
    assert reply.text == "Ik kan melding BS-1999-0042 niet vinden tussen de meldingen van je wijk."


async def test_melding_shows_contact_name_only_when_contactable_and_pins_location(
    bot: BotUnderTest,
) -> None:
    bram, _ = await pair(bot)
    john = bot.user(1002, "John")
    bot.emulator.add_user(1002, "John", username="john_nl", language_code="nl")
    await john.says("/melden")
    await john.taps("Nee, niemand is in gevaar")
    await john.taps("Schilderswijk")
    await john.taps("Vernieling")
    await john.says("Bankje in het park kapotgetrapt.")
    await john.shares_location(52.0705, 4.3007)
    await john.taps("Vandaag")
    await john.taps("Dit is de eerste keer")
    await john.taps("Overslaan")
    await john.taps("Jullie mogen contact opnemen")
    reference = REFERENCE.findall((await john.taps("Melding versturen")).text)[0]

    reply = await bram.says(f"/melding {reference}")
    [pin] = [m for m in reply.messages if m.kind == "location"]
    assert (pin.latitude, pin.longitude) == (52.0705, 4.3007)
    assert "Contact: mag benaderd worden: John (@john_nl)" in reply.last.plain_text


async def test_long_history_is_shortened_to_fit_one_message(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    signal = await stored_signal(bot, anna)
    for i in range(25):
        await bram.says(f"/melding {signal.reference}")
        await bram.taps("Notitie")
        await bram.says(f"Notitie {i}: " + "lang verhaal " * 60)
    reply = await bram.says(f"/melding {signal.reference}")
    details = reply.last.plain_text
    assert len(details) <= 4096
    assert "eerdere regels niet getoond" in details
    assert "Notitie 24:" in details and "Notitie 0:" not in details


# --- take, status, notes -------------------------------------------------------------------


async def test_take_then_close_with_note_and_the_reporter_is_told(bot: BotUnderTest) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)

    await bram.says(f"/melding {reference}")
    reply = await bram.taps("Oppakken")
    assert reply.alert == "Opgepakt"
    assert f"Je hebt {reference} opgepakt." in reply.text
    assert "De status ging van Nieuw naar In behandeling." in reply.text
    stored = await signal_row(bot, reference)
    assert (stored.assigned_to, stored.status) == (2001, "in_behandeling")

    reply = await bram.taps("Oppakken")  # the same (now stale) button again
    assert reply.alert == f"Je hebt {reference} al opgepakt."

    reply = await bram.says(f"/melding {reference}")
    assert "Opgepakt door: Bram" in reply.text
    assert "✋ Oppakken" not in reply.last.button_labels

    reply = await bram.taps("Status")
    assert reply.last.button_labels == ["Nieuw", "Afgehandeld"]
    status_menu = reply.last
    reply = await bram.taps("Afgehandeld")
    assert "Typ een korte notitie" in reply.text
    # It does not read as done before the note: the change happens after it.
    assert "van In behandeling naar Afgehandeld: nog niet gedaan" in reply.text
    assert (await signal_row(bot, reference)).status != "afgehandeld"
    assert "De melder hoort dat de melding is afgehandeld" in reply.text
    before = len(chat(bot, anna))
    reply = await bram.says("Gesprek gehad met de bewoners van nr 14.")
    assert f"{reference}: status In behandeling → Afgehandeld." in reply.text
    assert "De melder heeft gehoord dat het is afgehandeld." in reply.text

    [told] = chat(bot, anna)[before:]
    assert f"Je melding {reference} (Geluidsoverlast) is afgehandeld." in told.plain_text
    assert "Over 3 dagen vraag ik je of het echt is opgelost." in told.plain_text
    assert "nr 14" not in told.plain_text  # the status note is internal

    stored = await signal_row(bot, reference)
    assert stored.status == "afgehandeld" and stored.closed_at is not None
    assert stored.followup_due_at == stored.closed_at + dt.timedelta(days=3)
    history = await events(bot, reference)
    assert [(e.kind, e.from_status, e.to_status, e.actor) for e in history] == [
        ("created", None, "nieuw", "resident"),
        ("assigned", None, None, "pro:2001"),
        ("status", "nieuw", "in_behandeling", "pro:2001"),
        ("status", "in_behandeling", "afgehandeld", "pro:2001"),
    ]
    assert history[-1].note == "Gesprek gehad met de bewoners van nr 14."

    # A colleague's old status menu is stale now: it changes nothing.
    closed_id = (await signal_row(bot, reference)).id
    reply = await bram.presses(status_menu.message_id, f"cases:status:{closed_id}:afgehandeld")
    assert "heeft de status Afgehandeld al" in reply.alert

    # Olga sees the history with who did what, the note marked internal.
    reply = await olga.says(f"/melding {reference}")
    assert "opgepakt · Bram" in reply.text
    assert "status In behandeling → Afgehandeld · Bram" in reply.text
    assert "🔒 intern: Gesprek gehad met de bewoners van nr 14." in reply.text


async def test_status_without_note_and_cancel_midway(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    signal = await stored_signal(bot, anna)
    await bram.says(f"/melding {signal.reference}")
    await bram.taps("Status")
    await bram.taps("In behandeling")
    reply = await bram.says("/annuleren")
    assert reply.text == "Gestopt. Er is niets verstuurd of bewaard."
    assert (await signal_row(bot, signal.reference)).status == "nieuw"

    await bram.says(f"/melding {signal.reference}")
    await bram.taps("Status")
    await bram.taps("In behandeling")
    reply = await bram.taps("Zonder notitie")
    assert "status Nieuw → In behandeling" in reply.text
    [*_, change] = await events(bot, signal.reference)
    assert (change.kind, change.note, change.to_status) == ("status", None, "in_behandeling")


async def test_internal_note_never_reaches_the_reporter(bot: BotUnderTest) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    anna_before = len(chat(bot, anna))

    await bram.says(f"/melding {reference}")
    reply = await bram.taps("Notitie")
    assert "Alleen collega's zien die, de melder nooit." in reply.text
    reply = await bram.says("Geheim: vermoedelijk de buurman van 3-hoog <drugs?>")
    assert reply.text == f"Interne notitie toegevoegd aan {reference}."

    assert len(chat(bot, anna)) == anna_before  # not a single message to the reporter
    reply = await anna.says("/mijnmeldingen")
    assert "Geheim" not in reply.text
    [*_, note] = await events(bot, reference)
    assert (note.kind, note.actor) == ("note", "pro:2001")
    reply = await olga.says(f"/melding {reference}")
    assert "interne notitie · Bram" in reply.text
    assert "Geheim: vermoedelijk de buurman van 3-hoog <drugs?>" in reply.text


# --- the anonymous relay -----------------------------------------------------------------


async def test_two_way_anonymous_reply(bot: BotUnderTest) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    bot.emulator.add_user(1001, "Anna", username="anna_nl", language_code="nl")
    bot.emulator.add_user(2001, "Bram", username="bram_politie", language_code="nl")
    reference = await melden(anna)
    signal = await signal_row(bot, reference)

    await bram.says(f"/melding {reference}")
    reply = await bram.taps("Antwoord aan melder")
    assert "Die ziet alleen ‘de wijkagent’ als afzender" in reply.text
    reply = await bram.says("Hoe laat begint de muziek meestal? <ik kom kijken>")
    assert (
        reply.text == f"Verstuurd naar de melder van {reference}, ondertekend met ‘de wijkagent’."
    )

    relayed = chat(bot, anna)[-1]
    assert relayed.plain_text == (
        f"Bericht over je melding {reference}:\n\n"
        "Hoe laat begint de muziek meestal? <ik kom kijken>\n\n— de wijkagent"
    )
    for secret in ("Bram", "bram_politie", "2001"):
        assert secret not in relayed.plain_text
    assert relayed.buttons == [[("↩️ Antwoorden", f"cases:answer:{signal.id}")]]

    olga_before = len(chat(bot, olga))
    reply = await anna.taps("Antwoorden")
    assert "Het wordt doorgegeven zonder je naam." in reply.text
    reply = await anna.says("Meestal rond middernacht, soms tot 3 uur.")
    assert reply.text == f"Dank je wel. Je antwoord over {reference} is doorgegeven."

    answer = chat(bot, bram)[-1]
    assert answer.plain_text == (
        f"Antwoord van de melder van {reference}:\n\nMeestal rond middernacht, soms tot 3 uur."
    )
    for secret in ("Anna", "anna_nl", "1001"):
        assert secret not in answer.plain_text
    assert len(chat(bot, olga)) == olga_before  # only the one who wrote gets the answer

    # Bram answers again from the relayed message; the conversation goes on.
    await bram.taps("Antwoord aan melder", message=answer)
    await bram.says("Dank, ik kom vrijdag langs.")
    assert "Dank, ik kom vrijdag langs." in chat(bot, anna)[-1].plain_text

    history = await events(bot, reference)
    assert [(e.kind, e.actor, e.note) for e in history[1:]] == [
        ("reply_out", "pro:2001", "Hoe laat begint de muziek meestal? <ik kom kijken>"),
        ("reply_in", "resident", "Meestal rond middernacht, soms tot 3 uur."),
        ("reply_out", "pro:2001", "Dank, ik kom vrijdag langs."),
    ]
    reply = await olga.says(f"/melding {reference}")
    assert "bericht aan de melder · Bram" in reply.text
    assert "antwoord van de melder · melder" in reply.text


async def test_answer_without_writer_goes_to_the_pair(bot: BotUnderTest) -> None:
    """The reporter answers on a message by someone whose role was revoked: the pair gets it."""
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    await bram.says("Kun je meer vertellen?")
    assert bot.db is not None
    async with bot.db.begin() as session:
        for grant in (await session.scalars(select(RoleGrant))).all():
            if grant.telegram_id == 2001:
                grant.revoked_at = utcnow()
    bram_before = len(chat(bot, bram))
    await anna.taps("Antwoorden")
    await anna.says("Het is elke vrijdag.")
    assert len(chat(bot, bram)) == bram_before
    assert "Het is elke vrijdag." in chat(bot, olga)[-1].plain_text


async def test_reply_to_a_reporter_who_blocked_the_bot(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    bot.emulator.block_bot(anna.id)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    reply = await bram.says("Ben je thuis vanavond?")
    assert "Je bericht kon niet worden bezorgd" in reply.text
    [*_, last] = await events(bot, reference)
    assert (last.kind, last.note) == ("reply_out_undelivered", "Ben je thuis vanavond?")
    reply = await bram.says(f"/melding {reference}")
    assert "bericht aan de melder, NIET bezorgd · Bram" in reply.text


async def test_restart_mid_typing_loses_nothing(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")

    await bot.restart(crash=True)
    reply = await bram.says("Na de herstart: we komen morgen langs.")
    assert "Verstuurd naar de melder" in reply.text
    assert "Na de herstart: we komen morgen langs." in chat(bot, anna)[-1].plain_text

    await anna.taps("Antwoorden")
    await bot.restart(crash=True)
    await anna.says("Prima, tot morgen.")
    assert "Prima, tot morgen." in chat(bot, bram)[-1].plain_text


async def test_another_command_while_typing_drops_the_text(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    anna_before = len(chat(bot, anna))
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    reply = await bram.says("/open")
    assert f"(Je tekst over {reference} was nog niet af; er is niets verstuurd.)" in reply.text
    assert "Open meldingen: 1" in reply.text
    reply = await bram.says("Dit was voor mezelf bedoeld.")
    assert "Verstuurd" not in reply.text
    assert len(chat(bot, anna)) == anna_before


async def test_a_typed_step_whose_confirmation_failed_is_kept_and_stored_once(
    bot: BotUnderTest,
) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Notitie")
    bot.emulator.fail_next("sendMessage", status=400, description="Bad Request: refused")
    reply = await bram.says("Buurman gesproken.")  # stored; "added" does not arrive
    assert "Interne notitie toegevoegd" not in reply.text
    assert "Wat je al had ingevuld is bewaard" in reply.text
    notes = [e.note for e in await events(bot, reference) if e.kind == "note"]
    assert notes == ["Buurman gesproken."]

    await bot.restart(crash=True)  # the step is still there, marked as stored
    reply = await bram.says("Buurman gesproken.")  # tried again: taken once, and told so
    assert f"Wat je typte voor {reference} was al ontvangen" in reply.text
    notes = [e.note for e in await events(bot, reference) if e.kind == "note"]
    assert notes == ["Buurman gesproken."]
    reply = await bram.says("Nog iets")  # the step is over
    assert "toegevoegd" not in reply.text and "was al ontvangen" not in reply.text

    # The same for a message to the reporter, and /annuleren after the failed confirmation.
    anna_before = len(chat(bot, anna))
    await bram.says(f"/melding {reference}")
    await bram.taps("Antwoord aan melder")
    bot.emulator.fail_next("sendMessage", status=400, description="Bad Request: refused")
    reply = await bram.says("We komen morgen langs.")
    assert "Verstuurd" not in reply.text
    reply = await bram.says("/annuleren")
    assert f"Wat je typte voor {reference} was al ontvangen" in reply.text
    assert "Gestopt" not in reply.text
    await bot.drain_outbox()
    assert len(chat(bot, anna)) == anna_before + 1  # relayed once
    assert "We komen morgen langs." in chat(bot, anna)[-1].plain_text

    # And another command after a failed confirmation: it says the text arrived, then does it.
    await bram.says(f"/melding {reference}")
    await bram.taps("Notitie")
    bot.emulator.fail_next("sendMessage", status=400, description="Bad Request: refused")
    await bram.says("Tweede gesprek gehad.")
    reply = await bram.says("/open")
    assert f"Wat je typte voor {reference} was al ontvangen" in reply.text
    assert "nog niet af" not in reply.text
    assert "Open meldingen: 1" in reply.text
    notes = [e.note for e in await events(bot, reference) if e.kind == "note"]
    assert notes == ["Buurman gesproken.", "Tweede gesprek gehad."]


# --- the follow-up -----------------------------------------------------------------------


async def close(bot: BotUnderTest, pro: Person, reference: str) -> None:
    await pro.says(f"/melding {reference}")
    await pro.taps("Status")
    await pro.taps("Afgehandeld")
    await pro.taps("Zonder notitie")


async def test_close_followup_no_reopens_and_alerts_the_pair(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    kees = bot.user(1003, "Kees")
    reference = await melden(anna)
    await bram.says(f"/melding {reference}")
    await bram.taps("Oppakken")
    await close(bot, bram, reference)
    closed = await signal_row(bot, reference)
    assert closed.closed_at is not None

    # Not yet due: nothing is asked.
    clock.now = closed.closed_at + dt.timedelta(days=2)
    anna_before = len(chat(bot, anna))
    await job(bot).run(bot.app)
    await bot.drain_outbox()
    assert len(chat(bot, anna)) == anna_before

    later = closed.closed_at + dt.timedelta(days=3, minutes=1)
    clock.now = later
    await job(bot).run(bot.app)
    await bot.drain_outbox()
    await job(bot).run(bot.app)  # a second sweep asks nothing again
    await bot.drain_outbox()
    [question] = chat(bot, anna)[anna_before:]
    assert "is op" in question.plain_text and "Is het opgelost?" in question.plain_text
    assert question.button_labels == ["Ja", "Nee", "Weet ik niet"]
    assert (await signal_row(bot, reference)).followup_sent_at == later

    # Only the reporter may answer; someone else forging it learns nothing.
    await kees.says("/start")
    reply = await kees.forges(f"cases:fu:{closed.id}:no")
    assert reply.alert == NOT_ALLOWED
    reply = await bram.forges(f"cases:fu:{closed.id}:no")
    assert reply.alert == NOT_ALLOWED
    assert (await signal_row(bot, reference)).status == "afgehandeld"

    bram_before, olga_before = len(chat(bot, bram)), len(chat(bot, olga))
    reply = await anna.taps("Nee")
    assert "Melding " + reference + " is opnieuw geopend" in reply.text
    assert reply.edited[0].buttons == []
    stored = await signal_row(bot, reference)
    assert (stored.status, stored.followup_answer, stored.closed_at) == (
        "in_behandeling",  # Bram had taken it, so it goes back to him
        "no",
        None,
    )
    for pro, before in ((bram, bram_before), (olga, olga_before)):
        [alert] = chat(bot, pro)[before:]
        assert f"Melding {reference} (Geluidsoverlast) is heropend" in alert.plain_text
        assert "Anna" not in alert.plain_text
        assert alert.button_labels == ["🔎 Melding bekijken"]

    reply = await anna.presses(question.message_id, f"cases:fu:{closed.id}:yes")
    assert reply.alert == "Je hebt deze vraag al beantwoord. Dank je wel!"
    history = await events(bot, reference)
    assert [(e.kind, e.actor) for e in history[-3:]] == [
        ("followup_sent", "bot"),
        ("followup", "resident"),
        ("reopened", "resident"),
    ]
    assert (history[-1].from_status, history[-1].to_status) == ("afgehandeld", "in_behandeling")

    # Closed again: a new follow-up later, answered "weet ik niet" this time.
    await close(bot, bram, reference)
    again = await signal_row(bot, reference)
    assert again.followup_sent_at is None and again.followup_answer is None
    assert again.closed_at is not None
    clock.now = again.closed_at + dt.timedelta(days=4)
    await job(bot).run(bot.app)
    await bot.drain_outbox()
    reply = await anna.taps("Weet ik niet")
    assert "Dank je wel dat je het laat weten." in reply.text
    stored = await signal_row(bot, reference)
    assert (stored.status, stored.followup_answer) == ("afgehandeld", "unknown")


async def test_failed_followup_is_tried_again_and_gone_reporters_are_not_asked(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    orphan = await stored_signal(bot, None, place="Zonder melder")
    await close(bot, bram, reference)
    await close(bot, bram, orphan.reference)
    assert (await signal_row(bot, orphan.reference)).followup_due_at is None
    closed = await signal_row(bot, reference)
    assert closed.closed_at is not None
    clock.now = closed.closed_at + dt.timedelta(days=5)

    anna_before = len(chat(bot, anna))
    bot.emulator.fail_next("sendMessage", status=502, times=3)
    for _ in range(3):  # Telegram refuses three times in a row; the outbox tries again
        await job(bot).run(bot.app)
        await bot.drain_outbox()
        assert len(chat(bot, anna)) == anna_before
        assert (await signal_row(bot, reference)).followup_sent_at is not None  # decided
        clock.now += dt.timedelta(minutes=5)
    await job(bot).run(bot.app)  # the next try gets through
    await bot.drain_outbox()
    [question] = chat(bot, anna)[anna_before:]
    assert "Is het opgelost?" in question.plain_text
    await job(bot).run(bot.app)
    await bot.drain_outbox()
    assert len(chat(bot, anna)) == anna_before + 1
    assert [e.kind for e in await events(bot, reference)].count("followup_sent") == 1
    kinds = [e.kind for e in await events(bot, orphan.reference)]
    assert "followup_sent" not in kinds


async def test_followup_to_a_reporter_who_blocked_the_bot_is_noted_once(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    bot.emulator.block_bot(anna.id)
    await close(bot, bram, reference)
    reply_texts = texts(bot, bram)
    assert "De melder kon het niet horen" in reply_texts
    closed = await signal_row(bot, reference)
    assert closed.closed_at is not None
    clock.now = closed.closed_at + dt.timedelta(days=5)
    await job(bot).run(bot.app)
    await bot.drain_outbox()
    await job(bot).run(bot.app)
    await bot.drain_outbox()
    kinds = [e.kind for e in await events(bot, reference)]
    assert kinds.count("notice_undelivered") == 1
    assert kinds.count("followup_undelivered") == 1


# --- access ------------------------------------------------------------------------------


def every_button(signal_id: int) -> list[str]:
    return [
        f"cases:take:{signal_id}",
        f"cases:status:{signal_id}",
        *(f"cases:status:{signal_id}:{s}" for s in ("nieuw", "in_behandeling", "afgehandeld")),
        f"cases:note:{signal_id}",
        f"cases:reply:{signal_id}",
        f"cases:show:{signal_id}",
        f"cases:nonote:{signal_id}",
        "cases:page:0",
        "cases:page:1",
    ]


async def test_a_resident_gets_not_allowed_everywhere_and_nothing_changes(
    bot: BotUnderTest,
) -> None:
    await pair(bot)
    anna = bot.user(1001, "Anna")
    kees = bot.user(1003, "Kees")
    reference = await melden(anna)
    signal = await signal_row(bot, reference)
    await stored_signal(bot, kees)
    before = await snapshot(bot)
    sent_before = len(bot.emulator.sent)

    for command in ("/open", f"/melding {reference}", "/melding 1", "/melding"):
        reply = await anna.says(command)
        assert reply.text == NOT_ALLOWED, command
    target = chat(bot, anna)[-1].message_id
    for data in [*every_button(signal.id), *every_button(signal.id + 1)]:
        reply = await anna.presses(target, data)
        assert reply.alert == NOT_ALLOWED, data
        assert reply.messages == [], data
    # Kees may not answer Anna's report, nor answer her follow-up.
    reply = await kees.says("Dit mag nergens heen.")
    for data in (f"cases:answer:{signal.id}", f"cases:fu:{signal.id}:no"):
        reply = await kees.forges(data)
        assert reply.alert == NOT_ALLOWED, data
    assert "Dit mag nergens heen." not in "\n".join(m.plain_text for m in bot.emulator.sent)

    assert await snapshot(bot) == before
    assert all(m.chat_id in (anna.id, kees.id) for m in bot.emulator.sent[sent_before:])


async def test_a_professional_of_another_wijk_gets_not_allowed(bot: BotUnderTest) -> None:
    await pair(bot)
    theo = bot.user(3001, "Theo")
    await grant_role(bot, theo, "wijkagent", "transvaal")
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    signal = await signal_row(bot, reference)
    before = await snapshot(bot)

    reply = await theo.says("/open")
    assert reply.text == "Er zijn nu geen open meldingen in je wijk."
    reply = await theo.says(f"/melding {reference}")
    assert reply.text == f"Ik kan melding {reference} niet vinden tussen de meldingen van je wijk."
    target = (await theo.says("/open")).last.message_id
    for data in every_button(signal.id):
        if data.startswith("cases:page") or data.startswith("cases:nonote"):
            continue  # paging shows Theo his own (empty) wijk; nonote has nothing pending
        reply = await theo.presses(target, data)
        assert reply.alert == NOT_ALLOWED, data
        assert reply.messages == [], data
    assert await snapshot(bot) == before

    # A bemiddelaar of the same wijk has no access to signals either.
    mila = bot.user(3002, "Mila")
    await grant_role(bot, mila, "bemiddelaar")
    assert (await mila.says("/open")).text == NOT_ALLOWED
    reply = await mila.forges(f"cases:take:{signal.id}")
    assert reply.alert == NOT_ALLOWED
    assert await snapshot(bot) == before


async def test_buttons_pressed_in_a_group_show_nothing(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference = await melden(anna)
    signal = await signal_row(bot, reference)
    bot.emulator.add_group(-1001, "Buurtgroep")
    # A forged press on the bot's answer in the group (Telegram needs a message that exists).
    await bot.process(bot.emulator.text(anna.id, "/melden", chat_id=-1001, enqueue=False))
    [answer] = bot.emulator.messages(-1001)
    update = bot.emulator.press(
        bram.id, answer.message_id, f"cases:show:{signal.id}", chat_id=-1001, enqueue=False
    )
    sent_before = len(bot.emulator.sent)
    await bot.process(update)
    assert bot.emulator.sent[sent_before:] == []
    assert bot.emulator.callback_answers[-1]["text"] == NOT_ALLOWED
