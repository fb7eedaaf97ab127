"""Shared texts and keyboards for the conversations (the only module features share)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence

from babel.dates import format_date
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from buurtsignaal.bot.commands import FIRST_COMMANDS, Menus
from buurtsignaal.bot.feature import ADMIN_MENU
from buurtsignaal.bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Html, Localized, Translator, escape
from buurtsignaal.bot.settings import Settings
from buurtsignaal.conversations.callbacks import Language
from buurtsignaal.storage.access import PERMISSIONS, Permission, Person
from buurtsignaal.storage.models import Signal

CATEGORY_LABELS: dict[str, str] = {
    "burenruzie": N_("Neighbour quarrel"),
    "geluidsoverlast": N_("Noise nuisance"),
    "kinderen_zonder_toezicht": N_("Young children without supervision"),
    "intimidatie": N_("Name-calling or intimidation"),
    "bekladding": N_("Graffiti"),
    "vernieling": N_("Vandalism"),
    "anders": N_("Something else"),
}

STATUS_LABELS: dict[str, str] = {
    "nieuw": N_("New"),
    "in_behandeling": N_("Being handled"),
    "afgehandeld": N_("Closed"),
    "ingetrokken": N_("Withdrawn"),
}

# The largest id a button or link may carry: ids fit in the database's 32-bit integers, and
# callback data carry at most 9 digits (``conversations.callbacks.Id``), so a forged or
# oversized id is a stale button and never reaches the database.
MAX_ID_DIGITS = 9


def is_id(value: str) -> bool:
    """True for a plain id from a button or link: 1 to 9 ASCII digits."""
    return value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS


def small_number(text: str, low: int, high: int) -> int | None:
    """A typed whole number between ``low`` and ``high``, else None (``²``, ``1e9`` and
    a hundred digits are not numbers here)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)):
        return None
    number = int(text)
    return number if low <= number <= high else None


def category_label(t: Translator, code: str) -> str:
    """The translated name of a category."""
    return t(CATEGORY_LABELS.get(code, code))


def status_label(t: Translator, code: str) -> str:
    """The translated name of a status."""
    return t(STATUS_LABELS.get(code, code))


# Telegram's limits for an inline keyboard: 8 buttons in a row, 100 in all.
MAX_ROW = 8
PAGE_SIZE = 24  # choices on one page of a paged keyboard (well under the 100)


def keyboard(buttons: Iterable[tuple[str, str]], *, columns: int = 1) -> InlineKeyboardMarkup:
    """An inline keyboard of (label, callback data) in rows of ``columns`` (at most 8)."""
    columns = min(columns, MAX_ROW)
    row: list[InlineKeyboardButton] = []
    rows: list[Sequence[InlineKeyboardButton]] = []
    for label, data in buttons:
        row.append(InlineKeyboardButton(label, callback_data=data))
        if len(row) == columns:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return InlineKeyboardMarkup(rows)


def paged_keyboard(
    t: Translator,
    buttons: Sequence[tuple[str, str]],
    *,
    page: int,
    page_data: Callable[[int], str],
    columns: int = 2,
    size: int = PAGE_SIZE,
) -> InlineKeyboardMarkup:
    """Choices in pages of ``size``, with "Back" and "More" buttons (callback data
    ``page_data(n)``) when they do not fit on one page; a page out of range shows the last."""
    if len(buttons) <= size:
        return keyboard(buttons, columns=columns)
    last = (len(buttons) - 1) // size
    page = max(0, min(page, last))
    rows = list(keyboard(buttons[page * size : (page + 1) * size], columns=columns).inline_keyboard)
    paging: list[InlineKeyboardButton] = []
    if page > 0:
        paging.append(InlineKeyboardButton("◀️ " + t("Back"), callback_data=page_data(page - 1)))
    if page < last:
        paging.append(InlineKeyboardButton(t("More") + " ▶️", callback_data=page_data(page + 1)))
    return InlineKeyboardMarkup([*rows, paging])


def language_keyboard() -> InlineKeyboardMarkup:
    """Buttons to choose a language (callback data :class:`~conversations.callbacks.Language`)."""
    return keyboard(
        ((name, Language(code).pack()) for code, name in LANGUAGE_NAMES.items()), columns=2
    )


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters of plain text (cut before escaping, so no entity breaks)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class LocalDate(Localized):
    """A local date (and time) with its weekday, named in the reader's language from Babel's
    locale data. Filled into a message by ``t(...)`` it follows the translator's language."""

    local: dt.datetime
    pattern: str
    with_time: bool

    def __new__(cls, local: dt.datetime, pattern: str, *, with_time: bool) -> LocalDate:
        text = _render_date(local, pattern, with_time, LANGUAGES[0])
        value = super().__new__(cls, text)
        value.local, value.pattern, value.with_time = local, pattern, with_time
        return value

    def render(self, language: str) -> str:
        """The date in ``language``."""
        return _render_date(self.local, self.pattern, self.with_time, language)


def _render_date(local: dt.datetime, pattern: str, with_time: bool, language: str) -> str:
    text = format_date(local.date(), pattern, locale=language)
    return f"{text} {local:%H:%M}" if with_time else text


