"""The issues' "done means" stories, end to end through the real Application and emulator."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from buurtsignaal.conversations import cases
from buurtsignaal.storage.models import Moment
from tests.conftest import ADMIN_ID, Clock, this_year
from tests.harness import BotUnderTest, Person, grant_role

LINK = re.compile(r"start=(inv-[\w-]+)")
REFERENCE = re.compile(r"BS-\d{4}-\d{4}")


async def report_noise(person: Person, place: str) -> str:
    await person.says("/melden")
    await person.taps("Nee, niemand is in gevaar")
    await person.taps("Geluidsoverlast")
    await person.says("Harde muziek en geschreeuw tot diep in de nacht.")
    await person.says(place)
    await person.taps("Vandaag")
    await person.taps("Dit is de eerste keer")
    await person.taps("Overslaan")
    await person.taps("Pseudoniem")
    reply = await person.taps("Melding versturen")
    match = REFERENCE.search(reply.text)
    assert match, reply.text
    return match.group(0)


async def test_the_pair_acts_on_recurring_noise(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 3: an admin invites a wijkagent, three residents report noise on one street, she
    gets one hotspot alert, /overzicht shows all three, she replies anonymously and closes one,
    and the resident gets the reply and later "is het opgelost?"."""
    emu = bot.emulator
    admin = bot.user(ADMIN_ID, "Admin")
    sanne = bot.user(2001, "Sanne")
    reply = await admin.says("/uitnodigen wijkagent schilderswijk")
    link = LINK.search(reply.text)
    assert link
    reply = await sanne.says(f"/start {link.group(1)}")
    assert "Je bent nu wijkagent in Schilderswijk" in reply.text

    residents = [bot.user(1000 + n, name) for n, name in enumerate(("Anna", "Bram", "Cor"), 1)]
    references = [
        await report_noise(person, place)
        for person, place in zip(
            residents,
            ("Dorpsstraat 12", "dorpsstraat 14", "Dorpsstraat bij de speeltuin"),
            strict=True,
        )
    ]
    alerts = [m.plain_text for m in emu.messages(2001) if "Vroegsignaal" in m.plain_text]
    assert len(alerts) == 1
    assert all(reference in alerts[0] for reference in references)
    assert not any(name in alerts[0] for name in ("Anna", "Bram", "Cor"))

    reply = await sanne.says("/overzicht")
    for reference in references:
        assert reference in reply.text

    anna = residents[0]
    await sanne.says(f"/melding {references[0]}")
    await sanne.taps("Antwoord aan melder")
    await sanne.says("Dank voor je melding. We gaan vanavond langs bij de buren.")
    relayed = emu.messages(anna.id)[-1].plain_text
    assert "We gaan vanavond langs bij de buren." in relayed
    assert "Sanne" not in relayed and "2001" not in relayed
    await sanne.says(f"/melding {references[0]}")
    await sanne.taps("Status")
    await sanne.taps("Afgehandeld")
    await sanne.says("Gesprek gevoerd.")
    assert "is afgehandeld" in emu.messages(anna.id)[-1].plain_text

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, minutes=5)
    clock.now = later
    clock.now = later
    assert bot.app is not None and bot.app.job_queue is not None
    [job] = bot.app.job_queue.get_jobs_by_name(cases.FOLLOWUP_JOB)
    await job.run(bot.app)
    await bot.drain_outbox()
    question = emu.messages(anna.id)[-1]
    assert "opgelost" in question.plain_text
    assert question.button_labels[:2] == ["Ja", "Nee"]


async def test_the_group_meets_for_coffee(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 5: an organiser plans a two-weekly koffiemoment, the group sees it, two residents
    press "Ik kom" and the count shows 2, one cancels privately, the right reminders go out,
    and the organiser sees the names."""
    emu = bot.emulator
    group = -1001
    emu.add_group(group, "Buurtgroep Schilderswijk")
    now = dt.datetime.now(dt.UTC)
    clock.now = now
    olga = bot.user(4001, "Olga")
    await grant_role(bot, olga, "organisator")
    await olga.says("/koffieplannen")
    await olga.says("Buurthuis De Mussen")
    await olga.says((now + dt.timedelta(days=6)).strftime("%d-%m-%Y"))
    await olga.says("10:00")
    await olga.taps("Om de week")
    await olga.taps("Geen maximum")
    await olga.taps("Publiceren")
    [announcement] = emu.messages(group)
    assert "Koffiemoment in Schilderswijk" in announcement.plain_text

    anna, bram = bot.user(1001, "Anna"), bot.user(1002, "Bram")
    for person in (anna, bram):
        await person.says("/start")
        there = Person(bot, person.id, person.name)
        there.chat_id = group
        await there.taps("Ik kom", message=announcement)
    assert bot.app is not None and bot.app.job_queue is not None
    [[(_, data)]] = announcement.buttons
    assert data is not None
    moment_id = int(data.rsplit(":", 1)[1])
    [count_job] = bot.app.job_queue.get_jobs_by_name(f"koffie:count:{moment_id}")
    await count_job.run(bot.app)
    await bot.drain_outbox()
    assert emu.message(group, announcement.message_id).button_labels == ["Ik kom ☕ (2)"]

    await bram.says("/koffie")
    await bram.taps("Afmelden")
    await olga.says("/beheer")
    reply = await olga.taps("Koffiemoment")
    assert "Wie: Anna" in reply.text and "Bram" not in reply.text

    assert bot.db is not None
    async with bot.db.begin() as session:
        moment = await session.get(Moment, moment_id)
    assert moment is not None
    starts = moment.starts_at
    [sweep] = bot.app.job_queue.get_jobs_by_name("koffie:sweep")
    for at in (starts - dt.timedelta(hours=23), starts - dt.timedelta(hours=1)):
        clock.now = at
        await sweep.run(bot.app)
        await bot.drain_outbox()
    anna_reminders = [m.plain_text for m in emu.messages(1001) if "Herinnering" in m.plain_text]
    assert len(anna_reminders) == 2
    assert not any("Herinnering" in m.plain_text for m in emu.messages(1002))


async def test_a_careful_resident(bot: BotUnderTest) -> None:
    """Issue 6: read /privacy, report with someone's origin and be asked for behaviour, get a
    complete /mijngegevens, then /vergeetmij, and nothing is left."""
    year = this_year()  # references carry the year they were made in
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/privacy")
    assert "Wie ziet wat" in reply.text and "Hoe lang we het bewaren" in reply.text
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Uitschelden of intimidatie")
    reply = await anna.says("Een groep Marokkaanse jongens scheldt voorbijgangers uit")
    assert "wat deden mensen, waar en wanneer?" in reply.text
    await anna.says("Een groep jongens scheldt 's avonds voorbijgangers uit bij de ingang")
    await anna.says("Winkelcentrum, ingang Hoefkade")
    await anna.taps("Vandaag")
    await anna.taps("Het gebeurt vaker")
    await anna.taps("Overslaan")
    await anna.taps("Pseudoniem")
    await anna.taps("Melding versturen")
    reply = await anna.says("/mijngegevens")
    assert f"1 melding: BS-{year}-0001" in reply.text
    document = reply.last
    assert document.file_bytes is not None and b"scheldt" in document.file_bytes
    await anna.says("/vergeetmij")
    await anna.taps("Ja, verwijder mijn gegevens")
    reply = await anna.says("/mijngegevens")
    assert reply.text == "We bewaren niets over je."
