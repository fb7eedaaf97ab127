"""Early warning: recurring signals near one place become a hotspot, alerted to the pair once."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from buurtsignaal.bot.settings import Settings
from buurtsignaal.conversations.digest import hotspot_rules
from buurtsignaal.storage.hotspots import (
    HotspotRules,
    calm_down,
    haversine_m,
    register_signal,
    street_key,
    street_label,
)
from buurtsignaal.storage.models import Hotspot, Signal, Wijk
from buurtsignaal.storage.signals import NewSignal, create_signal
from tests.conftest import Clock, make_settings
from tests.harness import BotUnderTest, Person, grant_role

TZ = ZoneInfo("Europe/Amsterdam")
ALERT = "Vroegsignaal"
DEFAULT_RULES = HotspotRules(min_signals=3, days=14, radius_m=150)


# --- the street-name normaliser --------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("Dorpsstraat 12", "dorpsstraat"),
        ("dorpsstraat 14", "dorpsstraat"),
        ("Dorpsstraat bij de speeltuin", "dorpsstraat"),
        ("DORPSSTRAAT 12a", "dorpsstraat"),
        ("Dorpsstraat12", "dorpsstraat"),
        ("Dorps straat", "dorpsstraat"),
        ("Dorpsstr. 3", "dorpsstraat"),
        ("bij de speeltuin in de Dorpsstraat", "dorpsstraat"),
        ("in de buurt van de Dorpsstraat", "dorpsstraat"),
        ("tegenover de bakker, Dorpsstraat", "dorpsstraat"),
        ("achter de flat aan de Dorpsstraat", "dorpsstraat"),
        ("Dorpsstraat ter hoogte van nummer 40", "dorpsstraat"),
        ("Dorpsstraat t.h.v. nr 8", "dorpsstraat"),
        ("Hoek Dorpsstraat/Kerklaan", "dorpsstraat"),
        ("op de hoek van de Dorpsstraat en de Kerklaan", "dorpsstraat"),
        ("Dorpsstraat 12, 2512 AB Den Haag", "dorpsstraat"),
        ("near the playground on Dorpsstraat", "dorpsstraat"),
        ("Curaçaostraat 8", "curacaostraat"),
        ("curacaostraat", "curacaostraat"),
        ("Van Goghstraat 5", "vangoghstraat"),
        ("van gogh straat", "vangoghstraat"),
        ("Laan van Meerdervoort 120", "laanvanmeerdervoort"),
        ("Laan van Meerdervoort bij de Albert Heijn", "laanvanmeerdervoort"),
        ("Grote Markt", "grotemarkt"),
        ("bij de speeltuin", "speeltuin"),
        ("Speeltuin", "speeltuin"),
        ("12", None),
        ("hier", None),
        ("bij mij thuis", None),
        ("op straat", None),
        ("", None),
    ],
)
def test_street_key(typed: str, key: str | None) -> None:
    assert street_key(typed) == key


def test_different_streets_stay_apart() -> None:
    assert street_key("Dorpsstraat 12") != street_key("Dorpsplein 12")
    assert street_key("Kerkstraat 1") != street_key("Kerklaan 1")
    assert street_key("Dorpsstraat bij de Kerklaan") != street_key("Kerklaan bij de Dorpsstraat")


def test_street_label_keeps_how_it_was_written() -> None:
    assert street_label("dorpsstraat 14") == "Dorpsstraat"
    assert street_label("Curaçaostraat t.h.v. nr 8") == "Curaçaostraat"
    assert street_label("Dorpsstraat bij de speeltuin") == "Dorpsstraat"
    assert street_label("Laan van Meerdervoort 120") == "Laan van Meerdervoort"
    assert street_label("hier") is None


def test_haversine() -> None:
    # One thousandth of a degree of latitude is about 111 metres.
    assert 110 < haversine_m(52.070, 4.300, 52.071, 4.300) < 112
    assert haversine_m(52.07, 4.3, 52.07, 4.3) == 0


def test_rules_per_wijk(sqlite_url: str) -> None:
    settings: Settings = make_settings(
        sqlite_url,
        hotspots={"min_signals": 4, "days": 10, "radius_m": 80},
        wijken=[
            {"name": "Schilderswijk", "slug": "schilderswijk", "hotspot_min_signals": 2},
            {"name": "Transvaal", "slug": "transvaal", "hotspot_days": 30},
        ],
    )
    assert hotspot_rules(settings, "schilderswijk") == HotspotRules(2, 10, 80)
    assert hotspot_rules(settings, "transvaal") == HotspotRules(4, 30, 80)


# --- through /melden --------------------------------------------------------------------------


async def report(
    person: Person,
    place: str,
    *,
    category: str = "Geluidsoverlast",
    how_often: str = "Dit is de eerste keer",
    contactable: bool = False,
) -> str:
    """A resident reports through /melden with a typed place; returns the bot's last answer."""
    await person.says("/melden")
    await person.taps("Nee, niemand is in gevaar")
    await person.taps(category)
    await person.says("Harde muziek en geschreeuw, elke avond na elf uur.")
    await person.says(place)
    await person.taps("Vandaag")
    await person.taps(how_often)
    await person.taps("Overslaan")
    await person.taps("Jullie mogen contact opnemen" if contactable else "Pseudoniem")
    reply = await person.taps("Melding versturen")
    assert "opgeslagen als" in reply.text
    return reply.text


