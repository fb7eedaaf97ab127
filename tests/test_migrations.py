"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage import migrate
from storage.db import Base, Database


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
    finally:
        await db.dispose()
    assert journal == "wal"
    assert foreign_keys == 1


async def test_fresh_database_is_behind(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        assert await migrate.current_revision(db.engine) is None
    finally:
        await db.dispose()
