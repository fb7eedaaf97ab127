"""Koffiemomenten and the neighbourhood group, with several residents and a group chat."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import select

from buurtsignaal.conversations import koffie
from buurtsignaal.conversations.callbacks import Koffie
from buurtsignaal.storage.models import Moment, Signup
from tests.conftest import ADMIN_ID, Clock
from tests.harness import BotUnderTest, Person, Reply, grant_role, rewrite_user_data

GROUP = -1001
AMS = ZoneInfo("Europe/Amsterdam")


def in_group(person: Person) -> Person:
    """The same user, acting in the neighbourhood group."""
    twin = Person(person.bot, person.id, person.name)
    twin.chat_id = GROUP
    return twin


async def run_job(bot: BotUnderTest, name: str) -> None:
    assert bot.app is not None and bot.app.job_queue is not None
    jobs = bot.app.job_queue.get_jobs_by_name(name)
    assert jobs, f"no job {name}"
    await jobs[0].run(bot.app)
    await bot.drain_outbox()


async def plan_koffie(organiser: Person, day: dt.date, *, repeat: str = "Om de week") -> None:
    reply = await organiser.says("/koffieplannen")
    assert "Waar?" in reply.text
    await organiser.says("Buurthuis De Mussen")
    reply = await organiser.says(day.strftime("%d-%m-%Y"))
    assert "Hoe laat" in reply.text
    await organiser.says("10:00")
    await organiser.taps(repeat)
    reply = await organiser.taps("Geen maximum")
    assert "Buurthuis De Mussen" in reply.text
    reply = await organiser.taps("Publiceren")
    assert "Gepubliceerd: Koffiemoment op" in reply.text


def group_messages(bot: BotUnderTest) -> list[str]:
    return [m.plain_text for m in bot.emulator.messages(GROUP)]


async def moments(bot: BotUnderTest) -> list[Moment]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(Moment).order_by(Moment.starts_at))).all())


async def anna_signed_up(bot: BotUnderTest, clock: Clock) -> tuple[Person, Moment]:
    """Olga (organiser) plans a weekly koffiemoment from ten days on, the group gets it, and
    Anna signs up for its first date there: (Olga, that date)."""
    bot.emulator.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await anna.says("/start")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=10)).date())
    first, *_ = await moments(bot)
    [announcement] = bot.emulator.messages(GROUP)
    await in_group(anna).taps("Ik kom", message=announcement)
    return organiser, first


async def begin_change(manager: Person, label: str) -> Reply:
    """In /beheer, open the date whose button says ``label`` and begin changing it."""
    await manager.says("/beheer")
    await manager.taps(label)
    return await manager.taps("Plaats of tijd van deze datum wijzigen")


async def change_date(manager: Person, moment: Moment, to: str) -> None:
    """In /beheer, change one date's time or place to what ``to`` says."""
    await begin_change(manager, moment.starts_at.astimezone(AMS).strftime("%d-%m-%Y"))
    reply = await manager.says(to)
    assert "Gewijzigd: 1 datum." in reply.text


async def olga_changing_a_date(bot: BotUnderTest, clock: Clock) -> tuple[Person, Moment]:
    """Olga (organiser) plans one koffiemoment two days on and begins changing it: (Olga,
    the date as it was)."""
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Eenmalig")
    [before] = await moments(bot)
    await begin_change(organiser, "Koffiemoment")
    return organiser, before


