"""The console script, run as a real process: migrate, and run with long polling."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import select

from buurtsignaal.bot import cli, logs
from buurtsignaal.bot.emulator import BotApiEmulator
from buurtsignaal.storage import migrate
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.models import InboxUpdate, Resident

TOKEN = "7012345678:AAHf3kQ9x_Zt8wLmN2pQrS5tUvWxYz01234"
SECRET = TOKEN.partition(":")[2]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    db = tmp_path / "buurtsignaal.bot.db"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n'
        '[[wijken]]\nname = "Schilderswijk"\nslug = "schilderswijk"\n',
        encoding="utf-8",
    )
    return path


async def _cli(
    *args: str, env: dict[str, str] | None = None, stderr: BinaryIO | None = None
) -> asyncio.subprocess.Process:
    """Start the console script; its stderr goes to a pipe, or to a file (for long logs)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "buurtsignaal.bot.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if stderr is None else stderr,
        env={**os.environ, **(env or {})},
    )


async def test_migrate_command(tmp_path: Path) -> None:
    config = _config(tmp_path)
    process = await _cli("--config", str(config), "migrate")
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "up to date" in out.decode()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'buurtsignaal.bot.db'}")
    try:
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_run_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    config = _config(tmp_path)
    process = await _cli(
        "--config", str(config), "run", "--no-migrate", env={"BUURTSIGNAAL_TELEGRAM__TOKEN": TOKEN}
    )
    _, err = await process.communicate()
    assert process.returncode == 3
    assert "buurtsignaal migrate" in err.decode()


async def test_run_migrates_and_answers_over_long_polling(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = tmp_path / "stderr.log"
    with log.open("wb") as sink:
        await _run_and_chat(config, sink)
    err = log.read_text(encoding="utf-8")
    assert "Traceback" not in err
    # Even at debug level, where the HTTP library logs every request URL, the token is hidden.
    assert "/bot[redacted]/getUpdates" in err
    assert SECRET not in err
    # The database was migrated by `run` and the resident stored.
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'buurtsignaal.bot.db'}")
    try:
        async with db.begin() as session:
            ids = (await session.scalars(select(Resident.telegram_id))).all()
    finally:
        await db.dispose()
    assert list(ids) == [1001]


async def _run_and_chat(config: Path, log: BinaryIO) -> None:
    """`buurtsignaal -v run` against the emulator: Anna starts a report; then Ctrl-C."""
    async with BotApiEmulator(token=TOKEN) as emu:
        emu.add_user(1001, "Anna")
        process = await _cli(
            "-v",
            "--config",
            str(config),
            "run",
            env={
                "BUURTSIGNAAL_TELEGRAM__TOKEN": TOKEN,
                "BUURTSIGNAAL_TELEGRAM__BASE_URL": emu.base_url,
                "BUURTSIGNAAL_TELEGRAM__BASE_FILE_URL": emu.base_file_url,
            },
            stderr=log,
        )
        try:
            await emu.wait_until(lambda: bool(emu.calls_to("getUpdates")), timeout=30)
            emu.text(1001, "/start")
            await emu.wait_until(
                lambda: any("Welkom" in (m.text or "") for m in emu.messages(1001)), timeout=15
            )
            emu.text(1001, "/melden")
            await emu.wait_until(
                lambda: any("in gevaar" in (m.text or "") for m in emu.messages(1001)), timeout=15
            )
        finally:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0


# --- a crash or an update the library cannot read loses nothing and stalls nothing -----------


def _env(emu: BotApiEmulator) -> dict[str, str]:
    return {
        "BUURTSIGNAAL_TELEGRAM__TOKEN": TOKEN,
        "BUURTSIGNAAL_TELEGRAM__BASE_URL": emu.base_url,
        "BUURTSIGNAAL_TELEGRAM__BASE_FILE_URL": emu.base_file_url,
    }


async def _stop(process: asyncio.subprocess.Process, how: signal.Signals) -> None:
    """Send the signal and wait for the process to end."""
    process.send_signal(how)
    await asyncio.wait_for(process.communicate(), timeout=30)


