"""The package builds quietly and ships its data: catalogs, word lists, migrations, the demo."""

from __future__ import annotations

import subprocess
import sys
import tomllib
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
    # setuptools' "Package 'buurtsignaal.bot.locales' is absent ..."
    assert "arning" not in output, output
    [wheel] = tmp_path.glob("buurtsignaal-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "buurtsignaal/bot/demo.toml",
        "buurtsignaal/bot/locales/messages.pot",
        "buurtsignaal/bot/locales/nl/LC_MESSAGES/messages.po",
        "buurtsignaal/bot/locales/en/LC_MESSAGES/messages.po",
        "buurtsignaal/bot/locales/ar/LC_MESSAGES/messages.po",
        "buurtsignaal/bot/locales/pl/LC_MESSAGES/messages.po",
        "buurtsignaal/storage/data/profiling_nl.txt",
        "buurtsignaal/storage/data/profiling_en.txt",
        "buurtsignaal/storage/data/profiling_pl.txt",
        "buurtsignaal/storage/data/profiling_ar.txt",
        "buurtsignaal/storage/migrations/script.py.mako",
        "buurtsignaal/storage/migrations/versions/0001_initial_schema.py",
    ):
        assert shipped in names
    assert not any(name.startswith("tests/") for name in names)


def test_the_bot_starts_without_matplotlib() -> None:
    """matplotlib is imported when a chart is drawn, not when the bot is built (it costs about
    half a second and 40 MB at start)."""
    code = (
        "import sys, buurtsignaal.bot.app, buurtsignaal.bot.cli; print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_every_folder_that_ships_files_is_listed_under_its_installed_name() -> None:
    """pyproject lists the packages by hand (they install as buurtsignaal.*, mapped from the
    top-level folders): a new folder left out of that list would silently not be installed."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {
        "buurtsignaal." + ".".join(path.relative_to(ROOT).parts)
        for top in ("bot", "conversations", "storage")
        for path in [ROOT / top, *(ROOT / top).rglob("*")]
        if path.is_dir() and path.name != "__pycache__" and any(path.iterdir())
    }
    assert listed == folders
    assert setuptools["package-dir"] == {
        f"buurtsignaal.{top}": top for top in ("bot", "conversations", "storage")
    }


def test_nothing_is_imported_under_a_top_level_name_of_its_own() -> None:
    """Everything is imported as buurtsignaal.*: a stray `import bot` would load a second copy
    of a module (or another distribution's `bot`) beside the installed one."""
    code = (
        "import sys, buurtsignaal.bot.app, buurtsignaal.bot.cli, buurtsignaal.bot.shell;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('bot', 'conversations', 'storage')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ROOT.parent,  # not the checkout, where the folders are importable by their own names
    )
    assert result.stdout.strip() == "[]"
