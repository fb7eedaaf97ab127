"""The daily digest: contents, exactly-once delivery, /overzicht and the Monday picture."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from buurtsignaal.bot.charts import PNG_SIGNATURE
from buurtsignaal.bot.emulator import BotMessage
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.digest import digest_text
from buurtsignaal.conversations.ui import not_allowed
from buurtsignaal.storage.calendar import add_working_days, latest_slot
from buurtsignaal.storage.digest import build_digest
from buurtsignaal.storage.models import DigestDelivery, Signal, Wijk
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.signals import NewSignal, create_signal
from tests.conftest import Clock
from tests.harness import BotUnderTest, Person, grant_role

TZ = ZoneInfo("Europe/Amsterdam")
DIGEST = "Dagoverzicht Schilderswijk"


def slot_after(days: int, *, monday: bool | None = None) -> dt.datetime:
    """A digest moment (08:00 Amsterdam) at least ``days`` days from now (UTC).

    Roles are granted at the real now, so a slot in the future is one they were due.
    ``monday`` picks (True) or avoids (False) a Monday.
    """
    day = dt.datetime.now(TZ).date() + dt.timedelta(days=days)
    while monday is not None and (day.weekday() == 0) != monday:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(8, 0), tzinfo=TZ).astimezone(dt.UTC)


async def wijk_id(bot: BotUnderTest) -> int:
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk).where(Wijk.slug == "schilderswijk"))
        assert wijk is not None
        return wijk.id


async def store(
    bot: BotUnderTest,
    at: dt.datetime,
    *,
    category: str = "geluidsoverlast",
    place: str | None = "Dorpsstraat 12",
    point: tuple[float, float] | None = None,
    status: str = "nieuw",
    frequency: str = "first",
    contact_name: str | None = None,
    resident: int | None = None,
) -> str:
    """Store a signal created at ``at``; returns its reference."""
    assert bot.db is not None
    wid = await wijk_id(bot)
    async with bot.db.begin() as session:
        resident_id = None
        if resident is not None:
            resident_id = (await ensure_resident(session, resident, "nl")).id
        signal = await create_signal(
            session,
            NewSignal(
                wijk_id=wid,
                resident_id=resident_id,
                category=category,
                description="Beschrijving van wat er gebeurde.",
                occurred="today",
                frequency=frequency,
                contactable=contact_name is not None,
                contact_name=contact_name,
                location_text=None if point else place,
                latitude=point[0] if point else None,
                longitude=point[1] if point else None,
            ),
            year=at.year,
            now=at,
        )
        signal.status = status
        return signal.reference


async def watermarks(bot: BotUnderTest) -> dict[int, dt.datetime]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        rows = (await session.scalars(select(DigestDelivery))).all()
        return {row.recipient: row.covered_until for row in rows}


def digests(bot: BotUnderTest, person: Person, title: str = DIGEST) -> list[BotMessage]:
    return [m for m in bot.emulator.messages(person.id) if title in m.plain_text]


async def run_digest_job(bot: BotUnderTest) -> None:
    assert bot.app is not None and bot.app.job_queue is not None
    [job] = bot.app.job_queue.get_jobs_by_name("digest:schilderswijk")
    await job.run(bot.app)
    await bot.drain_outbox()


async def the_pair(bot: BotUnderTest) -> tuple[Person, Person]:
    wendy = bot.user(2001, "Wendy")  # wijkagent, Dutch
    otto = bot.user(2002, "Otto", language_code="en")  # opbouwwerker, English
    await grant_role(bot, wendy, "wijkagent")
    await grant_role(bot, otto, "opbouwwerker")
    await otto.says("/help")  # the bot learns Otto's language from his chat
    return wendy, otto


# --- pure rules -------------------------------------------------------------------------------


def test_working_days_skip_the_weekend() -> None:
    friday = dt.datetime(2026, 3, 6, 17, 0, tzinfo=TZ)
    assert add_working_days(friday, 2, TZ) == dt.datetime(2026, 3, 10, 17, 0, tzinfo=TZ)
    saturday = dt.datetime(2026, 3, 7, 10, 0, tzinfo=TZ)
    assert add_working_days(saturday, 2, TZ) == dt.datetime(2026, 3, 10, 10, 0, tzinfo=TZ)
    monday = dt.datetime(2026, 3, 9, 9, 0, tzinfo=TZ)
    assert add_working_days(monday, 2, TZ) == dt.datetime(2026, 3, 11, 9, 0, tzinfo=TZ)


def test_latest_slot_in_local_time() -> None:
    at = dt.time(8, 0)
    before = dt.datetime(2026, 3, 10, 7, 59, tzinfo=TZ)
    after = dt.datetime(2026, 3, 10, 8, 0, tzinfo=TZ)
    assert latest_slot(before, at, TZ) == dt.datetime(2026, 3, 9, 8, 0, tzinfo=TZ)
    assert latest_slot(after, at, TZ) == dt.datetime(2026, 3, 10, 8, 0, tzinfo=TZ)
    # Across the change to summer time the slot stays at 08:00 local.
    summer = dt.datetime(2026, 3, 29, 9, 0, tzinfo=TZ)
    assert latest_slot(summer, at, TZ).astimezone(TZ).hour == 8


# --- contents ---------------------------------------------------------------------------------


async def test_digest_contents_for_a_given_set_of_signals(clock: Clock, bot: BotUnderTest) -> None:
    clock.next_weekday(2, 11)  # the pair starts on a Wednesday morning: the first digest is 24 h
    wendy, otto = await the_pair(bot)
    slot = slot_after(1, monday=False)
    hour = dt.timedelta(hours=1)
    old = await store(bot, slot - dt.timedelta(days=10), category="burenruzie")
    before = await store(bot, slot - 30 * hour, category="vernieling")  # the period before
    closed = await store(bot, slot - 20 * hour, category="bekladding", status="afgehandeld")
    contactable = await store(
        bot, slot - 5 * hour, place="Dorpsstraat 12", contact_name="Anna de Vries (@anna)"
    )
    located = await store(bot, slot - 3 * hour, category="bekladding", point=(52.0705, 4.3007))
    tricky = await store(
        bot, slot - 2 * hour, place="<b>Kerk</b>laan & co", frequency="recurring", resident=1004
    )
    later = await store(bot, slot + hour)  # after the slot: the next digest's

    clock.now = slot + dt.timedelta(minutes=1)
    await run_digest_job(bot)

    [message] = digests(bot, wendy)
    text = message.plain_text
    assert "Signalen van" in text
    assert "4 nieuwe signalen (Geluidsoverlast 2 · Bekladding 2)" in text
    assert f"{contactable} · Geluidsoverlast · Dorpsstraat 12 · eerste keer" in text
    assert "contact: Anna de Vries (@anna)" in text
    assert f"{located} · Bekladding · locatie 52.07050, 4.30070 · eerste keer" in text
    assert f"{tricky} · Geluidsoverlast · <b>Kerk</b>laan & co · gebeurt vaker" in text
    assert "&lt;b&gt;Kerk&lt;/b&gt;laan &amp; co" in (message.text or "")
    assert f"{closed} · Bekladding" in text and "Afgehandeld" in text
    assert later not in text
    # Open: everything not closed up to the slot, oldest first; the old one is overdue.
    assert "5 staan nog open" in text
    assert f"1 over tijd: na 2 werkdagen nog niet opgepakt: {old}" in text
    assert f"⚠️ {old} · Burenruzie · Nieuw · 10 dagen oud" in text
    assert f"{before} · Vernieling · Nieuw · 1 dag oud" in text
    still_open = text.split("staan nog open")[1]
    assert still_open.index(old) < still_open.index(before) < still_open.index(contactable)
    assert "Trend: 4 nieuw in deze periode, 1 in de periode ervoor (+3)." in text
    assert "hotspot" not in text
    # No resident identity: the pseudonymous reporter (Dirk, 1004) is nowhere.
    assert "1004" not in text and "Dirk" not in text

    [english] = digests(bot, otto, "Daily digest Schilderswijk")
    assert "4 new signals (Noise nuisance 2 · Graffiti 2)" in english.plain_text
    assert "Trend: 4 new in this period, 1 in the period before (+3)." in english.plain_text
    # Not a Monday: no picture.
    assert not [m for m in bot.emulator.messages(wendy.id) if m.method == "sendPhoto"]
    assert await watermarks(bot) == {wendy.id: slot, otto.id: slot}


async def test_build_digest_directly(bot: BotUnderTest) -> None:
    """The domain function, without Telegram: the same rules another transport would use."""
    slot = dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)  # Wednesday 08:00 in Amsterdam
    await store(bot, slot - dt.timedelta(days=3), category="burenruzie")  # Sunday: due Tue
    await store(bot, slot - dt.timedelta(hours=30), category="vernieling", status="in_behandeling")
    await store(bot, slot - dt.timedelta(hours=2))
    assert bot.db is not None
    wid = await wijk_id(bot)
    async with bot.db.begin() as session:
        digest = await build_digest(
            session,
            wid,
            since=slot - dt.timedelta(days=1),
            until=slot,
            now=slot,
            response_days=2,
            tz=TZ,
            hotspot_days=14,
        )
    assert digest.new_count == 1 and digest.previous_count == 1 and digest.trend == 0
    assert [s.category for s in digest.open] == ["burenruzie", "vernieling", "geluidsoverlast"]
    assert [s.category for s in digest.overdue] == ["burenruzie"]
    assert all(s.contact_name is None for s in digest.open)


async def test_open_and_overdue_are_counted_beyond_what_is_listed(bot: BotUnderTest) -> None:
    """Only the oldest open and overdue signals are loaded; all of them are counted."""
    slot = dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)  # Wednesday 08:00 in Amsterdam
    oldest = [await store(bot, slot - dt.timedelta(days=10, hours=n)) for n in (3, 2, 1)]
    await store(bot, slot - dt.timedelta(days=9), status="in_behandeling")
    await store(bot, slot - dt.timedelta(hours=2))
    await store(bot, slot - dt.timedelta(days=20), status="afgehandeld")
    assert bot.db is not None
    wijk = await wijk_id(bot)
    async with bot.db.begin() as session:
        digest = await build_digest(
            session,
            wijk,
            since=slot - dt.timedelta(days=1),
            until=slot,
            now=slot,
            response_days=2,
            tz=TZ,
            hotspot_days=14,
            shown=2,
        )
    assert digest.open_count == 5 and digest.overdue_count == 3
    assert [s.reference for s in digest.open] == oldest[:2]
    assert [s.reference for s in digest.overdue] == oldest[:2]
    text = digest_text(Translator("nl"), digest, tz=TZ, scheduled=True)
    assert "5 staan nog open" in text and "3 over tijd" in text
    assert "… en nog 3" in text


async def test_overdue_count_agrees_with_working_days_around_the_clock_change(
    bot: BotUnderTest,
) -> None:
    """The database counts the surely overdue, the edge is checked by working days: together
    the same as checking each one, for a signal at every hour of two weeks around the spring
    clock change, over weekends."""
    now = dt.datetime(2026, 3, 31, 9, 30, tzinfo=dt.UTC)  # Tuesday, two days after DST
    created = [now - dt.timedelta(hours=h) for h in range(1, 24 * 14)]
    assert bot.db is not None
    wid = await wijk_id(bot)
    async with bot.db.begin() as session:
        for n, at in enumerate(created):
            session.add(
                Signal(
                    reference=f"BS-2026-{n:05d}",
                    wijk_id=wid,
                    category="geluidsoverlast",
                    occurred="today",
                    frequency="first",
                    status="nieuw",
                    created_at=at,
                )
            )
    for days in (1, 2, 5, 6):
        async with bot.db.begin() as session:
            digest = await build_digest(
                session,
                wid,
                since=now - dt.timedelta(days=1),
                until=now,
                now=now,
                response_days=days,
                tz=TZ,
                hotspot_days=14,
                shown=500,
            )
        expected = [at for at in created if now > add_working_days(at, days, TZ)]
        assert digest.overdue_count == len(expected), days
        assert sorted(s.created_at for s in digest.overdue) == sorted(expected), days


async def test_a_long_digest_is_shortened_not_refused(clock: Clock, bot: BotUnderTest) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    for n in range(120):
        await store(
            bot, slot - dt.timedelta(minutes=n + 1), place=f"Heel lange straatnaamweg {n} " * 4
        )
    clock.now = slot
    await run_digest_job(bot)
    [message] = digests(bot, wendy)
    assert "120 nieuwe signalen" in message.plain_text
    assert "… en nog" in message.plain_text
    assert len(message.plain_text) <= 4096
    assert await watermarks(bot) == {wendy.id: slot}


# --- exactly once -----------------------------------------------------------------------------


async def test_exactly_once_across_a_restart_at_digest_time(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    first = await store(bot, slot - dt.timedelta(hours=2))

    # The bot is down at the slot and comes back half an hour later: the missed digest now.
    await bot.stop()
    clock.now = slot + dt.timedelta(minutes=30)
    await bot.start()
    await bot.drain_outbox()
    [message] = digests(bot, wendy)
    assert first in message.plain_text
    assert await watermarks(bot) == {wendy.id: slot}

    # Another restart, and the daily job running late: nothing is repeated.
    clock.now = slot + dt.timedelta(minutes=40)
    await bot.restart(crash=True)
    await run_digest_job(bot)
    assert len(digests(bot, wendy)) == 1

    # The next day only the new signals.
    second = await store(bot, slot + dt.timedelta(hours=3))
    clock.now = slot + dt.timedelta(days=1)
    await run_digest_job(bot)
    _, new = digests(bot, wendy)
    assert second in new.plain_text
    assert first not in new.plain_text.split("open")[0]  # not among the new ones
    assert "1 nieuw signaal" in new.plain_text
    assert await watermarks(bot) == {wendy.id: slot + dt.timedelta(days=1)}


async def test_a_5xx_is_retried_by_the_outbox_and_sent_once(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    reference = await store(bot, slot - dt.timedelta(hours=2))
    clock.now = slot + dt.timedelta(minutes=1)

    bot.emulator.fail_next("sendMessage", status=502)
    await run_digest_job(bot)
    assert digests(bot, wendy) == []
    assert await watermarks(bot) == {wendy.id: slot}  # decided: it is in the outbox
    [failed_call] = [c for c in bot.emulator.calls_to("sendMessage") if not c.ok]

    clock.now += dt.timedelta(minutes=1)
    await bot.drain_outbox()
    [message] = digests(bot, wendy)
    assert message.text == failed_call.params["text"]  # the same digest, now delivered
    assert reference in message.plain_text

    await run_digest_job(bot)
    clock.now += dt.timedelta(minutes=10)
    await bot.drain_outbox()
    assert len(digests(bot, wendy)) == 1


async def test_a_429_beyond_the_rate_limiters_retries_is_retried_by_the_outbox(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    reference = await store(bot, slot - dt.timedelta(hours=2))
    clock.now = slot + dt.timedelta(minutes=1)

    # The rate limiter tries four times (max_retries=3); all four are refused.
    bot.emulator.fail_next("sendMessage", status=429, retry_after=1, times=4)
    await run_digest_job(bot)
    assert len([c for c in bot.emulator.calls_to("sendMessage") if c.status == 429]) == 4
    assert digests(bot, wendy) == []

    clock.now += dt.timedelta(seconds=2)  # after retry_after
    await bot.drain_outbox()
    await run_digest_job(bot)
    [message] = digests(bot, wendy)
    assert reference in message.plain_text
    assert await watermarks(bot) == {wendy.id: slot}


async def test_a_single_429_is_absorbed_by_the_rate_limiter(
    clock: Clock, bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    await store(bot, slot - dt.timedelta(hours=2))
    clock.now = slot + dt.timedelta(minutes=1)
    bot.emulator.fail_next("sendMessage", status=429, retry_after=1)
    await run_digest_job(bot)
    assert len(digests(bot, wendy)) == 1
    assert await watermarks(bot) == {wendy.id: slot}


async def test_a_blocked_recipient_gets_both_days_at_the_next_slot(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    first = await store(bot, slot - dt.timedelta(hours=2))
    clock.now = slot + dt.timedelta(minutes=1)
    bot.emulator.block_bot(wendy.id)
    await run_digest_job(bot)
    assert await watermarks(bot) == {}  # refused: moved back, never retried

    bot.emulator.unblock_bot(wendy.id)
    second = await store(bot, slot + dt.timedelta(hours=2))
    next_slot = slot + dt.timedelta(days=1)
    if next_slot.astimezone(TZ).weekday() == 0:
        next_slot += dt.timedelta(days=1)
    clock.now = next_slot
    await run_digest_job(bot)
    [message] = digests(bot, wendy)
    assert first in message.plain_text and second in message.plain_text
    assert "2 nieuwe signalen" in message.plain_text
    assert await watermarks(bot) == {wendy.id: next_slot}


async def test_nobody_granted_after_the_slot_gets_that_slot(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    # The latest slot before the grant: she was not a recipient then.
    clock.now = dt.datetime.now(dt.UTC)
    await run_digest_job(bot)
    await bot.restart()
    assert digests(bot, wendy) == []


# --- /overzicht ------------------------------------------------------------------------------


async def test_overzicht_shows_the_digest_now_without_moving_the_watermark(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    slot = slot_after(1, monday=False)
    one = await store(bot, slot - dt.timedelta(hours=5))
    two = await store(bot, slot - dt.timedelta(hours=4), category="bekladding")
    too_old = await store(bot, slot - dt.timedelta(days=3), category="vernieling")

    # Never had a digest: the last 24 hours.
    clock.now = slot - dt.timedelta(hours=2)
    reply = await wendy.says("/overzicht")
    text = reply.text
    assert "Overzicht Schilderswijk, nu" in text
    assert "Nieuwe signalen sinds" in text
    assert "2 nieuwe signalen (Geluidsoverlast 1 · Bekladding 1)" in text
    assert one in text and two in text
    assert too_old in text.split("open")[1]  # older, but still open
    assert "3 staan nog open" in text
    assert await watermarks(bot) == {}

    # The daily digest still covers those signals: /overzicht moved nothing.
    clock.now = slot
    await run_digest_job(bot)
    [daily] = digests(bot, wendy)
    assert "2 nieuwe signalen" in daily.plain_text
    assert await watermarks(bot) == {wendy.id: slot}

    # After a delivered digest, /overzicht starts from it.
    three = await store(bot, slot + dt.timedelta(minutes=30))
    clock.now = slot + dt.timedelta(hours=1)
    reply = await wendy.says("/overzicht")
    assert "1 nieuw signaal" in reply.text
    assert three in reply.text.split("open")[0]
    assert await watermarks(bot) == {wendy.id: slot}


async def test_residents_and_admins_without_a_role_get_no_overview(bot: BotUnderTest) -> None:
    await store(bot, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/overzicht")
    assert reply.text == not_allowed(Translator("nl"))
    admin = bot.user(900001, "Admin")
    reply = await admin.says("/overzicht")
    assert reply.text == not_allowed(Translator("nl"))
    mediator = bot.user(2003, "Mila")
    await grant_role(bot, mediator, "bemiddelaar")
    reply = await mediator.says("/overzicht")
    assert reply.text == not_allowed(Translator("nl"))


# --- the Monday picture -----------------------------------------------------------------------


async def test_monday_digest_carries_a_chart(clock: Clock, bot: BotUnderTest) -> None:
    wendy, otto = await the_pair(bot)
    monday = slot_after(1, monday=True)
    for week in range(1, 9):
        for n in range(week % 4 + 1):
            category = ("geluidsoverlast", "bekladding", "burenruzie")[n % 3]
            await store(bot, monday - dt.timedelta(weeks=week, hours=-n - 30), category=category)
    clock.now = monday + dt.timedelta(minutes=2)
    await run_digest_job(bot)

    messages = bot.emulator.messages(wendy.id)
    text, photo = messages[-2:]
    assert DIGEST in text.plain_text
    assert photo.method == "sendPhoto"
    assert photo.file_bytes is not None and photo.file_bytes.startswith(PNG_SIGNATURE)
    assert "Signalen per categorie per week, de afgelopen 8 weken." in photo.plain_text
    [english] = [m for m in bot.emulator.messages(otto.id) if m.method == "sendPhoto"]
    assert english.plain_text == "Signals per category per week, the last 8 weeks."
    # Tuesday: text only.
    clock.now = monday + dt.timedelta(days=1)
    await run_digest_job(bot)
    assert bot.emulator.messages(wendy.id)[-1].method == "sendMessage"
    assert len([m for m in bot.emulator.messages(wendy.id) if m.method == "sendPhoto"]) == 1


async def test_signals_of_other_wijken_stay_out(clock: Clock, bot: BotUnderTest) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    assert bot.db is not None
    async with bot.db.begin() as session:
        other = Wijk(slug="transvaal", name="Transvaal")
        session.add(other)
        await session.flush()
        slot = slot_after(1, monday=False)
        signal = await create_signal(
            session,
            NewSignal(
                wijk_id=other.id,
                resident_id=None,
                category="vernieling",
                description="Ruit ingegooid.",
                occurred="now",
                frequency="first",
                contactable=False,
                location_text="Dorpsstraat 1",
            ),
            year=slot.year,
            now=slot - dt.timedelta(hours=1),
        )
        elsewhere = signal.reference
    clock.now = slot
    await run_digest_job(bot)
    [message] = digests(bot, wendy)
    assert elsewhere not in message.plain_text
    assert "Geen nieuwe signalen." in message.plain_text
    assert "Geen openstaande signalen." in message.plain_text
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert (await session.get(Signal, signal.id)) is not None
