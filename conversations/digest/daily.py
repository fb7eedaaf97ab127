"""The daily digest and its job: each recipient's digest (Mondays with a chart), via the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.bot.charts import weekly_chart_png
from buurtsignaal.bot.context import BuurtApplication, BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.bot.outbox import Settled
from buurtsignaal.bot.settings import WijkSettings
from buurtsignaal.conversations.digest.alerts import hotspot_alerts
from buurtsignaal.conversations.digest.common import (
    app_of,
    hotspot_rules,
    recipient_language,
    wijk_settings,
)
from buurtsignaal.conversations.digest.texts import digest_text, weekly_chart
from buurtsignaal.storage import digest as digests
from buurtsignaal.storage import hotspots, outbox
from buurtsignaal.storage.calendar import latest_slot
from buurtsignaal.storage.digest import Digest
from buurtsignaal.storage.outbox import Outgoing
from buurtsignaal.storage.wijken import wijk_by_slug

log = logging.getLogger(__name__)

CATCH_UP_RETRY = dt.timedelta(minutes=5)
CHART_WEEKS = 8


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
    language = await recipient_language(application, session, due.recipient)
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


async def digest_settled(session: AsyncSession, settled: Settled) -> None:
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
            messages += await hotspot_alerts(application, session, hotspot_id, now=now)
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
    await run_wijk(app_of(context.application), str(context.job.data), context.now)


async def start_jobs(application: Any) -> None:
    """Schedule each wijk's daily digest, and send right away what was missed while down."""
    app = app_of(application)
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