async def test_a_killed_bot_answers_every_message_it_had_fetched_once_after_the_restart(
    tmp_path: Path,
) -> None:
    """kill -9 while the bot works through ten messages it already confirmed to Telegram."""
    config = _config(tmp_path)
    people = [1001, 1002, 1003, 1004, 1005]
    async with BotApiEmulator(token=TOKEN) as emu:
        for user_id in people:
            emu.add_user(user_id, f"Bewoner {user_id}")
        with (tmp_path / "first.log").open("wb") as sink:
            process = await _cli("--config", str(config), "run", env=_env(emu), stderr=sink)
            try:
                await emu.wait_until(lambda: bool(emu.calls_to("getUpdates")), timeout=30)
                emu.hold("sendMessage")  # the first answer takes a while
                for text in ("/help", "/privacy"):
                    for user_id in people:
                        emu.text(user_id, text)
                # Telegram was told all ten arrived; the bot is busy with the first.
                await emu.wait_until(
                    lambda: emu.unconfirmed_updates == 0 and emu.held("sendMessage") == 1,
                    timeout=15,
                )
            finally:
                process.kill()
                await process.wait()
        emu.release("sendMessage")
        assert emu.sent == []
        with (tmp_path / "second.log").open("wb") as sink:
            process = await _cli("--config", str(config), "run", env=_env(emu), stderr=sink)
            try:
                await emu.wait_until(lambda: len(emu.sent) >= 2 * len(people), timeout=30)
            finally:
                await _stop(process, signal.SIGTERM)  # systemctl stop
        assert process.returncode == 0
    # Every message answered exactly once, and each person in the order they wrote.
    assert len(emu.sent) == 2 * len(people)
    for user_id in people:
        answers = [m.plain_text.split("\n", 1)[0] for m in emu.messages(user_id)]
        assert answers == ["Wat ik kan", "Wie ziet wat"]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'buurtsignaal.bot.db'}")
    try:
        async with db.begin() as session:
            states = (await session.scalars(select(InboxUpdate.state))).all()
    finally:
        await db.dispose()
    assert list(states) == ["done"] * 2 * len(people)


