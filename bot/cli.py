"""The ``buurtsignaal`` command: run, shell, signal-gateway, migrate, check-config."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError

from buurtsignaal.bot import logs
from buurtsignaal.bot.settings import (
    DEFAULT_CONFIG_PATH,
    DEMO_CONFIG_PATH,
    TELEGRAM_API,
    ConfigError,
    Settings,
    load_settings,
    mask_password,
)
from buurtsignaal.storage import migrate
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.purpose import Purpose, claim

if TYPE_CHECKING:
    from buurtsignaal.bot.context import BuurtApplication

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
    _common_options(parser, default=None)
    # The same options after the sub-command (`buurtsignaal run --config x.toml`); there they
    # only count when given, so they never undo the ones given before it.
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", parents=[common], help="run the bot (long polling)")
    run.add_argument(
        "--no-migrate",
        action="store_true",
        help="refuse to start when the database is behind instead of migrating it",
    )
    commands.add_parser(
        "shell",
        parents=[common],
        help=f"chat with the bot in this terminal (local emulator; default {DEMO_CONFIG_PATH})",
    )
    commands.add_parser(
        "signal-gateway",
        parents=[common],
        help="serve Signal residents through signal-cli (the [signal] section)",
    )
    commands.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    commands.add_parser(
        "check-config", parents=[common], help="validate the settings, print them and warn"
    )
    from buurtsignaal.bot import bench

    bench.add_arguments(
        commands.add_parser(
            "bench",
            help="measure the bot against the local emulator under load (prints one table)",
        )
    )
    retention = commands.add_parser(
        "retention",
        parents=[common],
        help="remove personal data whose retention period has ended",
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="only list what the next run would remove"
    )
    commands.add_parser(
        "outbox",
        parents=[common],
        help="how many messages wait, were sent or failed; the failed ones with their error",
    )
    return parser


def _common_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    """--config and -v, accepted before and after the sub-command."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help=f"settings file (TOML); default {DEFAULT_CONFIG_PATH} ({DEMO_CONFIG_PATH} for shell)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if default is None else default,
        help="log more",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    with logs.configured(verbose=args.verbose):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    """Load the settings and run the command, with logging configured."""
    if args.command == "bench":  # its own settings and databases, in a temporary folder
        from buurtsignaal.bot import bench

        return bench.bench(bench.options_from(args))
    if args.command == "shell" and args.config is None:
        args.config = DEMO_CONFIG_PATH
        if not DEMO_CONFIG_PATH.exists():
            DEMO_CONFIG_PATH.write_text(
                resources.files("buurtsignaal.bot")
                .joinpath("demo.toml")
                .read_text(encoding="utf-8"),
                encoding="utf-8",
            )
            print(f"Created {DEMO_CONFIG_PATH}: the demo's own configuration and database.")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    token = settings.telegram.token
    with (
        logs.private(
            message_contents=settings.logging.message_contents,
            database_echo=settings.database.echo,
        ),
        logs.redacting(logs.token_secrets(token.get_secret_value() if token else None)),
    ):
        try:
            return _command(args, settings)
        except Exception:
            # Logged rather than printed by Python, so that the traceback is redacted too.
            log.exception("buurtsignaal %s stopped on an unexpected error", args.command)
            return 1