async def run_job(bot: BotUnderTest, name: str = "digest:schilderswijk") -> None:
    """Run a scheduled job now, as if its time had come."""
    assert bot.app is not None and bot.app.job_queue is not None
    [job] = bot.app.job_queue.get_jobs_by_name(name)
    await job.run(bot.app)
    await bot.drain_outbox()


def alerts(bot: BotUnderTest, person: Person) -> list[str]:
    return [m.plain_text for m in bot.emulator.messages(person.id) if ALERT in m.plain_text]


async def all_signals(bot: BotUnderTest) -> list[Signal]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(Signal).order_by(Signal.id))).all())


async def all_hotspots(bot: BotUnderTest) -> list[Hotspot]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(Hotspot).order_by(Hotspot.id))).all())


async def test_three_noise_reports_on_one_street_alert_the_pair_once(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")  # wijkagent
    otto = bot.user(2002, "Otto")  # opbouwwerker
    await grant_role(bot, wendy, "wijkagent")
    await grant_role(bot, otto, "opbouwwerker")
    anna = bot.user(1001, "Anna")
    bram = bot.user(1002, "Bram")
    cora = bot.user(1003, "Cora")
    dirk = bot.user(1004, "Dirk")

    await report(anna, "Dorpsstraat 12")
    await report(bram, "dorpsstraat 14")
    assert alerts(bot, wendy) == []  # two signals are no hotspot yet

    await report(cora, "Dorpsstraat bij de speeltuin")
    [alert] = alerts(bot, wendy)
    assert alerts(bot, otto) == [alert]
    references = [s.reference for s in await all_signals(bot)]
    assert "Vroegsignaal: Geluidsoverlast komt steeds terug" in alert
    assert "Waar: Dorpsstraat (Schilderswijk)" in alert
    assert re.search(r"Signalen: 3 signalen (op|tussen) ", alert)
    for reference in references:
        assert reference in alert
    for name in ("Anna", "Bram", "Cora"):  # no resident identity
        assert name not in alert
    # The residents themselves see nothing of this.
    for resident in (anna, bram, cora):
        assert not [m for m in bot.emulator.messages(resident.id) if ALERT in m.plain_text]

    await report(dirk, "Dorpsstraat 3")
    assert len(alerts(bot, wendy)) == 1  # the fourth joins the hotspot silently
    assert len(alerts(bot, otto)) == 1
    [hotspot] = await all_hotspots(bot)
    signals = await all_signals(bot)
    assert [s.hotspot_id for s in signals] == [hotspot.id] * 4
    assert hotspot.last_signal_at == signals[-1].created_at
    assert hotspot.alerted_at is not None and hotspot.calmed_at is None
    assert hotspot.label == "Dorpsstraat"

    # The hotspot shows in the digest ...
    clock.now = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    await run_job(bot)
    digest = bot.emulator.messages(wendy.id)[-1].plain_text
    assert "Dagoverzicht Schilderswijk" in digest
    assert "1 hotspot" in digest
    assert "Geluidsoverlast bij Dorpsstraat: 4 signalen sinds" in digest
    assert len(alerts(bot, wendy)) == 1

    # ... until it has been quiet for 14 days: then it calms down and leaves the digest.
    clock.now = signals[-1].created_at + dt.timedelta(days=15)
    await run_job(bot)
    [hotspot] = await all_hotspots(bot)
    assert hotspot.calmed_at == hotspot.last_signal_at + dt.timedelta(days=14)
    digest = bot.emulator.messages(wendy.id)[-1].plain_text
    assert "Dagoverzicht Schilderswijk" in digest
    assert "hotspot" not in digest
    assert len(alerts(bot, wendy)) == 1


async def test_other_streets_and_categories_do_not_add_up(clock: Clock, bot: BotUnderTest) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    people = [bot.user(1001 + n, f"Bewoner{n}") for n in range(4)]
    await report(people[0], "Dorpsstraat 12")
    await report(people[1], "Kerklaan 14")
    await report(people[2], "Dorpsstraat 20", category="Bekladding")
    await report(people[3], "Dorpsplein 1")
    assert alerts(bot, wendy) == []
    assert await all_hotspots(bot) == []


async def test_it_happens_more_often_counts_double(clock: Clock, bot: BotUnderTest) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    anna, bram = bot.user(1001, "Anna"), bot.user(1002, "Bram")
    await report(anna, "Dorpsstraat 12", how_often="Het gebeurt vaker")
    assert alerts(bot, wendy) == []
    await report(bram, "Dorpsstraat 40")
    [alert] = alerts(bot, wendy)
    assert re.search(r"Signalen: 2 signalen (op|tussen) ", alert)
    assert "Bij 1 ervan staat dat het vaker gebeurt." in alert


# --- storage level: coordinates, the period, recurrence after calm ----------------------------


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
    place: str | None = None,
    point: tuple[float, float] | None = None,
    category: str = "geluidsoverlast",
    rules: HotspotRules = DEFAULT_RULES,
) -> tuple[str, int | None, bool]:
    """Store a signal at ``at`` and run the early warning: (reference, hotspot id, new?)."""
    assert bot.db is not None
    wid = await wijk_id(bot)
    async with bot.db.begin() as session:
        signal = await create_signal(
            session,
            NewSignal(
                wijk_id=wid,
                resident_id=None,
                category=category,
                description="Harde muziek",
                occurred="today",
                frequency="first",
                contactable=False,
                location_text=place,
                latitude=point[0] if point else None,
                longitude=point[1] if point else None,
            ),
            year=at.year,
            now=at,
        )
        new = await register_signal(session, signal, rules)
        return signal.reference, signal.hotspot_id, new is not None