async def test_an_update_the_library_cannot_read_does_not_stall_the_bot(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = tmp_path / "stderr.log"
    async with BotApiEmulator(token=TOKEN) as emu:
        emu.add_user(1001, "Anna")
        bad = emu.enqueue_raw(
            {"message": {"message_id": 1, "date": "yesterday", "chat": {"id": 1001}, "text": "?"}}
        )
        emu.text(1001, "/help")
        with log.open("wb") as sink:
            process = await _cli("--config", str(config), "run", env=_env(emu), stderr=sink)
            try:
                await emu.wait_until(lambda: bool(emu.messages(1001)), timeout=30)
                # Both confirmed: the bot is not fetching the same batch again and again.
                await emu.wait_until(lambda: emu.unconfirmed_updates == 0, timeout=15)
            finally:
                await _stop(process, signal.SIGINT)
        assert process.returncode == 0
    assert emu.messages(1001)[0].plain_text.startswith("Wat ik kan")
    err = log.read_text(encoding="utf-8")
    assert err.count(f"update {bad['update_id']} set aside") == 1
    trouble = [line for line in err.splitlines() if " INFO " not in line]
    assert len(trouble) == 1, err


# --- going online: a rejected token or no network gives one clear line, never the token -------


def _closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def _restore_http_log_levels() -> Iterator[None]:
    """`-v` turns on the HTTP libraries' debug logs; put their levels back afterwards."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.usefixtures("_restore_http_log_levels")
@pytest.mark.parametrize(
    ("server", "exit_code", "message"),
    [
        ("401", 2, "Telegram rejected the token (Unauthorized): check telegram.token"),
        ("404", 2, "Telegram rejected the token (Not Found): check telegram.token"),
        ("502", 1, "Cannot reach Telegram at 127.0.0.1:"),
        ("refused", 1, "Cannot reach Telegram at 127.0.0.1:"),
    ],
)
async def test_a_failed_start_says_one_line_and_never_shows_the_token(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    server: str,
    exit_code: int,
    message: str,
) -> None:
    monkeypatch.setattr(cli, "START_ATTEMPTS", 3)
    monkeypatch.setattr(cli, "START_DELAY", 0.01)
    caplog.set_level(logging.DEBUG)
    # The emulator answers 401 to a token it does not know, and 404 or 502 when told to.
    async with BotApiEmulator(token=TOKEN if server in ("404", "502") else "1:OTHER") as emu:
        if server in ("404", "502"):
            emu.fail_next("getMe", status=int(server), times=10)
        base_url = emu.base_url if server != "refused" else f"http://127.0.0.1:{_closed_port()}/bot"
        monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", TOKEN)
        monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__BASE_URL", base_url)
        code = await asyncio.to_thread(cli.main, ["-v", "--config", str(_config(tmp_path)), "run"])
        calls = len(emu.calls_to("getMe"))
    out, err = capsys.readouterr()
    assert code == exit_code
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(message)
    retries = [r for r in caplog.records if "trying again" in r.getMessage()]
    if exit_code == 1:  # network trouble: retried with backoff, each attempt logged briefly
        assert [r.levelno for r in retries] == [logging.WARNING, logging.WARNING]
        assert all(not r.exc_info and "\n" not in r.getMessage() for r in retries)
        assert calls == (3 if server == "502" else 0)
    else:  # a rejected token is final
        assert (retries, calls) == ([], 1)
    if server != "refused":  # the request URLs were logged (at debug level), without the token
        assert any("/getMe" in r.getMessage() for r in caplog.records if r.name == "httpx")
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "[redacted]" in logged
    for text in (out, err, logged):
        assert SECRET not in text


async def test_a_rejected_token_as_a_process(tmp_path: Path) -> None:
    async with BotApiEmulator(token="1:OTHER") as emu:
        process = await _cli(
            "-v",
            "--config",
            str(_config(tmp_path)),
            "run",
            env={
                "BUURTSIGNAAL_TELEGRAM__TOKEN": TOKEN,
                "BUURTSIGNAAL_TELEGRAM__BASE_URL": emu.base_url,
            },
        )
        out, err = await process.communicate()
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert lines[-1].startswith("Telegram rejected the token (Unauthorized)")
    assert "Traceback" not in err.decode()
    assert SECRET not in out.decode() + err.decode()


def test_redaction_covers_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("some.library")
    with logs.redacting(logs.token_secrets(TOKEN)):
        try:
            raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/getMe failed")
        except RuntimeError:
            log.exception("request to %s failed", f"/bot{TOKEN}/getMe")
        log.error("only the secret part: %s", SECRET)
    log.error("after the run: %s", "not redacted any more")
    assert SECRET not in caplog.text
    assert caplog.text.count("[redacted]") == 3
    assert "RuntimeError: POST https://api.telegram.org/bot[redacted]/getMe failed" in caplog.text
    assert "not redacted any more" in caplog.text


# --- the demo and the live bot never share a configuration or a database ----------------------


def test_demo_and_live_never_share_a_configuration_or_a_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "START_ATTEMPTS", 1)
    # `make demo`: the shell creates the demo's configuration and database, and nothing else.
    monkeypatch.setattr(sys, "stdin", io.StringIO("/start\n"))
    assert cli.main(["shell"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Created demo.toml: the demo's own configuration and database.\n")
    assert "Anna> /start\n[Buurtsignaal → Anna]\nWelkom bij Buurtsignaal." in out
    assert {p.name for p in tmp_path.iterdir()} - {"demo.db-wal", "demo.db-shm"} == {
        "demo.toml",
        "demo.db",
    }
    assert "demo = true" in Path("demo.toml").read_text(encoding="utf-8")

    # `run` refuses the demo configuration, and a live configuration on the demo's database.
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", TOKEN)
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__BASE_URL", f"http://127.0.0.1:{_closed_port()}/bot")
    assert cli.main(["--config", "demo.toml", "run"]) == 2
    assert capsys.readouterr().err.startswith("demo.toml is a demo configuration (demo = true)")
    live = '[[wijken]]\nname = "Noord"\nslug = "noord"\n[database]\nurl = "sqlite:///{}"\n'
    Path("config.toml").write_text(live.format("demo.db"), encoding="utf-8")
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "The database sqlite+aiosqlite:///demo.db holds the demo's made-up people" in err

    # The shell refuses a configuration with a token, and one that is not the demo's.
    assert cli.main(["shell"]) == 2
    assert "demo.toml comes with a bot token" in capsys.readouterr().err
    monkeypatch.delenv("BUURTSIGNAAL_TELEGRAM__TOKEN")
    assert cli.main(["shell", "--config", "config.toml"]) == 2
    assert "config.toml is not a demo configuration" in capsys.readouterr().err

    # The live bot's database (marked when `run` starts) is never the demo's.
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", TOKEN)
    Path("config.toml").write_text(live.format("live.db"), encoding="utf-8")
    assert cli.main(["run"]) == 1  # nobody answers; the database is marked live all the same
    assert "Cannot reach Telegram" in capsys.readouterr().err
    monkeypatch.delenv("BUURTSIGNAAL_TELEGRAM__TOKEN")
    demo = Path("demo.toml").read_text(encoding="utf-8")
    Path("demo.toml").write_text(demo.replace("demo.db", "live.db"), encoding="utf-8")
    assert cli.main(["shell"]) == 2
    assert "The database sqlite+aiosqlite:///live.db belongs to the live bot" in (
        capsys.readouterr().err
    )
    # Logging set up for a command is taken down again: no filter of ours stays on handlers
    # that are not ours (in a test run, a count folded in one test was written in another).
    assert not [
        f
        for handler in logging.getLogger().handlers
        for f in handler.filters
        if isinstance(f, logs.FoldRepeats | logs.RedactSecrets)
    ]
