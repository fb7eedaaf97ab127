"""The outbox: what the bot decides to send arrives once, whatever happens in between.

The messages here are written to the outbox directly, as a feature does in its unit of work;
the features' own messages (digests, alerts, reminders, notices, relays) are tested in their
own files, and all together under random faults at the end of this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import pytest
from sqlalchemy import select

from buurtsignaal.bot import outbox as sender_module
from buurtsignaal.storage import outbox
from buurtsignaal.storage.models import OutboxMessage, Resident
from tests.conftest import Clock
from tests.harness import BotUnderTest, Person, grant_role


async def write(bot: BotUnderTest, *messages: outbox.Outgoing) -> int:
    """Decide to send, as a feature does: in one unit of work."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert bot.app is not None
        return await outbox.enqueue(session, *messages, now=bot.app.services.clock())


def note(key: str, chat: int, text: str = "Herinnering") -> outbox.Outgoing:
    return outbox.Outgoing(key=key, chat_id=chat, kind="test", text=text)


async def rows(bot: BotUnderTest) -> list[OutboxMessage]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def texts(person: Person) -> list[str]:
    return [m.plain_text for m in person.emulator.messages(person.chat_id)]


async def started(bot: BotUnderTest, user_id: int, name: str) -> Person:
    person = bot.user(user_id, name)
    await person.says("/start")
    return person


async def test_a_decision_taken_twice_is_sent_once(bot: BotUnderTest) -> None:
    anna = await started(bot, 1001, "Anna")
    assert await write(bot, note("r:1", anna.id, "Morgen koffie")) == 1
    assert await write(bot, note("r:1", anna.id, "Morgen koffie")) == 0
    await bot.drain_outbox()
    assert await write(bot, note("r:1", anna.id, "Morgen koffie")) == 0  # also once sent
    await bot.drain_outbox()
    assert texts(anna).count("Morgen koffie") == 1


async def test_a_restart_between_decision_and_send_sends_it_once(bot: BotUnderTest) -> None:
    anna = await started(bot, 1001, "Anna")
    await write(bot, note("r:1", anna.id, "Morgen koffie"))
    await bot.restart(crash=True)  # killed before the sender got to it
    assert texts(anna).count("Morgen koffie") == 0
    await bot.drain_outbox()
    await bot.restart()
    await bot.drain_outbox()
    assert texts(anna).count("Morgen koffie") == 1
    (row,) = await rows(bot)
    assert row.state == "sent" and row.message_id is not None and row.attempts == 1


@pytest.mark.parametrize("failure", ["429", "502", "timeout"])
async def test_passing_failures_are_retried_and_arrive_exactly_once(
    clock: Clock, bot: BotUnderTest, failure: str
) -> None:
    anna = await started(bot, 1001, "Anna")
    assert bot.app is not None
    bot.app.outbox.read_timeout = 0.3
    if failure == "429":
        bot.emulator.fail_next("sendMessage", status=429, retry_after=1, times=5)
    elif failure == "502":
        bot.emulator.fail_next("sendMessage", status=502, times=2)
    else:
        bot.emulator.hang_next("sendMessage", 1.0)
    await write(bot, note("r:1", anna.id, "Morgen koffie"))
    for _ in range(6):
        await bot.drain_outbox()
        clock.move(minutes=15)
    assert texts(anna).count("Morgen koffie") == 1
    (row,) = await rows(bot)
    assert row.state == "sent"
    assert [f.kind for f in bot.emulator.injected] == {
        "429": ["429"] * 5,
        "502": ["502", "502"],
        "timeout": ["timeout"],
    }[failure]


