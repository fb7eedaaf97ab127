"""The daily digest, /overzicht, the Monday chart and the early-warning (hotspot) alerts.

Jobs (PTB JobQueue, times in ``settings.tz``):

- ``digest:<slug>``: daily at the wijk's ``digest_time``. Writes every due recipient's digest
  of the latest slot to the outbox, and lets quiet hotspots calm down.
- At start-up :func:`start_jobs` runs the same work once, right away: a digest missed while the
  bot was down is decided now.

Exactly once: a recipient is due when their watermark (``covered_until``) is before the latest
slot; the watermark moves to the slot in the unit of work that writes the digest to the
outbox (see storage/digest.py), and the outbox (bot/outbox.py) delivers it, retrying passing
failures.

``/overzicht`` covers the signals since the asker's last delivered digest (or the last 24
hours when they never had one) up to now, and moves no watermark.

New signals: a professional who wants each new signal at once (the default; switched per wijk
with ``/meldingen_instellen``) gets a short alert right after the signal is stored. The alerts,
and the alert of a new hotspot, are written to the outbox in the unit of work that stores the
signal.

Jobs and handlers read the time from the one clock (``context.now``, ``services.clock``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.charts import WeeklyChart, weekly_chart_png
from bot.context import AfterCommit, BuurtApplication, BuurtContext
from bot.feature import Command, Feature, Job
from bot.i18n import N_, Html, Translator, escape
from bot.outbox import Settled
from bot.settings import Settings, WijkSettings
from conversations import steps
from conversations.ui import (
    category_label,
    keyboard,
    local_date,
    local_datetime,
    not_allowed,
    status_label,
    telegram_length,
)
from storage import access, hotspots, outbox
from storage import digest as digests
from storage.access import Permission
from storage.calendar import latest_slot
from storage.digest import Digest, SignalBrief
from storage.hotspots import HotspotRules, HotspotSummary
from storage.models import Signal
from storage.outbox import Outgoing
from storage.residents import get_resident
from storage.signals import CATEGORIES
from storage.wijken import active_wijken, get_wijk, wijk_by_slug

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
CATCH_UP_RETRY = dt.timedelta(minutes=5)
CHART_WEEKS = 8
MAX_MESSAGE = 4096
# How many lines a list may have; shortened step by step until the digest fits one message.
LIST_LIMITS = (40, 20, 10, 5, 2, 0)
MAX_REFERENCES = 10


# --- settings per wijk ----------------------------------------------------------------------


def wijk_settings(settings: Settings, slug: str | None) -> WijkSettings | None:
    """The configuration of a wijk by slug."""
    return next((w for w in settings.wijken if w.slug == slug), None)


def hotspot_rules(settings: Settings, slug: str | None) -> HotspotRules:
    """The hotspot rules of a wijk: its own values, else the defaults."""
    wijk = wijk_settings(settings, slug)
    defaults = settings.hotspots
    return HotspotRules(
        min_signals=(wijk.hotspot_min_signals if wijk else None) or defaults.min_signals,
        days=(wijk.hotspot_days if wijk else None) or defaults.days,
        radius_m=defaults.radius_m,
    )


# --- texts ----------------------------------------------------------------------------------


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


# --- languages ------------------------------------------------------------------------------


async def _language(application: BuurtApplication, session: AsyncSession, telegram_id: int) -> str:
    """A recipient's language: as a resident, else their last known chat language, else default."""
    resident = await get_resident(session, telegram_id)
    if resident is not None:
        return resident.language
    data = application.user_data.get(telegram_id)
    if data and data.get("lang"):
        return str(data["lang"])
    return application.services.settings.default_language


# --- delivery -------------------------------------------------------------------------------


def _app(application: Application[Any, Any, Any, Any, Any, Any]) -> BuurtApplication:
    assert isinstance(application, BuurtApplication)
    return application


@dataclass
class _Edition:
    """A wijk's digest of one slot for everyone due it, built once per distinct period (a
    recipient whose watermark lags behind gets one of their own) and rendered once per
    language, off the event loop; the Monday picture drawn once per language."""

    wijk: WijkSettings
    wijk_id: int
    slot: dt.datetime
    now: dt.datetime
    built: dict[dt.datetime, Digest] = field(default_factory=dict)  # by since
    texts: dict[tuple[dt.datetime, str], str] = field(default_factory=dict)
    weeks: list[digests.WeekCounts] | None = None
    charts: dict[str, bytes] = field(default_factory=dict)  # by language


