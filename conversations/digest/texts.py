"""The texts: the digest (one message), the hotspot alert, the Monday chart, a new-signal alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from telegram import InlineKeyboardMarkup

from buurtsignaal.bot.charts import WeeklyChart
from buurtsignaal.bot.i18n import Html, Translator, escape
from buurtsignaal.conversations.callbacks import Report
from buurtsignaal.conversations.ui import (
    category_label,
    keyboard,
    local_date,
    local_datetime,
    status_label,
    telegram_length,
)
from buurtsignaal.storage import digest as digests
from buurtsignaal.storage.digest import Digest, SignalBrief
from buurtsignaal.storage.hotspots import HotspotSummary
from buurtsignaal.storage.models import Signal
from buurtsignaal.storage.signals import CATEGORIES

MAX_MESSAGE = 4096
# How many lines a list may have; shortened step by step until the digest fits one message.
LIST_LIMITS = (40, 20, 10, 5, 2, 0)
MAX_REFERENCES = 10


def _place(t: Translator, place: str | None, lat: float | None, lon: float | None) -> str:
    if place:
        return escape(place)
    if lat is not None and lon is not None:
        return t("location {lat}, {lon}", lat=f"{lat:.5f}", lon=f"{lon:.5f}")
    return "?"


def _age(t: Translator, signal: SignalBrief, now: dt.datetime) -> str:
    days = max(0, (now - signal.created_at).days)
    if days == 0:
        return t("less than a day old")
    return t.ngettext("{n} day old", "{n} days old", days)


def _contact(t: Translator, signal: SignalBrief) -> str:
    if not signal.contact_name:
        return ""
    return " · " + t("contact: {name}", name=signal.contact_name)


def _new_line(t: Translator, signal: SignalBrief) -> str:
    often = t("recurring") if signal.frequency == "recurring" else t("first time")
    line = t(
        "<b>{reference}</b> · {category} · {place} · {often}",
        reference=signal.reference,
        category=category_label(t, signal.category),
        place=Html(_place(t, signal.place, signal.latitude, signal.longitude)),
        often=often,
    )
    if signal.status != "nieuw":
        line += " · " + escape(status_label(t, signal.status))
    return "• " + line + _contact(t, signal)


def _open_line(t: Translator, signal: SignalBrief, now: dt.datetime) -> str:
    line = t(
        "<b>{reference}</b> · {category} · {status} · {age}",
        reference=signal.reference,
        category=category_label(t, signal.category),
        status=status_label(t, signal.status),
        age=_age(t, signal, now),
    )
    if signal.overdue:
        line = "⚠️ " + line
    return "• " + line + _contact(t, signal)


def hotspot_place(t: Translator, hotspot: HotspotSummary) -> str:
    """Where a hotspot is (escaped)."""
    if hotspot.by_distance:
        return _place(t, None, hotspot.latitude, hotspot.longitude)
    return escape(hotspot.label)


def _references(references: Sequence[str], total: int | None = None) -> str:
    """The first references, and "…" when there are more (``total``, if not all are given)."""
    shown = ", ".join(references[:MAX_REFERENCES])
    if max(len(references), total or 0) > MAX_REFERENCES:
        shown += ", …"
    return shown


def _hotspot_line(t: Translator, hotspot: HotspotSummary, tz: dt.tzinfo) -> str:
    return "• " + t(
        "{category} at {place}: {count} since {first} ({references})",
        category=category_label(t, hotspot.category),
        place=Html(hotspot_place(t, hotspot)),
        count=t.ngettext("{n} signal", "{n} signals", hotspot.signals),
        first=local_date(hotspot.first_signal_at, tz),
        references=_references(hotspot.references),
    )


def _limited(lines: list[str], limit: int, t: Translator, total: int | None = None) -> list[str]:
    """At most ``limit`` lines, then how many more there are (of ``total``, if not all are
    given)."""
    total = len(lines) if total is None else total
    shown = lines[:limit]
    if total <= len(shown):
        return shown
    return [*shown, t("… and {n} more", n=total - len(shown))]


def _signed(delta: int) -> str:
    return f"+{delta}" if delta > 0 else ("±0" if delta == 0 else f"−{-delta}")


def render_digest(
    t: Translator, digest: Digest, *, tz: dt.tzinfo, scheduled: bool, limit: int = 40
) -> str:
    """The digest as one HTML message, lists cut to ``limit`` lines each."""
    lines: list[str] = []
    if scheduled:
        lines.append(t("📋 <b>Daily digest {wijk}</b>", wijk=digest.wijk_name))
        lines.append(
            t(
                "Signals from {since} to {until}",
                since=local_datetime(digest.since, tz),
                until=local_datetime(digest.until, tz),
            )
        )
    else:
        lines.append(t("📋 <b>Overview {wijk}</b>, now", wijk=digest.wijk_name))
        lines.append(t("New signals since {since}", since=local_datetime(digest.since, tz)))
    lines.append("")
    if digest.new:
        counts = " · ".join(
            f"{escape(category_label(t, code))} {n}" for code, n in digest.new_by_category
        )
        lines.append(
            t.ngettext("<b>{n} new signal</b>", "<b>{n} new signals</b>", digest.new_count)
            + f" ({counts})"
        )
        lines.extend(_limited([_new_line(t, s) for s in digest.new], limit, t))
    else:
        lines.append(t("No new signals."))
    lines.append("")
    if digest.overdue_count:
        lines.append(
            "⚠️ "
            + t.ngettext(
                "<b>{n} overdue</b>: still new after {days} working days: {references}",
                "<b>{n} overdue</b>: still new after {days} working days: {references}",
                digest.overdue_count,
                days=digest.response_days,
                references=_references([s.reference for s in digest.overdue], digest.overdue_count),
            )
        )
    if digest.open_count:
        lines.append(
            t.ngettext("<b>{n} still open</b>", "<b>{n} still open</b>", digest.open_count)
        )
        open_lines = [_open_line(t, s, digest.now) for s in digest.open]
        lines.extend(_limited(open_lines, limit, t, digest.open_count))
    else:
        lines.append(t("No open signals."))
    if digest.hotspots:
        lines.append("")
        lines.append(
            "🔁 " + t.ngettext("<b>{n} hotspot</b>", "<b>{n} hotspots</b>", len(digest.hotspots))
        )
        lines.extend(_limited([_hotspot_line(t, h, tz) for h in digest.hotspots], limit, t))
    lines.append("")
    lines.append(
        t(
            "Trend: {now} new in this period, {before} in the period before ({delta}).",
            now=digest.new_count,
            before=digest.previous_count,
            delta=_signed(digest.trend),
        )
    )
    return "\n".join(lines)


def digest_text(t: Translator, digest: Digest, *, tz: dt.tzinfo, scheduled: bool) -> str:
    """The digest, shortened until it fits one Telegram message."""
    for limit in LIST_LIMITS:
        text = render_digest(t, digest, tz=tz, scheduled=scheduled, limit=limit)
        if telegram_length(text) <= MAX_MESSAGE:
            return text
    return text[: MAX_MESSAGE - 1] + "…"  # unreachable with sane data; never send too much


def _alert_period(t: Translator, hotspot: HotspotSummary, *, tz: dt.tzinfo, days: int) -> str:
    count = t.ngettext("{n} signal", "{n} signals", hotspot.signals)
    first = local_date(hotspot.first_signal_at, tz)
    last = local_date(hotspot.last_signal_at, tz)
    if first == last:
        return t(
            "<b>Signals:</b> {count} on {date} (counted over {days} days)",
            count=count,
            date=first,
            days=days,
        )
    return t(
        "<b>Signals:</b> {count} between {first} and {last} (counted over {days} days)",
        count=count,
        first=first,
        last=last,
        days=days,
    )


def alert_text(t: Translator, hotspot: HotspotSummary, *, tz: dt.tzinfo, days: int) -> str:
    """The one early-warning message of a new hotspot (no resident identity)."""
    lines = [
        t(
            "⚠️ <b>Early warning: {category} keeps coming back</b>",
            category=category_label(t, hotspot.category),
        ),
        t(
            "<b>Where:</b> {place} ({wijk})",
            place=Html(hotspot_place(t, hotspot)),
            wijk=hotspot.wijk_name,
        ),
        _alert_period(t, hotspot, tz=tz, days=days),
        t("<b>References:</b> {references}", references=_references(hotspot.references)),
    ]
    if hotspot.recurring:
        lines.append(
            t.ngettext(
                "{n} of them reports that it happens more often.",
                "{n} of them report that it happens more often.",
                hotspot.recurring,
            )
        )
    lines.append("")
    lines.append(
        t(
            "You get this alert once. The hotspot stays in your daily digest until it has "
            "been quiet for {days} days. /overzicht shows the overview now.",
            days=days,
        )
    )
    return "\n".join(lines)


def weekly_chart(t: Translator, wijk_name: str, weeks: Sequence[digests.WeekCounts]) -> WeeklyChart:
    """The Monday picture's data with translated texts (plain text, not HTML)."""
    series: dict[str, tuple[str, list[int]]] = {}
    codes = list(CATEGORIES) + sorted({c for w in weeks for c in w.counts} - set(CATEGORIES))
    for code in codes:
        series[code] = (category_label(t, code), [w.counts.get(code, 0) for w in weeks])
    return WeeklyChart(
        title=t("Signals per week: {wijk}", wijk=Html(wijk_name)),
        x_label=t("ISO week (starting Monday)"),
        y_label=t("Number of signals"),
        week_labels=[
            t("wk {week}", week=w.week) + "\n" + w.monday.strftime("%d-%m") for w in weeks
        ],
        series=series,
        empty_text=t("No signals in these weeks."),
    )


def signal_alert_text(t: Translator, signal: Signal) -> tuple[str, InlineKeyboardMarkup]:
    """The short alert about one new signal (no resident identity unless contactable)."""
    often = t("recurring") if signal.frequency == "recurring" else t("first time")
    lines = [
        t(
            "🆕 <b>New signal {reference}</b> · {wijk}",
            reference=signal.reference,
            wijk=signal.wijk.name if signal.wijk else "",
        ),
        t(
            "{category} · {place} · {often}",
            category=category_label(t, signal.category),
            place=Html(_place(t, signal.location_text, signal.latitude, signal.longitude)),
            often=often,
        ),
    ]
    if signal.contactable and signal.contact_name:
        lines.append(t("contact: {name}", name=signal.contact_name))
    lines.append("")
    lines.append(t("You get each new signal at once. Only in the digest? /meldingen_instellen"))
    markup = keyboard([("🔎 " + t("Show report"), Report("show", signal.id).pack())])
    return "\n".join(lines), markup
