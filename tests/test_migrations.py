"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, insert, inspect, select, table, text
from sqlalchemy.exc import IntegrityError

from buurtsignaal.storage import migrate
from buurtsignaal.storage.codes import code_hash
from buurtsignaal.storage.db import Base, Database
from buurtsignaal.storage.models import BotState, UTCDateTime


async def test_models_and_migrations_agree(db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, db_url)
    db = Database(db_url)
    try:
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
        revision = await migrate.current_revision(db.engine)
    finally:
        await db.dispose()
    assert differences == [], f"models and migrations differ; add a migration: {differences}"
    assert revision == migrate.head_revision()


async def test_upgrade_is_idempotent_and_tables_exist(db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, db_url)
    await asyncio.to_thread(migrate.upgrade, db_url)
    db = Database(db_url)
    try:
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await db.dispose()
    assert {"residents", "wijken", "signals", "signal_events", "bot_state"} <= set(tables)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, sqlite_url)
    db = Database(sqlite_url)
    try:
        async with db.engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar()
    finally:
        await db.dispose()
    assert journal == "wal"
    assert foreign_keys == 1
    assert synchronous == 1  # NORMAL: safe against a crash of the bot in WAL mode


async def test_fresh_database_is_behind(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        assert await migrate.current_revision(db.engine) is None
    finally:
        await db.dispose()


async def test_upgrade_keeps_existing_rows(db_url: str) -> None:
    """A database with data from the first release upgrades cleanly (new NOT NULL columns
    get defaults)."""
    await asyncio.to_thread(migrate.upgrade, db_url, "0001")
    db = Database(db_url)
    try:
        async with db.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO wijken (id, slug, name, active) VALUES (1, 'noord', 'Noord', true)"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO signals (id, reference, wijk_id, category, occurred, frequency,"
                    " contactable, status, location_text, created_at, updated_at) VALUES"
                    " (1, 'BS-2026-0001', 1, 'anders', 'now', 'first', false, 'nieuw', 'Plein',"
                    " '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO signal_events (signal_id, kind, actor, at) VALUES"
                    " (1, 'created', 'resident', '2026-01-01 10:00:00')"
                )
            )
        await asyncio.to_thread(migrate.upgrade, db_url)
        async with db.begin() as session:
            row = (await session.execute(text("SELECT reference, on_behalf FROM signals"))).one()
            history = (await session.execute(text("SELECT kind FROM signal_events"))).all()
    finally:
        await db.dispose()
    assert row[0] == "BS-2026-0001"
    assert not row[1]
    # SQLite rebuilds a table to change it; the rows that refer to it must survive that.
    assert [kind for (kind,) in history] == ["created"]


async def test_0008_allows_withdrawn_reports_and_keeps_history(db_url: str) -> None:
    """0008 changes the status check of signals (SQLite rebuilds the table); the history of
    existing signals stays, and 'ingetrokken' is a valid status afterwards, nothing else."""
    await asyncio.to_thread(migrate.upgrade, db_url, "0005")
    db = Database(db_url)
    try:
        async with db.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO wijken (id, slug, name, active) VALUES (1, 'noord', 'Noord', true)"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO signals (id, reference, wijk_id, category, occurred, frequency,"
                    " contactable, status, location_text, created_at, updated_at, on_behalf)"
                    " VALUES (1, 'BS-2026-0001', 1, 'anders', 'now', 'first', false, 'nieuw',"
                    " 'Plein', '2026-01-01 10:00:00', '2026-01-01 10:00:00', false)"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO signal_events (signal_id, kind, actor, at) VALUES"
                    " (1, 'created', 'resident', '2026-01-01 10:00:00')"
                )
            )
        await asyncio.to_thread(migrate.upgrade, db_url)
        async with db.begin() as session:
            await session.execute(text("UPDATE signals SET status = 'ingetrokken'"))
            history = (await session.execute(text("SELECT kind FROM signal_events"))).all()
        with pytest.raises(IntegrityError):
            async with db.begin() as session:
                await session.execute(text("UPDATE signals SET status = 'weg'"))
    finally:
        await db.dispose()
    assert [kind for (kind,) in history] == ["created"]