async def _digest_messages(
    application: BuurtApplication,
    session: AsyncSession,
    edition: _Edition,
    due: digests.Due,
) -> list[Outgoing]:
    """One recipient's digest of the edition's slot (and on Mondays the chart), to write to
    the outbox."""
    settings = application.services.settings
    tz = settings.tz
    wijk_id, slot = edition.wijk_id, edition.slot
    monday = slot.astimezone(tz).weekday() == 0
    language = await _language(application, session, due.recipient)
    if due.since not in edition.built:
        edition.built[due.since] = await digests.build_digest(
            session,
            wijk_id,
            since=due.since,
            until=slot,
            now=edition.now,
            response_days=settings.professionals.response_days,
            tz=tz,
            hotspot_days=hotspot_rules(settings, edition.wijk.slug).days,
        )
    digest = edition.built[due.since]
    t = Translator(language)
    if (due.since, language) not in edition.texts:
        edition.texts[due.since, language] = await asyncio.to_thread(
            digest_text, t, digest, tz=tz, scheduled=True
        )
    key = f"digest:{wijk_id}:{due.recipient}:{slot.isoformat()}"
    before = await digests.covered_until(session, wijk_id, due.recipient)
    messages = [
        Outgoing(
            key=key,
            chat_id=due.recipient,
            kind="digest",
            text=edition.texts[due.since, language],
            hook=DIGEST_HOOK,
            hook_data={
                "wijk": wijk_id,
                "slot": slot.isoformat(),
                "before": before.isoformat() if before else None,
            },
        )
    ]
    if monday:
        if edition.weeks is None:
            edition.weeks = await digests.weekly_counts(
                session, wijk_id, before=slot, weeks=CHART_WEEKS, tz=tz
            )
        if language not in edition.charts:
            edition.charts[language] = await asyncio.to_thread(
                weekly_chart_png, weekly_chart(t, digest.wijk_name, edition.weeks)
            )
        messages.append(
            Outgoing(
                key=key + ":chart",
                chat_id=due.recipient,
                kind="digest:chart",
                text=t("Signals per category per week, the last {n} weeks.", n=CHART_WEEKS),
                photo=edition.charts[language],
            )
        )
    return messages


async def _digest_settled(session: AsyncSession, settled: Settled) -> None:
    """A digest Telegram refused (the recipient blocked the bot): its watermark goes back, so
    the next digest covers both days."""
    if settled.delivered:
        return
    before = settled.data.get("before")
    await digests.undo_delivery(
        session,
        int(settled.data["wijk"]),
        settled.chat_id,
        slot=dt.datetime.fromisoformat(str(settled.data["slot"])),
        back_to=dt.datetime.fromisoformat(str(before)) if before else None,
    )


DIGEST_HOOK = "digest:settled"


async def run_wijk(application: BuurtApplication, slug: str, now: dt.datetime) -> None:
    """Everything due for a wijk at ``now``: calm hotspots, alerts not decided yet, missing
    digests. Each digest is written to the outbox in the unit of work that moves the
    recipient's watermark (its key names the slot, so a second run adds nothing)."""
    settings = application.services.settings
    wijk = wijk_settings(settings, slug)
    if wijk is None:
        return
    rules = hotspot_rules(settings, slug)
    slot = latest_slot(now, wijk.digest_time, settings.tz)
    async with application.services.db.begin() as session:
        row = await wijk_by_slug(session, slug)
        if row is None:
            return
        wijk_id = row.id
        await hotspots.calm_down(session, wijk_id, now=now, days=rules.days)
        messages: list[Outgoing] = []
        for hotspot_id in await hotspots.unalerted(session, wijk_id, now=now, days=rules.days):
            messages += await _hotspot_alerts(application, session, hotspot_id, now=now)
        edition = _Edition(wijk, wijk_id, slot, now)
        for due in await digests.due_recipients(
            session, wijk_id, slot=slot, at=wijk.digest_time, tz=settings.tz
        ):
            messages += await _digest_messages(application, session, edition, due)
            await digests.mark_delivered(
                session, wijk_id, due.recipient, covered_until=slot, now=now
            )
        await outbox.enqueue(session, *messages, now=now)
    if messages:
        application.outbox.wake()


async def _daily_job(context: BuurtContext) -> None:
    """The wijk's daily digest (job ``digest:<slug>``)."""
    assert context.job is not None
    await run_wijk(_app(context.application), str(context.job.data), context.now)


# --- early warning --------------------------------------------------------------------------


