"""Secret codes: stored only as a hash; the neighbour's mediation code resists guessing."""

from __future__ import annotations

import re

from sqlalchemy import select

from buurtsignaal.storage.codes import code_hash
from buurtsignaal.storage.models import CodeFailure, Invite, MediationParty
from tests.conftest import ADMIN_ID, Clock
from tests.harness import BotUnderTest
from tests.test_mediation_cases import ask_mediation, coordinator, invite, load_case


async def test_a_role_invite_is_stored_as_a_hash_and_its_link_works(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Ada")
    reply = await admin.says("/uitnodigen wijkagent schilderswijk")
    found = re.search(r"\?start=inv-(\S+)", reply.text)
    assert found, reply.text
    code = found.group(1)
    assert bot.db is not None
    async with bot.db.begin() as session:
        [invite] = (await session.scalars(select(Invite))).all()
    assert invite.code_hash == code_hash(code) and code not in invite.code_hash

    sanne = bot.user(2001, "Sanne")
    reply = await sanne.says(f"/start inv-{code}")
    assert "wijkagent" in reply.text
    reply = await bot.user(2002, "Piet").says(f"/start inv-{code}")
    assert "al gebruikt" in reply.text


async def test_the_neighbours_code_is_stored_as_a_hash(bot: BotUnderTest) -> None:
    carla = await coordinator(bot)
    reference = await ask_mediation(bot.user(1001, "Anna"))
    shown, parameter = await invite(carla, reference)
    code = parameter.removeprefix("bm-")
    assert shown.replace("-", "") == code and len(code) == 10
    case = await load_case(bot)
    second = next(p for p in case.parties if p.number == 2)
    assert second.invite_code_hash == code_hash(code)
    reply = await carla.says(f"/zaak {reference}")
    assert code not in reply.text and shown not in reply.text  # never shown again
    assert "uitgenodigd met een code die geldig is tot" in reply.text


async def test_five_wrong_codes_a_day_then_even_the_right_one_waits(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    reference = await ask_mediation(bot.user(1001, "Anna"))
    shown, _ = await invite(carla, reference)
    guesser = bot.user(1002, "Bram")
    for guess in ("AAAAA-AAAAA", "BBBBB-BBBBB", "CCCCC-CCCCC", "hallo", "DDDDD-DDDDD"):
        reply = await guesser.says(f"/bemiddeling {guess}")
        assert "Deze code ken ik niet" in reply.text
    reply = await guesser.says(f"/bemiddeling {shown}")
    assert "tot morgen" in reply.text and "Schilderswijk" not in reply.text
    reply = await guesser.says(f"/bemiddeling {shown}")
    assert "tot morgen" in reply.text  # asking again does not help, nor does it count

    # Someone else is not affected, and a day later Bram may try again.
    clock.move(hours=25)
    reply = await guesser.says(f"/bemiddeling {shown}")
    assert "nodigt je uit" in reply.text

    # Wrong tries are kept a day: the nightly retention forgets older ones.
    assert bot.app is not None and bot.app.job_queue is not None
    job = next(j for j in bot.app.job_queue.jobs() if j.name == "mcase:retention")
    await job.run(bot.app)
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert (await session.scalars(select(CodeFailure))).all() == []


async def test_a_code_tried_wrongly_ten_times_is_locked_and_the_coordinator_told(
    bot: BotUnderTest, clock: Clock
) -> None:
    carla = await coordinator(bot)
    anna = bot.user(1001, "Anna")
    reference = await ask_mediation(anna)
    shown, parameter = await invite(carla, reference)
    # The requester opens her neighbour's code again and again (5 a day count against it).
    for _day in range(2):
        for _ in range(5):
            reply = await anna.says(f"/start {parameter}")
        clock.move(hours=25)
    assert "te vaak verkeerd geprobeerd" in bot.emulator.messages(3001)[-1].plain_text
    assert reference in bot.emulator.messages(3001)[-1].plain_text
    assert "te vaak verkeerd" in reply.text or "bedoeld voor je buur" in reply.text

    # Now the code does not work for the neighbour either: a kind answer, and a new code does.
    bram = bot.user(1002, "Bram")
    reply = await bram.says(f"/bemiddeling {shown}")
    assert "te vaak verkeerd geprobeerd" in reply.text and "nieuwe" in reply.text
    reply = await carla.says(f"/zaak {reference}")
    assert "te vaak verkeerd geprobeerd" in reply.text
    _, new_parameter = await invite(carla, reference)
    reply = await bram.says(f"/start {new_parameter}")
    assert "nodigt je uit" in reply.text
    assert bot.db is not None
    async with bot.db.begin() as session:
        party = await session.scalar(select(MediationParty).where(MediationParty.number == 2))
        assert party is not None and party.invite_locked_at is None and party.invite_failures == 0