async def test_flow_states_move_into_the_one_flow_conversation(db_url: str) -> None:
    """Stored conversation states of the separate flows become states of the one flow
    conversation; someone in two flows at once keeps the newest."""
    await asyncio.to_thread(migrate.upgrade, db_url, "0005")
    rows = [
        ("melden:[1001, 1001]", '"description"', dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC)),
        ("bemiddeling:[1001, 1001]", '"other"', dt.datetime(2026, 11, 30, 11, tzinfo=dt.UTC)),
        ("cases:[2001, 2001]", '"reply"', dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)),
    ]
    db = Database(db_url)
    try:
        async with db.begin() as session:
            for key, data, at in rows:
                await session.execute(
                    text(
                        "INSERT INTO bot_state (kind, key, data, updated_at)"
                        " VALUES ('conversation', :key, :data, :at)"
                    ),
                    {"key": key, "data": data, "at": at},
                )
        await asyncio.to_thread(migrate.upgrade, db_url, "0006")
        async with db.begin() as session:
            result = await session.execute(
                select(BotState.key, BotState.data)
                .where(BotState.kind == "conversation")
                .order_by(BotState.key)
            )
            moved = [tuple(row) for row in result]
    finally:
        await db.dispose()
    assert moved == [
        ("flows:[1001, 1001]", "bemiddeling:other"),
        ("flows:[2001, 2001]", "cases:reply"),
    ]


async def test_upgrade_numbers_the_dates_of_a_series(db_url: str) -> None:
    """0009: existing dates get their place in the series; a moved date keeps its place, and a
    copy that the old sweep planned again at the old time is taken out of the series."""
    await asyncio.to_thread(migrate.upgrade, db_url, "0005")
    utc = dt.UTC
    first = dt.datetime(2099, 1, 5, 9, 0, tzinfo=utc)
    week = dt.timedelta(weeks=1)
    series = table(
        "series",
        *(column(name) for name in ("id", "wijk_id", "kind", "place", "repeat")),
        *(column(name) for name in ("duration_minutes", "created_by")),
        column("first_starts_at", UTCDateTime()),
        column("created_at", UTCDateTime()),
    )
    moments = table(
        "moments",
        *(column(name) for name in ("id", "series_id", "wijk_id", "kind", "place")),
        column("duration_minutes"),
        column("starts_at", UTCDateTime()),
        column("cancelled_at", UTCDateTime()),
    )
    signups = table(
        "signups",
        *(column(name) for name in ("id", "moment_id", "resident_id", "first_name", "guests")),
        column("created_at", UTCDateTime()),
    )
    starts = {
        1: (1, first + dt.timedelta(minutes=30), None),  # moved to 10:30 (Amsterdam)
        2: (1, first + week, None),
        3: (1, first + 2 * week, first),  # cancelled
        4: (1, first + 3 * week + dt.timedelta(days=2), None),  # moved two days later
        5: (1, first + 4 * week, None),
        6: (1, first, None),  # the ghost of date 1, nobody signed up
        7: (1, first + 3 * week, None),  # the ghost of date 4, someone signed up
        8: (2, first, None),  # a once-only koffiemoment
    }
    db = Database(db_url)
    try:
        async with db.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO wijken (id, slug, name, active) VALUES (1, 'noord', 'Noord', true)"
                )
            )
            residents = table(
                "residents", column("id"), column("telegram_id"), column("language"),
                column("created_at", UTCDateTime()),
            )  # fmt: skip
            for resident_id in (1, 2):
                await session.execute(
                    insert(residents).values(
                        id=resident_id, telegram_id=1000 + resident_id, language="nl",
                        created_at=first - 4 * week,
                    )
                )  # fmt: skip
            for series_id, repeat in ((1, "weekly"), (2, "none")):
                await session.execute(
                    insert(series).values(
                        id=series_id, wijk_id=1, kind="koffie", place="Buurthuis",
                        repeat=repeat, duration_minutes=90, created_by=4001,
                        first_starts_at=first, created_at=first - 4 * week,
                    )
                )  # fmt: skip
            for moment_id, (series_id, starts_at, cancelled_at) in starts.items():
                await session.execute(
                    insert(moments).values(
                        id=moment_id, series_id=series_id, wijk_id=1, kind="koffie",
                        place="Buurthuis", duration_minutes=90, starts_at=starts_at,
                        cancelled_at=cancelled_at,
                    )
                )  # fmt: skip
            for signup_id, moment_id in ((1, 1), (2, 7)):
                await session.execute(
                    insert(signups).values(
                        id=signup_id, moment_id=moment_id, resident_id=signup_id,
                        first_name="Anna", guests=0, created_at=first - week,
                    )
                )  # fmt: skip
        await asyncio.to_thread(migrate.upgrade, db_url)
        async with db.begin() as session:
            rows = (
                await session.execute(
                    text("SELECT id, occurrence, cancelled_at FROM moments ORDER BY id")
                )
            ).all()
            kept = (await session.execute(text("SELECT moment_id FROM signups"))).scalars().all()
    finally:
        await db.dispose()
    numbers = {moment_id: occurrence for moment_id, occurrence, _ in rows}
    cancelled = {moment_id for moment_id, _, cancelled_at in rows if cancelled_at is not None}
    assert numbers == {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: -6, 7: -7, 8: 0}
    assert cancelled == {3, 6}  # the ghost with a sign-up stays for the organiser to cancel
    assert sorted(kept) == [1, 7]  # rebuilding the table on SQLite deletes no sign-ups