async def noted_walk(bot: BotUnderTest, clock: Clock) -> tuple[Person, Moment]:
    """Wim (wijkagent) publishes a walk three days on, and the clock goes to 20 hours before
    it, when the group gets its "Morgen" note: (Wim, the walk)."""
    bot.emulator.add_group(GROUP, "Buurtgroep")
    agent = bot.user(4002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    await agent.says("/aanwezig")
    await agent.taps("Wandeling")
    await agent.says("Start bij de speeltuin")
    await agent.says((clock.now + dt.timedelta(days=3)).strftime("%d-%m-%Y"))
    await agent.says("19:30")
    await agent.taps("Eenmalig")
    await agent.taps("Publiceren")
    [walk] = await moments(bot)
    clock.now = walk.starts_at - dt.timedelta(hours=20)
    await run_job(bot, "koffie:sweep")
    return agent, walk


async def test_announcement_sign_ups_cancel_reminders_and_names(
    bot: BotUnderTest, clock: Clock
) -> None:
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep Schilderswijk")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    bram = bot.user(1002, "Bram")
    await anna.says("/start")  # Anna has a private chat with the bot; Bram not yet

    day = (clock.now + dt.timedelta(days=10)).date()
    await plan_koffie(organiser, day)
    first, second, *_ = await moments(bot)
    assert (second.starts_at - first.starts_at) == dt.timedelta(weeks=2)
    [announcement] = emu.messages(GROUP)
    assert "Koffiemoment in Schilderswijk" in announcement.plain_text
    assert "Buurthuis De Mussen" in announcement.plain_text
    assert announcement.button_labels == ["Ik kom ☕ (0)"]

    # Anna presses "Ik kom" in the group: signed up at once.
    reply = await in_group(anna).taps("Ik kom", message=announcement)
    assert "Je bent aangemeld!" in reply.alert
    # Bram never talked to the bot: Telegram opens a private chat with a start payload.
    answer_count = len(emu.callback_answers)
    await in_group(bram).presses(announcement.message_id, f"koffie:rsvp:{first.id}")
    url = emu.callback_answers[answer_count]["url"]
    assert url == f"https://t.me/{emu.bot_username}?start=k-{first.id}"
    reply = await bram.says(f"/start k-{first.id}")
    assert "Je bent aangemeld voor het koffiemoment" in reply.text
    await bram.taps("+1")  # Bram brings someone

    await run_job(bot, f"koffie:count:{first.id}")
    announcement = emu.message(GROUP, announcement.message_id)
    assert "Komen: 3" in announcement.plain_text
    assert announcement.button_labels == ["Ik kom ☕ (3)"]
    assert announcement.edited >= 1

    # Anna cancels in her private chat.
    reply = await anna.says("/koffie")
    assert "3 komen" in reply.text
    reply = await anna.taps("Afmelden")
    assert "Je bent afgemeld" in reply.text
    await run_job(bot, f"koffie:count:{first.id}")
    assert "Komen: 2" in emu.message(GROUP, announcement.message_id).plain_text

    # The organiser sees who comes: first names only.
    await organiser.says("/beheer")
    reply = await organiser.taps(first.starts_at.astimezone(AMS).strftime("%d-%m-%Y"))
    assert "Komen: 2 mensen" in reply.text
    assert "Wie: Bram (+1)" in reply.text
    assert "Anna" not in reply.text

    # Reminders, rebuilt from the database after a restart: the day before, then the morning.
    await bot.restart(crash=True)
    clock.now = first.starts_at - dt.timedelta(hours=23)
    await run_job(bot, "koffie:sweep")
    await run_job(bot, "koffie:sweep")  # a second run sends nothing twice
    reminders = [m.plain_text for m in emu.messages(1002) if "Herinnering" in m.plain_text]
    assert reminders == [reminders[0]] and "morgen" in reminders[0]
    assert not any("Herinnering" in m.plain_text for m in emu.messages(1001))  # cancelled
    clock.now = first.starts_at - dt.timedelta(hours=2)  # 08:00 on the day
    await run_job(bot, "koffie:sweep")
    reminders = [m.plain_text for m in emu.messages(1002) if "Herinnering" in m.plain_text]
    assert len(reminders) == 2 and "vandaag" in reminders[1]

    # Nothing about reports ever reaches the group.
    assert all("Herinnering" not in text for text in group_messages(bot))


async def test_ics_file_parses(bot: BotUnderTest, clock: Clock) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    day = (clock.now + dt.timedelta(days=5)).date()
    await plan_koffie(organiser, day, repeat="Eenmalig")
    [moment] = await moments(bot)
    await anna.says("/koffie")
    await anna.taps("Aanmelden")
    reply = await anna.taps("In je agenda")
    document = reply.last
    assert document.file_name == f"koffie-{day.isoformat()}.ics"
    assert document.file_bytes is not None
    calendar = icalendar.Calendar.from_ical(document.file_bytes)
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == moment.starts_at
    assert event.decoded("dtend") - event.decoded("dtstart") == dt.timedelta(minutes=90)
    assert str(event.get("location")) == "Buurthuis De Mussen"
    assert "Schilderswijk" in str(event.get("summary"))


async def test_a_double_tapped_sign_up_changes_nothing_twice(
    bot: BotUnderTest, clock: Clock
) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=5)).date(), repeat="Eenmalig")
    await anna.says("/koffie")
    listing = anna.last_with_buttons()
    join = next(d for row in listing.buttons for t, d in row if t.startswith("Aanmelden"))
    assert join is not None

    # The confirmation is lost (also after the retries); Anna presses again, twice.
    bot.emulator.fail_next("sendMessage", status=502, times=4)
    await anna.presses(listing.message_id, join)
    first = await anna.presses(listing.message_id, join)
    await anna.taps("+1")  # she brings someone
    second = await anna.presses(listing.message_id, join)
    assert "Je bent aangemeld voor het koffiemoment" in first.text
    assert second.text == first.text  # the same answer
    assert bot.db is not None
    async with bot.db.begin() as session:
        [signup] = (await session.scalars(select(Signup))).all()
    assert signup.guests == 1  # pressing again did not undo her guest


async def test_cancel_a_date_tells_everyone(bot: BotUnderTest, clock: Clock) -> None:
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=3)).date(), repeat="Eenmalig")
    [moment] = await moments(bot)
    await anna.says("/koffie")
    await anna.taps("Aanmelden")
    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("Deze datum afzeggen")
    reply = await organiser.taps("Ja, afzeggen")
    assert "Afgezegd: 1" in reply.edited[-1].plain_text
    told = emu.messages(1001)[-1].plain_text
    assert "gaat niet door" in told
    assert "gaat niet door" in emu.messages(GROUP)[0].plain_text  # the announcement says so
    assert emu.messages(GROUP)[0].buttons == []
    clock.now = moment.starts_at - dt.timedelta(hours=20)
    await run_job(bot, "koffie:sweep")
    assert emu.messages(1001)[-1].plain_text == told  # no reminder for a cancelled date


async def test_change_the_whole_series(bot: BotUnderTest, clock: Clock) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Elke week")
    await anna.says("/koffie")
    await anna.taps("Aanmelden")
    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("De hele reeks wijzigen")
    reply = await organiser.says("Bibliotheek Schilderswijk")
    assert "Gewijzigd:" in reply.text
    assert "nu op" in bot.emulator.messages(1001)[-1].plain_text
    assert all(m.place == "Bibliotheek Schilderswijk" for m in await moments(bot))


async def test_capacity(bot: BotUnderTest, clock: Clock) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await organiser.says("/koffieplannen")
    await organiser.says("Huiskamer")
    await organiser.says((clock.now + dt.timedelta(days=4)).strftime("%d-%m-%Y"))
    await organiser.says("14:00")
    await organiser.taps("Eenmalig")
    await organiser.taps("Maximum instellen")
    await organiser.says("2")
    await organiser.taps("Publiceren")
    anna, bram, cor = bot.user(1001, "Anna"), bot.user(1002, "Bram"), bot.user(1003, "Cor")
    await anna.says("/koffie")
    await anna.taps("Aanmelden")
    reply = await anna.taps("+2")
    assert "niet genoeg plek" in reply.alert
    await bram.says("/koffie")
    await bram.taps("Aanmelden")
    await cor.says("/koffie")
    reply = await cor.taps("Aanmelden")
    assert "zit vol" in reply.alert


