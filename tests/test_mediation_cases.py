"""Mediation cases after the intake, as the coordinator, the neighbour, the parties and the
wijkagent experience them: stages, the invite code, reminders, nazorg, closing, counts only
for the Koppelwerk pair, retention and the daily overview."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from buurtsignaal.bot.emulator import BotMessage
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.bot.shell import run_shell
from buurtsignaal.conversations import mediation_cases
from buurtsignaal.conversations.mediation_cases import jobs as mediation_jobs
from buurtsignaal.conversations.steps import pages
from buurtsignaal.conversations.ui import local_datetime, telegram_length
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.mediation import working_days_between
from buurtsignaal.storage.models import (
    MediationAppointment,
    MediationCase,
    MediationEvent,
    MediationParty,
    utcnow,
)
from tests.conftest import Clock, make_settings
from tests.harness import BotUnderTest, Person, Reply, grant_role, rewrite_user_data

AMS_ZONE = ZoneInfo("Europe/Amsterdam")  # the default settings.timezone


# --- helpers -----------------------------------------------------------------------------------


async def load_case(bot: BotUnderTest) -> MediationCase:
    assert bot.db is not None
    async with bot.db.begin() as session:
        case = await session.scalar(
            select(MediationCase)
            .options(selectinload(MediationCase.parties), selectinload(MediationCase.history))
            .order_by(MediationCase.id.desc())
            .limit(1)
        )
        assert case is not None
        return case


async def appointments(bot: BotUnderTest) -> list[MediationAppointment]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        result = await session.scalars(
            select(MediationAppointment).order_by(MediationAppointment.id)
        )
        return list(result.all())


async def snapshot(bot: BotUnderTest) -> list[Any]:
    """Everything stored about mediation, to prove that nothing changed."""
    assert bot.db is not None
    rows: list[Any] = []
    async with bot.db.begin() as session:
        for model in (MediationCase, MediationParty, MediationAppointment, MediationEvent):
            for row in (await session.scalars(select(model).order_by(model.id))).all():
                rows.append({c.key: getattr(row, c.key) for c in row.__table__.columns})
    return rows


async def ask_mediation(anna: Person, other: str = "De bovenburen op nummer 14") -> str:
    """Anna's intake (the finished feature), by phone; returns the reference."""
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Langer dan een half jaar")
    await anna.taps("Geprobeerd")
    await anna.says("Elke nacht harde muziek tot twee uur.")
    await anna.says(other)
    await anna.says("Vermeerstraat 16")
    await anna.says("Vermeerstraat 12")
    await anna.taps("Bel me")
    await anna.says("06 1234 5678")
    await anna.taps("'s Avonds")
    await anna.taps("Ja, het bemiddelingsteam mag")
    reply = await anna.taps("Aanvraag versturen")
    found = re.search(r"BM-\d{4}-\d{4}", reply.text)
    assert found, reply.text
    return found.group(0)


async def coordinator(bot: BotUnderTest, user_id: int = 3001, name: str = "Carla") -> Person:
    carla = bot.user(user_id, name)
    await grant_role(bot, carla, "bemiddelaar")
    return carla


async def open_case(carla: Person, reference: str) -> Reply:
    reply = await carla.says(f"/zaak {reference}")
    assert reference in reply.text
    return reply


def invite_code(message: BotMessage) -> tuple[str, str]:
    """The code as shown (ABCDE-23456) and the deep-link parameter from the coordinator's
    message."""
    text = message.plain_text
    shown = re.search(r"Code: ([2-9A-Z]{5}-[2-9A-Z]{5})", text)
    link = re.search(r"https://t\.me/buurtsignaal_bot\?start=(bm-[2-9A-Z]{10})", text)
    assert shown and link, text
    return shown.group(1), link.group(1)


async def invite(carla: Person, reference: str) -> tuple[str, str]:
    await open_case(carla, reference)
    reply = await carla.taps("Uitnodiging buur")
    return invite_code(reply.last)


async def move_to(carla: Person, reference: str, stage_label: str) -> Reply:
    """Press "Volgende fase" until the case reaches the stage with this label."""
    reply = await open_case(carla, reference)
    for _ in range(8):
        if f"Fase: {stage_label}" in reply.last.plain_text:
            return reply
        reply = await carla.taps("Volgende fase")
    raise AssertionError(reply.text)


async def plan(carla: Person, reference: str, parties: str, when: str, place: str) -> Reply:
    await open_case(carla, reference)
    await carla.taps("Afspraak")
    await carla.taps(parties)
    await carla.says(when)
    return await carla.says(place)


def local(moment: dt.datetime) -> str:
    """A date and time as a coordinator types it."""
    return moment.astimezone(AMS_ZONE).strftime("%d-%m-%Y %H:%M")


def shown(moment: dt.datetime) -> str:
    """A date and time as the bot shows it in Dutch: with the weekday."""
    return str(local_datetime(moment, AMS_ZONE))


def texts(bot: BotUnderTest, chat_id: int) -> list[str]:
    return [m.plain_text for m in bot.emulator.messages(chat_id)]


PARTY_1_WORDS = (
    "bovenburen",
    "Geluid",
    "Anna",
    "06 1234 5678",
    "nummer 14",
    "harde muziek",
    "Vermeerstraat",
)


# --- the coordinator ---------------------------------------------------------------------------


async def test_coordinator_takes_a_case_and_moves_it_through_the_stages(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna, "De bovenburen <nummer 14>")

    reply = await carla.says("/zaken")
    assert "1 openstaande bemiddelingszaak" in reply.text
    assert f"{reference} · Geluid · Aangemeld · vandaag · nog niet opgepakt" in reply.text
    reply = await carla.taps(reference)
    view = reply.last.plain_text
    for line in (
        "Fase: Aangemeld",
        "Coördinator: nog niemand",
        "Over: Geluid",
        "Speelt al: Langer dan een half jaar",
        "Met de buur gepraat: Geprobeerd, maar het lukte niet",
        "Wat speelt er: Elke nacht harde muziek tot twee uur.",
        "Andere partij: De bovenburen <nummer 14>",
        "Straat en huisnummer partij 1: Vermeerstraat 12",
        "Straat en huisnummer andere partij: Vermeerstraat 16",
        "Partij 1: doet mee, akkoord op",
        "telefonisch: 06 1234 5678 · best bereikbaar: 's Avonds",
        "Partij 2: nog niet uitgenodigd",
        "aanvraag binnengekomen · partij 1",
    ):
        assert line in view, line

    reply = await carla.taps("Oppakken")
    assert "Je bent nu coördinator van deze zaak." in reply.text
    assert "Coördinator: Carla" in reply.text
    assert "Oppakken" not in reply.last.button_labels
    [next_data] = [d for row in reply.last.buttons for label, d in row if "Volgende" in label]
    assert next_data is not None
    pressed_on = reply.last.message_id
    reply = await carla.taps("Volgende fase")
    assert "De fase is nu: Intake." in reply.text
    again = await carla.presses(pressed_on, next_data)  # a double tap
    assert "staat al in de fase Intake" in again.alert
    case_id = (await load_case(bot)).id
    forged = await carla.presses(pressed_on, f"mcase:skip:{case_id}:intake")  # skip 3 stages?
    assert "er is niets veranderd" in forged.alert
    assert (await load_case(bot)).stage == "intake"
    await carla.taps("Volgende fase")
    reply = await carla.taps("Volgende fase")
    assert "De fase is nu: Gesprek partij 2." in reply.text

    # Party 2 was never invited: no joint talk; skip to the agreements instead.
    reply = await carla.taps("Volgende fase")
    assert "alleen als beide buren met bemiddeling hebben ingestemd" in reply.text
    assert "partij 2) van " + reference + ": nog niet uitgenodigd" in reply.text
    assert (await load_case(bot)).stage == "gesprek_partij_2"
    reply = await carla.taps("Door naar afspraken")
    assert "De fase is nu: Afspraken." in reply.text

    moved_at = clock.now
    reply = await carla.taps("Volgende fase")
    assert (
        "De fase is nu: Nazorg. Over 4 weken krijgen beide partijen een nazorgvraag" in reply.text
    )
    assert "Volgende fase" not in reply.last.button_labels  # closing is its own action

    case = await load_case(bot)
    assert case.stage == "nazorg" and case.coordinator == 3001
    assert case.nazorg_due_at == moved_at + dt.timedelta(weeks=4)
    stages = [(e.from_stage, e.to_stage) for e in case.history if e.kind == "stage"]
    assert stages == [
        ("aangemeld", "intake"),
        ("intake", "gesprek_partij_1"),
        ("gesprek_partij_1", "gesprek_partij_2"),
        ("gesprek_partij_2", "afspraken"),
        ("afspraken", "nazorg"),
    ]
    assert {e.actor for e in case.history if e.kind != "created"} == {"pro:3001"}
    assert case.updated_at == moved_at


