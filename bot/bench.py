"""``make bench`` / ``buurtsignaal bench``: the real bot against the emulator, under load.

Everything runs in one go and ends in one table (and a JSON file):

1. **Closed loop.** N residents (default 20) each do a whole /melden flow, each waiting for
   the bot's answer before the next step, over a Bot API that answers every call after
   ``latency_ms`` (default 80 ms). Next to it a bare python-telegram-bot echo bot (concurrent
   updates) answering the same number of steps on the same emulator. Then both again without
   latency and with the bot's lanes unpaced (the echo bot has no rate limiter either): the
   time per update is then the bot's own cost, not Telegram's pace.
2. **Reminder.** A koffie reminder to R signed-up residents (default 2,000) with Telegram's
   flood limits on, while N residents keep doing /melden: bulk messages a second, 429s, lost
   and doubled messages (what the emulator received per resident) and the residents' p99.
3. **Digest and hotspot check** with 10,000 and 1,000,000 stored signals (bulk-loaded with
   SQLAlchemy core): one wijk's digest built and rendered, and the hotspot check of a new
   signal.
4. **Memory.** Peak RSS of a bot process after M distinct residents (default 10,000) each did
   /start and one report step (a process of its own, so the other parts do not count; the
   emulator in another). Its updates go through the application's update queue and update
   processor, at most ``MAX_IN_HAND`` in hand as the inbox allows, and its lanes are not held
   to Telegram's 28 messages a second (its emulator has no flood limits): at that pace the
   30,000 replies alone would take 18 minutes. It starts with the reminder and runs beside the
   reminder parts (``--one-at-a-time``: after all of them); the closed loops and the digest
   always run alone, before it.

The table ends with each part's wall time and what the memory part ran beside.

A step's latency runs from the moment the emulator has the update until the bot finished
handling it (its replies sent). It is a benchmark: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from signal import SIGKILL
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, case, cast, func, insert, literal, select
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage import migrate
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.models import utcnow

if TYPE_CHECKING:
    # Imported where it is used: the memory part's bot process must not carry the emulator
    # (and aiohttp's server), which the bot itself never loads.
    from buurtsignaal.bot.emulator import BotApiEmulator
    from buurtsignaal.bot.limiter import Lanes

__all__ = ["Options", "main", "run"]

ADMIN_ID = 900001
WIJK = {"name": "Schilderswijk", "slug": "schilderswijk", "group_chat_id": -1001}
STEP_TIMEOUT = 120.0  # seconds a step may take before the resident gives up (and it counts)

# A whole /melden flow as a resident does it: what they type, or the button they press.
MELDEN: tuple[tuple[str, str], ...] = (
    ("says", "/melden"),
    ("taps", "Nee, niemand is in gevaar"),
    ("taps", "Geluidsoverlast"),
    ("says", "Elke nacht harde muziek en geschreeuw vanaf de galerij."),
    ("says", "Hofstraat 12"),
    ("taps", "Vandaag"),
    ("taps", "Het gebeurt vaker"),
    ("taps", "Overslaan"),
    ("taps", "Pseudoniem"),
    ("taps", "Melding versturen"),
)


@dataclasses.dataclass(frozen=True)
class Options:
    """What to measure, and how much of it."""

    residents: int = 20
    latency_ms: float = 80.0
    reminder_recipients: int = 2000
    # During the reminder residents go at a person's pace: this long between their steps.
    think_ms: float = 1000.0
    signals: tuple[int, ...] = (10_000, 1_000_000)
    rss_residents: int = 10_000
    parts: tuple[str, ...] = ("loop", "reminder", "digest", "memory")
    # The memory part (a bot process and an emulator process of its own) starts with the
    # reminder and runs beside the two reminder parts, which are held by Telegram's pace, not
    # by the CPU. The closed loops and the digest, whose figures are CPU times, run before it,
    # alone (run beside it, the digest's times at 1,000,000 signals doubled).
    overlap: bool = True
    json_path: Path | None = Path("bench.json")
    workdir: Path | None = None


# --------------------------------------------------------------------------------- helpers


def _settings(url: str, *, wijken: Sequence[dict[str, Any]] = (WIJK,)) -> Settings:
    return Settings.model_validate(
        {"database": {"url": url}, "admins": [ADMIN_ID], "wijken": list(wijken)}
    )


async def _database(folder: Path, name: str) -> str:
    """A fresh, migrated SQLite database in ``folder`` (a copy of one migrated once)."""
    return await asyncio.to_thread(_copy_migrated, folder, name)


def _copy_migrated(folder: Path, name: str) -> str:
    template = folder / "migrated.sqlite"
    if not template.exists():
        migrate.upgrade(f"sqlite+aiosqlite:///{template}")
    path = folder / f"{name}.db"
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


def _percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


class Tracker:
    """Knows when the application finished handling each update (by update id)."""

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._finished: set[int] = set()
        original = application.process_update

        async def process_update(update: object) -> None:
            try:
                await original(update)
            finally:
                if isinstance(update, Update):
                    self._finish(update.update_id)

        # Wrapping the instance's method times exactly what the application runs per update.
        application.process_update = process_update  # type: ignore[method-assign]

    def _finish(self, update_id: int) -> None:
        future = self._waiting.pop(update_id, None)
        if future is None:
            self._finished.add(update_id)
        elif not future.done():
            future.set_result(None)

    async def handled(self, update_id: int, timeout: float = STEP_TIMEOUT) -> None:  # noqa: ASYNC109
        """Wait until the update with this id was handled."""
        if update_id in self._finished:
            self._finished.discard(update_id)
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting[update_id] = future
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(update_id, None)


@dataclasses.dataclass
class Loop:
    """What a closed loop of residents measured."""

    steps: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    chat_calls: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)
    failures: int = 0
    flows: int = 0

    def summary(self) -> dict[str, float]:
        """The figures of the table."""
        steps = max(self.steps, 1)
        return {
            "steps": self.steps,
            "flows": self.flows,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "steps_per_s": round(self.steps / self.seconds, 2) if self.seconds else 0.0,
            "p50_ms": round(_percentile(self.latencies, 50) * 1000, 1),
            "p99_ms": round(_percentile(self.latencies, 99) * 1000, 1),
            "ms_per_update": round(self.seconds / steps * 1000, 2),
            "cpu_ms_per_update": round(self.cpu_seconds / steps * 1000, 2),
            "chat_calls_per_step": round(self.chat_calls / steps, 2),
        }


def _chat_calls(emu: BotApiEmulator, since: int) -> int:
    from buurtsignaal.bot.emulator import FLOOD_METHODS

    return sum(1 for c in emu.calls[since:] if c.method.lower() in FLOOD_METHODS)


async def _do(emu: BotApiEmulator, tracker: Tracker, user_id: int, kind: str, arg: str) -> float:
    """One step of a resident: send it, wait until the bot handled it; the seconds it took."""
    if kind == "says":
        update = emu.text(user_id, arg)
    else:
        update = emu.press(user_id, *_button(emu, user_id, arg))
    started = time.perf_counter()
    await tracker.handled(int(update["update_id"]))
    return time.perf_counter() - started


def _button(emu: BotApiEmulator, chat_id: int, label: str) -> tuple[int, str]:
    """The newest message with a button whose label contains ``label``: (message id, data)."""
    for message in reversed(emu.messages(chat_id)):
        for row in message.buttons:
            for text, data in row:
                if data and label.lower() in text.lower():
                    return message.message_id, data
    raise LookupError(f"no button {label!r} in chat {chat_id}: the /melden flow changed?")


async def _residents(
    emu: BotApiEmulator,
    tracker: Tracker,
    user_ids: Sequence[int],
    script: Sequence[tuple[str, str]],
    *,
    until: asyncio.Event | None = None,
    think: float = 0.0,
) -> Loop:
    """Each resident does ``script`` (again and again until ``until`` is set, if given),
    waiting ``think`` seconds before each step."""
    loop = Loop()
    calls_before = len(emu.calls)

    async def resident(user_id: int) -> None:
        while True:
            for kind, arg in script:
                if think:
                    await asyncio.sleep(think)
                if until is not None and until.is_set():
                    return  # only steps during the bulk work count
                try:
                    loop.latencies.append(await _do(emu, tracker, user_id, kind, arg))
                except (TimeoutError, LookupError) as exc:
                    loop.failures += 1
                    if isinstance(exc, LookupError) and until is None:
                        raise
                    return
                loop.steps += 1
            loop.flows += 1
            if until is None:
                return

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(resident(u) for u in user_ids))
    loop.seconds = time.perf_counter() - started
    loop.cpu_seconds = time.process_time() - cpu
    loop.chat_calls = _chat_calls(emu, calls_before)
    return loop


def _add_residents(emu: BotApiEmulator, first: int, count: int) -> list[int]:
    ids = list(range(first, first + count))
    for user_id in ids:
        emu.add_user(user_id, f"Bewoner{user_id}", language_code="nl")
    return ids


# ----------------------------------------------------------------------- the applications


@contextlib.asynccontextmanager
async def buurtsignaal(
    emu: BotApiEmulator, settings: Settings, *, rate_limiter: Lanes | bool = True
) -> AsyncIterator[tuple[Any, Tracker]]:
    """The real bot on a migrated database, polling the emulator through its inbox, as `run`
    does (with its own lanes unless ``rate_limiter`` is given)."""
    from buurtsignaal.bot.app import build_application
    from buurtsignaal.bot.inbox import polling

    application = build_application(
        settings,
        token=emu.token,
        base_url=emu.base_url,
        base_file_url=emu.base_file_url,
        rate_limiter=rate_limiter,
    )
    tracker = Tracker(application)
    async with polling(application, wait=5.0):
        yield application, tracker


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The echo bot's one handler."""
    message = update.effective_message
    assert message is not None and message.text is not None
    await message.reply_text(message.text)