async def test_a_blocked_resident_is_marked_unreachable_once(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    anna = await started(bot, 1001, "Anna")
    bram = await started(bot, 1002, "Bram")
    bot.emulator.block_bot(anna.id)
    await write(bot, note("r:1", anna.id), note("r:2", anna.id), note("r:3", bram.id))
    with caplog.at_level(logging.INFO):
        await bot.drain_outbox()
        await bot.drain_outbox()
    states = [(r.dedupe_key, r.state) for r in await rows(bot)]
    assert states == [("r:1", "failed"), ("r:2", "failed"), ("r:3", "sent")]
    assert texts(bram)[-1] == "Herinnering"
    calls = [c for c in bot.emulator.calls if c.method == "sendMessage" and c.status == 403]
    assert len(calls) == 2  # tried once each, never again
    assert sum("marked unreachable" in r.getMessage() for r in caplog.records) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bot.db is not None
    async with bot.db.begin() as session:
        resident = await session.scalar(select(Resident).where(Resident.telegram_id == anna.id))
    assert resident is not None and resident.unreachable_since is not None


async def test_a_message_telegram_refuses_for_good_is_failed_with_its_error(
    bot: BotUnderTest,
) -> None:
    anna = await started(bot, 1001, "Anna")
    bot.emulator.fail_next(
        "sendMessage", status=400, description="Bad Request: message is too long"
    )
    await write(bot, note("r:1", anna.id))
    await bot.drain_outbox()
    await bot.drain_outbox()
    (row,) = await rows(bot)
    assert row.state == "failed" and "message is too long" in (row.error or "").lower()


async def test_a_chat_gets_its_messages_in_order_while_others_go_on(
    clock: Clock, bot: BotUnderTest
) -> None:
    anna = await started(bot, 1001, "Anna")
    bram = await started(bot, 1002, "Bram")
    bot.emulator.fail_next("sendMessage", status=502)
    await write(bot, note("a:1", anna.id, "een"), note("a:2", anna.id, "twee"))
    await write(bot, note("b:1", bram.id, "voor Bram"))
    await bot.drain_outbox()
    assert "twee" not in texts(anna)  # waits behind "een"
    assert "voor Bram" in texts(bram)
    clock.move(minutes=1)
    await bot.drain_outbox()
    assert [t for t in texts(anna) if t in {"een", "twee"}] == ["een", "twee"]


async def test_an_answer_lost_after_telegram_accepted_is_sent_again(
    clock: Clock, bot: BotUnderTest
) -> None:
    """The one window where exactly once cannot hold (see bot/outbox.py): Telegram applied the
    send but the bot never learnt it (the answer was lost, or the process died before the
    commit that marks it sent). The message is still pending and is sent again: at least
    once, never lost."""
    anna = await started(bot, 1001, "Anna")
    bot.emulator.lose_response_next("sendMessage")
    await write(bot, note("r:1", anna.id, "Morgen koffie"))
    await bot.drain_outbox()
    await bot.restart(crash=True)
    clock.move(minutes=1)
    await bot.drain_outbox()
    assert texts(anna).count("Morgen koffie") == 2
    (row,) = await rows(bot)
    assert row.state == "sent"


async def test_a_message_that_keeps_failing_expires_after_a_day(
    clock: Clock, bot: BotUnderTest
) -> None:
    anna = await started(bot, 1001, "Anna")
    bot.emulator.fail_next("sendMessage", status=500, times=999)
    await write(bot, note("r:1", anna.id))
    await bot.drain_outbox()
    clock.move(hours=6)
    await bot.drain_outbox()
    assert (await rows(bot))[0].state == "pending"  # still tried again
    clock.move(hours=19)
    await bot.drain_outbox()
    (row,) = await rows(bot)
    assert row.state == "failed" and (row.error or "").startswith("expired")
    bot.emulator.clear_failures()


async def test_the_cleanup_removes_settled_messages_after_their_time(
    clock: Clock, bot: BotUnderTest
) -> None:
    anna = await started(bot, 1001, "Anna")
    bot.emulator.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
    await write(bot, note("r:1", anna.id), note("r:2", anna.id))
    await bot.drain_outbox()
    await write(bot, note("r:3", anna.id))  # still pending: never removed
    clock.move(days=8)
    await bot.run_job("outbox:cleanup")  # also sends r:3
    assert [r.dedupe_key for r in await rows(bot)] == ["r:1", "r:3"]
    clock.move(days=30)
    await bot.run_job("outbox:cleanup")
    assert [r.dedupe_key for r in await rows(bot)] == []
    assert sender_module.KEEP_SENT < sender_module.KEEP_FAILED


async def test_under_random_faults_every_digest_alert_reminder_and_relay_arrives_exactly_once(
    clock: Clock, bot: BotUnderTest
) -> None:
    """A day's bulk work, and relays on both desks in both directions, decided while Telegram
    fails a fifth of the sends at random (429s, server errors, timeouts): in the end every
    message arrived, each exactly once. (Everything is decided within the hour before the
    faults: a message not delivered a day after its decision is given up.)"""
    from buurtsignaal.conversations import digest as digest_module
    from buurtsignaal.conversations import koffie
    from tests.test_follow_up import melden, pair
    from tests.test_koffie import GROUP, plan_koffie, sign_up_many
    from tests.test_mediation_cases import ask_mediation, coordinator, open_case

    assert bot.app is not None
    bram, olga = await pair(bot)
    organiser = bot.user(4001, "Olga O.")
    await grant_role(bot, organiser, "organisator")
    bot.emulator.add_group(GROUP, "Buurtgroep")
    # The koffiemoment is announced now; its reminders are decided the day before it.
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Eenmalig")
    moment = (await koffie_moments(bot))[0]
    await sign_up_many(bot, moment.id, 12)
    clock.now = moment.starts_at - dt.timedelta(hours=20)
    # A first relay on each desk arrives before the faults, so the resident can answer it.
    cas, dirk = bot.user(1003, "Cas"), bot.user(1005, "Dirk")
    signal, _ = await melden(cas)
    await bram.says(f"/melding {signal}")
    await bram.taps("Antwoord aan melder")
    await bram.says("Wanneer is het het ergst?")
    await cas.taps("Antwoorden")
    carla = await coordinator(bot)
    case = await ask_mediation(dirk)
    await open_case(carla, case)
    await carla.taps("Bericht aan partij 1")
    await carla.says("Past donderdag om acht uur?")
    await dirk.taps("Antwoorden")
    before = {r.id for r in await rows(bot)}  # sent already, without faults
    bot.draining = False  # decide everything first; it is sent under faults below
    await cas.says("Vooral op vrijdagnacht.")  # reporter -> professional
    await bram.says(f"/melding {signal}")
    await bram.taps("Antwoord aan melder")
    await bram.says("Dank je, we komen vrijdag kijken.")  # professional -> reporter
    await cas.says("/mijnmeldingen")
    await cas.taps("Aanvullen")
    await cas.says("Zaterdag was het weer raak.")  # an addition, to both professionals
    await dirk.says("Donderdag kan ik, om acht uur.")  # party -> mediation team
    await open_case(carla, case)
    await carla.taps("Bericht aan partij 1")
    await carla.says("Fijn, tot donderdag in het buurthuis.")  # mediation team -> party
    anna = bot.user(1001, "Anna")
    await melden(anna)  # new-signal alerts to the pair
    await melden(bot.user(1002, "Bram B."))
    await koffie.sweep(bot.app)  # the day-before reminders
    await digest_module.run_wijk(bot.app, "schilderswijk", clock.now)  # the digests
    decided = await rows(bot)
    kinds = {r.kind for r in decided}
    assert {"alert:signal", "koffie:reminder", "koffie:announcement", "digest"} <= kinds
    relays = {"cases:reply", "cases:answer", "mine:news", "mcase:message", "mcase:answer"}
    assert relays <= kinds
    assert all(r.state == "pending" for r in decided if r.id not in before)

    bot.app.outbox.read_timeout = 0.3
    bot.emulator.faults(
        0.2, methods=["sendMessage"], kinds=("429", "500", "502", "timeout"), seed=11, hold=0.6
    )
    for _ in range(40):
        await bot.drain_outbox()
        if all(r.state != "pending" for r in await rows(bot)):
            break
        clock.move(minutes=20)
    bot.emulator.faults(0)
    assert bot.emulator.injected, "faults were injected"
    settled = await rows(bot)
    assert [r.dedupe_key for r in settled if r.state != "sent"] == []
    assert any(r.attempts > 1 for r in settled), "some were sent again after a failure"
    for row in settled:
        [message] = [
            m for m in bot.emulator.messages(row.chat_id) if m.message_id == row.message_id
        ]
        same = [m for m in bot.emulator.messages(row.chat_id) if m.plain_text == message.plain_text]
        assert len(same) == 1, row.dedupe_key
    assert {bram.id, olga.id} <= {r.chat_id for r in settled if r.kind == "digest"}
    for person, words in [
        (cas, "Dank je, we komen vrijdag kijken."),
        (bram, "Vooral op vrijdagnacht."),
        (bram, "Zaterdag was het weer raak."),
        (olga, "Zaterdag was het weer raak."),
        (dirk, "Fijn, tot donderdag in het buurthuis."),
        (carla, "Donderdag kan ik, om acht uur."),
    ]:
        got = [m for m in bot.emulator.messages(person.chat_id) if f"\n\n{words}" in m.plain_text]
        assert len(got) == 1, (person.name, words)


async def koffie_moments(bot: BotUnderTest) -> list[Any]:
    from buurtsignaal.storage.models import Moment

    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(Moment).order_by(Moment.starts_at))).all())