async def test_group_commands_welcome_and_no_report_content(bot: BotUnderTest) -> None:
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    anna = bot.user(1001, "Anna")
    for command in ("/melden", "/bemiddeling", "/koffie"):
        reply = await in_group(anna).says(command)
        [[(_, url)]] = reply.last.buttons
        assert url == f"https://t.me/{emu.bot_username}?start=w-schilderswijk"
    # A report made privately never shows up in the group.
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Geluidsoverlast")
    await anna.says("Geheime beschrijving die niet in de groep mag")
    await anna.says("Dorpsstraat 1")
    await anna.taps("Nu")
    await anna.taps("Dit is de eerste keer")
    await anna.taps("Overslaan")
    await anna.taps("Pseudoniem")
    await anna.taps("Melding versturen")
    assert all("Geheime" not in text and "Dorpsstraat" not in text for text in group_messages(bot))

    # New members: no welcome while the bot is not an admin, a short one when it is.
    emu.add_user(1005, "Eva")
    await bot.process(emu.new_chat_members(GROUP, [1005], enqueue=False))
    assert not any("Welkom" in text for text in group_messages(bot))
    emu.set_bot_admin(GROUP, True)
    await bot.process(emu.new_chat_members(GROUP, [1005], enqueue=False))
    welcome = emu.messages(GROUP)[-1]
    assert "Welkom, Eva!" in welcome.plain_text
    assert welcome.buttons[0][0][1] == f"https://t.me/{emu.bot_username}?start=w-schilderswijk"
    # Ordinary chatter stays unanswered.
    before = len(emu.messages(GROUP))
    await in_group(anna).says("Wie heeft mijn kat gezien?")
    assert len(emu.messages(GROUP)) == before


async def test_link_group_by_admin_only(bot: BotUnderTest) -> None:
    emu = bot.emulator
    emu.add_group(-2002, "Nieuwe buurtgroep")
    admin = bot.user(ADMIN_ID, "Admin")
    anna = bot.user(1001, "Anna")
    anna_there = Person(bot, 1001, "Anna")
    anna_there.chat_id = -2002
    reply = await anna_there.says("/koppelgroep schilderswijk")
    assert reply.text == "Sorry, dat kan ik niet voor je doen."
    admin_there = Person(bot, ADMIN_ID, "Admin")
    admin_there.chat_id = -2002
    reply = await admin_there.says("/koppelgroep schilderswijk")
    assert "nu de buurtgroep van Schilderswijk" in reply.text
    reply = await anna_there.says("/melden")
    assert (reply.last.buttons[0][0][1] or "").endswith("start=w-schilderswijk")
    assert admin and anna


