"""Buurtbemiddeling cases: reminders, nazorg sweep, retention and the daily overview."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Html, Translator, escape
from buurtsignaal.bot.outbox import Settled
from buurtsignaal.conversations import steps
from buurtsignaal.conversations.callbacks import Nazorg, PartyMessage
from buurtsignaal.conversations.mediation_cases.common import (
    DIGEST_JOB,
    NAZORG_JOB,
    NAZORG_LABELS,
    OVERVIEW_LIMIT,
    PLACE_SHOWN,
    REMINDER_JOB,
    RETENTION_AT,
    RETENTION_JOB,
    SWEEP_EVERY,
    UPCOMING_DAYS,
    _language,
    _stage,
    _tell,
)
from buurtsignaal.conversations.ui import keyboard, local_date, local_datetime, shorten, topic_label
from buurtsignaal.storage import access, outbox
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.wijken import wijk_by_slug

log = logging.getLogger(__name__)


# --- messages to residents (in their language) -----------------------------------------------


def _closing_message(t: Translator) -> str:
    """To both parties when the case closes: kind, without any content."""
    return t(
        "The buurtbemiddeling team has closed your mediation. Thank you for taking part and "
        "for talking with each other. If things get difficult again, you can always ask for "
        "mediation with /bemiddeling."
    )


def _reminder_text(t: Translator, target: store.ReminderTarget, tz: dt.tzinfo) -> str:
    """The reminder a day before: date, time and place, nothing about the other party."""
    local = target.starts_at.astimezone(tz)
    return t(
        "⏰ <b>Reminder</b>: you have a buurtbemiddeling talk on {date} at {time}.\n"
        "<b>Place:</b> {place}\n"
        "Can you not make it? Please let the mediation team know in time.",
        date=local_date(local, tz),
        time=local.strftime("%H:%M"),
        place=target.place or "?",
    )


def _appointment_notice(
    t: Translator, target: store.ReminderTarget, tz: dt.tzinfo
) -> tuple[str, InlineKeyboardMarkup]:
    """Told at once when a talk is planned: date, time and place, nothing about the other
    party, with a button to answer the mediation team."""
    local = target.starts_at.astimezone(tz)
    text = t(
        "📅 <b>Appointment</b>: the mediation team has planned a buurtbemiddeling talk with "
        "you on {date} at {time}.\n"
        "<b>Place:</b> {place}\n"
        "You get a reminder the day before. Can you not make it? Let the mediation team know "
        "with the button below.",
        date=local_date(local, tz),
        time=local.strftime("%H:%M"),
        place=target.place or "?",
    )
    markup = keyboard(
        [("↩️ " + t("Answer"), PartyMessage("ans", target.case_id, target.party).pack())]
    )
    return text, markup


def _nazorg_question(t: Translator, party_id: int) -> tuple[str, InlineKeyboardMarkup]:
    """The check-in some weeks after the agreements."""
    text = t(
        "Some weeks ago you took part in buurtbemiddeling. <b>How are things now?</b>\n"
        "Your answer goes only to the mediation team."
    )
    markup = keyboard(
        [(t(label), Nazorg(party_id, code).pack()) for code, label in NAZORG_LABELS.items()],
        columns=3,
    )
    return text, markup


# --- jobs --------------------------------------------------------------------------------------

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock(application: Any) -> asyncio.Lock:
    """One sweep at a time per application (a direct run and the scheduled one never overlap)."""
    lock = _locks.get(application)
    if lock is None:
        lock = _locks[application] = asyncio.Lock()
    return lock


async def send_reminders(context: BuurtContext) -> None:
    """Remind the parties of each appointment once, about a day before it starts: decided
    (the ledger in the history) and written to the outbox in one unit of work."""
    async with _lock(context.application):
        now = context.now
        tz = context.settings.tz
        messages: list[outbox.Outgoing] = []
        async with context.db.begin() as session:
            for appointment_id in await store.due_reminders(session, now):
                for target in await store.decide_reminders(session, appointment_id, now=now):
                    t = Translator(_language(context, target.telegram_id, target.language))
                    messages.append(
                        outbox.Outgoing(
                            key=f"mcase:reminder:{appointment_id}:{target.party}",
                            chat_id=target.telegram_id,
                            kind="mcase:reminder",
                            text=_reminder_text(t, target, tz),
                            hook=REMINDER_HOOK,
                            hook_data={
                                "case": target.case_id,
                                "appointment": appointment_id,
                                "party": target.party,
                            },
                        )
                    )
            await outbox.enqueue(session, *messages, now=now)
    if messages:
        context.outbox.wake()


async def _reminder_settled(session: AsyncSession, settled: Settled) -> None:
    """A reminder Telegram refused for good (blocked): the history says it did not arrive."""
    if not settled.delivered:
        data = settled.data
        await store.reminder_undelivered(
            session, int(data["case"]), int(data["appointment"]), int(data["party"])
        )


async def send_nazorg(context: BuurtContext) -> None:
    """Send the nazorg check-in to each party whose case is due, once: decided and written to
    the outbox in one unit of work; the history notes whether it arrived."""
    async with _lock(context.application):
        now = context.now
        messages: list[outbox.Outgoing] = []
        async with context.db.begin() as session:
            for party_id in await store.due_nazorg(session, now):
                target = await store.decide_nazorg(session, party_id, now=now)
                if target is None:
                    continue
                if target.unreachable:  # they blocked the bot: trying would not help
                    await store.record_nazorg(
                        session, target.case_id, target.party, delivered=False, now=now
                    )
                    continue
                t = Translator(_language(context, target.telegram_id, target.language))
                text, markup = _nazorg_question(t, target.party_id)
                messages.append(
                    outbox.Outgoing(
                        key=f"mcase:nazorg:{party_id}",
                        chat_id=target.telegram_id,
                        kind="mcase:nazorg",
                        text=text,
                        reply_markup=markup.to_dict(),
                        hook=NAZORG_HOOK,
                        hook_data={"case": target.case_id, "party": target.party},
                    )
                )
            await outbox.enqueue(session, *messages, now=now)
    if messages:
        context.outbox.wake()


async def _nazorg_settled(session: AsyncSession, settled: Settled) -> None:
    """Note in the case's history whether the check-in arrived."""
    await store.record_nazorg(
        session,
        int(settled.data["case"]),
        int(settled.data["party"]),
        delivered=settled.delivered,
        now=settled.now,
    )


