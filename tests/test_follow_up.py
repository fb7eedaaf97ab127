"""Residents follow up on their reports (issue 9): add to an open report, withdraw it, a kind
answer to loose messages; the promise about who sees a report when, kept by per-professional
alert choices; and a history in /melding written in words. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

import buurtsignaal.conversations.digest as digest_module
from buurtsignaal.conversations import cases
from buurtsignaal.storage import cases as store
from buurtsignaal.storage import digest as digests
from buurtsignaal.storage import privacy as privacy_store
from buurtsignaal.storage.models import Signal, SignalAlert, SignalEvent, Wijk
from tests.conftest import Clock
from tests.harness import BotUnderTest, Person, grant_role

TZ = ZoneInfo("Europe/Amsterdam")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x00\xc0" + b"\x00" * 64
REFERENCE = re.compile(r"BS-\d{4}-\d{4}")
NOT_ALLOWED = "Sorry, dat kan ik niet voor je doen."
INTERNAL_CODES = re.compile(
    r"reporter_left|mediation_\w+|retention_\w+|reply_\w+|followup\w*|withdrawn|addition| · \?"
)


# --- helpers ---------------------------------------------------------------------------------


async def melden(person: Person, *, contactable: bool = False) -> tuple[str, str]:
    """Report through the real /melden flow; returns the reference and the confirmation."""
    await person.says("/melden")
    await person.taps("Nee, niemand is in gevaar")
    await person.taps("Geluidsoverlast")
    await person.says("Elke nacht harde muziek vanaf de galerij.")
    await person.says("Dorpsstraat 12")
    await person.taps("Vandaag")
    await person.taps("Dit is de eerste keer")
    await person.taps("Overslaan")
    await person.taps("Jullie mogen contact opnemen" if contactable else "Pseudoniem")
    reply = await person.taps("Melding versturen")
    match = REFERENCE.search(reply.text)
    assert match, reply.text
    return match.group(0), reply.text


async def pair(bot: BotUnderTest) -> tuple[Person, Person]:
    """Bram the wijkagent and Olga the opbouwwerker of the Schilderswijk."""
    bram = bot.user(2001, "Bram")
    olga = bot.user(2002, "Olga")
    await grant_role(bot, bram, "wijkagent")
    await grant_role(bot, olga, "opbouwwerker")
    return bram, olga


async def signal_row(bot: BotUnderTest, reference: str) -> Signal:
    assert bot.db is not None
    async with bot.db.begin() as session:
        signal = await session.scalar(
            select(Signal)
            .where(Signal.reference == reference)
            .options(selectinload(Signal.history))
        )
        assert signal is not None
        return signal


def last_text(bot: BotUnderTest, person: Person) -> str:
    return bot.emulator.messages(person.id)[-1].plain_text


def texts(bot: BotUnderTest, person: Person) -> str:
    return "\n".join(m.plain_text for m in bot.emulator.messages(person.id))


# --- item 9: adding to a report ------------------------------------------------------------


async def test_a_resident_adds_text_and_a_photo_and_the_pair_is_told(bot: BotUnderTest) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)

    reply = await anna.says("/mijnmeldingen")
    assert f"{reference} · Geluidsoverlast" in reply.text
    assert reply.last.button_labels == [f"➕ Aanvullen {reference}", "↩️ Intrekken"]

    reply = await anna.taps("Aanvullen")
    assert f"Wat wil je aanvullen bij melding {reference}?" in reply.text
    reply = await anna.says("Vannacht weer, nu tot 4 uur. <b>Echt</b> niet te doen.")
    assert f"Je aanvulling op {reference} is opgeslagen en doorgegeven" in reply.text

    for professional in (bram, olga):
        told = last_text(bot, professional)
        assert f"De melder van {reference} (Geluidsoverlast) heeft informatie aangevuld:" in told
        assert "Vannacht weer, nu tot 4 uur. <b>Echt</b> niet te doen." in told
        assert "Anna" not in told
    signal = await signal_row(bot, reference)
    [added] = [e for e in signal.history if e.kind == store.ADDITION]
    assert (added.actor, added.note) == (
        "resident",
        "Vannacht weer, nu tot 4 uur. <b>Echt</b> niet te doen.",
    )

    # A photo with a caption: the pair gets the photo too.
    await anna.says("/mijnmeldingen")
    await anna.taps("Aanvullen")
    reply = await anna.sends_photo(PNG, caption="Zo staat het er nu bij.")
    assert "opgeslagen en doorgegeven" in reply.text
    photos = [m for m in bot.emulator.messages(bram.id) if m.kind == "photo"]
    assert photos and f"Foto toegevoegd door de melder van {reference}" in photos[-1].plain_text
    signal = await signal_row(bot, reference)
    photo_event = signal.history[-1]
    assert photo_event.kind == store.ADDITION and photo_event.photo_file_id
    assert photo_event.note == "Zo staat het er nu bij."

    # /melding shows both, in words, with the added photo.
    reply = await bram.says(f"/melding {reference}")
    assert any(f"Toegevoegd door de melder van {reference}" in m.plain_text for m in reply.messages)
    detail = reply.last.plain_text
    assert "de melder heeft informatie aangevuld · melder" in detail
    assert "‘Vannacht weer, nu tot 4 uur. <b>Echt</b> niet te doen.’" in detail
    assert "de melder heeft een foto toegevoegd (zie hierboven) · melder" in detail
    assert not INTERNAL_CODES.search(detail)


async def test_an_addition_has_the_text_limit_and_the_profiling_guard(
    bot: BotUnderTest,
) -> None:
    await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)
    limit = bot.settings.reports.max_text_length

    await anna.says("/mijnmeldingen")
    await anna.taps("Aanvullen")
    reply = await anna.says("x" * (limit + 1))
    assert f"het maximum is {limit}" in reply.text
    reply = await anna.sends_sticker()
    assert "Stuur tekst of een foto" in reply.text

    reply = await anna.says("Het waren weer die buitenlanders van nummer 14.")
    assert "Kun je in plaats daarvan beschrijven wat er gebeurde" in reply.text
    assert (await signal_row(bot, reference)).history[-1].kind == "created"
    reply = await anna.taps("Mijn tekst zo houden")
    assert "opgeslagen en doorgegeven" in reply.text
    signal = await signal_row(bot, reference)
    assert signal.history[-1].note == "Het waren weer die buitenlanders van nummer 14."


async def test_an_addition_survives_a_restart_and_annuleren_stops_it(bot: BotUnderTest) -> None:
    await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)

    await anna.says("/mijnmeldingen")
    await anna.taps("Aanvullen")
    await bot.restart(crash=True)
    reply = await anna.says("Het gebeurde ook op zondag.")
    assert "opgeslagen en doorgegeven" in reply.text

    await anna.says("/mijnmeldingen")
    await anna.taps("Aanvullen")
    reply = await anna.says("/annuleren")
    assert reply.text == "Gestopt. Er is niets toegevoegd."
    reply = await anna.says("/annuleren")
    assert reply.text == "Er is nu niets om te annuleren."  # unchanged outside a step
    additions = [e for e in (await signal_row(bot, reference)).history if e.kind == "addition"]
    assert [e.note for e in additions] == ["Het gebeurde ook op zondag."]


async def test_a_forgotten_add_button_does_not_catch_later_messages(
    clock: Clock, bot: BotUnderTest
) -> None:
    await pair(bot)
    anna = bot.user(1001, "Anna")
    clock.at(10)
    reference, _ = await melden(anna)
    await anna.says("/mijnmeldingen")
    await anna.taps("Aanvullen")

    clock.at(10, days=1)
    reply = await anna.says("hallo?")
    assert f"Dit is niet toegevoegd aan {reference}" in reply.text
    reply = await anna.says("nog iets")
    assert "Wil je iets melden? Tik /melden." in reply.text
    assert [e.kind for e in (await signal_row(bot, reference)).history] == ["created"]


# --- item 9: withdrawing a report ----------------------------------------------------------


async def test_a_resident_withdraws_a_report_after_confirming(bot: BotUnderTest) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)
    await olga.says(f"/melding {reference}")
    await olga.taps("Oppakken")

    await anna.says("/mijnmeldingen")
    reply = await anna.taps("Intrekken")
    assert f"Melding {reference} (Geluidsoverlast) intrekken?" in reply.text
    reply = await anna.taps("Nee, laat hem open")
    assert reply.alert == "Er is niets veranderd"
    assert (await signal_row(bot, reference)).status == "in_behandeling"

    await anna.says("/mijnmeldingen")
    await anna.taps("Intrekken")
    confirmation = anna.last_with_buttons()
    reply = await anna.taps("Ja, intrekken")
    assert f"Melding {reference} is ingetrokken." in reply.text
    signal = await signal_row(bot, reference)
    assert signal.status == "ingetrokken" and signal.closed_at is not None
    assert signal.followup_due_at is None
    assert signal.history[-1].kind == store.WITHDRAWN_EVENT
    for professional in (bram, olga):
        assert f"De melder heeft melding {reference} (Geluidsoverlast) ingetrokken." in (
            last_text(bot, professional)
        )

    # A double tap changes nothing; the list shows it withdrawn, without buttons.
    reply = await anna.presses(confirmation.message_id, f"mine:withdraw-yes:{signal.id}")
    assert "is niet meer open (Ingetrokken)" in reply.alert
    reply = await anna.says("/mijnmeldingen")
    assert f"{reference} · Geluidsoverlast" in reply.text and "Ingetrokken" in reply.text
    assert reply.last.buttons == []

    # For the pair it is closed: not in /open, not open in the digest; it stays in statistics.
    reply = await bram.says("/open")
    assert reference not in reply.text
    reply = await bram.says("/overzicht")
    assert "Geen openstaande signalen." in reply.text and "achterstallig" not in reply.text
    assert f"{reference} · Geluidsoverlast · Dorpsstraat 12 · eerste keer · Ingetrokken" in (
        reply.text
    )
    reply = await bram.says(f"/melding {reference}")
    detail_message = reply.last
    detail = detail_message.plain_text
    assert "Status: Ingetrokken" in detail
    assert "ingetrokken door de melder · melder" in detail
    assert "Oppakken" not in reply.last.button_labels
    assert not any("Status" in label for label in reply.last.button_labels)
    for action in ("status", "take"):
        reply = await bram.presses(detail_message.message_id, f"cases:{action}:{signal.id}")
        assert f"De melder heeft {reference} ingetrokken" in reply.alert
    reply = await bram.presses(detail_message.message_id, f"cases:status:{signal.id}:afgehandeld")
    assert f"De melder heeft {reference} ingetrokken" in reply.alert
    assert (await signal_row(bot, reference)).status == "ingetrokken"
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk))
        assert wijk is not None
        counts = await digests.weekly_counts(
            session, wijk.id, before=dt.datetime.now(dt.UTC) + dt.timedelta(weeks=1), weeks=1, tz=TZ
        )
    assert sum(counts[0].counts.values()) == 1


async def test_forged_buttons_for_someone_elses_report_are_refused(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna)
    signal = await signal_row(bot, reference)
    mallory = bot.user(1002, "Mallory")
    await mallory.says("/start")
    message_id = bot.emulator.messages(mallory.id)[-1].message_id

    for data in (
        f"mine:add:{signal.id}",
        f"mine:withdraw:{signal.id}",
        f"mine:withdraw-yes:{signal.id}",
        f"mine:withdraw-no:{signal.id}",
    ):
        for someone in (mallory, bram):
            reply = await someone.forges(data)
            assert reply.alert == NOT_ALLOWED, data
    reply = await mallory.presses(message_id, "mine:keep:1")
    assert reply.alert == "Deze knop werkt niet meer."
    reply = await mallory.says("Dit hoort bij de melding van Anna")
    assert "Wil je iets melden? Tik /melden." in reply.text
    after = await signal_row(bot, reference)
    assert after.status == "nieuw" and [e.kind for e in after.history] == ["created"]


async def test_loose_messages_get_a_kind_pointer_to_melden_and_help(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    reply = await anna.says("Hallo, er is weer overlast bij ons")
    assert reply.text == (
        "Dank je voor je bericht. Losse berichten kan ik niet lezen, maar ik help je graag "
        "verder:\n• Wil je iets melden? Tik /melden.\n"
        "• Wil je iets aanvullen bij een eerdere melding? Tik /mijnmeldingen.\n"
        "• Met /help zie je alles wat ik kan."
    )
    assert "Ik begrijp alleen commando's" not in reply.text


# --- item 10: at once or in the digest, and the truth for the resident ---------------------------


async def test_by_default_the_pair_gets_each_new_signal_at_once(
    clock: Clock, bot: BotUnderTest
) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    clock.at(14)
    reference, confirmation = await melden(anna)
    assert "Hij gaat nu meteen naar de wijkagent en de opbouwwerker van je wijk." in confirmation
    for professional in (bram, olga):
        alert = bot.emulator.messages(professional.id)[-1]
        assert f"Nieuwe melding {reference} · Schilderswijk" in alert.plain_text
        assert "Geluidsoverlast · Dorpsstraat 12 · eerste keer" in alert.plain_text
        assert "Anna" not in alert.plain_text and "Elke nacht" not in alert.plain_text
        assert alert.button_labels == ["🔎 Melding bekijken"]

    # A contactable reporter's name is in the alert; a restart and the digest job send
    # nothing twice.
    cees = bot.user(1003, "Cees")
    second, _ = await melden(cees, contactable=True)
    assert second in last_text(bot, bram) and "contact: Cees" in last_text(bot, bram)
    await bot.restart()
    assert bot.app is not None
    await digest_module.run_wijk(bot.app, "schilderswijk", clock.now + dt.timedelta(minutes=5))
    for professional in (bram, olga):
        alerts = [
            m for m in bot.emulator.messages(professional.id) if "Nieuwe melding" in m.plain_text
        ]
        assert len(alerts) == 2
    assert bot.db is not None
    async with bot.db.begin() as session:
        rows = (await session.scalars(select(SignalAlert))).all()
    assert len(rows) == 4 and all(row.sent_at is not None for row in rows)


async def test_the_choice_per_professional_and_what_the_resident_is_told(
    clock: Clock, bot: BotUnderTest
) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")

    reply = await bram.says("/meldingen_instellen")
    assert "Schilderswijk: elke nieuwe melding meteen 🔔" in reply.text
    reply = await bram.taps("Schilderswijk: alleen in het dagoverzicht")
    assert reply.alert == "Opgeslagen"
    assert "Schilderswijk: alleen in het dagoverzicht van 08:00 📋" in reply.edited[-1].plain_text

    clock.at(6, 30)
    before = len(bot.emulator.messages(bram.id))
    reference, confirmation = await melden(anna)
    assert (
        "Hij gaat nu meteen naar de opbouwwerker; de wijkagent ziet hem vandaag om 08:00, "
        "in het dagoverzicht."
    ) in confirmation
    assert len(bot.emulator.messages(bram.id)) == before  # Bram waits for the digest
    assert reference in last_text(bot, olga)

    await olga.says("/meldingen_instellen")
    await olga.taps("alleen in het dagoverzicht")
    clock.at(9)
    _, confirmation = await melden(anna)
    assert (
        "Hij komt morgen om 08:00 binnen bij de wijkagent en de opbouwwerker van je wijk, "
        "in hun dagoverzicht."
    ) in confirmation
    assert "Nieuwe melding" not in last_text(bot, olga)

    await bram.says("/meldingen_instellen")
    reply = await bram.taps("elke nieuwe melding meteen")
    assert "Schilderswijk: elke nieuwe melding meteen 🔔" in reply.edited[-1].plain_text
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk))
        assert wijk is not None
        assert await digests.alert_modes(session, bram.id) == {wijk.id: "immediate"}
        assert await digests.alert_modes(session, olga.id) == {wijk.id: "digest"}


async def test_without_professionals_the_resident_is_told_so(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    _, confirmation = await melden(anna)
    assert "Je wijk heeft nog geen wijkagent of opbouwwerker in deze bot" in confirmation


async def test_only_the_pair_may_choose_and_only_for_their_own_wijk(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/meldingen_instellen")
    assert reply.text == NOT_ALLOWED
    reply = await bram.says("/meldingen_instellen")
    message_id = reply.last.message_id
    for someone, data in ((anna, "digest:alerts:1:digest"), (bram, "digest:alerts:99:digest")):
        reply = await someone.presses(message_id, data)
        assert reply.alert == NOT_ALLOWED
    reply = await bram.presses(message_id, "digest:alerts:1:sometimes")
    assert reply.alert == "Deze knop werkt niet meer."
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert await digests.alert_modes(session, bram.id) == {}
    menu = bot.emulator.commands_for({"type": "chat", "chat_id": bram.id}, "")
    assert menu is None or "meldingen_instellen" in {c["command"] for c in menu}


async def test_alerts_decided_before_a_crash_go_out_once_after_the_restart(
    clock: Clock, bot: BotUnderTest
) -> None:
    bram, olga = await pair(bot)
    anna = bot.user(1001, "Anna")
    clock.at(15)
    bot.draining = False  # the bot stops right after the report is stored, before sending
    reference, _ = await melden(anna)
    await bot.restart(crash=True)
    bot.draining = True
    assert all(reference not in texts(bot, p) for p in (bram, olga))

    bot.emulator.fail_next("sendMessage", status=502)
    await bot.drain_outbox()
    got = [reference in texts(bot, p) for p in (bram, olga)]
    assert sorted(got) == [False, True]  # one send failed
    clock.now += dt.timedelta(minutes=1)
    await bot.drain_outbox()
    await bot.restart()
    assert bot.app is not None
    await digest_module.run_wijk(bot.app, "schilderswijk", clock.now)
    await bot.drain_outbox()
    for professional in (bram, olga):
        alerts = [m for m in bot.emulator.messages(professional.id) if reference in m.plain_text]
        assert len(alerts) == 1


# --- item 12: the history in words ---------------------------------------------------------------


async def test_the_history_in_melding_has_no_internal_codes(bot: BotUnderTest) -> None:
    bram, _ = await pair(bot)
    anna = bot.user(1001, "Anna")
    reference, _ = await melden(anna, contactable=True)
    await bram.says(f"/melding {reference}")
    await bram.taps("Bemiddeling voorstellen")
    proposal = bot.emulator.messages(anna.id)[-1]
    await anna.taps("Ja, ik wil bemiddeling aanvragen", message=proposal)
    await anna.says("/annuleren")
    await anna.says("/vergeetmij")
    await anna.taps("Ja, verwijder mijn gegevens")

    reply = await bram.says(f"/melding {reference}")
    detail = reply.last.plain_text
    assert "buurtbemiddeling voorgesteld aan de melder · Bram" in detail
    assert "de melder wil buurtbemiddeling · melder" in detail
    assert (
        "de melder heeft de eigen gegevens laten verwijderen (/vergeetmij) · automatisch" in detail
    )
    assert not INTERNAL_CODES.search(detail), detail


def test_every_history_kind_has_words() -> None:
    from buurtsignaal.bot.i18n import Translator

    kinds = [
        value
        for name, value in vars(store).items()
        if name.isupper()
        and isinstance(value, str)
        and name not in ("RESIDENT", "BOT")
        and name not in ("NEW", "HANDLING", "CLOSED", "REFERENCE_PREFIX", "WITHDRAWN")
    ]
    t = Translator("nl")
    assert {"reporter_left", "mediation_accepted", "retention_content", "withdrawn"} <= set(kinds)
    for kind in [*kinds, "created"]:
        for note in ("yes", None):
            event = SignalEvent(
                kind=kind, actor="system", note=note, from_status="nieuw", to_status="afgehandeld"
            )
            text = cases._event_text(t, event)
            assert text and text != kind and "_" not in text and " ?" not in text, (kind, text)
    unknown = SignalEvent(kind="something_new", actor="system")
    assert cases._event_text(t, unknown) == "andere wijziging"
    assert cases._who(t, "system", {}) == "automatisch"


# --- privacy: photos added later, withdrawn reports -----------------------------------------------


async def test_added_photos_go_with_vergeetmij_and_withdrawn_reports_with_retention(
    bot: BotUnderTest,
) -> None:
    await pair(bot)
    anna = bot.user(1001, "Anna")
    kept, _ = await melden(anna)
    withdrawn, _ = await melden(anna)
    for reference in (kept, withdrawn):
        await anna.says("/mijnmeldingen")
        await anna.taps(f"Aanvullen {reference}")
        await anna.sends_photo(PNG)
    await anna.says("/mijnmeldingen")
    await anna.taps(f"Aanvullen {withdrawn}")
    await anna.says("/annuleren")
    signal = await signal_row(bot, withdrawn)
    message_id = bot.emulator.messages(anna.id)[-1].message_id
    await anna.presses(message_id, f"mine:withdraw:{signal.id}")
    await anna.taps("Ja, intrekken")

    # Retention counts from the withdrawal, as from closing: the added photo goes too.
    assert bot.db is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    async with bot.db.begin() as session:
        removed = await privacy_store.apply_retention(
            session,
            now=later,
            contact_days=30,
            content_days=365,
            signup_days=30,
            mediation_days=730,
        )
    assert [(r.kind, r.reference) for r in removed] == [("content", withdrawn)]
    signal = await signal_row(bot, withdrawn)
    assert signal.description is None and all(e.photo_file_id is None for e in signal.history)
    assert (await signal_row(bot, kept)).history[-1].photo_file_id  # open: kept

    await anna.says("/vergeetmij")
    await anna.taps("Ja, verwijder mijn gegevens")
    signal = await signal_row(bot, kept)
    assert signal.resident_id is None
    assert all(e.photo_file_id is None for e in signal.history)
