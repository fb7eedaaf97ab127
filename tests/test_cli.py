"""The console script, run as a real process: migrate, and run with long polling."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from bot.emulator import BotApiEmulator
from storage import migrate
from storage.db import Database
from storage.models import Resident

TOKEN = "7012345678:AAHf3kQ9x_Zt8wLmN2pQrS5tUvWxYz01234"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    db = tmp_path / "bot.db"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n'
        '[[wijken]]\nname = "Schilderswijk"\nslug = "schilderswijk"\n',
        encoding="utf-8",
    )
    return path


async def _cli(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def test_migrate_command(tmp_path: Path) -> None:
    config = _config(tmp_path)
    process = await _cli("--config", str(config), "migrate")
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "up to date" in out.decode()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
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
    async with BotApiEmulator(token=TOKEN) as emu:
        emu.add_user(1001, "Anna")
        process = await _cli(
            "--config",
            str(config),
            "run",
            env={
                "BUURTSIGNAAL_TELEGRAM__TOKEN": TOKEN,
                "BUURTSIGNAAL_TELEGRAM__BASE_URL": emu.base_url,
                "BUURTSIGNAAL_TELEGRAM__BASE_FILE_URL": emu.base_file_url,
            },
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
            _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, err.decode()
    # The database was migrated by `run` and the resident stored.
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        async with db.begin() as session:
            ids = (await session.scalars(select(Resident.telegram_id))).all()
    finally:
        await db.dispose()
    assert list(ids) == [1001]