async def test_coordinates_within_and_outside_the_radius(bot: BotUnderTest) -> None:
    start = dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.UTC)
    base = (52.06800, 4.29500)
    # About 50 and 90 metres to the north: within 150 m.
    _, hotspot, new = await store(bot, start, point=base)
    assert (hotspot, new) == (None, False)
    await store(bot, start + dt.timedelta(days=1), point=(52.06845, 4.29500))
    # 500 metres away: another place, does not count.
    _, far, _ = await store(bot, start + dt.timedelta(days=2), point=(52.07250, 4.29500))
    assert far is None
    # A typed place is never compared with coordinates.
    _, typed, _ = await store(bot, start + dt.timedelta(days=2), place="Dorpsstraat 1")
    assert typed is None
    _, hotspot, new = await store(bot, start + dt.timedelta(days=3), point=(52.06880, 4.29510))
    assert hotspot is not None and new
    [spot] = await all_hotspots(bot)
    assert spot.place_key is None
    assert spot.latitude is not None and abs(spot.latitude - 52.06842) < 0.0001
    # Within the radius of the hotspot's centre: joins it, no new hotspot.
    _, joined, new = await store(bot, start + dt.timedelta(days=4), point=(52.06900, 4.29500))
    assert (joined, new) == (hotspot, False)
    # Still far away: not part of it.
    _, far, _ = await store(bot, start + dt.timedelta(days=4), point=(52.07250, 4.29500))
    assert far is None
    linked = [s for s in await all_signals(bot) if s.hotspot_id == hotspot]
    assert len(linked) == 4