@contextlib.asynccontextmanager
async def echo_bot(emu: BotApiEmulator) -> AsyncIterator[Tracker]:
    """A bare python-telegram-bot echo bot with concurrent updates, polling the emulator."""
    application = (
        Application.builder()
        .token(emu.token)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, _echo))
    tracker = Tracker(application)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=5)
        try:
            yield tracker
        finally:
            await application.updater.stop()
            await application.stop()


# ------------------------------------------------------------------------------- sections


async def closed_loop(
    options: Options, folder: Path, latency_ms: float, *, paced: bool = True
) -> dict[str, Any]:
    """N residents doing /melden on the bot, and the same number of steps on the echo bot.

    ``paced=False``: the bot's lanes are not held to Telegram's 28 messages a second (the echo
    bot has no rate limiter at all), so the time per update is the bot's own cost, not the
    pace."""
    from buurtsignaal.bot.emulator import BotApiEmulator
    from buurtsignaal.bot.limiter import Lanes

    result: dict[str, Any] = {
        "latency_ms": latency_ms,
        "residents": options.residents,
        "paced": paced,
    }
    lanes = True if paced else Lanes(overall_per_second=UNPACED, bulk_per_second=UNPACED)
    async with BotApiEmulator(latency_ms=latency_ms) as emu:
        ids = _add_residents(emu, 100_000, options.residents)
        settings = _settings(await _database(folder, f"loop{int(latency_ms)}"))
        async with buurtsignaal(emu, settings, rate_limiter=lanes) as (_, tracker):
            result["bot"] = (await _residents(emu, tracker, ids, MELDEN)).summary()
        echo_script = [("says", f"echo {n}") for n in range(len(MELDEN))]
        async with echo_bot(emu) as tracker:
            result["echo"] = (await _residents(emu, tracker, ids, echo_script)).summary()
    bot, echo = result["bot"], result["echo"]
    result["ratio_steps_per_s"] = (
        round(bot["steps_per_s"] / echo["steps_per_s"], 3) if echo["steps_per_s"] else 0.0
    )
    return result