def local_date(moment: dt.datetime, tz: dt.tzinfo) -> LocalDate:
    """A date for people to read, with the weekday: 'woensdag 26-11-2026'."""
    return LocalDate(moment.astimezone(tz), "EEEE dd-MM-yyyy", with_time=False)


def local_datetime(moment: dt.datetime, tz: dt.tzinfo) -> LocalDate:
    """A date and time for people to read, with the weekday: 'woensdag 26-11-2026 14:05'."""
    return LocalDate(moment.astimezone(tz), "EEEE dd-MM-yyyy", with_time=True)


def short_date(moment: dt.datetime, tz: dt.tzinfo) -> LocalDate:
    """A date short enough for a button: 'wo 26 nov'."""
    return LocalDate(moment.astimezone(tz), "EEE d MMM", with_time=False)


ROLE_LABELS: dict[str, str] = {
    "wijkagent": N_("wijkagent"),
    "opbouwwerker": N_("opbouwwerker"),
    "bemiddelaar": N_("mediation coordinator"),
    "organisator": N_("koffie organiser"),
    "sleutelfiguur": N_("key figure"),
    "beheerder": N_("wijk administrator"),
}


def role_label(t: Translator, role: str) -> str:
    """The translated name of a role."""
    return t(ROLE_LABELS.get(role, role))