async def test_only_signals_within_the_period_count(bot: BotUnderTest) -> None:
    start = dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.UTC)
    await store(bot, start, place="Dorpsstraat 1")
    await store(bot, start + dt.timedelta(days=10), place="Dorpsstraat 2")
    # 15 days after the first: the first no longer counts.
    _, hotspot, _ = await store(bot, start + dt.timedelta(days=15), place="Dorpsstraat 3")
    assert hotspot is None
    _, hotspot, new = await store(bot, start + dt.timedelta(days=16), place="Dorpsstraat 4")
    assert hotspot is not None and new
    linked = [s.location_text for s in await all_signals(bot) if s.hotspot_id == hotspot]
    assert linked == ["Dorpsstraat 2", "Dorpsstraat 3", "Dorpsstraat 4"]


async def test_a_recurrence_after_calm_is_a_new_hotspot_with_a_new_alert(
    clock: Clock, bot: BotUnderTest
) -> None:
    wendy = bot.user(2001, "Wendy")
    await grant_role(bot, wendy, "wijkagent")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    for n in range(3):
        *_, new = await store(bot, start + dt.timedelta(hours=n), place=f"Dorpsstraat {n}")
    assert new
    # Found outside a chat (here: straight in storage), the alert goes with the next job run.
    clock.now = start + dt.timedelta(hours=3)
    await run_job(bot)
    assert len(alerts(bot, wendy)) == 1
    await run_job(bot)
    assert len(alerts(bot, wendy)) == 1

    later = start + dt.timedelta(days=30)
    assert bot.db is not None
    wid = await wijk_id(bot)
    async with bot.db.begin() as session:
        calmed = await calm_down(session, wid, now=later, days=14)
    assert len(calmed) == 1
    for n in range(3):
        *_, new = await store(bot, later + dt.timedelta(hours=n), place=f"dorpsstraat {n + 10}")
    assert new
    first, second = await all_hotspots(bot)
    assert first.calmed_at is not None and second.calmed_at is None
    clock.now = later + dt.timedelta(hours=3)
    await run_job(bot)
    assert len(alerts(bot, wendy)) == 2


async def test_a_failed_alert_is_retried_once(clock: Clock, bot: BotUnderTest) -> None:
    wendy = bot.user(2001, "Wendy")
    otto = bot.user(2002, "Otto")
    await grant_role(bot, wendy, "wijkagent")
    await grant_role(bot, otto, "opbouwwerker")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for n in range(3):
        await store(bot, start + dt.timedelta(minutes=n), place=f"Dorpsstraat {n}")

    # Wendy's alert gets a 502, Otto's goes through.
    bot.emulator.fail_next("sendMessage", status=502)
    await run_job(bot)
    assert alerts(bot, wendy) == []
    assert len(alerts(bot, otto)) == 1
    [hotspot] = await all_hotspots(bot)
    assert hotspot.alerted_at is not None  # decided: the outbox holds Wendy's

    # The outbox tries again a little later and reaches Wendy, and only her.
    clock.now += dt.timedelta(minutes=1)
    await bot.drain_outbox()
    assert len(alerts(bot, wendy)) == 1
    assert len(alerts(bot, otto)) == 1
    [hotspot] = await all_hotspots(bot)
    assert hotspot.alerted_at is not None
    await run_job(bot)
    assert len(alerts(bot, wendy)) == 1
    assert len(alerts(bot, otto)) == 1