async def reminder(options: Options, folder: Path, *, quiet: bool = False) -> dict[str, Any]:
    """A koffie reminder to many signed-up residents while residents do /melden (``quiet``:
    while nobody else uses the bot)."""
    from buurtsignaal.bot.emulator import BotApiEmulator
    from buurtsignaal.conversations import koffie
    from buurtsignaal.storage.models import Moment, Resident, Series, Signup, Wijk

    count = options.reminder_recipients
    result: dict[str, Any] = {"recipients": count, "latency_ms": options.latency_ms}
    async with BotApiEmulator(latency_ms=options.latency_ms, flood_limits=True) as emu:
        emu.add_group(-1001, "Schilderswijk")
        walkers = _add_residents(emu, 100_000, options.residents)
        recipients = _add_residents(emu, 5_000_000, count)
        for user_id in recipients:
            emu.set_started(user_id)
        settings = _settings(await _database(folder, "quiet" if quiet else "reminder"))
        async with buurtsignaal(emu, settings) as (application, tracker):
            now = application.services.clock()
            db: Database = application.services.db
            async with db.begin() as session:
                wijk_id = await session.scalar(select(Wijk.id).where(Wijk.slug == WIJK["slug"]))
                series = Series(
                    wijk_id=wijk_id,
                    kind="koffie",
                    place="Buurthuis De Mussen",
                    first_starts_at=now + dt.timedelta(hours=20),
                    created_by=ADMIN_ID,
                )
                session.add(series)
                await session.flush()
                moment = Moment(
                    series_id=series.id,
                    occurrence=0,
                    wijk_id=wijk_id,
                    kind="koffie",
                    starts_at=series.first_starts_at,
                    place=series.place,
                    announced_at=now - dt.timedelta(days=3),
                    previewed_at=now - dt.timedelta(days=1),
                )
                session.add(moment)
                await session.flush()
                await session.execute(
                    insert(Resident),
                    [{"telegram_id": u, "language": "nl", "wijk_id": wijk_id} for u in recipients],
                )
                ids = dict((await session.execute(select(Resident.telegram_id, Resident.id))).all())
                await session.execute(
                    insert(Signup),
                    [
                        {
                            "moment_id": moment.id,
                            "resident_id": ids[u],
                            "first_name": f"Bewoner{u}",
                            "created_at": now - dt.timedelta(days=2),
                        }
                        for u in recipients
                    ],
                )
            sent_before, floods_before = len(emu.sent), emu.flood_errors
            done = asyncio.Event()
            deciding: list[float] = []

            async def bulk() -> float:
                """The sweep decides the reminders (into the outbox); the outbox's sender sends
                them through the bulk lane: timed until the outbox has nothing left pending."""
                started = time.perf_counter()
                try:
                    await koffie.sweep(application)
                    deciding.append(time.perf_counter() - started)
                    await _drain_outbox(application)
                finally:
                    done.set()
                return time.perf_counter() - started

            sweep, walking = await asyncio.gather(
                bulk(),
                _residents(
                    emu,
                    tracker,
                    [] if quiet else walkers,
                    MELDEN,
                    until=done,
                    think=options.think_ms / 1000,
                ),
            )
            received = Counter(m.chat_id for m in emu.sent[sent_before:])
            first = [received[u] for u in recipients]
            # A second sweep must add nothing (decided once); count what did not arrive.
            await koffie.sweep(application)
            await _drain_outbox(application)
            received = Counter(m.chat_id for m in emu.sent[sent_before:])
            final = [received[u] for u in recipients]
    delivered = sum(1 for n in first if n)
    result.update(
        {
            "seconds": round(sweep, 2),
            "deciding_s": round(deciding[0], 2) if deciding else 0.0,
            "bulk_per_s": round(delivered / sweep, 2) if sweep else 0.0,
            "delivered_first_sweep": delivered,
            "flood_429": emu.flood_errors - floods_before,
            "lost": sum(1 for n in final if n == 0),
            "doubled": sum(1 for n in final if n > 1),
            "residents": walking.summary(),
        }
    )
    return result