async def test_koppel_presence_and_day_before_note(bot: BotUnderTest, clock: Clock) -> None:
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    agent = bot.user(4002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/koppel")
    assert "geen spreekuur of wandeling" in reply.text
    await agent.says("/aanwezig")
    await agent.taps("Wandeling")
    await agent.says("Start bij de speeltuin Jacob Catsstraat")
    await agent.says((clock.now + dt.timedelta(days=3)).strftime("%d-%m-%Y"))
    await agent.says("19:30")
    reply = await agent.taps("Elke week")
    assert "Wandeling door de wijk" in reply.text
    await agent.taps("Publiceren")
    reply = await anna.says("/koppel")
    assert "Wandeling door de wijk met de wijkagent en opbouwwerker" in reply.text
    assert "speeltuin Jacob Catsstraat" in reply.text
    first = (await moments(bot))[0]
    assert not any("Morgen" in text for text in group_messages(bot))
    clock.now = first.starts_at - dt.timedelta(hours=20)
    await run_job(bot, "koffie:sweep")
    await run_job(bot, "koffie:sweep")
    notes = [text for text in group_messages(bot) if text.startswith("Morgen")]
    assert len(notes) == 1 and "speeltuin" in notes[0]


async def test_a_walk_changed_after_the_group_s_note_is_corrected_in_the_group(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The group was told "Morgen: wandeling"; then the agent changes it. The group is told
    the new time (not left with a wrong note): an hour later the same day is the correction
    alone; a week later gets the correction now and a new note the day before."""
    agent, walk = await noted_walk(bot, clock)

    def notes() -> list[str]:
        return [text for text in group_messages(bot) if text.startswith("Morgen")]

    def corrections() -> list[str]:
        return [text for text in group_messages(bot) if text.startswith("Gewijzigd")]

    assert len(notes()) == 1 and not corrections()

    await change_date(agent, walk, "20:30")
    await bot.drain_outbox()
    [walk] = await moments(bot)
    assert len(corrections()) == 1 and "20:30" in corrections()[0]
    await run_job(bot, "koffie:sweep")
    assert len(notes()) == 1  # the correction stands for the note of that day

    later = walk.starts_at.astimezone(AMS) + dt.timedelta(weeks=1)
    await change_date(agent, walk, f"{later:%d-%m-%Y %H:%M}")
    await bot.drain_outbox()
    [walk] = await moments(bot)
    assert len(corrections()) == 2
    await run_job(bot, "koffie:sweep")
    assert len(notes()) == 1  # not yet: a week away
    clock.now = walk.starts_at - dt.timedelta(hours=20)
    await run_job(bot, "koffie:sweep")
    assert len(notes()) == 2


async def test_residents_cannot_plan_or_manage(bot: BotUnderTest, clock: Clock) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=3)).date(), repeat="Eenmalig")
    [moment] = await moments(bot)
    anna = bot.user(1001, "Anna")
    for command in ("/koffieplannen", "/aanwezig", "/beheer"):
        reply = await anna.says(command)
        assert reply.text == "Sorry, dat kan ik niet voor je doen.", command
    for data in (
        f"koffie:m:{moment.id}",
        f"koffie:cancel:{moment.id}",
        f"koffie:cancel-yes:{moment.id}",
        f"koffie:cancelseries-yes:{moment.id}",
        f"koffie:editm:{moment.id}",
    ):
        reply = await anna.forges(data)
        assert reply.alert == "Sorry, dat kan ik niet voor je doen.", data
    [still] = await moments(bot)
    assert still.cancelled_at is None
    assert bot.db is not None
    async with bot.db.begin() as session:
        assert (await session.scalars(select(Signup))).all() == []


def local(moment: Moment) -> dt.datetime:
    return moment.starts_at.astimezone(ZoneInfo("Europe/Amsterdam"))


def join_buttons(reply_markup: list[list[tuple[str, str | None]]]) -> list[str]:
    return [
        data for row in reply_markup for _, data in row if data and data.startswith("koffie:join:")
    ]


async def test_a_moved_date_stays_moved(bot: BotUnderTest, clock: Clock) -> None:
    """Issue 9: moving the next date from 10:00 to 10:30 must not bring a 10:00 ghost back."""
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Elke week")
    planned = await moments(bot)
    [announcement] = emu.messages(GROUP)

    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")  # the first date
    await organiser.taps("Plaats of tijd van deze datum wijzigen")
    reply = await organiser.says("10:30")
    assert "Gewijzigd: 1 datum." in reply.text
    await run_job(bot, "koffie:sweep")
    await run_job(bot, "koffie:sweep")

    now = await moments(bot)
    assert [m.id for m in now] == [m.id for m in planned]  # no date was added
    assert f"{local(now[0]):%H:%M}" == "10:30"
    assert all(f"{local(m):%H:%M}" == "10:00" for m in now[1:])
    # The group still has the one announcement, edited to the new time; no 'Komen: 0' ghost.
    assert len(emu.messages(GROUP)) == 1
    assert "10:30" in emu.message(GROUP, announcement.message_id).plain_text
    reply = await anna.says("/koffie")
    buttons = reply.last.buttons
    labels = [label for row in buttons for label, _ in row]
    assert len(labels) == len(set(labels))  # one button per day
    assert len(join_buttons(buttons)) == len(
        [m for m in now if m.starts_at <= clock.now + dt.timedelta(weeks=4)]
    )
    assert reply.text.count("10:30") == 1


async def test_a_cancelled_date_stays_cancelled_when_the_series_moves(
    bot: BotUnderTest, clock: Clock
) -> None:
    """A cancelled date is not planned again, not even after the whole series moved."""
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Elke week")
    first, second, *_ = planned = await moments(bot)

    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("Deze datum afzeggen")
    reply = await organiser.taps("Ja, afzeggen")
    assert "Afgezegd: 1 datum." in reply.edited[-1].plain_text
    await run_job(bot, "koffie:sweep")
    # The second date is now the next one and is announced; the cancelled one is not back.
    announced = group_messages(bot)
    assert len(announced) == 2 and "gaat niet door" in announced[0]
    assert f"{local(second):%d-%m-%Y}" in announced[1]

    # Now the whole series moves half an hour (from the second date, the first one shown).
    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("De hele reeks wijzigen")
    reply = await organiser.says("10:30")
    assert "Gewijzigd: " in reply.text
    await run_job(bot, "koffie:sweep")

    now = await moments(bot)
    assert [m.id for m in now] == [m.id for m in planned]
    assert [m.id for m in now if m.cancelled_at is not None] == [first.id]
    assert len(group_messages(bot)) == 2
    reply = await anna.says("/koffie")
    assert f"{local(first):%d-%m}" not in " ".join(
        label for row in reply.last.buttons for label, _ in row
    )
    assert reply.text.count("10:00") == 0


async def test_moving_the_whole_series_moves_later_dates_too(
    bot: BotUnderTest, clock: Clock
) -> None:
    """After the series moved to 10:30, dates the sweep adds later are at 10:30 too."""
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Elke week")
    planned = await moments(bot)
    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("De hele reeks wijzigen")
    reply = await organiser.says("10:30")
    assert f"Gewijzigd: {len(planned)} data." in reply.text
    clock.now += dt.timedelta(weeks=3)
    await run_job(bot, "koffie:sweep")
    now = await moments(bot)
    assert len(now) == len(planned) + 2  # the horizon moved three weeks, from a later start
    assert all(f"{local(m):%H:%M}" == "10:30" for m in now)
    assert len({m.starts_at for m in now}) == len(now)


async def test_a_date_moved_on_its_own_keeps_its_arrangement_when_the_series_changes(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The second date was moved to 11:15 and given another room; then the whole series moves
    to 10:30 and to the library: that date keeps 11:15 and its room, and its people hear
    nothing; every other date follows the series."""
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Elke week")
    first, second, *rest = await moments(bot)
    await organiser.says("/beheer")
    await organiser.taps(f"{local(second):%d-%m}")
    await organiser.taps("Plaats of tijd van deze datum wijzigen")
    await organiser.says("11:15")
    await organiser.says("/beheer")
    await organiser.taps(f"{local(second):%d-%m}")
    await organiser.taps("Plaats of tijd van deze datum wijzigen")
    await organiser.says("Zaaltje achter")
    reply = await anna.says("/koffie")
    dates = [label for row in reply.last.buttons for label, _ in row if "Aanmelden" in label]
    await anna.taps(dates[1])  # she signs up for the moved date only
    told_before = len(bot.emulator.messages(anna.id))

    await organiser.says("/beheer")
    await organiser.taps(f"{local(first):%d-%m}")
    await organiser.taps("De hele reeks wijzigen")
    reply = await organiser.says("10:30")
    assert f"Gewijzigd: {1 + len(rest)} data." in reply.text
    assert "1 datum die apart was gewijzigd, houdt haar eigen tijd en plaats." in reply.text
    await organiser.says("/beheer")
    await organiser.taps(f"{local(first):%d-%m}")
    await organiser.taps("De hele reeks wijzigen")
    await organiser.says("Bibliotheek")

    by_id = {m.id: m for m in await moments(bot)}
    assert f"{local(by_id[second.id]):%H:%M}" == "11:15"
    assert by_id[second.id].place == "Zaaltje achter"
    others = [by_id[m.id] for m in (first, *rest)]
    assert all(f"{local(m):%H:%M}" == "10:30" and m.place == "Bibliotheek" for m in others)
    assert len(bot.emulator.messages(anna.id)) == told_before


async def test_cancel_the_whole_series_counts_in_plural(bot: BotUnderTest, clock: Clock) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Om de week")
    planned = await moments(bot)
    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("De hele reeks afzeggen")
    reply = await organiser.taps("Ja, afzeggen")
    assert f"Afgezegd: {len(planned)} data." in reply.edited[-1].plain_text
    assert all(m.cancelled_at is not None for m in await moments(bot))


async def announce_presence(agent: Person, kind: str, day: dt.date, time: str) -> None:
    await agent.says("/aanwezig")
    await agent.taps(kind)
    await agent.says("Buurthuis De Mussen")
    await agent.says(day.strftime("%d-%m-%Y"))
    await agent.says(time)
    await agent.taps("Eenmalig")
    reply = await agent.taps("Publiceren")
    assert "Gepubliceerd" in reply.text


async def test_announcements_name_the_pair_only_when_they_are_there(
    bot: BotUnderTest, clock: Clock
) -> None:
    """Issue 9: a koffiemoment promises the wijkagent and opbouwwerker only when they said so."""
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    agent = bot.user(4002, "Wim")
    await grant_role(bot, agent, "wijkagent")
    day = (clock.now + dt.timedelta(days=3)).date()

    await plan_koffie(organiser, day, repeat="Eenmalig")
    [announcement] = emu.messages(GROUP)
    assert "Iedereen is welkom. Komen: 0" in announcement.plain_text
    assert "wijkagent" not in announcement.plain_text

    # The pair announces a spreekuur during the koffiemoment: the announcement now says so.
    await announce_presence(agent, "Spreekuur", day, "10:30")
    text = emu.message(GROUP, announcement.message_id).plain_text
    assert (
        "Op hetzelfde moment: Spreekuur van de wijkagent en opbouwwerker, Buurthuis De Mussen, "
        "vanaf 10:30." in text
    )
    assert "Komen: 0" in text

    # They cancel it: the announcement no longer names them.
    await agent.says("/beheer")
    await agent.taps("Spreekuur")
    await agent.taps("Deze datum afzeggen")
    await agent.taps("Ja, afzeggen")
    assert "wijkagent" not in emu.message(GROUP, announcement.message_id).plain_text

    # Planned when the pair is already announced: named at once; an evening walk does not count.
    later = day + dt.timedelta(days=2)
    await announce_presence(agent, "Wandeling", later, "19:30")
    await plan_koffie(organiser, later, repeat="Eenmalig")
    assert "wijkagent" not in emu.messages(GROUP)[-1].plain_text
    await announce_presence(agent, "Spreekuur", later, "09:00")
    assert "Spreekuur van de wijkagent" in emu.messages(GROUP)[-1].plain_text
    # Reminders to those who signed up name nobody either.
    anna = bot.user(1001, "Anna")
    [moment] = [m for m in await moments(bot) if m.kind == "koffie" and local(m).date() == later]
    reply = await anna.says("/koffie")
    await anna.presses(reply.last.message_id, f"koffie:join:{moment.id}")
    clock.now = moment.starts_at - dt.timedelta(hours=20)
    await run_job(bot, "koffie:sweep")
    [reminder] = [m.plain_text for m in emu.messages(1001) if "Herinnering" in m.plain_text]
    assert "wijkagent" not in reminder


async def test_two_sweeps_at_once_announce_once(bot: BotUnderTest, clock: Clock) -> None:
    """The timer's sweep and the one right after planning may run together: one announcement."""
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    # The group is not reachable yet: the announcement waits for a later sweep.
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=3)).date(), repeat="Eenmalig")
    assert [m.announced_at for m in await moments(bot)] == [None]
    bot.emulator.add_group(GROUP, "Buurtgroep")
    assert bot.app is not None
    await asyncio.gather(koffie.sweep(bot.app), koffie.sweep(bot.app))
    await bot.drain_outbox()
    await bot.drain_outbox()
    assert len(group_messages(bot)) == 1


