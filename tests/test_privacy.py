"""Privacy as a feature: /privacy follows the configuration."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from buurtsignaal.bot.cli import main
from buurtsignaal.bot.settings import Settings
from buurtsignaal.conversations import privacy
from buurtsignaal.storage import gatherings
from buurtsignaal.storage.models import (
    BotState,
    GuardCount,
    MediationCase,
    Resident,
    Signal,
    Signup,
)
from tests.conftest import Clock, make_settings, this_year
from tests.harness import BotUnderTest, Person, grant_role

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_privacy_reflects_the_configuration(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    bot = await start_bot(
        make_settings(
            db_url,
            admins=[900001, 900002],
            retention={"contact_days": 14, "content_days": 180, "signup_days": 7},
            mediation={"retention_days": 1000},
        )
    )
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/privacy")
    text = reply.text
    assert "Je meldingen: de wijkagent en opbouwwerker van je wijk." in text
    assert "alleen de bemiddelingscoördinator en de twee bemiddelaars" in text
    assert "De 2 beheerders van deze bot beheren de rollen" in text
    assert "contactgegevens tot 14 dagen nadat een melding is afgehandeld" in text
    assert "de foto tot 180 dagen daarna" in text
    assert "1000 dagen na het afsluiten geanonimiseerd" in text
    assert "7 dagen na het koffiemoment verwijderd" in text
    assert "/mijngegevens" in text and "/vergeetmij" in text

    # /start shows the short version from the same source.
    reply = await anna.says("/start")
    assert "Je meldingen: de wijkagent en opbouwwerker van je wijk." in reply.text
    assert "Meer, en hoe lang we wat bewaren: /privacy" in reply.text


async def test_privacy_in_english(bot: BotUnderTest) -> None:
    john = bot.user(1002, "John", language_code="en")
    reply = await john.says("/privacy")
    assert "The administrator of this bot manages roles" in reply.text
    assert "Koffie sign-ups are removed 30 days after the koffiemoment." in reply.text


async def report(person: Person, text: str, *, contactable: bool = False) -> None:
    await person.says("/melden")
    await person.taps("Nee, niemand is in gevaar")
    await person.taps("Geluidsoverlast")
    await person.says(text)
    await person.says("Dorpsstraat 12")
    await person.taps("Nu")
    await person.taps("Dit is de eerste keer")
    await person.sends_photo(PNG)
    await person.taps("Jullie mogen contact opnemen" if contactable else "Pseudoniem")
    await person.taps("Melding versturen")


async def test_my_data_is_complete_and_only_mine(bot: BotUnderTest) -> None:
    year = this_year()  # references carry the year they were made in
    anna = bot.user(1001, "Anna")
    bram = bot.user(1002, "Bram")
    await anna.says("/start")
    await report(anna, "Harde muziek van Anna's buren", contactable=True)
    await report(bram, "Bram zag graffiti op de muur")
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Eén tot zes maanden")
    await anna.taps("Nee, nog niet")
    await anna.says("Elke nacht harde muziek.")
    await anna.says("De bovenburen")
    await anna.says("Hoefkade 14")
    await anna.says("Hoefkade 12")
    await anna.taps("Via deze bot")
    await anna.taps("Overdag")
    await anna.taps("Ja, het bemiddelingsteam mag")
    await anna.taps("Aanvraag versturen")
    await anna.says("/melden")  # unfinished

    reply = await anna.says("/mijngegevens")
    summary, document = reply.messages
    assert "Taal: Nederlands; wijk: Schilderswijk; bekend sinds " in summary.plain_text
    assert "dag " in summary.plain_text.split("bekend sinds ", 1)[1]  # a weekday, no ISO date
    assert f"1 melding: BS-{year}-" in summary.plain_text
    assert f"1 bemiddelingszaak: BM-{year}-0001" in summary.plain_text
    assert "Iets wat je nog niet had afgerond: melden" in summary.plain_text
    assert document.file_name == "mijngegevens.json" and document.file_bytes is not None
    data = json.loads(document.file_bytes)
    assert data["telegram_id"] == 1001
    assert data["resident"]["wijk"] == "Schilderswijk"
    [mine] = data["reports"]
    assert mine["description"] == "Harde muziek van Anna's buren"
    assert mine["contact_name"] == "Anna" and mine["photo"] is True
    assert data["mediation"][0]["other_party"] == "De bovenburen"
    assert "Bram" not in document.file_bytes.decode()  # nothing about anyone else
    assert "graffiti" not in document.file_bytes.decode()

    cor = bot.user(1003, "Cor")
    reply = await cor.says("/mijngegevens")
    assert reply.text == "We bewaren niets over je."


async def test_forget_me(bot: BotUnderTest) -> None:
    year = this_year()  # references carry the year they were made in
    agent = bot.user(3002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    anna = bot.user(1001, "Anna")
    await anna.says("/start")
    await anna.taps("Nederlands")
    await report(anna, "Open melding van Anna", contactable=True)
    await report(anna, "Afgehandelde melding van Anna")
    assert bot.db is not None
    async with bot.db.begin() as session:
        closed = await session.scalar(
            select(Signal).where(Signal.description.like("Afgehandelde%"))
        )
        assert closed is not None
        closed.status = "afgehandeld"
        closed.closed_at = dt.datetime.now(dt.UTC)
        resident = await session.scalar(select(Resident).where(Resident.telegram_id == 1001))
        assert resident is not None
        moment = await gatherings.plan(
            session,
            wijk_id=resident.wijk_id or 0,
            kind="koffie",
            place="Buurthuis",
            starts_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3),
            repeat="none",
            created_by=4001,
            tz=dt.UTC,
            now=dt.datetime.now(dt.UTC),
        )
        [date] = await gatherings.upcoming(
            session, moment.wijk_id, ["koffie"], now=dt.datetime.now(dt.UTC)
        )
        await gatherings.sign_up(session, date, resident, "Anna", now=dt.datetime.now(dt.UTC))
    await anna.says("/melden")  # an unfinished report

    reply = await anna.says("/vergeetmij")
    assert "kan niet ongedaan worden gemaakt" in reply.text
    reply = await anna.taps("Nee, laten staan")
    assert reply.edited[-1].plain_text == "Er is niets veranderd."
    await anna.says("/vergeetmij")
    reply = await anna.taps("Ja, verwijder mijn gegevens")
    assert "je persoonsgegevens zijn verwijderd" in reply.edited[-1].plain_text

    told = bot.emulator.messages(3002)[-1].plain_text
    assert "niet meer bereikbaar" in told and f"BS-{year}-0001" in told
    async with bot.db.begin() as session:
        assert (await session.scalars(select(Resident))).all() == []
        assert (await session.scalars(select(Signup))).all() == []
        rows = (
            await session.scalars(select(BotState.key).where(BotState.key.contains("1001")))
        ).all()
        assert rows == []
        signals = (
            await session.scalars(
                select(Signal).options(selectinload(Signal.history)).order_by(Signal.id)
            )
        ).all()
    open_one, closed_one = signals
    assert open_one.resident_id is None and open_one.contact_name is None
    # Nor does the draft a report was sent from point back to her.
    assert open_one.draft_key is None and closed_one.draft_key is None
    assert open_one.photo_file_id is None
    assert open_one.description == "Open melding van Anna"  # stays for the professionals
    assert open_one.history[-1].kind == "reporter_left"
    assert closed_one.description is None and closed_one.photo_file_id is None
    assert closed_one.location_text == "Dorpsstraat"  # a coarse place for statistics
    assert closed_one.category == "geluidsoverlast"

    # The open report stays visible to the wijkagent, without the reporter.
    reply = await agent.says(f"/melding {open_one.reference}")
    assert "Open melding van Anna" in reply.text
    assert "Anna" not in reply.text.replace("Open melding van Anna", "")

    reply = await anna.says("/mijngegevens")
    assert reply.text == "We bewaren niets over je."
    reply = await anna.says("/start")
    assert "Welke taal heeft je voorkeur?" in reply.text  # treated as new


async def test_retention_removes_on_schedule_and_dry_run_lists_first(
    clock: Clock,
    bot: BotUnderTest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    year = this_year()  # references carry the year they were made in
    anna = bot.user(1001, "Anna")
    await report(anna, "Lawaai bij nummer 12 door de buren", contactable=True)
    # Closed 40 days ago (the CLI below runs at the real "now").
    closed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    assert bot.db is not None
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal))
        assert signal is not None
        signal.status = "afgehandeld"
        signal.closed_at = closed_at

    # 20 days after closing: nothing is due yet.
    clock.now = closed_at + dt.timedelta(days=20)
    assert await privacy.run_retention(bot.app) == []
    # 31 days: the contact details go; the dry run lists that first, without changing anything.
    clock.now = closed_at + dt.timedelta(days=31)
    planned = await privacy.run_retention(bot.app, dry_run=True)
    assert [(r.kind, r.reference) for r in planned] == [("contact", f"BS-{year}-0001")]
    async with bot.db.begin() as session:
        assert (await session.scalar(select(Signal.contact_name))) == "Anna"
    cli = ["--config", str(write_config(bot)), "retention", "--dry-run"]
    assert await asyncio.to_thread(main, cli) == 0
    assert f"would remove contact: BS-{year}-0001" in capsys.readouterr().out
    removed = await privacy.run_retention(bot.app)
    assert [r.kind for r in removed] == ["contact"]
    assert await privacy.run_retention(bot.app) == []  # nothing twice
    # After a year: the text and the photo go; statistics stay.
    clock.now = closed_at + dt.timedelta(days=366)
    removed = await privacy.run_retention(bot.app)
    assert [r.kind for r in removed] == ["content"]
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal).options(selectinload(Signal.history)))
    assert signal is not None
    assert signal.description is None and signal.photo_file_id is None
    assert signal.contact_name is None
    assert (signal.category, signal.location_text) == ("geluidsoverlast", "Dorpsstraat")
    kinds = [e.kind for e in signal.history]
    assert kinds[-2:] == ["retention_contact", "retention_content"]
    assert all(e.note is None for e in signal.history if e.kind.startswith("retention"))


def write_config(bot: BotUnderTest) -> Path:
    """A config file pointing at the bot's database, for the CLI."""
    path = Path(tempfile.mkdtemp()) / "config.toml"
    path.write_text(f'[database]\nurl = "{bot.settings.database.url}"\n', encoding="utf-8")
    return path