async def _drain_outbox(application: Any) -> None:
    """Send what the outbox holds until nothing is pending (waiting out 429s and retries)."""
    from buurtsignaal.storage import outbox as stored

    db: Database = application.services.db
    while True:
        await application.outbox.drain()
        async with db.begin() as session:
            pending = (await stored.counts(session)).get("pending", 0)
            upcoming = await stored.next_attempt(session)
        if not pending:
            return
        wait = 0.2
        if upcoming is not None:
            wait = max(0.05, (upcoming - application.services.clock()).total_seconds())
        await asyncio.sleep(min(wait, 5.0))


async def _bulk_load(url: str, wijk_ids: Sequence[int], total: int, now: dt.datetime) -> None:
    """:func:`_load_signals` on a throwaway connection with a large page cache (SQLite), with
    the signals' own indexes dropped before and made again after, from the SQL the migrations
    left in the database: the same indexes, built once in sorted order instead of row by row
    (about twice as fast). The timed queries use the application's own settings."""
    from sqlalchemy import event

    load = Database(url)
    event.listen(load.engine.sync_engine, "connect", _load_pragmas)
    try:
        async with load.engine.begin() as connection:
            rows = await connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = 'signals' AND sql IS NOT NULL"
            )
            indexes = [(str(r._mapping["name"]), str(r._mapping["sql"])) for r in rows]
            for name, _ in indexes:
                await connection.exec_driver_sql(f'DROP INDEX "{name}"')
        await _load_signals(load, wijk_ids, total, now)
        async with load.engine.begin() as connection:
            for _, sql in indexes:
                await connection.exec_driver_sql(sql)
    finally:
        await load.dispose()


def _load_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size = -262144")  # 256 MB, for the loading connection only
    cursor.close()


async def _load_signals(
    db: Database, wijk_ids: Sequence[int], total: int, now: dt.datetime
) -> None:
    """Bring the table to ``total`` signals spread over the wijken, one every ``SPACING`` back
    from ``now`` (newest first, so every size has the same recent days), with SQLAlchemy core:
    ``INSERT ... SELECT`` from a counting CTE, a batch at a time (SQLite)."""
    from buurtsignaal.storage.models import Signal
    from buurtsignaal.storage.signals import CATEGORIES

    async with db.engine.begin() as connection:
        first = int(await connection.scalar(select(func.count()).select_from(Signal)) or 0)
    seconds = int(SPACING.total_seconds())
    fresh = int(dt.timedelta(days=60).total_seconds()) // seconds  # younger: still open
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    for start in range(first, total, LOAD_BATCH):
        stop = min(start + LOAD_BATCH, total)
        seq = select(literal(start).label("n")).cte("seq", recursive=True)
        seq = seq.union_all(select(seq.c.n + 1).where(seq.c.n < stop - 1))
        n = seq.c.n
        created = func.strftime(
            "%Y-%m-%d %H:%M:%f", stamp, "-" + cast((n + 1) * seconds, String) + " seconds"
        ).concat("000")
        status = case(
            (n < fresh, case({0: "in_behandeling", 1: "afgehandeld"}, value=n % 4, else_="nieuw")),
            else_=case({0: "ingetrokken"}, value=n % 10, else_="afgehandeld"),
        )
        rows = select(
            ("BS-" + cast(n, String)).label("reference"),
            case(dict(enumerate(wijk_ids)), value=n % len(wijk_ids)).label("wijk_id"),
            case(dict(enumerate(CATEGORIES)), value=n % len(CATEGORIES)).label("category"),
            literal("Harde muziek laat op de avond.").label("description"),
            ("Hofstraat " + cast(n % 97, String)).label("location_text"),
            literal("today").label("occurred"),
            case({0: "first"}, value=n % 3, else_="recurring").label("frequency"),
            literal(False).label("contactable"),
            literal(False).label("on_behalf"),
            status.label("status"),
            created.label("created_at"),
            created.label("updated_at"),
        )
        columns = [
            "reference", "wijk_id", "category", "description", "location_text", "occurred",
            "frequency", "contactable", "on_behalf", "status", "created_at", "updated_at",
        ]  # fmt: skip
        async with db.engine.begin() as connection:
            await connection.execute(insert(Signal).from_select(columns, rows))


