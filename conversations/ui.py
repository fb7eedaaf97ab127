"""Shared texts and keyboards for the conversations (the only module features share)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_, Html, Translator, escape
from storage.models import Signal

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
}

LANGUAGE_NAMES: dict[str, str] = {"nl": "Nederlands", "en": "English"}


def category_label(t: Translator, code: str) -> str:
    """The translated name of a category."""
    return t(CATEGORY_LABELS.get(code, code))


def status_label(t: Translator, code: str) -> str:
    """The translated name of a status."""
    return t(STATUS_LABELS.get(code, code))


def keyboard(buttons: Iterable[tuple[str, str]], *, columns: int = 1) -> InlineKeyboardMarkup:
    """An inline keyboard of (label, callback data) in rows of ``columns``."""
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


def language_keyboard(prefix: str) -> InlineKeyboardMarkup:
    """Buttons to choose a language; callback data ``<prefix>:<code>``."""
    return keyboard(
        ((name, f"{prefix}:{code}") for code, name in LANGUAGE_NAMES.items()), columns=2
    )


def local_date(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """A date as residents write it: 26-11-2026."""
    return moment.astimezone(tz).strftime("%d-%m-%Y")


def local_datetime(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """A date and time as residents write it: 26-11-2026 14:05."""
    return moment.astimezone(tz).strftime("%d-%m-%Y %H:%M")


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