class Refusal(Exception):
    """Raised inside a unit of work to leave it (nothing of it is kept) and answer ``text``
    after it: no transaction waits for a round trip to Telegram."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def not_allowed(t: Translator) -> str:
    """The one answer to anything a person may not do: it reveals nothing."""
    return t("Sorry, that is not something I can do for you.")


def signal_place(t: Translator, signal: Signal) -> str:
    """Where a signal happened, for professionals (escaped)."""
    if signal.location_text:
        return escape(signal.location_text)
    if signal.latitude is not None and signal.longitude is not None:
        return t(
            "location {lat}, {lon}", lat=f"{signal.latitude:.5f}", lon=f"{signal.longitude:.5f}"
        )
    return "?"


# When a signal happened, as the resident answered (the report's question offers these three).
OCCURRED_LABELS = {"now": N_("Right now"), "today": N_("Today"), "earlier": N_("Earlier")}


def occurred_label(t: Translator, signal: Signal) -> str:
    """The resident's answer to "when?" as they gave it, relative to the day they reported
    (plain text, for a table next to the report's date)."""
    label = t(OCCURRED_LABELS.get(signal.occurred, signal.occurred))
    if signal.occurred == "earlier" and signal.occurred_text:
        label = f"{label}: {signal.occurred_text}"
    return label


def signal_when(t: Translator, signal: Signal, tz: dt.tzinfo) -> str:
    """When a signal happened, in words that stay true when read days later (escaped):
    "now" and "today" become the report's own date ("Vandaag" read on Friday was wrong)."""
    if signal.occurred == "now":
        return t("when reported, {moment}", moment=local_datetime(signal.created_at, tz))
    if signal.occurred == "today":
        return t("on the day reported, {date}", date=local_date(signal.created_at, tz))
    if signal.occurred_text:
        return t("earlier: {text}", text=signal.occurred_text)
    return t("earlier (no moment given)")


def signal_line(t: Translator, signal: Signal) -> str:
    """One line about a signal for professionals: reference, category, place, how often."""
    often = t("recurring") if signal.frequency == "recurring" else t("first time")
    return t(
        "<b>{reference}</b> · {category} · {place} · {often}",
        reference=signal.reference,
        category=category_label(t, signal.category),
        place=Html(signal_place(t, signal)),
        often=often,
    )


# --- buurtbemiddeling (the intake and the case handling share these) -------------------------

TOPIC_LABELS: dict[str, str] = {
    "geluid": N_("Noise"),
    "kinderen": N_("Children"),
    "tuin_parkeren": N_("Garden or parking"),
    "huisdieren": N_("Pets"),
    "overlast": N_("Nuisance"),
    "intimidatie": N_("Intimidation"),
    "anders": N_("Something else"),
}
DURATION_LABELS: dict[str, str] = {
    "kort": N_("Less than a month"),
    "maanden": N_("One to six months"),
    "lang": N_("More than six months"),
}
TALKED_LABELS: dict[str, str] = {
    "ja": N_("Yes, we talked"),
    "geprobeerd": N_("I tried, it did not work"),
    "nee": N_("No, not yet"),
}
REACHABLE_LABELS: dict[str, str] = {
    "overdag": N_("During the day"),
    "avond": N_("In the evening"),
    "altijd": N_("Any time"),
}


def topic_label(t: Translator, topic: str) -> str:
    """The translated name of a mediation topic."""
    return t(TOPIC_LABELS.get(topic, topic))


def mediation_explanation(t: Translator) -> str:
    """What buurtbemiddeling is and is not (shown to the requester and an invited neighbour)."""
    return t(
        "<b>Buurtbemiddeling</b> helps neighbours who have a conflict talk to each other "
        "again.\n"
        "• Two trained volunteer mediators first talk with each of you separately; then, if "
        "you both want to, together. One or two talks are usually enough.\n"
        "• It is voluntary, free and confidential: what you tell stays with the mediation "
        "team. The wijkagent and the opbouwwerker do not see it.\n"
        "• The mediators do not judge who is right; you make the agreements yourselves.\n"
        "• It is not for violence or threats: then call the police (112 in an emergency, "
        "otherwise 0900-8844)."
    )


def _roles_with(t: Translator, permission: Permission) -> str:
    roles = [role_label(t, r) for r, granted in PERMISSIONS.items() if permission in granted]
    return t(" and ").join([", ".join(roles[:-1]), roles[-1]]) if len(roles) > 1 else roles[0]


def privacy_text(t: Translator, settings: Settings, *, full: bool) -> str:
    """Who sees what, and (in full) how long it is kept: generated from the role table and the
    configuration, so it stays true when either changes. /start shows the short version."""
    lines = [
        t("<b>Who sees what</b>"),
        t(
            "• Your reports: the {roles} of your wijk. By default they do not see who you are; "
            "only if you choose so do they see your Telegram name.",
            roles=_roles_with(t, Permission.SIGNALS),
        ),
        t(
            "• Mediation requests: only the {roles} and the two mediators. The {counts} see "
            "only numbers and, for a case they referred, whether it succeeded.",
            roles=_roles_with(t, Permission.MEDIATION),
            counts=_roles_with(t, Permission.MEDIATION_COUNTS),
        ),
        t(
            "• Koffiemomenten: the {roles} see your first name when you sign up.",
            roles=_roles_with(t, Permission.KOFFIE),
        ),
        t("• Nothing you report is ever shown in the neighbourhood group."),
        t("• We store only your Telegram id, your language, your wijk and what you send us."),
    ]
    if not full:
        lines.append(t("More, and how long we keep what: /privacy"))
        return "\n".join(lines)
    keep = settings.retention
    lines += [
        t.ngettext(
            "• The administrator of this bot manages roles and sees no report content.",
            "• The {n} administrators of this bot manage roles; they see no report content.",
            len(settings.admins),
        ),
        "",
        t("<b>How long we keep it</b>"),
        t(
            "• Reports: contact details until {contact} days after a report is closed; the "
            "description, the typed place and the photo until {content} days after. After that "
            "only the category, the date and the wijk remain, for statistics.",
            contact=keep.contact_days,
            content=keep.content_days,
        ),
        t(
            "• Mediation cases are anonymised {days} days after they are closed.",
            days=settings.mediation.retention_days,
        ),
        t(
            "• Koffie sign-ups are removed {days} days after the koffiemoment.",
            days=keep.signup_days,
        ),
        t("• A report you are still typing is kept until you send or cancel it."),
        t("• The bot removes what is due every night; nobody has to remember to."),
        "",
        t("<b>Your rights</b>"),
        t("/mijngegevens: everything we store about you, as a message and as a file."),
        t("/vergeetmij: remove your personal data."),
    ]
    return "\n".join(lines)


def command_lines(t: Translator, commands: Iterable[tuple[str, str]]) -> list[str]:
    """``/command: description`` lines (descriptions are msgids)."""
    return [f"/{command}: {escape(t(description))}" for command, description in commands]


def first_commands(t: Translator, menus: Menus, role: str) -> str:
    """The three commands a role needs first, for the welcome after an invite."""
    names = FIRST_COMMANDS.get(role, ("help",))
    lines = command_lines(t, ((name, menus.description_of(name)) for name in names))
    if Permission.DIGEST in PERMISSIONS.get(role, frozenset()):
        lines.append(
            t(
                "/meldingen_instellen: you get each new signal at once; there you can choose "
                "the digest only"
            )
        )
    ending = [] if "help" in names else [t("/help shows everything you can do.")]
    return "\n".join([t("To start with:"), *lines, *ending])


def role_sections(
    t: Translator, menus: Menus, person: Person, wijk_names: Mapping[int, str]
) -> list[str]:
    """/help for professionals and admins: what they can do, grouped by role."""
    sections = []
    by_role: dict[str, list[str]] = {}
    for grant in person.grants:
        by_role.setdefault(grant.role, []).append(wijk_names.get(grant.wijk_id, "?"))
    shown: set[str] = set()
    for role, wijken in by_role.items():
        head = t(
            "<b>As {role} in {wijken}</b>",
            role=role_label(t, role),
            wijken=", ".join(sorted(wijken)),
        )
        # A command two roles share is listed under the first.
        commands = [(c, d) for c, d in menus.of_role(role) if c not in shown]
        shown.update(c for c, _ in commands)
        if commands:
            sections.append("\n".join([head, *command_lines(t, commands)]))
    if person.is_admin:
        head = t("<b>As administrator</b>")
        sections.append(
            "\n".join(
                [
                    head,
                    *command_lines(t, [*menus.menu(Permission.ROLES), *menus.menu(ADMIN_MENU)]),
                ]
            )
        )
    return sections