REMINDER_HOOK = "mcase:reminder"
NAZORG_HOOK = "mcase:nazorg"
RELAY_HOOK = "mcase:relay"


async def anonymise(context: BuurtContext) -> None:
    """Retention: anonymise the cases closed longer ago than the retention period, and forget
    wrong code tries older than a day."""
    now = context.now
    async with context.db.begin() as session:
        done = await store.anonymise_closed(
            session, now=now, retention_days=context.settings.mediation.retention_days
        )
        await store.forget_code_failures(session, now=now)
    if done:
        log.info("anonymised %d closed mediation case(s): %s", len(done), ", ".join(done))


def overview_text(
    t: Translator,
    wijk: str,
    overview: store.Overview,
    *,
    tz: dt.tzinfo,
    now: dt.datetime,
    intake_days: int,
) -> str:
    """The bemiddelaars' daily overview of one wijk (lists cut so it fits one message)."""

    def cut(lines: list[str]) -> list[str]:
        if len(lines) <= OVERVIEW_LIMIT:
            return lines
        return [*lines[:OVERVIEW_LIMIT], t("… and {n} more", n=len(lines) - OVERVIEW_LIMIT)]

    parts = [t("🤝 <b>Buurtbemiddeling {wijk}</b>, {date}", wijk=wijk, date=local_date(now, tz))]
    if overview.new:
        parts += [
            "",
            t.ngettext(
                "<b>{n} new request</b> since yesterday:",
                "<b>{n} new requests</b> since yesterday:",
                len(overview.new),
            ),
        ]
        parts += cut(
            [
                "• "
                + t(
                    "<b>{reference}</b> · {topic}",
                    reference=c.reference,
                    topic=topic_label(t, c.topic),
                )
                for c in overview.new
            ]
        )
    if overview.overdue:
        parts += [
            "",
            t.ngettext(
                "⚠️ <b>{n} intake overdue</b> (still registered after {days} working days):",
                "⚠️ <b>{n} intakes overdue</b> (still registered after {days} working days):",
                len(overview.overdue),
                days=intake_days,
            ),
        ]
        parts += cut(
            [
                "• "
                + t(
                    "<b>{reference}</b> · {topic} · since {date}",
                    reference=c.reference,
                    topic=topic_label(t, c.topic),
                    date=local_date(c.created_at, tz),
                )
                for c in overview.overdue
            ]
        )
    if overview.upcoming:
        parts += ["", t("<b>Appointments in the coming days:</b>")]
        parts += cut(
            [
                "• "
                + t(
                    "{when} · <b>{reference}</b> · {stage} · {place}",
                    when=local_datetime(a.starts_at, tz),
                    reference=a.reference,
                    stage=_stage(t, a.kind),
                    place=shorten(a.place or "?", PLACE_SHOWN),
                )
                for a in overview.upcoming
            ]
        )
    if overview.stages:
        per_stage = " · ".join(
            f"{escape(_stage(t, s))} {overview.stages[s]}"
            for s in store.OPEN_STAGES
            if s in overview.stages
        )
        parts += ["", t("<b>Open cases:</b> {stages}", stages=Html(per_stage))]
    parts += ["", t("All open cases: /zaken · one case: /zaak BM-2026-0001")]
    return "\n".join(parts)