async def on_signal_created(
    context: BuurtContext, session: AsyncSession, signal: Signal
) -> AfterCommit | None:
    """A just-stored signal (same unit of work): write the "new signal" alerts of those who
    want each one at once, and the alert of a NEW hotspot, to the outbox."""
    wijk = await get_wijk(session, signal.wijk_id)
    slug = wijk.slug if wijk else None
    application = _app(context.application)
    messages = [
        await _signal_alert(application, session, signal, recipient)
        for recipient in await digests.decide_signal_alerts(session, signal, now=context.now)
    ]
    hotspot = await hotspots.register_signal(session, signal, hotspot_rules(context.settings, slug))
    if hotspot is not None:
        messages += await _hotspot_alerts(application, session, hotspot.id, now=context.now)
    if not messages:
        return None
    await outbox.enqueue(session, *messages, now=context.now)

    async def wake() -> None:
        application.outbox.wake()

    return wake


# --- new-signal alerts ------------------------------------------------------------------------


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
    markup = keyboard([("🔎 " + t("Show report"), f"cases:show:{signal.id}")])
    return "\n".join(lines), markup


async def _signal_alert(
    application: BuurtApplication, session: AsyncSession, signal: Signal, recipient: int
) -> Outgoing:
    """One "new signal" alert, in the recipient's language."""
    language = await _language(application, session, recipient)
    text, markup = signal_alert_text(Translator(language), signal)
    return Outgoing(
        key=f"alert:signal:{signal.id}:{recipient}",
        chat_id=recipient,
        kind="alert:signal",
        text=text,
        reply_markup=markup.to_dict(),
    )


# --- /meldingen_instellen ---------------------------------------------------------------------