async def test_upgrade_folds_double_sign_ups_and_grants(db_url: str) -> None:
    """0011: one sign-up per person and date (the active one stays, else the newest) and one
    active grant per person, role and wijk (the oldest stays, the others end)."""
    await asyncio.to_thread(migrate.upgrade, db_url, "0009")
    at = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    db = Database(db_url)
    try:
        async with db.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO wijken (id, slug, name, active) VALUES (1, 'noord', 'Noord', true)"
                )
            )
            residents = table(
                "residents", column("id"), column("telegram_id"), column("language"),
                column("created_at", UTCDateTime()),
            )  # fmt: skip
            for resident_id in (1, 2):
                await session.execute(
                    insert(residents).values(
                        id=resident_id, telegram_id=1000 + resident_id, language="nl",
                        created_at=at,
                    )
                )  # fmt: skip
            series = table(
                "series",
                *(column(name) for name in ("id", "wijk_id", "kind", "place", "repeat")),
                *(column(name) for name in ("duration_minutes", "created_by")),
                column("first_starts_at", UTCDateTime()),
                column("created_at", UTCDateTime()),
            )
            await session.execute(
                insert(series).values(
                    id=1, wijk_id=1, kind="koffie", place="Buurthuis", repeat="none",
                    duration_minutes=90, created_by=4001, first_starts_at=at, created_at=at,
                )
            )  # fmt: skip
            moments = table(
                "moments",
                *(column(name) for name in ("id", "series_id", "occurrence", "wijk_id", "kind")),
                column("place"),
                column("duration_minutes"),
                column("starts_at", UTCDateTime()),
            )
            await session.execute(
                insert(moments).values(
                    id=1, series_id=1, occurrence=0, wijk_id=1, kind="koffie",
                    place="Buurthuis", duration_minutes=90, starts_at=at,
                )
            )  # fmt: skip
            signups = table(
                "signups",
                *(column(name) for name in ("id", "moment_id", "resident_id", "first_name")),
                column("guests"),
                column("created_at", UTCDateTime()),
                column("cancelled_at", UTCDateTime()),
            )
            for signup_id, resident_id, cancelled in (
                (1, 1, None),
                (2, 1, at),
                (3, 2, at),
                (4, 2, at),
            ):
                await session.execute(
                    insert(signups).values(
                        id=signup_id, moment_id=1, resident_id=resident_id, first_name="Anna",
                        guests=0, created_at=at, cancelled_at=cancelled,
                    )
                )  # fmt: skip
            roles = table(
                "roles",
                *(column(name) for name in ("id", "telegram_id", "role", "wijk_id")),
                column("display_name"),
                column("granted_at", UTCDateTime()),
                column("revoked_at", UTCDateTime()),
            )
            for grant_id, revoked in ((1, None), (2, None), (3, at)):
                await session.execute(
                    insert(roles).values(
                        id=grant_id, telegram_id=2001, role="wijkagent", wijk_id=1,
                        display_name="Sanne", granted_at=at, revoked_at=revoked,
                    )
                )  # fmt: skip
        await asyncio.to_thread(migrate.upgrade, db_url)
        async with db.begin() as session:
            left = (await session.execute(text("SELECT id FROM signups ORDER BY id"))).all()
            grants = (
                await session.execute(text("SELECT id, revoked_at IS NULL FROM roles ORDER BY id"))
            ).all()
            # Now the database itself refuses a second active grant.
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    await session.execute(
                        insert(roles).values(
                            id=4, telegram_id=2001, role="wijkagent", wijk_id=1,
                            display_name="Sanne", granted_at=at, revoked_at=None,
                        )
                    )  # fmt: skip
    finally:
        await db.dispose()
    assert [row[0] for row in left] == [1, 4]  # Anna's active one; the newest of Bram's
    assert [(row[0], bool(row[1])) for row in grants] == [(1, True), (2, False), (3, False)]