async def send_overview(context: BuurtContext) -> None:
    """The daily overview for the bemiddelaars of one wijk (job data: the wijk's slug).

    Nothing is sent on a quiet day (no new requests, no overdue intakes, no appointments)."""
    job = context.job
    assert job is not None
    slug = str(job.data)
    settings = context.settings
    now = context.now
    async with context.db.begin() as session:
        wijk = await wijk_by_slug(session, slug)
        if wijk is None or not wijk.active:
            return
        overview = await store.overview(
            session,
            wijk.id,
            now=now,
            since=now - dt.timedelta(days=1),
            tz=settings.tz,
            intake_days=settings.mediation.intake_days,
            days_ahead=UPCOMING_DAYS,
        )
        people = await access.recipients(session, wijk.id, Permission.MEDIATION)
        languages = await steps.languages(context, session, people)
        name = wijk.name
        if not overview.quiet:
            await _tell(
                context,
                session,
                languages,
                lambda t: overview_text(
                    t,
                    name,
                    overview,
                    tz=settings.tz,
                    now=now,
                    intake_days=settings.mediation.intake_days,
                ),
                key=f"mcase:overview:{wijk.id}:{now.astimezone(settings.tz):%Y-%m-%d}",
            )


async def start_jobs(application: Any) -> None:
    """Schedule the sweepers (once right away, then every few minutes), retention and the
    daily overview of each wijk; all of them read what is due from the database."""
    settings = application.services.settings
    queue = application.job_queue
    assert queue is not None
    names = [
        REMINDER_JOB,
        NAZORG_JOB,
        RETENTION_JOB,
        *(DIGEST_JOB.format(slug=w.slug) for w in settings.wijken),
    ]
    for name in names:
        for job in queue.get_jobs_by_name(name):
            job.schedule_removal()
    queue.run_repeating(send_reminders, interval=SWEEP_EVERY, first=0, name=REMINDER_JOB)
    queue.run_repeating(send_nazorg, interval=SWEEP_EVERY, first=0, name=NAZORG_JOB)
    queue.run_daily(anonymise, time=RETENTION_AT.replace(tzinfo=settings.tz), name=RETENTION_JOB)
    for wijk in settings.wijken:
        queue.run_daily(
            send_overview,
            time=wijk.digest_time.replace(tzinfo=settings.tz),
            name=DIGEST_JOB.format(slug=wijk.slug),
            data=wijk.slug,
        )
