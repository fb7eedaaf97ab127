"""Settings: one TOML file, overridable by BUURTSIGNAAL_* environment variables.

Loaded and validated once in ``main()`` and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = Path("config.toml")
# The demo's own configuration (demo = true, its own database); `shell` uses it by default.
DEMO_CONFIG_PATH = Path("demo.toml")
TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILE_API = "https://api.telegram.org/file/bot"

# Tokens copied from documentation or left as a placeholder; refused so a bot never starts
# half-configured. A real token looks like "<digits>:<35 url-safe characters>".
_TOKEN_RE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
_PLACEHOLDER_HINTS = ("your", "token", "changeme", "change-me", "xxx", "placeholder", "example")
_PLACEHOLDER_TOKENS = {"123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"}

# The group id config.example.toml shows; it is nobody's group.
EXAMPLE_GROUP_CHAT_ID = -1001234567890

Language = Literal["nl", "en"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelegramSettings(_Section):
    """How to reach the Telegram Bot API."""

    token: SecretStr | None = None
    base_url: str = TELEGRAM_API
    base_file_url: str = TELEGRAM_FILE_API
    # Updates handled at the same time (different chats; one chat is always in order).
    concurrent_updates: int = Field(default=16, ge=1, le=256)

    @field_validator("token")
    @classmethod
    def _real_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value().strip()
        if not raw:
            return None
        lowered = raw.lower()
        if raw in _PLACEHOLDER_TOKENS or any(hint in lowered for hint in _PLACEHOLDER_HINTS):
            raise ValueError("this is a placeholder, not a real bot token; ask @BotFather for one")
        if not _TOKEN_RE.match(raw):
            raise ValueError(
                "does not look like a bot token (expected '<digits>:<35 characters>' "
                "as given by @BotFather)"
            )
        return SecretStr(raw)

    @field_validator("base_url", "base_file_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class DatabaseSettings(_Section):
    """Where the data lives."""

    url: str = "sqlite+aiosqlite:///buurtsignaal.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("sqlite:///") or value == "sqlite://":
            return value.replace("sqlite:", "sqlite+aiosqlite:", 1)
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
            raise ValueError(
                "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user:pw@host/db"
            )
        return value


class ReportSettings(_Section):
    """Limits for what residents type."""

    max_text_length: int = Field(default=1000, ge=50, le=3500)


class ProfessionalSettings(_Section):
    """Promises and timings for the professionals' work."""

    response_days: int = Field(default=2, ge=1, le=30)
    invite_hours: int = Field(default=72, ge=1, le=24 * 30)
    followup_days: int = Field(default=3, ge=1, le=60)


class HotspotSettings(_Section):
    """When recurring signals count as a hotspot (defaults for every wijk)."""

    min_signals: int = Field(default=3, ge=2, le=50)
    days: int = Field(default=14, ge=1, le=365)
    radius_m: int = Field(default=150, ge=10, le=5000)


class RetentionSettings(_Section):
    """How long personal data is kept; statistics (category, date, wijk) are kept."""

    contact_days: int = Field(default=30, ge=1, le=3650)
    content_days: int = Field(default=365, ge=7, le=3650)
    signup_days: int = Field(default=30, ge=1, le=3650)


class MediationSettings(_Section):
    """Buurtbemiddeling: promises, follow-up and how long closed cases are kept."""

    intake_days: int = Field(default=5, ge=1, le=30)
    nazorg_weeks: int = Field(default=4, ge=2, le=6)
    invite_days: int = Field(default=30, ge=1, le=120)
    retention_days: int = Field(default=730, ge=30, le=3650)


class LoggingSettings(_Section):
    """What the log may contain beyond ids and types."""

    # Off: updates and Bot API calls are logged by id, type and parameter names only.
    message_contents: bool = False


class WijkSettings(_Section):
    """One neighbourhood the bot serves."""

    name: str = Field(min_length=1, max_length=80)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    group_chat_id: int | None = None
    digest_time: dt.time = dt.time(8, 0)
    hotspot_min_signals: int | None = Field(default=None, ge=2, le=50)
    hotspot_days: int | None = Field(default=None, ge=1, le=365)