NL_DAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


async def test_dates_in_private_chats_carry_the_weekday(bot: BotUnderTest, clock: Clock) -> None:
    """Issue 9: 'donderdag 03-12-2026 10:00', in the reader's language, buttons included."""
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    day = (clock.now + dt.timedelta(days=4)).date()
    nl_when = f"{NL_DAYS[day.weekday()]} {day:%d-%m-%Y} 10:00"
    en_when = f"{EN_DAYS[day.weekday()]} {day:%d-%m-%Y} 10:00"
    await organiser.says("/koffieplannen")
    await organiser.says("Buurthuis De Mussen")
    await organiser.says(day.strftime("%d-%m-%Y"))
    await organiser.says("10:00")
    await organiser.taps("Eenmalig")
    reply = await organiser.taps("Geen maximum")
    assert f"Eerste datum: {nl_when}" in reply.text
    reply = await organiser.taps("Publiceren")
    assert f"Gepubliceerd: Koffiemoment op {nl_when} in Buurthuis De Mussen." in reply.text

    anna = bot.user(1001, "Anna")
    reply = await anna.says("/koffie")
    assert f"☕ {nl_when}, Buurthuis De Mussen" in reply.text
    [[(label, _)]] = reply.last.buttons
    assert label.startswith(f"Aanmelden {NL_DAYS[day.weekday()][:2]} {day.day} ")
    reply = await anna.taps("Aanmelden")
    assert f"aangemeld voor het koffiemoment op {nl_when}" in reply.text

    otto = bot.user(1002, "Otto", language_code="en")
    await otto.says("/help")  # the bot learns Otto's language from his chat
    reply = await otto.says("/koffie")
    assert f"☕ {en_when}, Buurthuis De Mussen" in reply.text
    [[(label, _)]] = reply.last.buttons
    assert label == f"Sign up {EN_DAYS[day.weekday()][:3]} {day.day} {day:%b}"