async def test_mediators_and_notes_are_typed_cancel_and_restart_safe(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    reference = await ask_mediation(bot.user(1001, "Anna"))
    await open_case(carla, reference)
    reply = await carla.taps("Bemiddelaars")
    assert "Typ de namen van de twee bemiddelaars" in reply.text
    await bot.restart(crash=True)
    reply = await carla.says("Fatima & Henk <vrijwilligers>")
    assert "Bemiddelaars: Fatima & Henk <vrijwilligers>." in reply.text
    assert "Bemiddelaars: Fatima & Henk <vrijwilligers>" in reply.last.plain_text

    await carla.taps("Notitie")
    reply = await carla.says("/annuleren")
    assert "Gestopt. Er is niets bewaard." in reply.text
    await open_case(carla, reference)
    await carla.taps("Notitie")
    reply = await carla.sends_sticker()
    assert "stuur dit als tekstbericht" in reply.text.lower() or "tekstbericht" in reply.text
    reply = await carla.says("Anna belde: het is sinds vorige week <stiller>")
    assert "Notitie toegevoegd." in reply.text
    assert "‘Anna belde: het is sinds vorige week <stiller>’" in reply.last.plain_text

    case = await load_case(bot)
    assert case.mediators == "Fatima & Henk <vrijwilligers>"
    notes = [(e.kind, e.note, e.actor) for e in case.history if e.kind in ("note", "mediators")]
    assert notes == [
        ("mediators", "Fatima & Henk <vrijwilligers>", "pro:3001"),
        ("note", "Anna belde: het is sinds vorige week <stiller>", "pro:3001"),
    ]


async def test_zaak_of_an_unknown_or_other_wijk_case(bot: BotUnderTest) -> None:
    carla = await coordinator(bot)
    reply = await carla.says("/zaak")
    assert "Welke zaak?" in reply.text
    reply = await carla.says("/zaak BM-2020-0099")
    assert "Ik kan zaak BM-2020-0099 niet vinden" in reply.text
    reply = await carla.says("/zaken")
    assert "geen openstaande bemiddelingszaken" in reply.text


# --- the neighbour -----------------------------------------------------------------------------


async def test_neighbour_joins_by_deep_link_and_agrees_seeing_nothing_of_party_1(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    await open_case(carla, reference)
    reply = await carla.taps("Uitnodiging buur")
    shown, parameter = invite_code(reply.last)
    card = reply.last.plain_text
    assert "werkt één keer" in card and "Tekst voor een kaartje of brief" in card
    assert f"/bemiddeling {shown}" in card and "@buurtsignaal_bot" in card
    for word in ("bovenburen", "Geluid", "06 1234"):
        assert word not in card.split("Tekst voor een kaartje of brief")[1]

    bram = bot.user(1002, "Bram")
    reply = await bram.says(f"/start {parameter}")
    seen = reply.text
    assert "buurtbemiddelingsteam van Schilderswijk nodigt je uit" in seen
    assert "Twee getrainde vrijwillige bemiddelaars" in seen  # the same explanation
    assert reply.last.button_labels == ["Ja, ik doe mee", "Nee, liever niet", "Bel me eerst"]
    reply = await bram.taps("Ja, ik doe mee")
    seen += reply.text
    assert "Fijn dat je meedoet" in reply.text
    for word in PARTY_1_WORDS:
        assert word not in seen, word
    assert all(word not in m for m in texts(bot, 1002) for word in PARTY_1_WORDS)

    case = await load_case(bot)
    second = next(p for p in case.parties if p.number == 2)
    assert second.status == "agreed" and second.consent_at == clock.now
    assert second.resident is not None and second.resident.telegram_id == 1002
    told = bot.emulator.messages(3001)[-1].plain_text
    assert f"De buur (partij 2) van {reference} heeft de uitnodiging beantwoord: doet mee" in told

    # Single use: Bram again, and someone else with the same code.
    reply = await bram.says(f"/bemiddeling {shown}")
    assert "Je hebt deze uitnodiging al beantwoord" in reply.text
    dirk = bot.user(1004, "Dirk")
    reply = await dirk.says(f"/start {parameter}")
    assert "Deze code is al gebruikt" in reply.text
    reply = await dirk.forges(f"mcase:p2:{parameter[3:]}:agree")  # a replayed button
    assert reply.alert == "Sorry, dat kan ik niet voor je doen."

    # Both agreed: now the joint talk may happen.
    reply = await move_to(carla, reference, "Gesprek partij 2")
    reply = await carla.taps("Volgende fase")
    assert "De fase is nu: Bemiddelingsgesprek." in reply.text
    assert "Partij 2: doet mee, akkoord op" in reply.last.plain_text
    assert "Uitnodiging buur" not in reply.last.button_labels


async def test_neighbour_declines_by_typed_code_and_the_joint_talk_is_refused(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    reference = await ask_mediation(bot.user(1001, "Anna"))
    shown, _ = await invite(carla, reference)
    bram = bot.user(1002, "Bram")
    typed = shown.lower().replace("-", " ")  # "abcd 2345": case and dash do not matter
    reply = await bram.says(f"/bemiddeling {typed}")
    assert "Wil je meedoen?" in reply.text
    reply = await bram.taps("Nee, liever niet")
    assert "Er gebeurt verder niets met deze uitnodiging" in reply.text
    case = await load_case(bot)
    second = next(p for p in case.parties if p.number == 2)
    assert (second.status, second.consent_at) == ("declined", None)
    assert "beantwoord: wil niet meedoen" in bot.emulator.messages(3001)[-1].plain_text

    await move_to(carla, reference, "Gesprek partij 2")
    reply = await carla.taps("Volgende fase")
    assert "van " + reference + ": wil niet meedoen" in reply.text
    assert (await load_case(bot)).stage == "gesprek_partij_2"
    reply = await carla.taps("Afsluiten")
    assert "Hoe is bemiddeling" in reply.text
    reply = await carla.taps("Gestopt")
    assert "Afgesloten als: Gestopt." in reply.text
    # Declined: Bram took no part and gets no closing message.
    assert not any("afgesloten" in m for m in texts(bot, 1002))


async def test_bad_codes_expired_codes_and_a_call_request(bot: BotUnderTest, clock: Clock) -> None:
    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    shown, parameter = await invite(carla, reference)
    bram = bot.user(1002, "Bram")

    reply = await bram.says("/bemiddeling QQQQ-QQQQ")
    assert "Deze code ken ik niet" in reply.text
    reply = await bram.says("/start bm-hallo")
    assert "Deze code ken ik niet" in reply.text
    reply = await anna.says(f"/start {parameter}")  # party 1 opens her neighbour's code
    assert "bedoeld voor je buur" in reply.text

    # A new code replaces the first; the first no longer works.
    await open_case(carla, reference)
    new_shown, new_parameter = invite_code((await carla.taps("Uitnodiging buur")).last)
    assert new_shown != shown
    reply = await bram.says(f"/bemiddeling {shown}")
    assert "Deze code ken ik niet" in reply.text

    clock.move(days=31)  # invite_days = 30
    reply = await bram.says(f"/start {new_parameter}")
    assert "Deze code is niet meer geldig" in reply.text
    clock.move(days=-2)
    reply = await bram.says(f"/start {new_parameter}")
    reply = await bram.taps("Bel me eerst")
    assert "Op welk telefoonnummer" in reply.text
    assert "wil eerst gebeld worden" in bot.emulator.messages(3001)[-1].plain_text
    await bot.restart()
    reply = await bram.says("morgen")
    assert "Dat lijkt geen telefoonnummer" in reply.text
    reply = await bram.says("070 123 4567")
    assert "Het bemiddelingsteam belt je" in reply.text
    assert "wil graag gebeld worden: 070 123 4567" in bot.emulator.messages(3001)[-1].plain_text
    case = await load_case(bot)
    second = next(p for p in case.parties if p.number == 2)
    assert (second.status, second.phone, second.contact_via) == (
        "call_requested",
        "070 123 4567",
        "telefoon",
    )
    reply = await open_case(carla, reference)
    assert "Partij 2: wil eerst gebeld worden · telefonisch: 070 123 4567" in reply.last.plain_text


# --- a pending typed step kept by an older release ----------------------------------------------


async def test_a_typed_step_kept_by_an_older_release_goes_on_after_the_upgrade(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    _, parameter = await invite(carla, reference)
    await open_case(carla, reference)
    await carla.taps("Notitie")
    bram = bot.user(1002, "Bram")
    await bram.says(f"/start {parameter}")
    reply = await bram.taps("Bel me eerst")
    assert "Op welk telefoonnummer" in reply.text
    await bot.stop()

    def old_note(data: Any) -> Any:  # the coordinator's step under user_data["mcase"]
        data["mcase"] = data.pop("mediation_cases")
        return data

    def old_phone(data: Any) -> Any:  # the neighbour's under ["mcase_phone"], no action
        pending = data.pop("mediation_invite")
        data["mcase_phone"] = {"party_id": pending["party_id"]}
        return data

    await rewrite_user_data(bot, carla.id, old_note)
    await rewrite_user_data(bot, bram.id, old_phone)
    await bot.start()

    reply = await carla.says("Genoteerd voor de upgrade")
    assert "Notitie toegevoegd." in reply.text
    reply = await bram.says("070 123 4567")
    assert "Het bemiddelingsteam belt je" in reply.text
    case = await load_case(bot)
    assert [e.note for e in case.history if e.kind == "note"] == ["Genoteerd voor de upgrade"]
    second = next(p for p in case.parties if p.number == 2)
    assert second.phone == "070 123 4567"
    assert bot.app is not None
    for person in (carla, bram):
        assert not {"mcase", "mcase_phone"} & set(bot.app.user_data[person.id])

    # An old step that is no longer any flow's: dropped kindly, nothing is taken.
    await open_case(carla, reference)
    await carla.taps("Notitie")
    await bot.stop()
    await rewrite_user_data(bot, carla.id, lambda data: {**data, "mediation_cases": "broken"})
    await bot.start()
    reply = await carla.says("Dit hoort nergens bij")
    assert "Gestopt. Er is niets bewaard." in reply.text
    assert "Wat je typte:\n\nDit hoort nergens bij" in reply.text
    case = await load_case(bot)
    assert [e.note for e in case.history if e.kind == "note"] == ["Genoteerd voor de upgrade"]


# --- appointments and reminders ----------------------------------------------------------------


async def two_parties(bot: BotUnderTest) -> tuple[Person, Person, Person, str]:
    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    _, parameter = await invite(carla, reference)
    bram = bot.user(1002, "Bram")
    await bram.says(f"/start {parameter}")
    await bram.taps("Ja, ik doe mee")
    return carla, anna, bram, reference


async def run_job(bot: BotUnderTest, name: str) -> None:
    assert bot.app is not None
    [job] = bot.app.job_queue.get_jobs_by_name(name)  # type: ignore[union-attr]
    await job.run(bot.app)
    await bot.drain_outbox()


async def test_appointment_reminders_once_and_a_failed_send_is_retried(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, _anna, _bram, reference = await two_parties(bot)
    starts = (
        (clock.now + dt.timedelta(days=3))
        .astimezone(AMS_ZONE)
        .replace(hour=19, minute=30, second=0, microsecond=0)
    )
    await open_case(carla, reference)
    await carla.taps("Afspraak")
    reply = await carla.says("volgende week")
    assert "Kies een van de knoppen" in reply.text
    reply = await carla.taps("Beide partijen")
    assert "dd-mm-jjjj uu:mm" in reply.text
    reply = await carla.says("31-02-2030 19:30")
    assert "Dat kan ik niet lezen als datum en tijd" in reply.text
    reply = await carla.says("01-01-2020 10:00")
    assert "Dat moment is al voorbij" in reply.text
    reply = await carla.says(starts.strftime("%d-%m-%Y %H:%M"))
    assert "Waar?" in reply.text
    reply = await carla.says("Buurthuis De Boog <zaal 2>")
    assert f"Afspraak vastgelegd: {shown(starts)}, Buurthuis De Boog <zaal 2>." in reply.text
    assert f"{shown(starts)} · Aangemeld · Beide partijen · Buurthuis De Boog <zaal 2>" in (
        reply.last.plain_text
    )
    [appointment] = await appointments(bot)
    assert (appointment.kind, appointment.parties, appointment.starts_at) == (
        "aangemeld",
        "1,2",
        starts.astimezone(dt.UTC),
    )

    before = {1001: len(texts(bot, 1001)), 1002: len(texts(bot, 1002))}
    clock.now = starts - dt.timedelta(hours=25)  # not yet a day before
    await run_job(bot, "mcase:reminders")
    assert {k: len(texts(bot, k)) for k in before} == before

    clock.now = starts - dt.timedelta(hours=23)
    await run_job(bot, "mcase:reminders")
    for chat_id in (1001, 1002):
        [reminder] = texts(bot, chat_id)[before[chat_id] :]
        assert "gesprek voor buurtbemiddeling op " in reminder
        assert f"dag {local(starts).replace(' ', ' om ')}" in reminder  # with the weekday
        assert "Plaats: Buurthuis De Boog <zaal 2>" in reminder
        for word in ("Geluid", "bovenburen", "Bram", "Anna", "partij"):
            assert word not in reminder
    await run_job(bot, "mcase:reminders")
    await bot.restart()
    await run_job(bot, "mcase:reminders")
    assert all(len(texts(bot, k)) == before[k] + 1 for k in before)
    [appointment] = await appointments(bot)
    assert appointment.reminded_at == clock.now

    # A second talk, for party 1 and 2; Telegram fails the first send (Anna's).
    await plan(
        carla, reference, "Beide partijen", local(starts + dt.timedelta(days=7)), "Bij Anna thuis"
    )
    counts = {k: len(texts(bot, k)) for k in before}
    clock.now = starts + dt.timedelta(days=6, hours=2)
    bot.emulator.fail_next("sendMessage", status=502)
    await run_job(bot, "mcase:reminders")
    assert len(texts(bot, 1001)) == counts[1001]
    assert len(texts(bot, 1002)) == counts[1002] + 1
    second = (await appointments(bot))[1]
    assert second.reminded_at is not None  # decided: the outbox tries Anna's again
    clock.now += dt.timedelta(minutes=1)
    await run_job(bot, "mcase:reminders")
    assert len(texts(bot, 1001)) == counts[1001] + 1
    assert len(texts(bot, 1002)) == counts[1002] + 1  # Bram is not reminded twice
    await run_job(bot, "mcase:reminders")
    assert len(texts(bot, 1001)) == counts[1001] + 1
    assert (await appointments(bot))[1].reminded_at is not None

    reply = await open_case(carla, reference)
    history = reply.last.plain_text
    assert history.count("herinnering verstuurd aan partij 1") == 2
    assert history.count("herinnering verstuurd aan partij 2") == 2
    assert "⏰ herinnerd" in history


async def test_reminder_only_to_the_parties_it_concerns(bot: BotUnderTest, clock: Clock) -> None:
    carla, _anna, _bram, reference = await two_parties(bot)
    starts = clock.now + dt.timedelta(days=2)
    await plan(carla, reference, "Partij 2", local(starts), "Bij Bram thuis")
    before = (len(texts(bot, 1001)), len(texts(bot, 1002)))
    clock.now = starts - dt.timedelta(hours=12)
    await run_job(bot, "mcase:reminders")
    assert (len(texts(bot, 1001)), len(texts(bot, 1002))) == (before[0], before[1] + 1)


# --- nazorg ------------------------------------------------------------------------------------


async def test_nazorg_check_in_answers_and_the_coordinator_is_told(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, bram, reference = await two_parties(bot)
    await move_to(carla, reference, "Nazorg")
    asked = (len(texts(bot, 1001)), len(texts(bot, 1002)))
    clock.move(weeks=4, minutes=-1)
    await run_job(bot, "mcase:nazorg")
    assert (len(texts(bot, 1001)), len(texts(bot, 1002))) == asked
    clock.move(minutes=2)
    await run_job(bot, "mcase:nazorg")
    await run_job(bot, "mcase:nazorg")
    for chat_id, count in zip((1001, 1002), asked, strict=True):
        [question] = texts(bot, chat_id)[count:]
        assert "Hoe gaat het nu?" in question
        assert "Geluid" not in question
    assert bot.emulator.last_sent(1001).button_labels == ["Beter", "Hetzelfde", "Slechter"]

    # Bram cannot answer for Anna.
    anna_question = bot.emulator.last_sent(1001)
    anna_beter = anna_question.buttons[0][0][1]
    assert anna_beter is not None
    reply = await bram.forges(anna_beter)
    assert reply.alert == "Sorry, dat kan ik niet voor je doen."

    reply = await anna.taps("Beter")
    assert "Bedankt dat je het laat weten" in reply.text
    reply = await anna.presses(anna_question.message_id, anna_beter)  # a double tap
    assert "al beantwoord" in reply.alert
    await bram.taps("Slechter")
    told = texts(bot, 3001)[-2:]
    assert (
        f"Nazorg {reference}: op de vraag hoe het nu gaat, antwoordde partij 1 ‘Beter’." in told[0]
    )
    assert "antwoordde partij 2 ‘Slechter’" in told[1]
    case = await load_case(bot)
    answers = {p.number: (p.nazorg_answer, p.nazorg_sent_at) for p in case.parties}
    assert answers == {1: ("beter", clock.now), 2: ("slechter", clock.now)}


async def test_nazorg_retried_after_a_failure(
    bot: BotUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    carla, _anna, _bram, reference = await two_parties(bot)
    await move_to(carla, reference, "Nazorg")
    asked = (len(texts(bot, 1001)), len(texts(bot, 1002)))
    clock.move(weeks=4, minutes=1)
    bot.emulator.fail_next("sendMessage", status=429, retry_after=1, times=5)
    await run_job(bot, "mcase:nazorg")
    assert len(texts(bot, 1002)) == asked[1] + 1
    assert len(texts(bot, 1001)) == asked[0]
    clock.move(seconds=2)  # after retry_after, the outbox tries again
    await run_job(bot, "mcase:nazorg")
    assert (len(texts(bot, 1001)), len(texts(bot, 1002))) == (asked[0] + 1, asked[1] + 1)


# --- closing, counts and confidentiality -------------------------------------------------------


async def test_closing_thanks_both_and_the_referrer_sees_only_geslaagd(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, _anna, _bram, reference = await two_parties(bot)
    wim = bot.user(3002, "Wim")
    await grant_role(bot, wim, "wijkagent")
    assert bot.db is not None
    async with bot.db.begin() as session:
        await session.execute(update(MediationCase).values(referred_by=3002))
    await open_case(carla, reference)
    await carla.taps("Bemiddelaars")
    await carla.says("Fatima en Henk")
    await carla.taps("Notitie")
    await carla.says("Afspraak over muziek na tienen")

    reply = await wim.says("/bemiddelingen")
    assert f"{reference}: nog niet afgerond" in reply.text
    assert "Lopend: 1 (Aangemeld 1)" in reply.text

    await open_case(carla, reference)
    await carla.taps("Afsluiten")
    reply = await carla.taps("Opgelost")
    assert "Afgesloten als: Opgelost." in reply.text
    assert reply.last.button_labels == ["🗒 Notities"]  # a closed case: only its notes to read
    again = await carla.presses(
        reply.last.message_id - 1, f"mcase:out:{(await load_case(bot)).id}:opgelost"
    )
    assert "afgesloten" in again.alert
    for chat_id in (1001, 1002):
        closing = texts(bot, chat_id)[-1]
        assert "heeft je bemiddeling afgesloten" in closing
        assert "Opgelost" not in closing and "Geluid" not in closing
    case = await load_case(bot)
    assert (case.stage, case.outcome, case.closed_at) == ("afgesloten", "opgelost", clock.now)

    reply = await wim.says("/bemiddelingen")
    assert f"{reference}: geslaagd: ja" in reply.text
    assert "Afgesloten: 1 (Opgelost 1)" in reply.text
    for word in ("Geluid", "bovenburen", "Fatima", "muziek", "Anna", "Bram", "06 1234"):
        assert word not in reply.text, word


async def test_a_wijkagent_and_a_resident_learn_nothing_and_change_nothing(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, _anna, _bram, reference = await two_parties(bot)
    await plan(carla, reference, "Partij 1", local(clock.now + dt.timedelta(days=2)), "Buurthuis")
    await move_to(carla, reference, "Nazorg")
    clock.move(weeks=5)
    await run_job(bot, "mcase:nazorg")
    case = await load_case(bot)
    # Every button data the bot ever showed, plus the typed-step buttons and forgeries.
    seen = {
        data
        for chat_id in (3001, 1001, 1002)
        for message in bot.emulator.messages(chat_id)
        for row in message.buttons
        for _, data in row
        if data and data.startswith("mcase:")
    }
    seen |= {
        f"mcase:apptp:{case.id}:12",
        f"mcase:skip:{case.id}:gesprek_partij_2",
        f"mcase:out:{case.id}:opgelost",
        f"mcase:show:{case.id}",
        f"mcase:take:{case.id}",
        f"mcase:next:{case.id}:nazorg",
        f"mcase:close:{case.id}",
        f"mcase:invite:{case.id}",
        f"mcase:mediators:{case.id}",
        f"mcase:note:{case.id}",
        f"mcase:appt:{case.id}",
        f"mcase:msg:{case.id}:1",
        f"mcase:msg:{case.id}:2",
        f"mcase:ans:{case.id}:1",
        f"mcase:ans:{case.id}:2",
        f"mcase:notes:{case.id}",
        f"mcase:undo:{case.id}:{max(e.id for e in case.history)}",
        "mcase:show:999",
        "mcase:whatever",
    }
    assert any(d.startswith("mcase:nz:") for d in seen)
    wim = bot.user(3002, "Wim")
    await grant_role(bot, wim, "wijkagent")
    dirk = bot.user(1004, "Dirk")
    await dirk.says("/start")
    before = await snapshot(bot)
    for outsider in (wim, dirk):
        for command in (f"/zaak {reference}", "/zaak BM-2020-0099", "/zaak", "/zaken"):
            reply = await outsider.says(command)
            assert reply.text == "Sorry, dat kan ik niet voor je doen.", (outsider.name, command)
        for data in sorted(seen):
            reply = await outsider.forges(data)
            assert reply.alert == "Sorry, dat kan ik niet voor je doen.", (outsider.name, data)
            assert reply.messages == []
            assert reference not in reply.alert
        reply = await outsider.says("een getypte tekst na het drukken")
        assert reference not in reply.text
    reply = await dirk.says("/bemiddelingen")
    assert reply.text == "Sorry, dat kan ik niet voor je doen."
    assert await snapshot(bot) == before


# --- messages between the mediation team and a party ------------------------------------------

REFUSAL = "Sorry, dat kan ik niet voor je doen."


def relay_events(case: MediationCase) -> list[tuple[str, str | None, str, str | None]]:
    return [
        (e.kind, e.note, e.actor, e.to_stage) for e in case.history if e.kind.startswith("message")
    ]


async def test_coordinator_and_each_party_write_through_the_bot_without_names(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, bram, reference = await two_parties(bot)
    reply = await open_case(carla, reference)
    assert {"💬 Bericht aan partij 1", "💬 Bericht aan partij 2"} <= set(reply.last.button_labels)
    reply = await carla.taps("Bericht aan partij 1")
    assert f"Typ je bericht voor partij 1 van {reference}" in reply.text
    assert "je naam blijft verborgen" in reply.text
    reply = await carla.says("Kun je dinsdag <om 19:00>?")
    assert (
        f"Verstuurd naar partij 1 van {reference}, ondertekend met ‘het bemiddelingsteam’."
        in reply.text
    )
    relayed = bot.emulator.last_sent(1001)
    assert relayed.plain_text == (
        f"Bericht over je buurtbemiddeling {reference}:\n\n"
        "Kun je dinsdag <om 19:00>?\n\n— het bemiddelingsteam"
    )
    assert relayed.button_labels == ["↩️ Antwoorden"]

    # Bram (party 2) replays Anna's button: refused; he never sees her messages.
    [[(_, anna_answer)]] = relayed.buttons
    assert anna_answer is not None
    before = await snapshot(bot)
    reply = await bram.forges(anna_answer)
    assert reply.alert == REFUSAL and reply.messages == []
    reply = await bram.says("Ik antwoord namens Anna")
    assert await snapshot(bot) == before
    assert "Ik antwoord namens Anna" not in bot.emulator.last_sent(3001).plain_text

    reply = await anna.taps("Antwoorden")
    assert f"Typ je antwoord over je buurtbemiddeling {reference}" in reply.text
    reply = await anna.says("Ja, dinsdag <past> goed")
    assert "Je antwoord is doorgegeven aan het bemiddelingsteam." in reply.text
    told = bot.emulator.last_sent(3001)
    assert told.plain_text == f"Antwoord van partij 1 in {reference}:\n\nJa, dinsdag <past> goed"
    assert told.button_labels == ["💬 Bericht aan partij 1", "🔎 Zaak bekijken"]
    for word in PARTY_1_WORDS:
        assert word not in told.plain_text, word

    # Party 2 gets their own message and answers; neither sees the other's words.
    await open_case(carla, reference)
    reply = await carla.taps("Bericht aan partij 2")
    assert f"Typ je bericht voor partij 2 van {reference}" in reply.text
    await carla.says("Bram, wanneer schikt het jou?")
    await bram.taps("Antwoorden")
    await bram.says("Woensdag kan ik")
    assert (
        bot.emulator.last_sent(3001).plain_text
        == f"Antwoord van partij 2 in {reference}:\n\nWoensdag kan ik"
    )
    for word in ("dinsdag", "Anna", *PARTY_1_WORDS):
        assert all(word not in m for m in texts(bot, 1002)), word
    for word in ("Bram", "Woensdag", "schikt"):
        assert all(word not in m for m in texts(bot, 1001)), word

    case = await load_case(bot)
    assert relay_events(case) == [
        ("message_out", "Kun je dinsdag <om 19:00>?", "pro:3001", "party:1"),
        ("message_in", "Ja, dinsdag <past> goed", "party:1", None),
        ("message_out", "Bram, wanneer schikt het jou?", "pro:3001", "party:2"),
        ("message_in", "Woensdag kan ik", "party:2", None),
    ]
    view = (await open_case(carla, reference)).last.plain_text
    for line in (
        "bericht aan partij 1 · Carla\n    ‘Kun je dinsdag <om 19:00>?’",
        "antwoord via de bot · partij 1\n    ‘Ja, dinsdag <past> goed’",
        "bericht aan partij 2 · Carla\n    ‘Bram, wanneer schikt het jou?’",
        "antwoord via de bot · partij 2\n    ‘Woensdag kan ik’",
    ):
        assert line in view, line


async def test_a_wijkagent_and_an_outsider_cannot_use_the_message_buttons(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, _bram, reference = await two_parties(bot)
    await open_case(carla, reference)
    await carla.taps("Bericht aan partij 1")
    await carla.says("Hoe gaat het?")
    case = await load_case(bot)
    wim = bot.user(3002, "Wim")
    await grant_role(bot, wim, "wijkagent")
    await wim.says("/help")
    dirk = bot.user(1004, "Dirk")
    await dirk.says("/start")
    before = await snapshot(bot)
    sent_before = len(bot.emulator.sent)
    for outsider in (wim, dirk):
        for data in (
            f"mcase:msg:{case.id}:1",
            f"mcase:msg:{case.id}:2",
            f"mcase:ans:{case.id}:1",
            f"mcase:ans:{case.id}:2",
            "mcase:msg:999:1",
            "mcase:ans:999:1",
        ):
            reply = await outsider.forges(data)
            assert reply.alert == REFUSAL, (outsider.name, data)
            assert reply.messages == []
        reply = await outsider.says("Een bericht na het drukken")
        assert reference not in reply.text
    # Anna (party 1) may answer, but not write as the mediation team.
    reply = await anna.forges(f"mcase:msg:{case.id}:2")
    assert reply.alert == REFUSAL
    assert await snapshot(bot) == before
    others = [m for m in bot.emulator.sent[sent_before:] if m.chat_id not in (3002, 1004)]
    assert others == []


async def test_a_blocked_party_is_noted_and_the_coordinator_told(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, _bram, reference = await two_parties(bot)
    bot.emulator.block_bot(anna.id)
    await open_case(carla, reference)
    await carla.taps("Bericht aan partij 1")
    reply = await carla.says("Ben je er donderdag?")
    assert "Je bericht kon niet worden bezorgd: partij 1 heeft de bot geblokkeerd" in reply.text
    case = await load_case(bot)
    assert relay_events(case) == [
        ("message_undelivered", "Ben je er donderdag?", "pro:3001", "party:1")
    ]
    view = (await open_case(carla, reference)).last.plain_text
    assert "bericht aan partij 1, NIET bezorgd · Carla" in view


async def test_messages_survive_a_restart_and_annuleren_sends_nothing(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, _bram, reference = await two_parties(bot)
    await open_case(carla, reference)
    await carla.taps("Bericht aan partij 1")
    reply = await carla.says("/annuleren")
    assert "Gestopt. Er is niets bewaard." in reply.text
    assert relay_events(await load_case(bot)) == []

    await open_case(carla, reference)
    await carla.taps("Bericht aan partij 1")
    await bot.restart(crash=True)
    reply = await carla.says("Na de herstart: tot dinsdag.")
    assert f"Verstuurd naar partij 1 van {reference}" in reply.text
    relayed = bot.emulator.last_sent(1001)
    assert "Na de herstart: tot dinsdag." in relayed.plain_text

    await anna.taps("Antwoorden")
    await bot.restart(crash=True)
    await anna.says("Prima, tot dinsdag.")
    assert (
        bot.emulator.last_sent(3001).plain_text
        == f"Antwoord van partij 1 in {reference}:\n\nPrima, tot dinsdag."
    )

    # Once the case is closed, the old button no longer passes anything on.
    await open_case(carla, reference)
    await carla.taps("Afsluiten")
    await carla.taps("Opgelost")
    before = await snapshot(bot)
    [[(_, answer)]] = relayed.buttons
    assert answer is not None
    reply = await anna.presses(relayed.message_id, answer)
    assert "afgesloten" in reply.alert
    assert await snapshot(bot) == before


# --- what the coordinator needs: appointments told at once, undo, notes in full, history ------


async def test_the_parties_are_told_of_an_appointment_at_once(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, bram, reference = await two_parties(bot)
    starts = (
        (clock.now + dt.timedelta(days=5))
        .astimezone(AMS_ZONE)
        .replace(hour=19, minute=30, second=0, microsecond=0)
    )
    before = {1001: len(texts(bot, 1001)), 1002: len(texts(bot, 1002))}
    reply = await plan(carla, reference, "Beide partijen", local(starts), "Buurthuis De Boog")
    assert "De partijen die de bot gebruiken zijn ingelicht" in reply.text
    for chat_id in (1001, 1002):
        [notice] = texts(bot, chat_id)[before[chat_id] :]
        assert "gesprek voor buurtbemiddeling met je gepland op " in notice
        assert f"dag {local(starts)}".replace(" 19:30", " om 19:30") in notice  # weekday first
        assert "Plaats: Buurthuis De Boog" in notice
        assert "De dag ervoor krijg je een herinnering" in notice
        for word in ("Anna", "Bram", "Carla", "partij", "Geluid", "bovenburen", "Vermeerstraat"):
            assert word not in notice, word
    assert bot.emulator.last_sent(1002).button_labels == ["↩️ Antwoorden"]
    view = reply.last.plain_text
    assert "partij 1 ingelicht over de afspraak · de bot" in view
    assert "partij 2 ingelicht over de afspraak · de bot" in view

    # Bram answers from the notice; it reaches the coordinator as party 2.
    await bram.taps("Antwoorden")
    await bram.says("Dan kan ik niet, woensdag wel.")
    assert bot.emulator.last_sent(3001).plain_text == (
        f"Antwoord van partij 2 in {reference}:\n\nDan kan ik niet, woensdag wel."
    )

    # A talk with party 1 only, who has blocked the bot: noted; Bram hears nothing of it.
    bot.emulator.block_bot(anna.id)
    bram_count = len(texts(bot, 1002))
    reply = await plan(
        carla, reference, "Partij 1", local(starts + dt.timedelta(days=7)), "Bij Anna thuis"
    )
    assert len(texts(bot, 1002)) == bram_count
    assert "Afspraak vastgelegd" in reply.last.plain_text  # told to her a moment later...
    view = (await open_case(carla, reference)).last.plain_text
    assert "partij 1 kon NIET worden ingelicht over de afspraak" in view  # ...which failed
    case = await load_case(bot)
    told = [(e.kind, e.note) for e in case.history if e.kind.startswith("appointment_")]
    first, second = await appointments(bot)
    assert told == [
        ("appointment_told", f"{first.id}:1"),
        ("appointment_told", f"{first.id}:2"),
        ("appointment_untold", f"{second.id}:1"),
    ]


def undo_button(message: BotMessage) -> str:
    [data] = [d for row in message.buttons for label, d in row if "Ongedaan maken" in label and d]
    return data


async def test_a_stage_move_can_be_undone_shortly_and_until_the_next_move(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    reference = await ask_mediation(bot.user(1001, "Anna"))
    reply = await open_case(carla, reference)
    assert "Ongedaan maken" not in str(reply.last.button_labels)  # nothing to undo yet
    reply = await carla.taps("Volgende fase")
    assert "De fase is nu: Intake." in reply.text
    assert "‘Ongedaan maken’ zet de fase terug (nog 15 minuten" in reply.text
    moved = reply.last
    undo = undo_button(moved)
    reply = await carla.taps("Ongedaan maken")
    assert "Ongedaan gemaakt: de fase is weer Aangemeld." in reply.text
    view = reply.last
    assert "Fase: Aangemeld" in view.plain_text
    assert "faseovergang ongedaan gemaakt: van Intake terug naar Aangemeld · Carla" in (
        view.plain_text
    )
    assert "Ongedaan maken" not in str(view.button_labels)
    again = await carla.presses(moved.message_id, undo)  # a double tap
    assert "kan niet meer ongedaan worden gemaakt" in again.alert
    assert (await load_case(bot)).stage == "aangemeld"

    # Only until the next move.
    first = (await carla.taps("Volgende fase")).last
    first_undo = undo_button(first)
    second = (await carla.taps("Volgende fase")).last
    assert "Fase: Gesprek partij 1" in second.plain_text
    again = await carla.presses(first.message_id, first_undo)
    assert "kan niet meer ongedaan worden gemaakt" in again.alert
    # And only for a short time.
    clock.move(minutes=16)
    again = await carla.presses(second.message_id, undo_button(second))
    assert "kan niet meer ongedaan worden gemaakt" in again.alert
    reply = await open_case(carla, reference)
    assert "Ongedaan maken" not in str(reply.last.button_labels)
    assert (await load_case(bot)).stage == "gesprek_partij_1"

    # Undoing the move to nazorg drops the planned check-in again.
    await move_to(carla, reference, "Gesprek partij 2")
    await carla.taps("Volgende fase")  # refused: the neighbour did not agree
    await carla.taps("Door naar afspraken")
    reply = await carla.taps("Volgende fase")
    assert "De fase is nu: Nazorg." in reply.text
    assert (await load_case(bot)).nazorg_due_at is not None
    reply = await carla.taps("Ongedaan maken")
    assert "de fase is weer Afspraken" in reply.text
    case = await load_case(bot)
    assert (case.stage, case.nazorg_due_at) == ("afspraken", None)
    moves = [(e.kind, e.from_stage, e.to_stage) for e in case.history if "stage" in e.kind]
    assert moves == [
        ("stage", "aangemeld", "intake"),
        ("stage_undone", "intake", "aangemeld"),
        ("stage", "aangemeld", "intake"),
        ("stage", "intake", "gesprek_partij_1"),
        ("stage", "gesprek_partij_1", "gesprek_partij_2"),
        ("stage", "gesprek_partij_2", "afspraken"),
        ("stage", "afspraken", "nazorg"),
        ("stage_undone", "nazorg", "afspraken"),
    ]
    clock.move(weeks=5)
    await run_job(bot, "mcase:nazorg")
    assert not any("Hoe gaat het nu?" in m for m in texts(bot, 1001))


async def test_notes_are_read_in_full_over_several_messages(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    reference = await ask_mediation(bot.user(1001, "Anna"))
    notes = [
        f"Notitie {n}: " + "gesprek <met> partij & buur, " * 33 + f"einde van notitie {n}."
        for n in range(1, 6)
    ]
    assert all(900 < len(note) <= 1000 for note in notes)
    for note in notes:
        await open_case(carla, reference)
        await carla.taps("📝 Notitie")
        await carla.says(note)
    view = (await open_case(carla, reference)).last.plain_text
    assert notes[0] not in view  # the case view shortens each note

    reply = await carla.taps("Notities")
    assert len(reply.messages) == 3
    for number, message in enumerate(reply.messages, start=1):
        assert message.plain_text.startswith(f"🗒 5 notities in {reference} ({number}/3)")
    everything = "\n".join(m.plain_text for m in reply.messages)
    for note in notes:
        assert note in everything
    assert everything.count("· Carla") == 5

    other = await ask_mediation(bot.user(1005, "Eva"), "De buren met de hond")
    reply = await open_case(carla, other)
    assert "Notities" not in str(reply.last.button_labels)
    case_id = (await load_case_by(bot, other)).id
    reply = await carla.presses(reply.last.message_id, f"mcase:notes:{case_id}")
    assert reply.alert == f"Er zijn geen notities in {other}."


def test_pages_split_a_text_too_long_for_one_message_without_breaking_html() -> None:
    text = "a & b <c> " * 700  # 7000 characters, twice as many when escaped
    first, second = ("<i>01-01-2026</i> · Carla", "<i>02-01-2026</i> · Carla")
    found = pages([(first, text), (second, "kort")])
    assert len(found) == 4
    assert all(telegram_length(page) <= 3896 for page in found)
    for page in found:  # every & starts a whole entity: no escape was cut in two
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", page, flags=re.S), page[-20:]
    assert found[0].startswith(first + "\n")
    assert all(page.startswith(first + " (…)\n") for page in found[1:])
    assert found[-1].endswith("\n\n" + second + "\nkort")  # a short block joins the last page
    bodies = [page.split("\n", 1)[1] for page in found]
    bodies[-1] = bodies[-1].rsplit("\n\n", 1)[0]
    assert html.unescape(" ".join(bodies)).split() == text.split()


def test_every_history_kind_reads_as_a_human_line() -> None:
    t = Translator("nl")
    case = MediationCase(reference="BM-2026-0001", outcome="opgelost")
    lines = {}
    for kind in (*store.EVENT_KINDS, "iets_nieuws"):
        event = MediationEvent(
            kind=kind, note="3:2", actor="bot", from_stage="intake", to_stage="party:2"
        )
        lines[kind] = mediation_cases._event_text(t, event, case)
    for kind, line in lines.items():
        assert kind not in line and "_" not in line, (kind, line)
    assert lines["iets_nieuws"] == "overige wijziging"
    left = "een partij heeft de eigen gegevens laten verwijderen (/vergeetmij)"
    assert lines["party_left"] == left
    assert lines["appointment_told"] == "partij 2 ingelicht over de afspraak"


async def test_a_party_who_leaves_is_a_human_line_and_takes_the_addresses(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla, anna, bram, reference = await two_parties(bot)
    reply = await anna.says("/mijngegevens")
    data = json.loads(reply.messages[-1].file_bytes or b"{}")
    [mine] = data["mediation"]
    assert mine["situation"] == "Elke nacht harde muziek tot twee uur."
    assert mine["your_address"] == "Vermeerstraat 12"
    assert "Vermeerstraat 16" not in json.dumps(data)  # the other party's address is not hers
    reply = await bram.says("/mijngegevens")
    theirs = (reply.messages[-1].file_bytes or b"").decode()
    for word in ("Vermeerstraat", "harde muziek", "bovenburen"):
        assert word not in theirs, word

    await anna.says("/vergeetmij")
    await anna.taps("Ja, verwijder mijn gegevens")
    case = await load_case(bot)
    assert (case.requester_address, case.other_address) == (None, None)
    assert case.situation == "Elke nacht harde muziek tot twee uur."  # open: kept for the team
    view = (await open_case(carla, reference)).last.plain_text
    assert "een partij heeft de eigen gegevens laten verwijderen (/vergeetmij) · partij 1" in view
    assert "party_left" not in view and "Vermeerstraat" not in view


# --- retention ---------------------------------------------------------------------------------


async def test_retention_anonymises_closed_cases_once(bot: BotUnderTest, clock: Clock) -> None:
    carla, _anna, _bram, reference = await two_parties(bot)
    await open_case(carla, reference)
    await carla.taps("Bemiddelaars")
    await carla.says("Fatima en Henk")
    await carla.taps("Notitie")
    await carla.says("Geheime notitie")
    await plan(
        carla,
        reference,
        "Beide partijen",
        local(clock.now + dt.timedelta(days=1, hours=2)),
        "Hoefkade 12",
    )
    await open_case(carla, reference)
    await carla.taps("Afsluiten")
    await carla.taps("Deels opgelost")
    closed_at = clock.now
    # A second case, closed later: it stays as it is.
    other = await ask_mediation(bot.user(1005, "Eva"), "De buren met de hond")
    clock.move(days=400)
    await open_case(carla, other)
    await carla.taps("Afsluiten")
    await carla.taps("Gestopt")

    clock.now = closed_at + dt.timedelta(days=729)
    await run_job(bot, "mcase:retention")
    assert (await load_case_by(bot, reference)).anonymised_at is None

    clock.now = closed_at + dt.timedelta(days=731)
    await run_job(bot, "mcase:retention")
    await run_job(bot, "mcase:retention")
    case = await load_case_by(bot, reference)
    assert case.anonymised_at == clock.now
    assert (case.other_party, case.mediators, case.signal_id) == (None, None, None)
    assert (case.reference, case.stage, case.outcome, case.topic) == (
        reference,
        "afgesloten",
        "deels_opgelost",
        "geluid",
    )
    assert case.closed_at == closed_at and case.created_at is not None
    for party in case.parties:
        assert (party.phone, party.reachable, party.invite_code_hash, party.resident_id) == (
            None,
            None,
            None,
            None,
        )
    assert all(e.note is None for e in case.history)
    assert (case.situation, case.requester_address, case.other_address) == (None, None, None)
    anonymised = [e for e in case.history if e.kind == "anonymised"]
    assert len(anonymised) == 1 and anonymised[0].actor == "bot"
    assert all(a.place is None for a in await appointments(bot) if a.case_id == case.id)
    kept = await load_case_by(bot, other)
    assert kept.anonymised_at is None and kept.other_party == "De buren met de hond"

    reply = await open_case(carla, reference)
    view = reply.last.plain_text
    assert "geanonimiseerd" in view and "Fatima" not in view and "Geheime" not in view
    for word in ("06 1234", "Vermeerstraat", "harde muziek"):
        assert word not in view, word


async def load_case_by(bot: BotUnderTest, reference: str) -> MediationCase:
    assert bot.db is not None
    async with bot.db.begin() as session:
        case = await session.scalar(
            select(MediationCase)
            .where(MediationCase.reference == reference)
            .options(selectinload(MediationCase.parties), selectinload(MediationCase.history))
        )
        assert case is not None
        return case


# --- the daily overview ------------------------------------------------------------------------


def test_working_days() -> None:
    monday = dt.date(2026, 11, 23)
    assert working_days_between(monday, monday) == 0
    assert working_days_between(monday, dt.date(2026, 11, 27)) == 4  # Tue..Fri
    assert working_days_between(monday, dt.date(2026, 11, 30)) == 5  # + next Monday
    assert working_days_between(dt.date(2026, 11, 27), dt.date(2026, 11, 30)) == 1  # Fri → Mon
    assert working_days_between(monday, dt.date(2026, 12, 7)) == 10


async def test_overdue_intake_in_the_bemiddelaars_daily_overview(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    wim = bot.user(3002, "Wim")
    await grant_role(bot, wim, "wijkagent")
    overview = "mcase:digest:schilderswijk"

    await run_job(bot, overview)  # nothing at all: nothing is sent
    assert bot.emulator.messages(3001) == []

    reference = await ask_mediation(bot.user(1001, "Anna"))
    before = len(texts(bot, 3001))
    clock.move(hours=2)
    await run_job(bot, overview)
    [first] = texts(bot, 3001)[before:]
    assert "1 nieuwe aanvraag sinds gisteren" in first and f"{reference} · Geluid" in first
    assert "te laat" not in first
    assert "Lopende zaken: Aangemeld 1" in first

    created = (await load_case(bot)).created_at.astimezone(AMS_ZONE).date()
    day = created
    while working_days_between(created, day) <= 5:
        day += dt.timedelta(days=1)
    clock.now = dt.datetime.combine(day, dt.time(8, 0), AMS_ZONE).astimezone(dt.UTC)
    await run_job(bot, overview)
    overdue = texts(bot, 3001)[-1]
    assert "1 intake te laat (na 5 werkdagen nog steeds aangemeld)" in overdue
    assert f"{reference} · Geluid · sinds" in overdue
    assert "nieuwe aanvraag" not in overdue
    reply = await carla.says("/zaken")
    assert "⚠️ intake te laat" in reply.text
    # The wijkagent may get their own daily digest (the real scheduler runs it when the clock
    # reaches 08:00), but nothing of the mediation: no overview, no reference.
    for seen in texts(bot, 3002):
        assert reference not in seen and "aanvraag" not in seen and "intake" not in seen

    # The day before it was not overdue yet, and a day with nothing new to say sends nothing.
    count = len(texts(bot, 3001))
    clock.now -= dt.timedelta(days=1)
    await run_job(bot, overview)
    assert len(texts(bot, 3001)) == count


# --- the story of the issue ------------------------------------------------------------------


async def test_done_means_the_whole_story(bot: BotUnderTest, clock: Clock) -> None:
    """Resident asks → coordinator takes → invites the neighbour → neighbour agrees →
    appointment → both reminded → closed as opgelost → the wijkagent sees only "geslaagd: ja"."""
    carla = await coordinator(bot)
    wim = bot.user(3002, "Wim")
    await grant_role(bot, wim, "wijkagent")
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    assert f"/zaak {reference}" in texts(bot, 3001)[-1]
    assert bot.db is not None
    async with bot.db.begin() as session:  # the referral itself is another feature
        await session.execute(update(MediationCase).values(referred_by=3002))

    await open_case(carla, reference)
    await carla.taps("Oppakken")
    reply = await carla.taps("Uitnodiging buur")
    _, parameter = invite_code(reply.last)
    bram = bot.user(1002, "Bram")
    await bram.says(f"/start {parameter}")
    await bram.taps("Ja, ik doe mee")
    starts = clock.now + dt.timedelta(days=2)
    reply = await plan(carla, reference, "Beide partijen", local(starts), "Buurthuis De Boog")
    assert "Afspraak vastgelegd" in reply.text
    clock.now = starts - dt.timedelta(hours=20)
    await run_job(bot, "mcase:reminders")
    assert "Herinnering" in texts(bot, 1001)[-1] and "Herinnering" in texts(bot, 1002)[-1]
    await open_case(carla, reference)
    await carla.taps("Afsluiten")
    await carla.taps("Opgelost")
    reply = await wim.says("/bemiddelingen")
    assert f"{reference}: geslaagd: ja" in reply.text
    for word in ("Geluid", "bovenburen", "Buurthuis", "Anna", "Bram", "Carla"):
        assert word not in reply.text
    assert (await wim.says(f"/zaak {reference}")).text == "Sorry, dat kan ik niet voor je doen."


# --- the same story in `buurtsignaal shell` ------------------------------------------------------

Transcript = Callable[[], str]  # the shell's output so far
Line = str | Callable[[Transcript], str]


class ScriptedInput(io.TextIOBase):
    """Input for the shell: fixed lines, or functions of the transcript so far (to read a code
    or a button number the bot just showed, or to wait for a message to arrive)."""

    def __init__(self, out: io.StringIO, lines: list[Line]) -> None:
        self.out = out
        self.lines = list(lines)

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if not self.lines:
            return ""
        line = self.lines.pop(0)
        return (line if isinstance(line, str) else line(self.out.getvalue)) + "\n"


def button(label: str) -> Callable[[Transcript], str]:
    """The number the shell shows for the newest button with this label."""

    def number(transcript: Transcript) -> str:
        found = re.findall(rf"\[(\d+)\] {re.escape(label)}", transcript())
        assert found, f"no button {label!r} in:\n{transcript()[-2000:]}"
        return str(found[-1])

    return number


def after_last(pattern: str, template: str) -> Callable[[Transcript], str]:
    """A line made from the last match of ``pattern`` in the transcript."""

    def line(transcript: Transcript) -> str:
        found = re.findall(pattern, transcript())
        assert found, f"{pattern!r} not in:\n{transcript()[-2000:]}"
        return template.format(found[-1])

    return line


def waiting_for(*needles: str, then: str, times: int = 1) -> Callable[[Transcript], str]:
    """Wait (in the shell's input thread) until the bot has said each of ``needles`` at least
    ``times`` times."""

    def line(transcript: Transcript) -> str:
        deadline = time.monotonic() + 60  # generous: a loaded CI machine
        while time.monotonic() < deadline:
            if all(transcript().count(n) >= times for n in needles):
                return then
            time.sleep(0.05)
        raise AssertionError(f"{needles} never arrived:\n{transcript()[-2000:]}")

    return line


def one_more(needle: str, *, first: str, then: str) -> tuple[Line, Line]:
    """Two lines: ``first`` (noting how often the bot said ``needle`` so far), and later
    ``then`` once it said it once more (a message the outbox sends a moment later)."""
    seen: list[int] = []

    def before(transcript: Transcript) -> str:
        seen.append(transcript().count(needle))
        return first

    def after(transcript: Transcript) -> str:
        deadline = time.monotonic() + 60  # generous: a loaded CI machine
        while time.monotonic() < deadline:
            if transcript().count(needle) > seen[0]:
                return then
            time.sleep(0.05)
        raise AssertionError(f"{needle} never arrived again:\n{transcript()[-2000:]}")

    return before, after


def sql(url: str, statement: str, then: str) -> Callable[[Transcript], str]:
    """Change the database directly (what another feature would do), then go on."""

    def line(_: Transcript) -> str:
        path = url.split("///", 1)[1]
        with sqlite3.connect(path, timeout=10) as connection:
            connection.execute(statement)
        return then

    return line


async def test_done_means_in_the_shell(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mediation_jobs, "SWEEP_EVERY", dt.timedelta(seconds=0.2))
    starts = (utcnow() + dt.timedelta(hours=12)).astimezone(AMS_ZONE)
    out = io.StringIO()
    told = one_more("(bericht voor Anna", first="/zaak 1", then=":als anna")
    script: list[Line] = [
        # Anna asks for mediation about noise.
        "/bemiddeling",
        button("Ik wil bemiddeling aanvragen"),
        button("Nee"),
        button("Geluid"),
        button("Langer dan een half jaar"),
        button("Geprobeerd, maar het lukte niet"),
        "Elke nacht harde muziek tot twee uur.",
        "De bovenburen op nummer 14",
        button("Overslaan"),
        button("Overslaan"),
        button("Via deze bot"),
        button("'s Avonds"),
        button("Ja, het bemiddelingsteam mag"),
        button("✅ Aanvraag versturen"),
        # The admin invites a coordinator and a wijkagent.
        ":als admin",
        "/uitnodigen bemiddelaar schilderswijk",
        ":als 3001 Carla",
        after_last(r"start=(inv-[\w-]+)", "/start {}"),
        ":als admin",
        "/uitnodigen wijkagent schilderswijk",
        ":als 3002 Wim",
        after_last(r"start=(inv-[\w-]+)", "/start {}"),
        sql(sqlite_url, "UPDATE mediation_cases SET referred_by = 3002", ":als carla"),
        # The coordinator takes the case and invites the neighbour.
        "/zaak 1",
        button("✋ Oppakken"),
        button("✉️ Uitnodiging buur"),
        ":als bram",
        after_last(r"start=(bm-[2-9A-Z]{10})", "/start {}"),
        button("Ja, ik doe mee"),
        # An appointment with both; the reminder sweeper sends both a reminder.
        ":als carla",
        button("📅 Afspraak"),
        button("Beide partijen"),
        starts.strftime("%d-%m-%Y %H:%M"),
        "Buurthuis De Boog",
        # Each hears of it twice (the notice, then the reminder), both through the outbox.
        waiting_for("(bericht voor Anna", "(bericht voor Bram", then=":als anna", times=2),
        ":als bram",
        # Closed as opgelost; Anna is told (through the outbox); the wijkagent sees only
        # "geslaagd: ja".
        ":als carla",
        told[0],
        button("🏁 Afsluiten"),
        button("Opgelost"),
        told[1],
        ":als wim",
        "/bemiddelingen",
        "/zaak 1",
    ]
    code = await run_shell(
        make_settings(sqlite_url), stdin=cast(TextIO, ScriptedInput(out, script)), stdout=out
    )
    transcript = out.getvalue()
    assert code == 0, transcript
    assert "Je aanvraag is opgeslagen als BM-" in transcript or "opgeslagen als BM-" in transcript
    assert "Je bent nu coördinator van deze zaak." in transcript
    neighbour = transcript.split("Bram> /start bm-", 1)[1].split("Bram> :als carla", 1)[0]
    assert "Wil je meedoen?" in neighbour and "Fijn dat je meedoet" in neighbour
    for word in ("bovenburen", "Geluid", "Anna"):
        assert word not in neighbour
    when = starts.strftime("%d-%m-%Y om %H:%M")
    planned = transcript.split("Carla> Buurthuis De Boog\n", 1)[1]
    for name in ("Anna", "Bram"):
        # Switching to them shows what arrived meanwhile: the reminder, nothing about the other.
        arrived = planned.split(f"> :als {name.lower()}\n", 1)[1].split(f"{name}> ", 1)[0]
        assert "gesprek voor buurtbemiddeling op " in arrived, arrived
        assert f"dag {when}" in arrived, arrived  # with the weekday
        assert "Plaats: Buurthuis De Boog" in arrived
        assert "Geluid" not in arrived and "bovenburen" not in arrived
    assert transcript.count("⏰ Herinnering") == 2
    assert "Afgesloten als: Opgelost." in transcript
    closing = transcript.rsplit("Carla> :als anna\n", 1)[1].split("Anna> ", 1)[0]
    assert "heeft je bemiddeling afgesloten" in closing and "Opgelost" not in closing
    wim = transcript.split("Wim> /bemiddelingen", 1)[1]
    assert "BM-" in wim and ": geslaagd: ja" in wim
    counts_reply = "\n".join(  # what the bot said to Wim (not the shell's notes of elsewhere)
        line for line in wim.split("Wim> /zaak 1", 1)[0].splitlines() if not line.startswith("(")
    )
    for word in ("Geluid", "bovenburen", "Buurthuis", "Anna", "Bram", "Carla"):
        assert word not in counts_reply, word
    assert "Sorry, dat kan ik niet voor je doen." in wim.split("Wim> /zaak 1", 1)[1]
