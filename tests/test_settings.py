"""Settings: TOML plus environment, refused loudly when wrong, documented in the example."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from buurtsignaal.bot.cli import main
from buurtsignaal.bot.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
REAL_LOOKING_TOKEN = "7012345678:AAHf3kQ9x_Zt8wLmN2pQrS5tUvWxYz01234"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.timezone == "Europe/Amsterdam"
    assert settings.database.url.startswith("sqlite+aiosqlite:///")
    assert settings.telegram.base_url == "https://api.telegram.org/bot"
    assert settings.telegram.token is None


def test_toml_and_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        'admins = [1]\n[database]\nurl = "sqlite:///from-file.db"\n'
        '[[wijken]]\nname = "Noord"\nslug = "noord"\ndigest_time = "07:45"\n',
    )
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", REAL_LOOKING_TOKEN)
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__BASE_URL", "http://localhost:8081/bot")
    monkeypatch.setenv("BUURTSIGNAAL_DATABASE__URL", "postgresql://u:secret@db/bs")
    settings = load_settings(path)
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == REAL_LOOKING_TOKEN
    assert settings.telegram.base_url == "http://localhost:8081/bot"
    assert settings.database.url == "postgresql+asyncpg://u:secret@db/bs"
    assert settings.wijken[0].digest_time.strftime("%H:%M") == "07:45"
    masked = settings.masked()
    assert REAL_LOOKING_TOKEN not in str(masked)
    assert "secret" not in masked["database"]["url"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 'blue'\n", "colour"),
        ("[telegram]\ntokn = 'x'\n", "telegram.tokn"),
        ("timezone = 'Mars/Olympus'\n", "timezone"),
        ("admins = ['jan']\n", "admins.0"),
        ("[[wijken]]\nname = 'Noord'\nslug = 'Noord Oost'\n", "wijken.0.slug"),
        ("[telegram]\ntoken = 'YOUR_TOKEN_HERE'\n", "telegram.token"),
        ("[telegram]\ntoken = '123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11'\n", "telegram.token"),
        ("[telegram]\ntoken = 'hello'\n", "telegram.token"),
        ("[database]\nurl = 'mysql://x'\n", "database.url"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text))
    assert f"  {key}:" in str(error.value)


def test_duplicate_wijk_slugs_are_refused(tmp_path: Path) -> None:
    text = "[[wijken]]\nname = 'A'\nslug = 'a'\n[[wijken]]\nname = 'B'\nslug = 'a'\n"
    with pytest.raises(ConfigError, match="slug used more than once: a"):
        load_settings(write(tmp_path, text))


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert [w.slug for w in settings.wijken] == ["schilderswijk", "transvaal"]


def _fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            names |= _fields(nested[0], f"{prefix}{name}.")
        else:
            names.add(prefix + name)
    return names


def _documented(text: str) -> set[str]:
    """Every key the example sets or shows commented out (``# token = ""``), with its section."""
    names: set[str] = set()
    section = ""
    for line in text.splitlines():
        stripped = line.strip().removeprefix("# ")
        if stripped.startswith("["):
            section = stripped.strip("[]") + "."
        elif " = " in stripped and stripped.split(" = ")[0].isidentifier():
            names.add(section + stripped.split(" = ")[0])
    return names


def test_every_setting_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    tomllib.loads(text)  # it must stay valid TOML
    documented = _documented(text)
    missing = _fields(Settings) - documented
    assert not missing, f"add these keys to config.example.toml: {sorted(missing)}"


def test_every_example_key_has_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    seen_in_wijken: set[str] = set()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "[")):
            continue
        key = stripped.split("=")[0].strip()
        if key in seen_in_wijken:
            continue  # a second [[wijken]] block repeats keys already explained
        previous = lines[number - 1].strip()
        assert previous.startswith("#"), f"line {number + 1}: {key} has no comment above it"
        seen_in_wijken.add(key)


def test_check_config_prints_masked_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", REAL_LOOKING_TOKEN)
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "schilderswijk" in out
    assert REAL_LOOKING_TOKEN not in out
    assert "**********" in out


def test_check_config_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[telegram]\ntoken = 'changeme'\n")
    assert main(["--config", str(path), "check-config"]) == 2
    assert "telegram.token" in capsys.readouterr().err


def test_run_without_token_explains_botfather_and_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, f"[database]\nurl = 'sqlite:///{tmp_path / 'x.db'}'\n")
    assert main(["--config", str(path), "run"]) == 2
    err = capsys.readouterr().err
    assert "@BotFather" in err
    assert "buurtsignaal shell" in err


GOOD = "admins = [42]\n[[wijken]]\nname = 'Noord'\nslug = 'noord'\ngroup_chat_id = -1009876\n"


@pytest.mark.parametrize(
    ("text", "token", "code", "problems"),
    [
        (GOOD, True, 0, []),
        (GOOD, False, 0, ["warning: telegram.token: not set"]),
        (GOOD.replace("[42]", "[]"), True, 0, ["warning: admins: nobody"]),
        (
            GOOD.replace("-1009876", "-1001234567890"),
            True,
            0,
            ["warning: wijken.0.group_chat_id: -1001234567890 is the example's placeholder"],
        ),
        ("admins = [42]\n", True, 2, ["error: wijken: none"]),
        (
            "",
            False,
            2,
            ["warning: telegram.token", "warning: admins", "error: wijken: none"],
        ),
    ],
)
def test_check_config_warns_about_what_is_probably_wrong_and_fails_what_cannot_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    token: bool,
    code: int,
    problems: list[str],
) -> None:
    if token:
        monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", REAL_LOOKING_TOKEN)
    assert main(["--config", str(write(tmp_path, text)), "check-config"]) == code
    out, err = capsys.readouterr()
    assert out.startswith("{")  # the settings, as JSON
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [p.split(":")[0] for p in problems]
    for line, problem in zip(lines, problems, strict=False):
        assert line.startswith(problem)
    summary = {
        0: "The configuration is OK." if not problems else "The configuration is usable",
        2: "The configuration cannot work",
    }
    assert lines[-1].startswith(summary[code])


def test_example_config_passes_check_config_with_token_and_admin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copying the example and filling in the token and your id gives a clean configuration."""
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", REAL_LOOKING_TOKEN)
    monkeypatch.setenv("BUURTSIGNAAL_ADMINS", "[42]")
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    assert capsys.readouterr().err == "The configuration is OK.\n"


def test_run_refuses_a_configuration_without_wijken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__TOKEN", REAL_LOOKING_TOKEN)
    monkeypatch.setenv("BUURTSIGNAAL_TELEGRAM__BASE_URL", "http://127.0.0.1:9/bot")  # nobody
    path = write(tmp_path, f"[database]\nurl = 'sqlite:///{tmp_path / 'x.db'}'\n")
    assert main(["--config", str(path), "run"]) == 2
    assert capsys.readouterr().err.startswith("Cannot start: wijken: none")


def test_config_may_follow_the_sub_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[telegram]\ntoken = 'changeme'\n")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "telegram.token" in capsys.readouterr().err
    # After the sub-command it wins over the one before it.
    assert main(["--config", str(EXAMPLE), "check-config", "-v", "--config", str(path)]) == 2
    assert "telegram.token" in capsys.readouterr().err