async def test_koffie_counts_one_person_in_the_singular(clock: Clock, bot: BotUnderTest) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    anna = bot.user(1001, "Anna")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=3)).date(), repeat="Eenmalig")
    await anna.says("/koffie")
    await anna.taps("Aanmelden")
    reply = await anna.says("/koffie")
    assert ": 1 komt ✔️" in reply.text


async def sign_up_many(bot: BotUnderTest, moment_id: int, number: int) -> list[int]:
    """``number`` residents who signed up for a date (straight into the database)."""
    from buurtsignaal.storage.models import Resident

    ids = [200_000 + n for n in range(number)]
    for telegram_id in ids:
        bot.emulator.add_user(telegram_id, f"Buur{telegram_id}", started=True)
    assert bot.db is not None
    async with bot.db.begin() as session:
        residents = [Resident(telegram_id=i, language="nl") for i in ids]
        session.add_all(residents)
        await session.flush()
        session.add_all(
            Signup(moment_id=moment_id, resident_id=r.id, first_name=f"Buur{r.telegram_id}")
            for r in residents
        )
    return ids


async def test_cancelling_a_busy_date_answers_at_once_and_tells_everyone_later(
    bot: BotUnderTest, clock: Clock
) -> None:
    """Issue 11: the notices go through the outbox, not from the button handler, so the
    organiser and a resident who writes meanwhile are answered before they are all sent."""
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=3)).date(), repeat="Eenmalig")
    [moment] = await moments(bot)
    ids = await sign_up_many(bot, moment.id, 40)
    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("Deze datum afzeggen")

    def notices() -> list[int]:
        return [m.chat_id for m in emu.sent if "gaat niet door" in m.plain_text and m.chat_id > 0]

    emu.latency_ms = 20  # a real network
    reply = await organiser.taps("Ja, afzeggen", drain=False)
    assert "Afgezegd: 1" in reply.edited[-1].plain_text
    assert notices() == []  # the handler sent none of them
    sending = asyncio.create_task(bot.drain_outbox())
    await emu.wait_until(lambda: len(notices()) >= 1)
    kees = bot.user(5001, "Kees")
    reply = await kees.says("/start", drain=False)
    assert "Welkom" in reply.text
    assert len(notices()) < len(ids)  # answered while the notices were still going out
    await sending
    assert sorted(notices()) == ids  # every one exactly once


async def test_the_date_page_of_a_very_busy_date_fits_one_message(
    bot: BotUnderTest, clock: Clock
) -> None:
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=3)).date(), repeat="Eenmalig")
    [moment] = await moments(bot)
    await sign_up_many(bot, moment.id, 600)
    await organiser.says("/beheer")
    reply = await organiser.taps("Koffiemoment")
    assert "Komen: 600 mensen" in reply.text
    assert "Buur200000" in reply.text
    assert "en nog 560 aanmeldingen" in reply.text
    assert len(reply.text) < 4096