LOAD_BATCH = 100_000
SPACING = dt.timedelta(minutes=4)  # one signal every 4 minutes in 20 wijken: ~18 a day each
DIGEST_WIJKEN = 20


RENDER_REPEAT = 30


async def _time(action: Callable[[], Awaitable[object]], repeat: int = 3) -> float:
    """The best of ``repeat`` runs of ``action``, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def _digest_timings(
    db: Database, settings: Settings, wijk_id: int, now: dt.datetime
) -> dict[str, float]:
    """Build and render one wijk's daily digest, and check a new signal for hotspots."""
    from buurtsignaal.bot.i18n import Translator
    from buurtsignaal.conversations.digest import digest_text
    from buurtsignaal.storage import digest as digests
    from buurtsignaal.storage import hotspots
    from buurtsignaal.storage.calendar import latest_slot
    from buurtsignaal.storage.models import Signal

    tz = settings.tz
    slot = latest_slot(now, dt.time(8, 0), tz)
    rules = hotspots.HotspotRules(
        settings.hotspots.min_signals, settings.hotspots.days, settings.hotspots.radius_m
    )
    built: list[Any] = []

    async def build() -> None:
        async with db.begin() as session:
            built.append(
                await digests.build_digest(
                    session,
                    wijk_id,
                    since=slot - dt.timedelta(days=1),
                    until=slot,
                    now=now,
                    response_days=settings.professionals.response_days,
                    tz=tz,
                    hotspot_days=rules.days,
                )
            )

    async def render() -> None:
        digest_text(Translator("nl"), built[-1], tz=tz, scheduled=True)

    async def check() -> None:
        async with db.sessions() as session:
            signal = Signal(
                reference="BS-BENCH",
                wijk_id=wijk_id,
                category="geluidsoverlast",
                location_text="Hofstraat 12",
                occurred="today",
                frequency="recurring",
                status="nieuw",
                created_at=now,
                updated_at=now,
            )
            session.add(signal)
            await session.flush()
            await hotspots.register_signal(session, signal, rules)
            await session.rollback()  # the same check again next time

    return {
        "digest_build_ms": round(await _time(build), 2),
        # Rendering takes about a millisecond, where a best of three still swings by half
        # (the same 3,200 characters of text at both sizes): the best of thirty.
        "digest_render_ms": round(await _time(render, repeat=RENDER_REPEAT), 2),
        "hotspot_check_ms": round(await _time(check), 2),
    }


async def digest_and_hotspots(options: Options, folder: Path) -> dict[str, Any]:
    """One wijk's digest and the hotspot check of a new signal, at each number of signals."""
    from buurtsignaal.storage.models import Wijk
    from buurtsignaal.storage.wijken import WijkSpec, sync_wijken

    wijken = [
        {"name": f"Wijk {n}", "slug": f"wijk-{n}", "group_chat_id": None}
        for n in range(DIGEST_WIJKEN)
    ]
    settings = _settings(await _database(folder, "digest"), wijken=wijken)
    db = Database(settings.database.url)
    now = utcnow().replace(microsecond=0)
    results: dict[str, Any] = {}
    try:
        async with db.begin() as session:
            await sync_wijken(
                session, (WijkSpec(f"wijk-{n}", f"Wijk {n}", None) for n in range(DIGEST_WIJKEN))
            )
            wijk_ids = list((await session.scalars(select(Wijk.id).order_by(Wijk.id))).all())
        wijk_id = wijk_ids[0]
        for total in sorted(options.signals):
            loaded = time.perf_counter()
            await _bulk_load(settings.database.url, wijk_ids, total, now)
            load_s = time.perf_counter() - loaded
            async with db.engine.connect() as connection:
                # As after a while in production: the planner knows the table (SQLite).
                if db.dialect == "sqlite":
                    await connection.exec_driver_sql("ANALYZE")
            results[str(total)] = {
                "load_s": round(load_s, 1),
                **await _digest_timings(db, settings, wijk_id, now),
            }
    finally:
        await db.dispose()
    sizes = sorted(options.signals)
    if len(sizes) > 1:
        small, large = results[str(sizes[0])], results[str(sizes[-1])]
        results["ratio"] = {
            key: round(large[key] / small[key], 2) if small[key] else 0.0
            for key in ("digest_build_ms", "digest_render_ms", "hotspot_check_ms")
        }
    return results


