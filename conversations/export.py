"""/export [van] [tot]: the wijk's signals as a CSV file that opens cleanly in a spreadsheet.

UTF-8 with a byte order mark (so Excel detects the encoding). In Dutch the separator is a
semicolon and decimals use a comma, as Dutch spreadsheets expect; in English a comma and a
point. Personal data appears only for residents who chose to be contactable.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import Command, Feature
from buurtsignaal.bot.i18n import N_, Translator
from buurtsignaal.conversations.ui import category_label, not_allowed, occurred_label, status_label
from buurtsignaal.storage import access, parsing
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.models import Signal
from buurtsignaal.storage.signals import signals_between
from buurtsignaal.storage.wijken import active_wijken

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
DEFAULT_DAYS = 30


def csv_dialect(language: str) -> tuple[str, str]:
    """(separator, decimal mark) for a spreadsheet in this language."""
    return (";", ",") if language == "nl" else (",", ".")


def signals_csv(t: Translator, signals: list[Signal], tz: dt.tzinfo) -> bytes:
    """The CSV file's bytes, headers and values in the translator's language."""
    separator, decimal = csv_dialect(t.language)

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.6f}".replace(".", decimal)

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    writer.writerow(
        [
            t("Reference"),
            t("Wijk"),
            t("Date"),
            t("Time"),
            t("Category"),
            t("Description"),
            t("Place"),
            t("Latitude"),
            t("Longitude"),
            t("When"),
            t("How often"),
            t("Status"),
            t("Photo"),
            t("Contact"),
        ]
    )
    for signal in signals:
        local = signal.created_at.astimezone(tz)
        when = occurred_label(t, signal)
        writer.writerow(
            [
                signal.reference,
                cell(signal.wijk.name),
                local.strftime("%Y-%m-%d"),
                local.strftime("%H:%M"),
                category_label(t, signal.category),
                cell(signal.description),
                cell(signal.location_text),
                number(signal.latitude),
                number(signal.longitude),
                cell(when),
                t("It happens more often")
                if signal.frequency == "recurring"
                else t("This is the first time"),
                status_label(t, signal.status),
                t("yes") if signal.photo_file_id else t("no"),
                cell(signal.contact_name if signal.contactable else None),
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EARLIEST = dt.date(2000, 1, 1)  # no signal is older; keeps hostile dates away from the database


def cell(text: str | None) -> str:
    """A text cell that a spreadsheet shows as text: a leading formula character gets a
    single quote in front, as the OWASP guidance on CSV injection says."""
    text = text or ""
    return "'" + text if text.startswith(FORMULA_START) else text


def _period(args: list[str], today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The export period from the command's arguments; None when they make no sense."""
    if len(args) > 2:
        return None
    dates = [parsing.local_date(a) for a in args]
    if any(d is None or not EARLIEST <= d <= today + dt.timedelta(days=366) for d in dates):
        return None
    start = dates[0] if dates else today - dt.timedelta(days=DEFAULT_DAYS)
    end = dates[1] if len(dates) == 2 else today
    assert start is not None and end is not None
    return (start, end) if start <= end else (end, start)


async def export(update: Update, context: BuurtContext) -> None:
    """/export [van] [tot]: send the signals of the asker's wijken as a CSV file."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    tz = context.settings.tz
    period = _period(context.args or [], context.now.astimezone(tz).date())
    async with context.db.begin() as session:
        me = await access.person(session, user.id, context.settings.admins)
    wijk_ids = sorted(me.wijken_for(access.Permission.EXPORT))
    if not wijk_ids:
        await message.reply_text(not_allowed(t))
        return
    if period is None:
        await message.reply_text(
            t(
                "I don't understand those dates. Use day-month-year, for example "
                "/export 01-11-2026 30-11-2026 (without dates: the last {days} days).",
                days=DEFAULT_DAYS,
            )
        )
        return
    async with context.db.begin() as session:
        start, end = period
        begin = dt.datetime.combine(start, dt.time(0), tz)
        finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tz)
        signals = list(await signals_between(session, wijk_ids, begin, finish))
        wijken = [w for w in await active_wijken(session) if w.id in wijk_ids]
        await access.audit(
            session,
            "export",
            actor=user.id,
            wijk_id=wijk_ids[0] if len(wijk_ids) == 1 else None,
            detail=f"{start.isoformat()}..{end.isoformat()}: {len(signals)} signals",
            now=context.now,
        )
    name = wijken[0].slug if len(wijken) == 1 else "wijken"
    filename = f"buurtsignaal-{name}-{start.isoformat()}-{end.isoformat()}.csv"
    await message.reply_document(
        InputFile(signals_csv(t, signals, tz), filename=filename),
        caption=t(
            "{n} signals from {start} up to and including {end}.",
            n=len(signals),
            start=start.strftime("%d-%m-%Y"),
            end=end.strftime("%d-%m-%Y"),
        ),
    )


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for /export."""
    return [CommandHandler("export", export, filters=PRIVATE)]


FEATURE = Feature(
    name="export",
    handlers=build_handlers,
    commands=(
        Command("export", N_("Signals as a CSV file: /export [from] [to]"), Permission.EXPORT),
    ),
)