async def test_upgrade_hashes_the_codes_given_out(db_url: str) -> None:
    """0013: invite and mediation codes are stored as their SHA-256; links and cards given out
    before keep working."""
    await asyncio.to_thread(migrate.upgrade, db_url, "0012")
    at = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    db = Database(db_url)
    try:
        async with db.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO wijken (id, slug, name, active) VALUES (1, 'noord', 'Noord', true)"
                )
            )
            invites = table(
                "invites",
                *(column(name) for name in ("id", "code", "role", "wijk_id", "created_by")),
                column("created_at", UTCDateTime()),
                column("expires_at", UTCDateTime()),
            )
            await session.execute(
                insert(invites).values(
                    id=1, code="old-link-code", role="wijkagent", wijk_id=1, created_by=1,
                    created_at=at, expires_at=at + dt.timedelta(days=3),
                )
            )  # fmt: skip
            cases = table(
                "mediation_cases",
                *(column(name) for name in ("id", "reference", "wijk_id", "stage", "topic")),
                *(column(name) for name in ("duration", "talked", "on_behalf")),
                column("created_at", UTCDateTime()),
                column("updated_at", UTCDateTime()),
            )
            await session.execute(
                insert(cases).values(
                    id=1, reference="BM-2026-0001", wijk_id=1, stage="intake", topic="geluid",
                    duration="kort", talked="nee", on_behalf=False, created_at=at, updated_at=at,
                )
            )  # fmt: skip
            parties = table(
                "mediation_parties",
                *(column(name) for name in ("id", "case_id", "number", "status", "contact_via")),
                column("invite_code"),
                column("invite_expires_at", UTCDateTime()),
            )
            await session.execute(
                insert(parties).values(
                    id=1, case_id=1, number=2, status="invited", contact_via="bot",
                    invite_code="ABCD2345", invite_expires_at=at + dt.timedelta(days=30),
                )
            )  # fmt: skip
        await asyncio.to_thread(migrate.upgrade, db_url)
        async with db.begin() as session:
            stored = (
                await session.execute(text("SELECT code_hash FROM invites")),
                await session.execute(
                    text("SELECT invite_code_hash, invite_failures FROM mediation_parties")
                ),
            )
            invite_hash, party_row = stored[0].scalar_one(), stored[1].one()
    finally:
        await db.dispose()
    assert invite_hash == code_hash("old-link-code")
    assert tuple(party_row) == (code_hash("ABCD2345"), 0)


def test_a_new_migration_made_from_the_template_imports(tmp_path: Path, sqlite_url: str) -> None:
    """``alembic revision`` writes new migrations from script.py.mako: what it writes must import
    under the installed package names (a migration importing ``storage.models`` would fail on a
    maintainer's first ``alembic upgrade``)."""
    import importlib.util

    from alembic import command

    config = migrate.alembic_config(sqlite_url)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(tmp_path))
    command.revision(config, message="tried", rev_id="tried")
    [written] = list(tmp_path.glob("tried_*.py"))
    spec = importlib.util.spec_from_file_location("tried_migration", written)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.revision == "tried"
    assert callable(module.upgrade) and callable(module.downgrade)