async def finish_report(person: Person) -> None:
    await person.says("Dorpsstraat 12")
    await person.taps("Nu")
    await person.taps("Dit is de eerste keer")
    await person.taps("Overslaan")
    await person.taps("Pseudoniem")
    await person.taps("Melding versturen")


async def test_profiling_guard_asks_once_and_counts_only(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    agent = bot.user(3002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Vernieling")
    reply = await anna.says("Twee Marokkaanse jongens trapten de fietsen om")
    assert "wat deden mensen, waar en wanneer?" in reply.text
    assert reply.last.button_labels == ["Mijn tekst zo houden"]
    assert "Waar was het?" not in reply.text  # still the same step
    reply = await anna.says("Twee jongens trapten rond 22:00 de fietsen bij de school om")
    assert "Waar was het?" in reply.text  # the rewritten text is taken
    await finish_report(anna)

    john = bot.user(1002, "John", language_code="en")
    await john.says("/melden")
    await john.taps("No, nobody is in danger")
    await john.taps("Vandalism")
    reply = await john.says("The Turkish guys from number 4 broke the bench")
    assert "what did people do, where and when?" in reply.text
    reply = await john.taps("Keep my text")
    assert "Where was it?" in reply.text
    await john.says("Park bench at the square")
    await john.taps("Right now")
    await john.taps("This is the first time")
    await john.taps("Skip")
    await john.taps("Pseudonymous")
    await john.taps("Send report")

    assert bot.db is not None
    async with bot.db.begin() as session:
        descriptions = (await session.scalars(select(Signal.description).order_by(Signal.id))).all()
        counts = (await session.scalars(select(GuardCount.count))).all()
    assert descriptions == [
        "Twee jongens trapten rond 22:00 de fietsen bij de school om",
        "The Turkish guys from number 4 broke the bench",
    ]
    assert counts == [2]  # only a monthly count
    # Professionals see nothing of it; an admin sees only the count.
    assert not any("profilering" in m.plain_text.lower() for m in bot.emulator.messages(3002))
    admin = bot.user(900001, "Admin")
    reply = await admin.says("/profilering")
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    assert f"{month}: 2" in reply.text
    reply = await agent.says("/profilering")
    assert reply.text == "Sorry, dat kan ik niet voor je doen."


async def test_guard_leaves_street_names_alone(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Bekladding")
    reply = await anna.says("Tags gespoten op de muur bij de Turfmarkt en de Polenweg")
    assert "Waar was het?" in reply.text


async def test_dry_run_lists_mediation_cases_due_for_anonymising(bot: BotUnderTest) -> None:
    year = this_year()  # references carry the year they were made in
    anna = bot.user(1001, "Anna")
    await anna.says("/bemiddeling")
    await anna.taps("Ik wil bemiddeling aanvragen")
    await anna.taps("Nee")
    await anna.taps("Geluid")
    await anna.taps("Eén tot zes maanden")
    await anna.taps("Nee, nog niet")
    await anna.says("Elke nacht harde muziek.")
    await anna.says("De bovenburen")
    await anna.says("Hoefkade 14")
    await anna.says("Hoefkade 12")
    await anna.taps("Via deze bot")
    await anna.taps("Overdag")
    await anna.taps("Ja, het bemiddelingsteam mag")
    await anna.taps("Aanvraag versturen")
    closed = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    assert bot.db is not None
    async with bot.db.begin() as session:
        case = await session.scalar(select(MediationCase))
        assert case is not None
        case.stage, case.outcome, case.closed_at = "afgesloten", "opgelost", closed
    planned = await privacy.run_retention(bot.app, dry_run=True)
    assert [(r.kind, r.reference) for r in planned] == [("mediation", f"BM-{year}-0001")]
    removed = await privacy.run_retention(bot.app)
    assert [r.kind for r in removed] == ["mediation"]
    async with bot.db.begin() as session:
        case = await session.scalar(select(MediationCase))
    assert case is not None and case.anonymised_at is not None and case.other_party is None
    assert await privacy.run_retention(bot.app, dry_run=True) == []
