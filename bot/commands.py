"""Command menus: per scope (private chats, groups, one person's chat) and per language."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
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

from bot.i18n import LANGUAGES, N_, Translator
from storage import bot_state
from storage.access import PERMISSIONS, Permission, Person
from storage.db import Database

log = logging.getLogger(__name__)

Menu = Sequence[tuple[str, str]]

PRIVATE_COMMANDS: Menu = (
    ("melden", N_("Report an early signal")),
    ("mijnmeldingen", N_("Your reports and their status")),
    ("bemiddeling", N_("Ask for mediation in a conflict with neighbours")),
    ("koffie", N_("Koffiemomenten in your wijk")),
    ("koppel", N_("When the wijkagent and opbouwwerker are around")),
    ("taal", N_("Choose your language")),
    ("privacy", N_("Who sees what, and how long it is kept")),
    ("mijngegevens", N_("Everything we store about you")),
    ("vergeetmij", N_("Remove your personal data")),
    ("start", N_("Welcome and choose your wijk")),
    ("help", N_("What this bot can do")),
    ("annuleren", N_("Stop what you are doing")),
)
GROUP_COMMANDS: Menu = (
    ("melden", N_("Report privately to the wijk team")),
    ("koffie", N_("Koffiemomenten in your wijk")),
    ("bemiddeling", N_("Ask for mediation in a conflict with neighbours")),
    ("help", N_("What this bot can do")),
)
# Extra commands by permission, shown only in the menu of people who hold it.
PROFESSIONAL_COMMANDS: dict[Permission, Menu] = {
    Permission.DIGEST: (
        ("overzicht", N_("The digest of your wijk, now")),
        ("meldingen_instellen", N_("New signals: each at once, or only in the digest")),
    ),
    Permission.SIGNALS: (
        ("open", N_("Open signals of your wijk")),
        ("melding", N_("One signal: /melding BS-2026-0001")),
    ),
    Permission.EXPORT: (("export", N_("Signals as a CSV file: /export [from] [to]")),),
    Permission.KOFFIE: (
        ("koffieplannen", N_("Plan a koffiemoment")),
        ("beheer", N_("Planned koffiemomenten: who comes, change, cancel")),
    ),
    Permission.PRESENCE: (("aanwezig", N_("Publish a spreekuur or walk in the wijk")),),
    Permission.MEDIATION: (
        ("zaken", N_("Open mediation cases")),
        ("zaak", N_("One mediation case: /zaak BM-2026-0001")),
    ),
    Permission.MEDIATION_COUNTS: (("bemiddelingen", N_("Mediation in your wijk: counts only")),),
    Permission.ON_BEHALF: (("mijnlink", N_("Your personal link to share")),),
}
ADMIN_COMMANDS: Menu = (
    ("uitnodigen", N_("Invite a professional: /uitnodigen <role> <wijk>")),
    ("rollen", N_("Roles: list and revoke")),
)
CONFIG_ADMIN_COMMANDS: Menu = (
    ("profilering", N_("How often the profiling guard asked, per month")),
)


# The three commands each role needs first: said in the welcome after an invite.
FIRST_COMMANDS: dict[str, tuple[str, str, str]] = {
    "wijkagent": ("overzicht", "open", "melding"),
    "opbouwwerker": ("overzicht", "open", "melding"),
    "bemiddelaar": ("zaken", "zaak", "help"),
    "organisator": ("koffieplannen", "beheer", "help"),
    "sleutelfiguur": ("mijnlink", "melden", "bemiddeling"),
    "beheerder": ("uitnodigen", "rollen", "help"),
}


def role_menu(role: str) -> list[tuple[str, str]]:
    """The professional commands a role brings (without the residents' ones)."""
    permissions = PERMISSIONS.get(role, frozenset())
    menus = [
        menu for permission, menu in PROFESSIONAL_COMMANDS.items() if permission in permissions
    ]
    if Permission.ROLES in permissions:
        menus.append(ADMIN_COMMANDS)
    seen: dict[str, str] = {}
    for menu in menus:
        for command, description in menu:
            seen.setdefault(command, description)
    return list(seen.items())


def description_of(command: str) -> str:
    """The menu description of any command (msgid), for lists of commands."""
    menus = [PRIVATE_COMMANDS, *PROFESSIONAL_COMMANDS.values(), ADMIN_COMMANDS]
    for menu in [*menus, CONFIG_ADMIN_COMMANDS]:
        for name, description in menu:
            if name == command:
                return description
    raise KeyError(command)


def _commands(t: Translator, menus: Iterable[Menu]) -> list[BotCommand]:
    seen: dict[str, BotCommand] = {}
    for menu in menus:
        for command, description in menu:
            seen.setdefault(command, BotCommand(command, t(description)))
    return list(seen.values())


def personal_menu(person: Person) -> list[Menu]:
    """The menus a person should see in their private chat."""
    menus: list[Menu] = [PRIVATE_COMMANDS]
    for permission, menu in PROFESSIONAL_COMMANDS.items():
        if person.may(permission):
            menus.append(menu)
    if person.may_manage_roles():
        menus.append(ADMIN_COMMANDS)
    if person.is_admin:
        menus.append(CONFIG_ADMIN_COMMANDS)
    return menus


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
        known = await bot_state.load_kind(session, PUBLISHED)
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
    bot: Bot, default_language: str, *, db: Database, now: dt.datetime
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
                _commands(t, [PRIVATE_COMMANDS]),
            )
        )
        menus.append(
            (
                _key(bot, "groups", code),
                BotCommandScopeAllGroupChats(),
                code,
                _commands(t, [GROUP_COMMANDS]),
            )
        )
    await _publish(bot, db, menus, now=now)


async def publish_personal_menu(
    bot: Bot, person: Person, default_language: str, *, db: Database, now: dt.datetime
) -> None:
    """A professional's or admin's own menu; residents fall back to the default menu."""
    wanted = personal_menu(person)
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