async def _alert_settings(
    context: BuurtContext, telegram_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The text and buttons of /meldingen_instellen, or None for someone without a digest."""
    t = context.t
    async with context.db.begin() as session:
        person = await access.person(session, telegram_id, context.settings.admins)
        mine = person.wijken_for(Permission.DIGEST)
        wijken = [w for w in await active_wijken(session) if w.id in mine]
        modes = await digests.alert_modes(session, telegram_id)
    if not wijken:
        return None
    lines = [t("<b>How do you hear of new signals?</b>"), ""]
    buttons: list[tuple[str, str]] = []
    for wijk in wijken:
        mode = modes.get(wijk.id, digests.DEFAULT_ALERT_MODE)
        config = wijk_settings(context.settings, wijk.slug)
        at = (config.digest_time if config else dt.time(8, 0)).strftime("%H:%M")
        if mode == digests.IMMEDIATE:
            lines.append(t("{wijk}: each new signal at once 🔔", wijk=wijk.name))
            buttons.append(
                (
                    t("{wijk}: only in the digest", wijk=wijk.name),
                    f"digest:alerts:{wijk.id}:{digests.DIGEST_ONLY}",
                )
            )
        else:
            lines.append(
                t("{wijk}: only in the daily digest at {time} 📋", wijk=wijk.name, time=at)
            )
            buttons.append(
                (
                    t("{wijk}: each new signal at once", wijk=wijk.name),
                    f"digest:alerts:{wijk.id}:{digests.IMMEDIATE}",
                )
            )
    lines.append("")
    lines.append(
        t(
            "The daily digest comes either way, and early warnings (hotspots) always come at "
            "once. Residents are told when you will see their report."
        )
    )
    return "\n".join(lines), keyboard(buttons)


async def alert_settings(update: Update, context: BuurtContext) -> None:
    """/meldingen_instellen: per wijk, each new signal at once or only in the digest."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    view = await _alert_settings(context, user.id)
    if view is None:
        await message.reply_text(not_allowed(context.t))
        return
    text, markup = view
    await message.reply_text(text, reply_markup=markup)


async def on_alert_mode(update: Update, context: BuurtContext) -> None:
    """A button of /meldingen_instellen: switch one wijk (checked again on the server)."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    wijk_id, mode = int(steps.match(context, 1)), steps.match(context, 2)
    async with context.db.begin() as session:
        person = await access.person(session, user_id, context.settings.admins)
        allowed = person.may(Permission.DIGEST, wijk_id)
        if allowed:
            await digests.set_alert_mode(session, wijk_id, user_id, mode, now=context.now)
    if not allowed:
        await steps.refuse(query, context)
        return
    await query.answer(context.t("Saved"))
    view = await _alert_settings(context, user_id)
    if view is None:
        return
    text, markup = view
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc):
            raise


async def _hotspot_alerts(
    application: BuurtApplication, session: AsyncSession, hotspot_id: int, *, now: dt.datetime
) -> list[Outgoing]:
    """A hotspot's alert to everyone who gets the wijk's digest, once: ``alerted_at`` is set
    in the same unit of work that writes them to the outbox."""
    settings = application.services.settings
    hotspot = await hotspots.get_summary(session, hotspot_id)
    if hotspot is None or hotspot.alerted_at is not None or hotspot.calmed_at is not None:
        return []
    wijk = await get_wijk(session, hotspot.wijk_id)
    days = hotspot_rules(settings, wijk.slug if wijk else None).days
    messages = []
    for recipient in await access.recipients(session, hotspot.wijk_id, Permission.DIGEST):
        t = Translator(await _language(application, session, recipient))
        messages.append(
            Outgoing(
                key=f"alert:hotspot:{hotspot_id}:{recipient}",
                chat_id=recipient,
                kind="alert:hotspot",
                text=alert_text(t, hotspot, tz=settings.tz, days=days),
            )
        )
    await hotspots.mark_alerted(session, hotspot_id, now=now)
    return messages


# --- /overzicht -----------------------------------------------------------------------------


async def overview(update: Update, context: BuurtContext) -> None:
    """/overzicht: the digest now for each of the asker's wijken; moves no watermark."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    settings = context.settings
    t = context.t
    now = context.now
    found: list[Digest] = []
    async with context.db.begin() as session:
        person = await access.person(session, user.id, settings.admins)
        wijk_ids = person.wijken_for(Permission.DIGEST)
        for wijk_id in sorted(wijk_ids):
            wijk = await get_wijk(session, wijk_id)
            if wijk is None or not wijk.active:
                continue
            last = await digests.covered_until(session, wijk_id, user.id)
            since = last if last is not None and last < now else now - dt.timedelta(days=1)
            found.append(
                await digests.build_digest(
                    session,
                    wijk_id,
                    since=since,
                    until=now,
                    now=now,
                    response_days=settings.professionals.response_days,
                    tz=settings.tz,
                    hotspot_days=hotspot_rules(settings, wijk.slug).days,
                )
            )
    if not found:
        await message.reply_text(not_allowed(t))
        return
    for digest in found:
        text = await asyncio.to_thread(digest_text, t, digest, tz=settings.tz, scheduled=False)
        await message.reply_text(text)


# --- wiring ---------------------------------------------------------------------------------


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """/overzicht and /meldingen_instellen with its buttons."""
    return [
        CommandHandler("overzicht", overview, filters=PRIVATE),
        CommandHandler("meldingen_instellen", alert_settings, filters=PRIVATE),
        CallbackQueryHandler(
            on_alert_mode, pattern=r"^digest:alerts:(\d{1,9}):(immediate|digest)$"
        ),
        CallbackQueryHandler(steps.stale_button(Permission.DIGEST), pattern=r"^digest:"),
    ]


async def start_jobs(application: Any) -> None:
    """Schedule each wijk's daily digest, and send right away what was missed while down."""
    app = _app(application)
    settings = app.services.settings
    queue = app.job_queue
    assert queue is not None
    for wijk in settings.wijken:
        name = f"digest:{wijk.slug}"
        for job in queue.get_jobs_by_name(name):
            job.schedule_removal()
        queue.run_daily(
            _daily_job,
            time=wijk.digest_time.replace(tzinfo=settings.tz),
            name=name,
            data=wijk.slug,
        )
    now = application.services.clock()
    for wijk in settings.wijken:
        try:
            await run_wijk(app, wijk.slug, now)
        except Exception:  # a start must not fail on one wijk: try again in a few minutes
            log.exception("catching up the digest of %s failed", wijk.slug)
            queue.run_once(
                _daily_job, when=CATCH_UP_RETRY, name=f"digest:catchup:{wijk.slug}", data=wijk.slug
            )


FEATURE = Feature(
    name="digest",
    handlers=build_handlers,
    commands=(
        Command("overzicht", N_("The digest of your wijk, now"), Permission.DIGEST),
        Command(
            "meldingen_instellen",
            N_("New signals: each at once, or only in the digest"),
            Permission.DIGEST,
        ),
    ),
    start=start_jobs,
    jobs=(Job("digest:<slug>", "daily at the wijk's digest_time, with a catch-up at start"),),
    signal_hooks=(on_signal_created,),
    outbox_hooks={DIGEST_HOOK: _digest_settled},
)
