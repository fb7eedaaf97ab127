"""The package builds quietly and ships its data: catalogs, word lists, migrations, the demo."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_builds_without_warnings_and_holds_the_data_files(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    output = build.stdout + build.stderr
    assert "arning" not in output, output  # setuptools' "Package 'bot.locales' is absent ..."
    [wheel] = tmp_path.glob("buurtsignaal-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "bot/demo.toml",
        "bot/locales/messages.pot",
        "bot/locales/nl/LC_MESSAGES/messages.po",
        "bot/locales/en/LC_MESSAGES/messages.po",
        "bot/locales/ar/LC_MESSAGES/messages.po",
        "bot/locales/pl/LC_MESSAGES/messages.po",
        "storage/data/profiling_nl.txt",
        "storage/data/profiling_en.txt",
        "storage/data/profiling_pl.txt",
        "storage/data/profiling_ar.txt",
        "storage/migrations/script.py.mako",
        "storage/migrations/versions/0001_initial_schema.py",
    ):
        assert shipped in names
    assert not any(name.startswith("tests/") for name in names)


def test_the_bot_starts_without_matplotlib() -> None:
    """matplotlib is imported when a chart is drawn, not when the bot is built (it costs about
    half a second and 40 MB at start)."""
    code = "import sys, bot.app, bot.cli; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