async def test_reminders_are_decided_in_batches_each_once(
    bot: BotUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of reminders are decided a batch at a time (short units of work); every
    signed-up resident gets one, none twice, and one who cancelled gets none."""
    monkeypatch.setattr(koffie.jobs, "REMINDER_BATCH", 2)
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep Schilderswijk")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=10)).date())
    first, *_ = await moments(bot)
    [announcement] = emu.messages(GROUP)
    people = [bot.user(1001 + n, f"Buur{n}") for n in range(5)]
    for person in people:
        await person.says("/start")
        reply = await in_group(person).taps("Ik kom", message=announcement)
        assert "Je bent aangemeld!" in reply.alert
    await people[2].says("/koffie")
    await people[2].taps("Afmelden")

    clock.now = first.starts_at - dt.timedelta(hours=23)
    await run_job(bot, "koffie:sweep")
    await run_job(bot, "koffie:sweep")  # nothing twice
    for n, person in enumerate(people):
        reminders = [m for m in emu.messages(person.id) if "Herinnering" in m.plain_text]
        assert len(reminders) == (0 if n == 2 else 1), person.name


async def test_a_date_moved_after_its_reminder_is_reminded_again_for_its_new_day(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The day-before reminder went out, then the organiser moves the date a week on: who
    signed up is told, and reminded again the day before the new date (not never again)."""
    emu = bot.emulator
    organiser, first = await anna_signed_up(bot, clock)
    clock.now = first.starts_at - dt.timedelta(hours=23)
    await run_job(bot, "koffie:sweep")
    [reminder] = [m.plain_text for m in emu.messages(1001) if "Herinnering" in m.plain_text]
    assert "morgen" in reminder

    new_start = (first.starts_at + dt.timedelta(weeks=1)).astimezone(AMS)
    await change_date(organiser, first, f"{new_start:%d-%m-%Y %H:%M}")
    await run_job(bot, "koffie:sweep")  # nothing due yet for the new date
    assert len([m for m in emu.messages(1001) if "Herinnering" in m.plain_text]) == 1

    clock.now = new_start - dt.timedelta(hours=23)
    await run_job(bot, "koffie:sweep")
    await run_job(bot, "koffie:sweep")  # and once only
    reminders = [m.plain_text for m in emu.messages(1001) if "Herinnering" in m.plain_text]
    assert len(reminders) == 2
    assert "morgen" in reminders[1]


async def test_a_date_moved_away_and_back_is_told_and_reminded_again(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The reminder went out; the organiser moves the date a week on and then back to where it
    was: who signed up is told both times, and reminded again for the date as it now is (a
    new decision, not the old one's leftovers)."""
    emu = bot.emulator
    organiser, first = await anna_signed_up(bot, clock)
    await organiser.says("/beheer")
    page = await organiser.taps(first.starts_at.astimezone(AMS).strftime("%d-%m-%Y"))
    assert "Komen: 1 persoon" in page.text

    def reminders() -> list[str]:
        return [m.plain_text for m in emu.messages(1001) if "Herinnering" in m.plain_text]

    def told() -> list[str]:
        return [m.plain_text for m in emu.messages(1001) if "Wijziging" in m.plain_text]

    clock.now = first.starts_at - dt.timedelta(hours=23)
    await run_job(bot, "koffie:sweep")
    assert len(reminders()) == 1

    start = first.starts_at.astimezone(AMS)
    for when in (start + dt.timedelta(weeks=1), start):
        await change_date(organiser, first, f"{when:%d-%m-%Y %H:%M}")
        [first] = [m for m in await moments(bot) if m.id == first.id]
        clock.now += dt.timedelta(minutes=5)
    await bot.drain_outbox()
    assert len(told()) == 2
    await run_job(bot, "koffie:sweep")
    await run_job(bot, "koffie:sweep")  # and once only
    assert len(reminders()) == 2


async def test_changing_a_date_survives_a_restart_and_an_older_release_s_step(
    bot: BotUnderTest, clock: Clock
) -> None:
    """Changing a date is a one-field typed flow: a restart in the middle of typing loses
    nothing, and a change an older release kept (no action in it) goes on after the upgrade."""
    emu = bot.emulator
    emu.add_group(GROUP, "Buurtgroep")
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Elke week")
    first, *_ = await moments(bot)

    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("Plaats of tijd van deze datum wijzigen")
    await bot.restart(crash=True)
    reply = await organiser.says("10:30")
    assert "Gewijzigd: 1 datum." in reply.text

    await organiser.says("/beheer")
    await organiser.taps("Koffiemoment")
    await organiser.taps("Plaats of tijd van deze datum wijzigen")
    await bot.stop()
    await rewrite_user_data(
        bot,
        organiser.id,
        lambda data: {**data, "koffie_edit": {"moment": first.id, "series": False}},
    )
    await bot.start()
    reply = await organiser.says("Buurthuis De Mussen, zaal 2")
    assert "Gewijzigd: 1 datum." in reply.text
    now = await moments(bot)
    assert f"{local(now[0]):%H:%M}" == "10:30"
    assert now[0].place == "Buurthuis De Mussen, zaal 2"
    assert now[1].place != "Buurthuis De Mussen, zaal 2"  # the one date only
    reply = await organiser.says("/annuleren")
    assert "Gewijzigd" not in reply.text


async def test_another_koffie_command_while_changing_a_date_leaves_the_change(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The organiser starts changing a date, then sends /beheer instead of the new time: the
    change is left (she is told), the list is shown, and the next text she types is not read
    as a new time or place for the date she left."""
    organiser, before = await olga_changing_a_date(bot, clock)
    reply = await organiser.says("/beheer")
    assert "niet afgemaakt" in reply.text
    assert reply.last.buttons, "the list of dates, to pick from"
    reply = await organiser.says("Buurthuis De Mussen")
    assert "Gewijzigd" not in reply.text
    [after] = await moments(bot)
    assert (after.starts_at, after.place) == (before.starts_at, before.place)


async def test_a_change_to_what_a_date_already_is_tells_nobody(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The organiser types the time or the place the date already has (twice, even): nothing
    changed, so nobody is told of a change, however often it is typed."""
    organiser, first = await anna_signed_up(bot, clock)
    start = first.starts_at.astimezone(AMS)
    for same in (f"{start:%H:%M}", f"{start:%H:%M}", "Buurthuis De Mussen"):
        await organiser.says("/beheer")
        await organiser.taps(start.strftime("%d-%m-%Y"))
        await organiser.taps("Plaats of tijd van deze datum wijzigen")
        reply = await organiser.says(same)
        assert "Gewijzigd" not in reply.text
        assert "Er is niets veranderd." in reply.text
        clock.now += dt.timedelta(minutes=1)
    await bot.drain_outbox()
    assert not [m for m in bot.emulator.messages(1001) if "Wijziging" in m.plain_text]
    [after, *_] = await moments(bot)
    assert (after.starts_at, after.place) == (first.starts_at, first.place)


async def test_a_cancelled_walk_is_not_changed_by_an_older_page_s_button(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The group had its note of a walk; the agent cancels the walk, then presses "change" on
    the date's page from before: the cancelled walk is not changed, and the group is not told
    it "is now" at another time."""
    agent, walk = await noted_walk(bot, clock)
    await agent.says("/beheer")
    page = await agent.taps(walk.starts_at.astimezone(AMS).strftime("%d-%m-%Y"))
    # The change is begun on the page, the date cancelled on the same page, then typed.
    await agent.taps("Plaats of tijd van deze datum wijzigen", message=page.last)
    await agent.taps("Deze datum afzeggen", message=page.last)
    await agent.taps("Ja, afzeggen")
    reply = await agent.says("20:30")
    assert "Gewijzigd" not in reply.text
    # And pressed again after the cancellation: refused at once.
    reply = await agent.taps("Plaats of tijd van deze datum wijzigen", message=page.last)
    assert "al afgezegd" in reply.alert
    await bot.drain_outbox()
    assert not [text for text in group_messages(bot) if text.startswith("Gewijzigd")]
    # The group, told "Morgen" before, is told it is off.
    [off] = [text for text in group_messages(bot) if text.startswith("Afgelast")]
    assert "Wandeling" in off and "speeltuin" in off
    [after] = await moments(bot)
    assert after.cancelled_at is not None and after.starts_at == walk.starts_at


async def test_a_time_that_cannot_be_read_is_refused_not_taken_for_a_place(
    bot: BotUnderTest, clock: Clock
) -> None:
    """Typing 25:00 or 31-02-2027 10:00 as a date's new time is refused with an example (it
    was taken as the new place name before); "om 11 uur" is read as 11:00, and the answer
    says what the date now is."""
    organiser, before = await olga_changing_a_date(bot, clock)
    for typo in ("25:00", "31-02-2027 10:00"):
        reply = await organiser.says(typo)
        assert "Dat kan ik niet lezen als tijd of datum" in reply.text
        example = (clock.now + dt.timedelta(days=7)).astimezone(AMS)
        assert f"{example:%d-%m-%Y} 10:30" in reply.text
    [still] = await moments(bot)
    assert (still.starts_at, still.place) == (before.starts_at, before.place)
    reply = await organiser.says("om 11 uur")  # the step goes on after a refusal
    assert "Gewijzigd: 1 datum." in reply.text
    assert "Nu: " in reply.text and "11:00, Buurthuis De Mussen." in reply.text
    [after] = await moments(bot)
    assert f"{local(after):%H:%M}" == "11:00" and after.place == before.place


async def test_a_walk_s_change_says_the_group_was_told_not_the_sign_ups(
    bot: BotUnderTest, clock: Clock
) -> None:
    """Nobody signs up for a walk: its change does not claim everyone who signed up was
    told; when the group had its note, it says the group was told."""
    agent, walk = await noted_walk(bot, clock)
    await begin_change(agent, walk.starts_at.astimezone(AMS).strftime("%d-%m-%Y"))
    reply = await agent.says("Start bij de kerk")
    assert "Gewijzigd: 1 datum. De buurtgroep heeft bericht gekregen." in reply.text
    assert "aanmeldde" not in reply.text
    assert "Start bij de kerk." in reply.text


async def test_an_organiser_manages_koffiemomenten_not_the_pair_s_walks(
    bot: BotUnderTest, clock: Clock
) -> None:
    """Organisers plan koffiemomenten; the walk is the wijkagent's and opbouwwerker's. The
    organiser's /beheer does not list it, and a forged press on it changes nothing."""
    agent, walk = await noted_walk(bot, clock)
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Eenmalig")
    reply = await organiser.says("/beheer")
    labels = [text for row in reply.last.buttons for text, _ in row]
    assert any("Koffiemoment" in label for label in labels)
    assert not any("Wandeling" in label for label in labels)
    for action in ("m", "editm", "cancel-yes"):
        reply = await organiser.forges(Koffie(action, walk.id).pack())
        assert reply.alert == "Sorry, dat kan ik niet voor je doen."
    [still] = [m for m in await moments(bot) if m.id == walk.id]
    assert still.cancelled_at is None and still.starts_at == walk.starts_at
    reply = await agent.says("/beheer")  # the pair still manages it
    assert any("Wandeling" in text for row in reply.last.buttons for text, _ in row)


async def test_date_examples_are_a_week_ahead_and_a_date_that_cannot_be_read_says_so(
    bot: BotUnderTest, clock: Clock
) -> None:
    """The examples of a date to type are a week from now (never a date gone by), and a date
    the bot cannot read (31-02, "morgen") is told how to type one, not that it is in the past."""
    organiser = bot.user(4001, "Olga")
    await grant_role(bot, organiser, "organisator")
    week = f"{(clock.now + dt.timedelta(days=7)).astimezone(AMS):%d-%m-%Y}"
    await organiser.says("/koffieplannen")
    reply = await organiser.says("Buurthuis De Mussen")
    assert f"Welke datum? Bijvoorbeeld {week}." in reply.text
    for unreadable in ("31-02-2030", "morgen"):
        reply = await organiser.says(unreadable)
        assert reply.text == "Typ de datum als dag-maand-jaar (dd-mm-jjjj)."
    gone = f"{(clock.now - dt.timedelta(days=3)).astimezone(AMS):%d-%m-%Y}"
    reply = await organiser.says(gone)
    assert reply.text == f"Typ een datum vanaf vandaag, bijvoorbeeld {week}."
    await organiser.says("/annuleren")

    await plan_koffie(organiser, (clock.now + dt.timedelta(days=2)).date(), repeat="Eenmalig")
    reply = await begin_change(organiser, "Koffiemoment")
    assert f"(bijvoorbeeld {week} 10:30)" in reply.text