def _command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen sub-command with valid settings."""
    if args.command == "check-config":
        return check_config(settings)
    if args.command == "migrate":
        migrate.upgrade(settings.database.url)
        print(f"database is up to date (revision {migrate.head_revision()})")
        return 0
    if args.command == "retention":
        return asyncio.run(_retention(settings, dry_run=args.dry_run))
    if args.command == "outbox":
        return asyncio.run(_outbox(settings))
    if args.command == "shell":
        return shell(settings, config=args.config)
    if args.command == "signal-gateway":
        return signal_gateway(settings, config=args.config or DEFAULT_CONFIG_PATH)
    return run(settings, config=args.config or DEFAULT_CONFIG_PATH, migrate_db=not args.no_migrate)


def signal_gateway(settings: Settings, *, config: Path) -> int:
    """Run the Signal gateway until SIGINT or SIGTERM."""
    if settings.signal is None:
        print(
            f"{config} has no [signal] section, so there is no Signal account to serve. "
            "See config.example.toml and the README (Signal).",
            file=sys.stderr,
        )
        return 2
    from buurtsignaal.bot.signal_gateway import serve as serve_gateway

    async def until_stopped() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(serve_gateway(settings))
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_stopped())
    except OSError as exc:  # the port is taken, the state file cannot be written
        print(f"The Signal gateway cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def shell(settings: Settings, *, config: Path) -> int:
    """Chat with the bot in this terminal, only on a demo configuration and database."""
    if not settings.demo:
        print(
            f"{config} is not a demo configuration (demo = true), so `shell` will not use it: "
            "the shell must never write made-up people and reports into a live database. "
            f"Run `buurtsignaal shell` without --config to use {DEMO_CONFIG_PATH}.",
            file=sys.stderr,
        )
        return 2
    if settings.telegram.token is not None:
        print(
            f"{config} comes with a bot token (telegram.token or BUURTSIGNAAL_TELEGRAM__TOKEN), "
            "so `shell` will not use it: a demo has none and never goes online. Remove the "
            "token from the demo configuration or unset the variable, and try again.",
            file=sys.stderr,
        )
        return 2
    from buurtsignaal.bot.shell import quiet_library_logs, run_shell

    with quiet_library_logs():
        migrate.upgrade(settings.database.url)
    if asyncio.run(claim_database(settings, "demo")) is not None:
        print(
            f"The database {mask_password(settings.database.url)} belongs to the live bot "
            "(`buurtsignaal run` used it), so `shell` will not use it. Give the demo a database "
            f"of its own: database.url in {config}, e.g. sqlite+aiosqlite:///demo.db.",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(run_shell(settings))


async def claim_database(settings: Settings, purpose: Purpose) -> Purpose | None:
    """Mark the database as live or demo; the other purpose when it is already marked so."""
    db = Database(settings.database.url)
    try:
        async with db.begin() as session:
            return await claim(session, purpose)
    finally:
        await db.dispose()


def check_config(settings: Settings) -> int:
    """Print the settings (secrets masked), then every warning and error; 2 when unusable."""
    print(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
    warnings, errors = settings.warnings(), settings.errors()
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"The configuration cannot work: {len(errors)} error(s).", file=sys.stderr)
        return 2
    if warnings:
        print(f"The configuration is usable, with {len(warnings)} warning(s).", file=sys.stderr)
    else:
        print("The configuration is OK.", file=sys.stderr)
    return 0


async def _retention(settings: Settings, *, dry_run: bool) -> int:
    """Run (or list) the retention removals and print them, without the removed content."""
    from buurtsignaal.conversations.privacy import retention

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


async def _outbox(settings: Settings) -> int:
    """Print the outbox's counts and its failed messages (never their text)."""
    from buurtsignaal.storage import outbox

    db = Database(settings.database.url)
    try:
        async with db.begin() as session:
            counts = await outbox.counts(session)
            failed = await outbox.failed(session)
    finally:
        await db.dispose()
    print(", ".join(f"{state}: {counts.get(state, 0)}" for state in ("pending", "sent", "failed")))
    for row in failed:
        when = row.sent_at.isoformat(timespec="seconds") if row.sent_at else "?"
        print(f"failed #{row.id} {row.kind} to chat {row.chat_id} at {when}: {row.error}")
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
    if settings.demo:
        print(
            f"{config} is a demo configuration (demo = true), so `run` will not use it. Go live "
            "with a configuration of its own: copy config.example.toml to config.toml "
            "(README, Going live).",
            file=sys.stderr,
        )
        return 2
    if settings.telegram.token is None:
        print(NO_TOKEN.format(config=config), file=sys.stderr)
        return 2
    if settings.errors():
        for error in settings.errors():
            print(f"Cannot start: {error}.", file=sys.stderr)
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
    if asyncio.run(claim_database(settings, "live")) is not None:
        print(
            f"The database {mask_password(settings.database.url)} holds the demo's made-up "
            "people and reports (`buurtsignaal shell` used it), so `run` will not use it. "
            "Set database.url to a database of its own (README, Going live).",
            file=sys.stderr,
        )
        return 2
    from buurtsignaal.bot.app import build_application

    application = build_application(settings)
    # Go online first (with retries and one clear line when that fails), in the event loop
    # serve will use; it then finds the application initialised and starts polling.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        problem = loop.run_until_complete(go_online(application, settings))
    except KeyboardInterrupt:
        problem = StartProblem(130, "Interrupted while connecting to Telegram.")
    if problem is not None:
        loop.run_until_complete(_close(application))
        loop.close()
        asyncio.set_event_loop(None)
        print(problem.message, file=sys.stderr)
        return problem.exit_code
    try:
        loop.run_until_complete(serve(application))
    except TelegramError as exc:
        print(f"Telegram refused the start of the bot: {_reason(exc)}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # where the loop cannot catch signals (Windows)
        pass
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(application: BuurtApplication) -> None:
    """Long polling through the inbox (bot.inbox) until SIGINT or SIGTERM, then stop cleanly:
    what was fetched is handled or stays in the inbox for the next start."""
    from buurtsignaal.bot.inbox import polling

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with polling(application):
            log.info("the bot is online; stop it with Ctrl-C or SIGTERM")
            await stop.wait()
            log.info("stopping: handling what was received, then shutting down")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


# Network trouble at start: this many attempts, waiting START_DELAY seconds after the first
# failure and twice as long after each next one (2 + 4 + 8 + 16 s). A service manager restarts
# the bot after that (see deploy/buurtsignaal.service).
START_ATTEMPTS = 5
START_DELAY = 2.0


@dataclasses.dataclass(frozen=True)
class StartProblem:
    """Why the bot could not go online: one line for the operator, and the exit code."""

    exit_code: int
    message: str


async def go_online(application: BuurtApplication, settings: Settings) -> StartProblem | None:
    """Initialise the application (which asks Telegram who the bot is); None when online."""
    delay = START_DELAY
    where = urlsplit(settings.telegram.base_url).netloc
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            await application.initialize()
            return None
        except InvalidToken as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, TelegramError) else exc
            hint = "check telegram.token / BUURTSIGNAAL_TELEGRAM__TOKEN"
            if settings.telegram.base_url != TELEGRAM_API:
                hint += f" and telegram.base_url ({settings.telegram.base_url})"
            return StartProblem(2, f"Telegram rejected the token ({_reason(cause)}): {hint}.")
        except BadRequest as exc:
            return StartProblem(1, f"Telegram refused the start of the bot: {_reason(exc)}.")
        except NetworkError as exc:  # also TimedOut
            if attempt == START_ATTEMPTS:
                return StartProblem(
                    1,
                    f"Cannot reach Telegram at {where} ({_reason(exc)}), tried {attempt} times: "
                    "check the network connection (and telegram.base_url), then start again.",
                )
            log.warning(
                "cannot reach Telegram at %s (%s); trying again in %g s (attempt %d of %d)",
                where,
                _reason(exc),
                delay,
                attempt,
                START_ATTEMPTS,
            )
            await asyncio.sleep(delay)
            delay *= 2
        except TelegramError as exc:
            return StartProblem(1, f"Telegram refused the start of the bot: {_reason(exc)}.")
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: TelegramError) -> str:
    """The short reason of a Telegram error (without the library's prefixes)."""
    return exc.message.removeprefix("httpx.").rstrip(".") or type(exc).__name__


async def _close(application: BuurtApplication) -> None:
    """Release what a failed start opened: the HTTP clients and the database connections."""
    await application.bot.shutdown()
    await application.services.db.dispose()


if __name__ == "__main__":
    sys.exit(main())
