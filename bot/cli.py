"""The ``buurtsignaal`` command: run, shell, migrate, check-config."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from telegram import Update

from bot.settings import DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings
from storage import migrate
from storage.db import Database

log = logging.getLogger("buurtsignaal")

NO_TOKEN = """\
No Telegram bot token is configured, so the bot cannot go online.

To get one: open Telegram, talk to @BotFather, send /newbot and follow the steps.
Then put the token in {config} under [telegram] as token = "...",
or set the environment variable BUURTSIGNAAL_TELEGRAM__TOKEN.

Just want to try the bot? `buurtsignaal shell` runs it locally against the built-in
emulator: no token and no network needed.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buurtsignaal",
        description="Buurtsignaal: a Telegram bot for early signals in the neighbourhood.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"settings file (TOML); default {DEFAULT_CONFIG_PATH}",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the bot (long polling)")
    run.add_argument(
        "--no-migrate",
        action="store_true",
        help="refuse to start when the database is behind instead of migrating it",
    )
    commands.add_parser("shell", help="chat with the bot in this terminal (local emulator)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("check-config", help="validate the settings and print them")
    retention = commands.add_parser(
        "retention", help="remove personal data whose retention period has ended"
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="only list what the next run would remove"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
        return 0
    if args.command == "migrate":
        migrate.upgrade(settings.database.url)
        print(f"database is up to date (revision {migrate.head_revision()})")
        return 0
    if args.command == "retention":
        return asyncio.run(_retention(settings, dry_run=args.dry_run))
    if args.command == "shell":
        from bot.shell import run_shell

        return asyncio.run(run_shell(settings))
    return run(settings, config=args.config or DEFAULT_CONFIG_PATH, migrate_db=not args.no_migrate)


async def _retention(settings: Settings, *, dry_run: bool) -> int:
    """Run (or list) the retention removals and print them, without the removed content."""
    from conversations.privacy import retention

    db = Database(settings.database.url)
    try:
        removals = await retention(db, settings, now=dt.datetime.now(dt.UTC), dry_run=dry_run)
    finally:
        await db.dispose()
    verb = "would remove" if dry_run else "removed"
    for removal in removals:
        print(f"{verb} {removal.kind}: {removal.reference} ({removal.detail})")
    print(f"{len(removals)} item(s) {verb}")
    return 0


def database_behind(settings: Settings) -> bool:
    """True when the database is not at the newest migration."""

    async def current() -> str | None:
        db = Database(settings.database.url)
        try:
            return await migrate.current_revision(db.engine)
        finally:
            await db.dispose()

    return asyncio.run(current()) != migrate.head_revision()


def run(settings: Settings, *, config: Path, migrate_db: bool = True) -> int:
    """Run the bot with long polling until interrupted."""
    if settings.telegram.token is None:
        print(NO_TOKEN.format(config=config), file=sys.stderr)
        return 2
    if database_behind(settings):
        if not migrate_db:
            print(
                "The database schema is behind this version of Buurtsignaal.\n"
                "Run `buurtsignaal migrate` first (make a backup before you do).",
                file=sys.stderr,
            )
            return 3
        log.info("migrating the database to the newest schema")
        migrate.upgrade(settings.database.url)
    from bot.app import build_application

    application = build_application(settings)
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