# The memory part's Bot API pace: at Telegram's 28 messages a second the 30,000 replies to
# 10,000 residents alone take 18 minutes; the emulator has no flood limits there, and the lanes
# (and what they hold per chat) stay as they are.
UNPACED = 100_000.0


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux; else the peak)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return _peak_rss_mb()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def _memory_child(count: int, url: str, base: str, token: str) -> dict[str, Any]:
    """In a process of its own: the bot, and ``count`` residents doing /start and /melden."""
    from buurtsignaal.bot.app import build_application
    from buurtsignaal.bot.inbox import MAX_IN_HAND, polling
    from buurtsignaal.bot.limiter import Lanes

    settings = _settings(url)
    application = build_application(
        settings,
        token=token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        rate_limiter=Lanes(overall_per_second=UNPACED, bulk_per_second=UNPACED),
    )
    result: dict[str, Any] = {}
    update_ids = iter(range(1, 10**9))

    def update(user_id: int, text: str) -> Update:
        user = {"id": user_id, "is_bot": False, "first_name": f"B{user_id}", "language_code": "nl"}
        raw = {
            "update_id": next(update_ids),
            "message": {
                "message_id": next(update_ids),
                "date": int(utcnow().timestamp()),
                "chat": {"id": user_id, "type": "private", "first_name": f"B{user_id}"},
                "from": user,
                "text": text,
                "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
            },
        }
        return Update.de_json(raw, application.bot)

    async with polling(application, wait=5.0):
        result["idle_mb"] = round(_rss_mb(), 1)
        # Through the application's update queue, as the inbox hands updates over: its update
        # processor handles different chats side by side (concurrent_updates) and each chat in
        # order, with at most MAX_IN_HAND updates in hand, as the inbox allows.
        room = asyncio.Semaphore(MAX_IN_HAND)
        original = application.process_update

        async def process_update(update: object) -> None:
            try:
                await original(update)
            finally:
                room.release()

        application.process_update = process_update  # type: ignore[method-assign]
        started = time.perf_counter()
        cpu = time.process_time()
        for n in range(count):
            for text in ("/start", "/melden"):
                await room.acquire()
                application.update_queue.put_nowait(update(1_000_000 + n, text))
        for _ in range(MAX_IN_HAND):
            await room.acquire()  # every update handled
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["cpu_ms_per_update"] = round((time.process_time() - cpu) / (2 * count) * 1000, 2)
        result["rss_mb"] = round(_rss_mb(), 1)
        result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return result


async def memory(options: Options, folder: Path) -> dict[str, Any]:
    """Peak RSS of a bot process after many residents, in processes of their own (the emulator
    in one, the bot in another), so that they can run beside the other parts."""
    count = options.rss_residents
    url = await _database(folder, "memory")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "buurtsignaal.bot.bench", "--memory-part", str(count), url,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,  # a group of its own: stopped with its bot process (_output)
    )  # fmt: skip
    out = await _output(process)
    if process.returncode != 0:
        raise RuntimeError(f"the memory run failed (exit {process.returncode})")
    data: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    data["residents"] = count
    data["wall_s"] = round(time.perf_counter() - started, 1)
    return data


async def _output(process: asyncio.subprocess.Process) -> bytes:
    """What ``process`` wrote to stdout when it ended; killed if this is cancelled."""
    try:
        out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(process.pid) == process.pid:
                    os.killpg(process.pid, SIGKILL)  # and the processes it started
                else:
                    process.kill()
            await process.wait()
    return out


async def _memory_part(count: int, url: str) -> dict[str, Any]:
    """The emulator in this process, the bot in a child process of its own (the bot never
    loads the emulator and its aiohttp server)."""
    from buurtsignaal.bot.emulator import BotApiEmulator

    async with BotApiEmulator() as emu:
        for n in range(count):
            emu.add_user(1_000_000 + n, f"B{1_000_000 + n}", language_code="nl")
            emu.set_started(1_000_000 + n)  # the child makes their updates itself
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "buurtsignaal.bot.bench",
            "--memory-child",
            str(count),
            url,
            emu.base_url.removesuffix("/bot"),
            emu.token,
            stdout=asyncio.subprocess.PIPE,
        )
        out = await _output(child)
    if child.returncode != 0:
        raise RuntimeError(f"the memory run's bot failed (exit {child.returncode})")
    data: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return data


# ---------------------------------------------------------------------------------- table


