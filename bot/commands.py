"""Command menus: per scope (private chats, groups, one person's chat) and per language."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)
from telegram.error import TelegramError

from buurtsignaal.bot.feature import ADMIN_MENU, GROUP_MENU, PRIVATE_MENU, Feature
from buurtsignaal.bot.i18n import LANGUAGES, Translator
from buurtsignaal.storage import bot_state
from buurtsignaal.storage.access import PERMISSIONS, Permission, Person
from buurtsignaal.storage.db import Database

log = logging.getLogger(__name__)

Menu = Sequence[tuple[str, str]]

# The sections of a person's own menu, in the order they are shown: everyone's commands, then
# those of each permission they hold, then the configured administrators'.
SECTIONS: tuple[str, ...] = (
    PRIVATE_MENU,
    Permission.DIGEST,
    Permission.SIGNALS,
    Permission.EXPORT,
    Permission.KOFFIE,
    Permission.PRESENCE,
    Permission.MEDIATION,
    Permission.MEDIATION_COUNTS,
    Permission.ON_BEHALF,
    Permission.ROLES,
    ADMIN_MENU,
)


@dataclass(frozen=True)
class Menus:
    """Every menu, built from what the features declare (``Feature.commands``)."""

    by_menu: Mapping[str, Menu]

    @classmethod
    def of(cls, features: Iterable[Feature]) -> Menus:
        """The menus of ``features`` (in the application's order)."""
        found: dict[str, list[tuple[int, int, str, str]]] = {}
        place = 0
        for feature in features:
            for command in feature.commands:
                if command.menu not in (*SECTIONS, GROUP_MENU):
                    raise ValueError(f"{feature.name}: /{command.name} in unknown menu")
                place += 1
                found.setdefault(command.menu, []).append(
                    (command.order, place, command.name, command.description)
                )
        return cls(
            {menu: tuple((n, d) for _, _, n, d in sorted(items)) for menu, items in found.items()}
        )

    def menu(self, name: str) -> Menu:
        """One menu's commands (name and msgid), in order."""
        return self.by_menu.get(name, ())

    @property
    def private(self) -> Menu:
        """Everyone's commands in a private chat."""
        return self.menu(PRIVATE_MENU)

    @property
    def group(self) -> Menu:
        """The commands in a group."""
        return self.menu(GROUP_MENU)

    def personal(self, person: Person) -> list[Menu]:
        """The menus a person should see in their private chat."""
        menus: list[Menu] = [self.private]
        for section in SECTIONS[1:-1]:
            permission = Permission(section)
            allowed = (
                person.may_manage_roles()
                if permission is Permission.ROLES
                else person.may(permission)
            )
            if allowed:
                menus.append(self.menu(section))
        if person.is_admin:
            menus.append(self.menu(ADMIN_MENU))
        return [menu for menu in menus if menu]

    def of_role(self, role: str) -> list[tuple[str, str]]:
        """The professional commands a role brings (without the residents' ones)."""
        permissions = PERMISSIONS.get(role, frozenset())
        seen: dict[str, str] = {}
        for section in SECTIONS[1:-1]:
            if Permission(section) in permissions:
                for command, description in self.menu(section):
                    seen.setdefault(command, description)
        return list(seen.items())

    def description_of(self, command: str) -> str:
        """The menu description of any command (msgid), for lists of commands."""
        for section in SECTIONS:
            for name, description in self.menu(section):
                if name == command:
                    return description
        raise KeyError(command)


# The three commands each role needs first: said in the welcome after an invite.
FIRST_COMMANDS: dict[str, tuple[str, str, str]] = {
    "wijkagent": ("overzicht", "open", "melding"),
    "opbouwwerker": ("overzicht", "open", "melding"),
    "bemiddelaar": ("zaken", "zaak", "help"),
    "organisator": ("koffieplannen", "beheer", "help"),
    "sleutelfiguur": ("mijnlink", "melden", "bemiddeling"),
    "beheerder": ("uitnodigen", "rollen", "help"),
}


def _commands(t: Translator, menus: Iterable[Menu]) -> list[BotCommand]:
    seen: dict[str, BotCommand] = {}
    for menu in menus:
        for command, description in menu:
            seen.setdefault(command, BotCommand(command, t(description)))
    return list(seen.values())


# What the bot last set as each menu (bot_state rows of this kind), so that a start or a role
# change sends only the menus that changed: a city with hundreds of professionals would
# otherwise make five calls per person at every start, before it answers anyone.
PUBLISHED = "menu"

# One menu: its bot_state key, scope, language code and commands (None: delete it).
_Menu = tuple[str, BotCommandScope, str | None, list[BotCommand] | None]


def _key(bot: Bot, scope: str, code: str | None) -> str:
    return f"{bot.id}:{scope}:{code or '-'}"


async def _publish(bot: Bot, db: Database, menus: list[_Menu], *, now: dt.datetime) -> None:
    """Set or delete each menu that differs from what was last published, and remember it."""
    async with db.begin() as session:
        known = await bot_state.load_keys(session, PUBLISHED, [menu[0] for menu in menus])
    changed: dict[tuple[str, str], Any] = {}
    dropped: list[tuple[str, str]] = []
    try:
        for key, scope, code, commands in menus:
            if commands is None:  # deleting is cheap to repeat, and rare (a revoked role)
                await bot.delete_my_commands(scope=scope, language_code=code)
                dropped.append((PUBLISHED, key))
                continue
            value = [[c.command, c.description] for c in commands]
            if known.get(key) != value:
                await bot.set_my_commands(commands, scope=scope, language_code=code)
                changed[(PUBLISHED, key)] = value
    finally:
        if changed or dropped:
            async with db.begin() as session:
                await bot_state.write(session, changed, dropped, now=now)


async def publish_default_menus(
    bot: Bot, menus_of: Menus, default_language: str, *, db: Database, now: dt.datetime
) -> None:
    """Everyone's menus: private chats and groups, in every language."""
    menus: list[_Menu] = []
    for language in LANGUAGES:
        t = Translator(language)
        code = None if language == default_language else language
        menus.append(
            (
                _key(bot, "private", code),
                BotCommandScopeAllPrivateChats(),
                code,
                _commands(t, [menus_of.private]),
            )
        )
        menus.append(
            (
                _key(bot, "groups", code),
                BotCommandScopeAllGroupChats(),
                code,
                _commands(t, [menus_of.group]),
            )
        )
    await _publish(bot, db, menus, now=now)


async def publish_personal_menu(
    bot: Bot,
    menus_of: Menus,
    person: Person,
    default_language: str,
    *,
    db: Database,
    now: dt.datetime,
) -> None:
    """A professional's or admin's own menu; residents fall back to the default menu."""
    wanted = menus_of.personal(person)
    scope = BotCommandScopeChat(person.telegram_id)
    menus: list[_Menu] = []
    for language in LANGUAGES:
        code = None if language == default_language else language
        commands = None if len(wanted) == 1 else _commands(Translator(language), wanted)
        menus.append((_key(bot, f"chat{person.telegram_id}", code), scope, code, commands))
    try:
        await _publish(bot, db, menus, now=now)
    except TelegramError as exc:  # e.g. an admin who never opened a chat with the bot
        log.info("no personal command menu for %s: %s", person.telegram_id, exc)