async def test_the_outbox_command_lists_the_failed_messages(
    bot: BotUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from buurtsignaal.bot.cli import main
    from tests.test_privacy import write_config

    anna = await started(bot, 1001, "Anna")
    bot.emulator.block_bot(anna.id)
    await write(bot, note("r:1", anna.id, "Geheime herinnering"))
    await bot.drain_outbox()
    assert await asyncio.to_thread(main, ["--config", str(write_config(bot)), "outbox"]) == 0
    out = capsys.readouterr().out
    assert "pending: 0, sent: 0, failed: 1" in out
    assert "failed #1 test to chat 1001" in out and "blocked" in out
    assert "Geheime" not in out


async def test_a_residents_answer_overtakes_a_running_500_recipient_reminder(
    bot: BotUnderTest,
) -> None:
    """The lanes (bot.limiter): while the outbox sends 500 reminders within Telegram's limits
    (flood limits on in the emulator), a resident who writes gets the answer at once, not after
    the reminders queued before it; and the pacing keeps the reminders clear of 429s."""
    assert bot.app is not None
    bot.emulator.flood_limits = True
    bot.app.outbox.concurrency = sender_module.CONCURRENCY  # as in production
    recipients = list(range(5_000_000, 5_000_500))
    for user_id in recipients:
        bot.emulator.add_user(user_id, f"Bewoner{user_id}")
        bot.emulator.set_started(user_id)
    anna = await started(bot, 1001, "Anna")
    await write(bot, *(note(f"r:{u}", u, "Morgen koffie") for u in recipients))

    def reminders() -> int:
        return sum(1 for m in bot.emulator.sent if m.chat_id in recipient_set)

    recipient_set = set(recipients)
    sending = asyncio.create_task(bot.drain_outbox())
    try:
        await bot.emulator.wait_until(lambda: reminders() >= 30, timeout=60)
        await anna.says("/help", drain=False)
        assert "Wat ik kan" in texts(anna)[-1]
        # The answer came while most reminders were still waiting: it did not queue behind them.
        assert not sending.done() and reminders() < len(recipients) - 300
        assert bot.emulator.flood_errors == 0
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