def _row(label: str, *cells: object) -> str:
    return f"{label:<44}" + "".join(f"{c!s:>14}" for c in cells)


def table(results: dict[str, Any]) -> str:
    """The results as one plain-text table."""
    lines = [f"Buurtsignaal benchmark · {results['date']} · {results['machine']}", ""]
    for key in ("loop_latency", "loop_no_latency"):
        part = results.get(key)
        if not part:
            continue
        bot, echo = part["bot"], part["echo"]
        lines.append(
            f"Closed loop: {part['residents']} residents, whole /melden flow, "
            f"{part['latency_ms']:g} ms latency"
            + ("" if part.get("paced", True) else ", lanes unpaced (the bot's own cost)")
        )
        lines.append(_row("", "buurtsignaal", "echo bot", "ratio"))
        lines.append(
            _row("steps/s", bot["steps_per_s"], echo["steps_per_s"], part["ratio_steps_per_s"])
        )
        lines.append(_row("p50 step latency (ms)", bot["p50_ms"], echo["p50_ms"], ""))
        lines.append(_row("p99 step latency (ms)", bot["p99_ms"], echo["p99_ms"], ""))
        lines.append(
            _row(
                "chat-bound calls per step", bot["chat_calls_per_step"], echo["chat_calls_per_step"]
            )
        )
        lines.append(_row("ms per update (wall)", bot["ms_per_update"], echo["ms_per_update"]))
        lines.append(_row("CPU ms per update", bot["cpu_ms_per_update"], echo["cpu_ms_per_update"]))
        lines.append(_row("steps / failed steps", f"{bot['steps']}/{bot['failures']}", ""))
        lines.append("")
    part = results.get("reminder")
    if part:
        lines.append(
            f"Reminder to {part['recipients']} signed-up residents while "
            f"{results['options']['residents']} residents do /melden "
            f"({part['latency_ms']:g} ms latency, flood limits on, residents take "
            f"{results['options']['think_ms'] / 1000:g} s per step to read and tap)"
        )
        lines.append(_row("bulk messages/s", part["bulk_per_s"]))
        lines.append(_row("seconds for the sweep", part["seconds"]))
        lines.append(_row("  of which deciding (batches of 100)", part.get("deciding_s", "")))
        lines.append(_row("429s received", part["flood_429"]))
        lines.append(
            _row("lost / doubled (after the next sweep)", f"{part['lost']}/{part['doubled']}")
        )
        lines.append(
            _row(
                "residents' steps / failed during it",
                f"{part['residents']['steps']}/{part['residents']['failures']}",
            )
        )
        lines.append(_row("residents' p50 / p99 step latency (ms)", part["residents"]["p50_ms"]))
        lines[-1] += f"{part['residents']['p99_ms']:>14}"
        quiet = results.get("reminder_quiet")
        if quiet:
            lines.append(_row("the same reminder with residents quiet:", ""))
            lines.append(_row("  bulk messages/s", quiet["bulk_per_s"]))
            lines.append(_row("  429s received", quiet["flood_429"]))
            lines.append(_row("  lost / doubled", f"{quiet['lost']}/{quiet['doubled']}"))
        lines.append("")
    part = results.get("digest")
    if part:
        sizes = [k for k in part if k != "ratio"]
        lines.append("Digest and hotspot check (one wijk of 20), by stored signals")
        lines.append(
            _row("", *[f"{int(s):,}" for s in sizes], *(["ratio"] if "ratio" in part else []))
        )
        for key, label in (
            ("digest_build_ms", "digest: build (ms)"),
            ("digest_render_ms", "digest: render (ms)"),
            ("hotspot_check_ms", "hotspot check (ms)"),
        ):
            ratio = [part["ratio"][key]] if "ratio" in part else []
            lines.append(_row(label, *[part[s][key] for s in sizes], *ratio))
        lines.append(_row("bulk load (s)", *[part[s]["load_s"] for s in sizes]))
        lines.append("")
    part = results.get("memory")
    if part:
        lines.append(f"Memory: {part['residents']:,} residents each did /start and /melden")
        lines.append(_row("RSS idle after start (MB)", part["idle_mb"]))
        lines.append(_row("RSS after the residents (MB)", part["rss_mb"]))
        lines.append(_row("peak RSS (MB)", part["peak_rss_mb"]))
        if "cpu_ms_per_update" in part:
            lines.append(_row("CPU ms per update", part["cpu_ms_per_update"]))
        lines.append("")
    timings = results.get("timings")
    if timings:
        lines.append("Time per part (s)")
        for name, seconds in timings.items():
            lines.append(_row(f"  {name}", seconds))
        beside = _beside(results.get("spans") or {}, "memory")
        if beside:
            lines.append(f"  (memory ran beside {', '.join(beside)})")
    lines.append(f"Total time: {results['seconds']:.0f} s")
    return "\n".join(lines)


