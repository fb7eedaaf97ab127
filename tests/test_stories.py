"""The issues' "done means" stories, end to end through the real Application and emulator."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from conversations import cases, digest
from tests.conftest import ADMIN_ID
from tests.harness import BotUnderTest, Person

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
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
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
    monkeypatch.setattr(cases, "clock", lambda: later)
    monkeypatch.setattr(digest, "clock", lambda: later)
    assert bot.app is not None and bot.app.job_queue is not None
    [job] = bot.app.job_queue.get_jobs_by_name(cases.FOLLOWUP_JOB)
    await job.run(bot.app)
    question = emu.messages(anna.id)[-1]
    assert "opgelost" in question.plain_text
    assert question.button_labels[:2] == ["Ja", "Nee"]