class SignalSettings(_Section):
    """Signal as a second messenger: the gateway between signal-cli and the bot."""

    # signal-cli's HTTP daemon (`signal-cli -a ACCOUNT daemon --http 127.0.0.1:8080`).
    cli_url: str = "http://127.0.0.1:8080"
    # The Signal number of the bot's account, as registered with signal-cli (+31...).
    account: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    # Where the gateway serves the Bot API to the bot (localhost only).
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8081, ge=1, le=65535)
    # The gateway's own state (chats, unconfirmed updates, unsent messages): an SQLite file.
    state_path: Path = Path("signal-gateway.db")
    # Days the gateway keeps a photo the bot has not taken a copy of (taken ones go at once).
    photo_days: int = Field(default=7, ge=1, le=90)
    # Days the gateway keeps a chat's recent messages (for numbered answers and edits)
    # after its last message.
    chat_days: int = Field(default=30, ge=1, le=365)

    @field_validator("cli_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def bot_api_url(self) -> str:
        """The gateway's Bot API base URL, as the bot reaches it."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{self.listen_port}/bot"

    @property
    def bot_file_url(self) -> str:
        """The gateway's file download base URL."""
        return self.bot_api_url.removesuffix("/bot") + "/file/bot"


class Settings(BaseSettings):
    """All settings of one Buurtsignaal installation."""

    model_config = SettingsConfigDict(
        env_prefix="BUURTSIGNAAL_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # Set by load_settings() just before construction; a class variable because
    # pydantic-settings builds its sources from the class.
    _toml_path: ClassVar[Path | None] = None

    telegram: TelegramSettings = TelegramSettings()
    database: DatabaseSettings = DatabaseSettings()
    reports: ReportSettings = ReportSettings()
    professionals: ProfessionalSettings = ProfessionalSettings()
    hotspots: HotspotSettings = HotspotSettings()
    mediation: MediationSettings = MediationSettings()
    retention: RetentionSettings = RetentionSettings()
    logging: LoggingSettings = LoggingSettings()
    timezone: str = "Europe/Amsterdam"
    default_language: Language = "nl"
    admins: list[int] = Field(default_factory=list)
    wijken: list[WijkSettings] = Field(default_factory=list)
    # Signal as a second messenger (see the README); None: Telegram only.
    signal: SignalSettings | None = None
    # True only in the demo configuration: `shell` requires it and `run` refuses it.
    demo: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}, e.g. Europe/Amsterdam") from exc
        return value

    @model_validator(mode="after")
    def _unique_wijken(self) -> Settings:
        slugs = [w.slug for w in self.wijken]
        doubles = sorted({s for s in slugs if slugs.count(s) > 1})
        if doubles:
            raise ValueError(f"wijken: slug used more than once: {', '.join(doubles)}")
        return self

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The configured time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments win, then the environment, then the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_path))
        return tuple(sources)

    def warnings(self) -> list[str]:
        """What lets the bot run but is probably not meant; check-config prints these."""
        found: list[str] = []
        if self.demo:
            found.append(
                "demo: true, so this is a demo configuration: `buurtsignaal shell` uses it and "
                "`buurtsignaal run` refuses it"
            )
        elif self.telegram.token is None:
            found.append(
                "telegram.token: not set, so `buurtsignaal run` cannot go online; ask @BotFather "
                "for a token and set it here or in BUURTSIGNAAL_TELEGRAM__TOKEN"
            )
        if not self.admins:
            found.append(
                "admins: nobody, so nobody can invite professionals (/uitnodigen) or link a "
                "group; add your Telegram user id (@userinfobot tells you what it is)"
            )
        for number, wijk in enumerate(self.wijken):
            if wijk.group_chat_id == EXAMPLE_GROUP_CHAT_ID:
                found.append(
                    f"wijken.{number}.group_chat_id: {EXAMPLE_GROUP_CHAT_ID} is the example's "
                    "placeholder, not your group; remove the line and use /koppelgroep in the "
                    "group, or put the group's real id"
                )
        return found

    def errors(self) -> list[str]:
        """What keeps the bot from working at all; check-config fails and run refuses."""
        if not self.wijken:
            return [
                "wijken: none, so residents cannot report anything; add a [[wijken]] block "
                "with name and slug for every neighbourhood (see config.example.toml)"
            ]
        return []

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with secrets masked (for check-config)."""
        data = self.model_dump(mode="json")
        token = self.telegram.token
        data["telegram"]["token"] = "**********" if token else None
        data["database"]["url"] = mask_password(self.database.url)
        return data


def mask_password(url: str) -> str:
    """The URL with its password (if any) replaced by ****."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1****@", url)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


def load_settings(
    path: Path | None = None, *, required: bool = False, **overrides: Any
) -> Settings:
    """Read and validate the settings from ``path`` (default config.toml) and the environment.

    A missing file is fine unless ``required``: every key has a default.
    """
    toml_path = path or DEFAULT_CONFIG_PATH
    if not toml_path.exists():
        if required or path is not None:
            raise ConfigError(
                f"config file not found: {toml_path} (start from a copy of config.example.toml)"
            )
        toml_path = None  # type: ignore[assignment]
    Settings._toml_path = toml_path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, toml_path)) from None
    except (ValueError, OSError) as exc:  # TOML syntax errors and unreadable files
        raise ConfigError(f"{toml_path}: {exc}") from None
    finally:
        Settings._toml_path = None


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = "unknown key (see config.example.toml for the keys that exist)"
        else:
            message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)