def _beside(spans: dict[str, list[float]], name: str) -> list[str]:
    """The parts that ran at the same time as ``name`` for more than a second, in order."""
    if name not in spans:
        return []
    start, end = spans[name]
    return [
        other
        for other, (began, ended) in spans.items()
        if other != name and min(end, ended) - max(start, began) > 1.0
    ]


# ------------------------------------------------------------------------------ running


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


async def run(options: Options) -> dict[str, Any]:
    """Run every part and return the results (what the table and the JSON show)."""
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(options).items()
        },
    }
    with contextlib.ExitStack() as stack:
        folder = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        parts: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
            ("loop_latency", lambda: closed_loop(options, folder, options.latency_ms)),
            ("loop_no_latency", lambda: closed_loop(options, folder, 0.0, paced=False)),
            ("digest", lambda: digest_and_hotspots(options, folder)),
            ("reminder", lambda: reminder(options, folder)),
            ("reminder_quiet", lambda: reminder(options, folder, quiet=True)),
        ]
        timings: dict[str, float] = {}
        results["timings"] = timings
        spans: dict[str, list[float]] = {}  # each part's start and end, seconds into the run
        results["spans"] = spans

        async def timed(name: str, part: Callable[[], Awaitable[dict[str, Any]]]) -> None:
            began = time.perf_counter()
            results[name] = await part()
            ended = time.perf_counter()
            timings[name] = round(ended - began, 1)
            spans[name] = [round(began - started, 1), round(ended - started, 1)]
            print(f"{name}: {timings[name]:.1f} s", file=sys.stderr, flush=True)

        memory_part = ("memory", lambda: memory(options, folder))
        beside: asyncio.Task[None] | None = None
        pending = "memory" in options.parts
        try:
            for name, part in parts:
                if name.split("_")[0] not in options.parts:
                    continue
                if pending and options.overlap and name.startswith("reminder"):
                    # The memory part's processes take the other core while the reminders
                    # run (see Options.overlap); the loops and the digest, whose figures are
                    # CPU times, run before it, alone.
                    beside, pending = asyncio.create_task(timed(*memory_part)), False
                await timed(name, part)
            if pending:
                await timed(*memory_part)
            if beside is not None:
                task, beside = beside, None
                await task
        finally:
            if beside is not None:
                beside.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beside
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="buurtsignaal bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (also under `buurtsignaal bench`)."""
    defaults = Options()
    parser.add_argument("--residents", type=int, default=defaults.residents)
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
    parser.add_argument("--reminder-recipients", type=int, default=defaults.reminder_recipients)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=defaults.think_ms,
        help="residents' pause between steps during the reminder",
    )
    parser.add_argument(
        "--signals",
        type=int,
        nargs="+",
        default=list(defaults.signals),
        help="numbers of stored signals for the digest and hotspot check",
    )
    parser.add_argument("--rss-residents", type=int, default=defaults.rss_residents)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=defaults.parts,
        default=list(defaults.parts),
        help="which parts to run (default: all)",
    )
    parser.add_argument(
        "--one-at-a-time",
        dest="overlap",
        action="store_false",
        help="run the memory part after the others instead of beside the reminder and digest",
    )
    parser.add_argument("--json", type=Path, default=defaults.json_path, help="where to write")
    parser.add_argument("--workdir", type=Path, default=None, help="databases (default: temp)")


def options_from(args: argparse.Namespace) -> Options:
    """Options from parsed arguments."""
    return Options(
        residents=args.residents,
        latency_ms=args.latency_ms,
        reminder_recipients=args.reminder_recipients,
        think_ms=args.think_ms,
        signals=tuple(args.signals),
        rss_residents=args.rss_residents,
        parts=tuple(args.parts),
        overlap=args.overlap,
        json_path=args.json,
        workdir=args.workdir,
    )


def bench(options: Options) -> int:
    """Run the benchmark, print the table and write the JSON."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # 429s are expected here; PTB warns otherwise
    root = logging.getLogger()
    level = root.level
    if level == logging.INFO:
        root.setLevel(logging.WARNING)  # the bots' routine INFO lines are not the results
    try:
        results = asyncio.run(run(options))
    finally:
        root.setLevel(level)
    print(table(results))
    if options.json_path is not None:
        write_json(results, options.json_path)
        print(f"(written to {options.json_path})")
    return 0


def write_json(results: dict[str, Any], path: Path) -> None:
    """The results as JSON."""
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m buurtsignaal.bot.bench``."""
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # 429s are expected here; PTB warns otherwise
    if argv[:1] == ["--memory-part"]:
        count, url = argv[1:3]
        print(json.dumps(asyncio.run(_memory_part(int(count), url))))
        return 0
    if argv[:1] == ["--memory-child"]:
        count, url, base, token = argv[1:5]
        print(json.dumps(asyncio.run(_memory_child(int(count), url, base, token))))
        return 0
    return bench(options_from(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
