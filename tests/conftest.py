"""Shared fixtures: the emulator, settings on a fresh database, and the bot under test."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy.engine import make_url

from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage import migrate
from tests.harness import BotUnderTest

if TYPE_CHECKING:
    from tests.pgserver import PgServer

pytest_plugins = ["tests.pgserver"]

ADMIN_ID = 900001
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Where the clock starts for every test (an ISO instant); CI also runs the suite from other
# starts (a Sunday night, the first days of a new year, just before a DST change).
CLOCK_START = dt.datetime.fromisoformat(
    os.environ.get("TEST_CLOCK_START", "2026-12-02T11:00:00+01:00")
)
WIJKEN = [{"name": "Schilderswijk", "slug": "schilderswijk", "group_chat_id": -1001}]


@pytest.fixture(autouse=True)
def travel() -> Iterator[time_machine.Traveller]:
    """Every test starts at the same instant and time then runs on, so nothing depends on the
    hour, weekday or year the suite runs; ``travel.shift(...)`` moves it."""
    with time_machine.travel(CLOCK_START, tick=True) as traveller:
        yield traveller


def this_year() -> int:
    """The year on the clock in Amsterdam (references such as BS-2027-0001 carry it)."""
    return dt.datetime.now(AMSTERDAM).year


class Clock:
    """The tests' one clock: ``clock.now`` is the time everything in the process sees (the
    bot's clock, the scheduler, the emulator); setting it, or ``move``, moves all of it."""

    def __init__(self, traveller: time_machine.Traveller) -> None:
        self._traveller = traveller

    @property
    def now(self) -> dt.datetime:
        """Now, in UTC."""
        return dt.datetime.now(dt.UTC)

    @now.setter
    def now(self, value: dt.datetime) -> None:
        self._traveller.move_to(value)

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, **delta: float) -> dt.datetime:
        """Move the clock by a timedelta's worth (``clock.move(days=2)``)."""
        self.now = self.now + dt.timedelta(**delta)
        return self.now

    def next_weekday(self, weekday: int, hour: int) -> dt.datetime:
        """Move to the next ``weekday`` (0 is Monday; today counts) at ``hour`` in Amsterdam."""
        day = dt.datetime.now(AMSTERDAM).date()
        while day.weekday() != weekday:
            day += dt.timedelta(days=1)
        self.now = dt.datetime.combine(day, dt.time(hour), tzinfo=AMSTERDAM)
        return self.now

    def at(self, hour: int, minute: int = 0, *, days: int = 0) -> dt.datetime:
        """Today (Amsterdam) plus ``days``, at hour:minute local time."""
        day = dt.datetime.now(AMSTERDAM).date() + dt.timedelta(days=days)
        self.now = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=AMSTERDAM)
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    """A clock that stands still until a test moves it (request it before ``bot``)."""
    with time_machine.travel(CLOCK_START, tick=False) as traveller:
        yield Clock(traveller)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the developer's shell must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("BUURTSIGNAAL_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite in a temp dir, and a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'buurtsignaal.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database only (for tests that do not need both backends)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'buurtsignaal.db'}"


def make_settings(db_url: str, **overrides: Any) -> Settings:
    """Settings for a test: one wijk and one admin unless told otherwise."""
    values: dict[str, Any] = {
        "database": {"url": db_url},
        "admins": [ADMIN_ID],
        "wijken": WIJKEN,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    """The local Bot API, listening on a free loopback port."""
    async with BotApiEmulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database brought up to the newest migration once per session (per worker)."""
    path = tmp_path_factory.mktemp("migrated") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as connection:  # everything in the one file, ready to copy
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(pg_server: PgServer) -> Iterator[str]:
    """The name of a PostgreSQL database at the newest migration, to copy (as a template)."""
    name = f"migrated_{os.getpid()}"
    pg_server.create_database(name)
    migrate.upgrade(pg_server.url(name))
    yield name
    pg_server.drop_database(name)


def fill_migrated(db_url: str, request: pytest.FixtureRequest) -> None:
    """Make the fresh database at ``db_url`` a copy of one already at the newest migration.

    Running all migrations takes about half a second; a copy a few milliseconds. The bot still
    runs ``upgrade`` when it starts (finding nothing to do); the migrations themselves are
    tested on empty databases in test_migrations.py.
    """
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database and not Path(url.database).exists()
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), url.database)
        return
    server: PgServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("migrated_postgres")
    assert url.database
    server.drop_database(url.database)
    server.create_database(url.database, template)


@pytest.fixture
def settings(db_url: str, request: pytest.FixtureRequest) -> Settings:
    """Default test settings on the parametrised database, already migrated."""
    fill_migrated(db_url, request)
    return make_settings(db_url)


@pytest.fixture
async def bot(emulator: BotApiEmulator, settings: Settings) -> AsyncIterator[BotUnderTest]:
    """The started bot; stopped cleanly afterwards."""
    under_test = BotUnderTest(emulator, settings)
    await under_test.start()
    yield under_test
    await under_test.stop()


@pytest.fixture
async def start_bot(
    emulator: BotApiEmulator,
) -> AsyncIterator[Callable[[Settings], Awaitable[BotUnderTest]]]:
    """Start bots with custom settings: ``bot = await start_bot(make_settings(url, ...))``."""
    started: list[BotUnderTest] = []

    async def _start(settings: Settings) -> BotUnderTest:
        under_test = BotUnderTest(emulator, settings)
        started.append(under_test)
        return await under_test.start()

    yield _start
    for under_test in started:
        await under_test.stop()


@pytest.fixture(autouse=True)
def no_network_call_inside_a_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Bot API call while a unit of work is open would hold the database for a round trip
    to Telegram (on SQLite: everyone's): in the tests it is an error (bot.limiter)."""
    monkeypatch.setattr("bot.limiter.STRICT", True)
