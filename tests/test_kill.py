"""kill -9 in the middle of a broadcast, then a restart: every resident gets the reminder,
and nobody gets it twice. A real ``buurtsignaal run`` process on SQLite and PostgreSQL.

Written against what residents receive, not how sends are claimed, so it holds for any way of
sending (claims per feature, or an outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import subprocess
from pathlib import Path

from sqlalchemy import select

from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.storage import gatherings, migrate
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.models import Moment, Resident, Signup, Wijk
from tests.test_cli import _cli, _env, _stop

PEOPLE = [1001 + n for n in range(12)]
REMINDER = "Herinnering: morgen is het koffiemoment"


def wall_clock() -> dt.datetime:
    """The machine's clock, as the bot process sees it (the tests' own clock is moved)."""
    seconds = int(subprocess.check_output(["date", "-u", "+%s"], text=True))
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def seed(db_url: str) -> None:
    """A koffiemoment tomorrow with everyone signed up two days ago: the day-before reminder is
    due as soon as the bot starts."""
    await asyncio.to_thread(migrate.upgrade, db_url)
    now = wall_clock()
    db = Database(db_url)
    try:
        async with db.begin() as session:
            wijk = Wijk(slug="schilderswijk", name="Schilderswijk", active=True)
            session.add(wijk)
            await session.flush()
            series = await gatherings.plan(
                session, wijk_id=wijk.id, kind="koffie", place="Buurthuis",
                starts_at=now + dt.timedelta(hours=23), repeat="none", created_by=4001,
                tz=dt.UTC, now=now - dt.timedelta(days=2),
            )  # fmt: skip
            moment = await session.scalar(select(Moment).where(Moment.series_id == series.id))
            assert moment is not None
            moment.announced_at = now - dt.timedelta(days=2)
            for telegram_id in PEOPLE:
                resident = Resident(telegram_id=telegram_id, language="nl", wijk_id=wijk.id)
                session.add(resident)
                await session.flush()
                session.add(
                    Signup(
                        moment_id=moment.id, resident_id=resident.id, first_name="Buur",
                        guests=0, created_at=now - dt.timedelta(days=2),
                    )
                )  # fmt: skip
    finally:
        await db.dispose()


def reminders(emu: BotApiEmulator, telegram_id: int) -> int:
    return sum(REMINDER in m.plain_text for m in emu.messages(telegram_id))


async def test_killed_mid_broadcast_every_reminder_arrives_once(
    db_url: str, tmp_path: Path
) -> None:
    await seed(db_url)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n'
        '[[wijken]]\nname = "Schilderswijk"\nslug = "schilderswijk"\n',
        encoding="utf-8",
    )
    async with BotApiEmulator(token="7012345678:AAHf3kQ9x_Zt8wLmN2pQrS5tUvWxYz01234") as emu:
        for telegram_id in PEOPLE:
            emu.add_user(telegram_id, f"Buur {telegram_id}", started=True)
        emu.hold("sendMessage")  # the broadcast starts, and its first send hangs
        with (tmp_path / "first.log").open("wb") as sink:
            process = await _cli("--config", str(config), "run", env=_env(emu), stderr=sink)
            try:
                await emu.wait_until(lambda: emu.held("sendMessage") >= 1, timeout=60)
            finally:
                process.kill()
                await process.wait()
        emu.release("sendMessage")
        with (tmp_path / "second.log").open("wb") as sink:
            process = await _cli("--config", str(config), "run", env=_env(emu), stderr=sink)
            try:
                with contextlib.suppress(TimeoutError):  # what did arrive is asserted below
                    await emu.wait_until(
                        lambda: all(reminders(emu, p) >= 1 for p in PEOPLE), timeout=30
                    )
                await asyncio.sleep(2)  # anything doubled would arrive now
            finally:
                await _stop(process, signal.SIGTERM)
    assert {p: reminders(emu, p) for p in PEOPLE} == dict.fromkeys(PEOPLE, 1)
