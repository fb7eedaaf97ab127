"""The sweeper job: group announcements, day-before notes and reminders, via the outbox."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup

from buurtsignaal.bot.context import BuurtApplication, BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.bot.outbox import Settled
from buurtsignaal.conversations.koffie.announcement import announcement_text
from buurtsignaal.conversations.koffie.common import decision, kind_label, when_text
from buurtsignaal.storage import gatherings, outbox
from buurtsignaal.storage.models import Moment
from buurtsignaal.storage.outbox import Outgoing

log = logging.getLogger(__name__)

SWEEP_SECONDS = 300


def _group_message(
    moment: Moment,
    what: gatherings.GroupMessage,
    kind: str,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    *,
    decided: dt.datetime | None = None,
) -> Outgoing:
    """A date's announcement or day-before note to its wijk's group; once settled, the hook
    keeps the announcement's id (or undoes the decision when it was refused)."""
    chat = moment.wijk.group_chat_id
    assert chat is not None
    return Outgoing(
        # The day-before note is one per decision (a date moved after it went out, even back
        # to where it was, is decided and noted again). The announcement is one message,
        # edited when the date changes.
        key=f"koffie:{what}:{moment.id}" + (decision(moment, decided) if decided else ""),
        chat_id=chat,
        kind=kind,
        text=text,
        reply_markup=markup.to_dict() if markup else None,
        hook=GROUP_HOOK,
        hook_data={"moment": moment.id, "what": what},
    )


REMINDER_BATCH = 100  # sign-ups read and decided per unit of work


async def sweep(application: Any) -> None:
    """Announce new koffiemomenten, decide due reminders and day-before notes (idempotent).

    Each message is marked decided and written to the outbox in one unit of work (reminders
    in batches), so two sweeps at once (the timer and one run right after planning) write it
    once, and the outbox sends it once."""
    assert isinstance(application, BuurtApplication)
    settings, db = application.services.settings, application.services.db
    now = application.services.clock()
    tz = settings.tz
    t = Translator(settings.default_language)
    async with db.begin() as session:
        await gatherings.extend_all(session, now=now, tz=tz)
        announce = [
            m for m in await gatherings.to_announce(session, now=now) if m.wijk.group_chat_id
        ]
        previews = [
            m for m in await gatherings.to_preview(session, now=now) if m.wijk.group_chat_id
        ]
        numbers = await gatherings.counts(session, [m.id for m in announce])
        pairs = {m.id: await gatherings.presence_during(session, m) for m in announce}
        messages: list[Outgoing] = []
        for moment in announce:
            if not await gatherings.decide_group_message(session, moment.id, "announced", now=now):
                continue
            text, markup = announcement_text(
                t, moment, numbers[moment.id].people, tz, pairs[moment.id]
            )
            messages.append(
                _group_message(moment, "announced", "koffie:announcement", text, markup)
            )
        for moment in previews:
            if not await gatherings.decide_group_message(session, moment.id, "previewed", now=now):
                continue
            text = t(
                "Tomorrow: {kind}, {when}, {place}. Drop by!",
                kind=kind_label(t, moment.kind),
                when=when_text(t, moment, tz),
                place=moment.place,
            )
            messages.append(
                _group_message(moment, "previewed", "koffie:preview", text, decided=now)
            )
        await outbox.enqueue(session, *messages, now=now)
    if messages:
        application.outbox.wake()
    # Reminders are read and decided a batch of sign-ups at a time, each batch its own short
    # unit of work: two thousand in one would hold the database (on SQLite, everyone's
    # replies) for seconds. Each batch is read where it is decided, so a sign-up cancelled,
    # moved or blocked meanwhile is not reminded (or with what is true now); a reminder's
    # mark is conditional, so a sweep cut short between batches decides the rest at the
    # next, once.
    after: int | None = 0
    while after is not None:
        async with db.begin() as session:
            chunk, after = await gatherings.due_reminders(
                session, now=now, tz=tz, after=after, limit=REMINDER_BATCH
            )
            decided: set[tuple[int, str]] = set()
            for kind in sorted({reminder.kind for reminder in chunk}):
                ids = [reminder.signup.id for reminder in chunk if reminder.kind == kind]
                marked = await gatherings.mark_reminded(session, ids, kind, now=now)
                decided |= {(signup_id, kind) for signup_id in marked}
            batch = [
                _reminder(application, reminder, decided=now)
                for reminder in chunk
                if (reminder.signup.id, reminder.kind) in decided
            ]
            await outbox.enqueue(session, *batch, now=now)
        if batch:
            application.outbox.wake()


async def group_message_settled(session: AsyncSession, settled: Settled) -> None:
    """A group announcement or note was settled. Sent: keep the announcement's id, so its
    count can be updated in it. Refused (the bot is not in the group yet, say): the decision
    is undone, so a later sweep tries again with a new message."""
    moment_id = int(settled.data["moment"])
    what: gatherings.GroupMessage = (
        "announced" if settled.data.get("what") == "announced" else "previewed"
    )
    if not settled.delivered:
        await gatherings.undo_group_message(session, moment_id, what)
        await outbox.free_key(session, settled.key)
    elif what == "announced" and settled.message_id is not None:
        await gatherings.store_announcement(
            session, moment_id, chat_id=settled.chat_id, message_id=settled.message_id
        )


GROUP_HOOK = "koffie:group"


def _reminder(
    application: BuurtApplication, reminder: gatherings.Reminder, *, decided: dt.datetime
) -> Outgoing:
    """The reminder of a sign-up, in the resident's language."""
    settings = application.services.settings
    signup = reminder.signup
    chat = signup.resident.telegram_id
    data = application.user_data.get(chat) or {}
    t = Translator(str(data.get("lang") or settings.default_language))
    moment = signup.moment
    text = (
        t(
            "Reminder: the koffiemoment is today, {when}, at {place}. See you there!",
            when=when_text(t, moment, settings.tz),
            place=moment.place,
        )
        if reminder.kind == "morning"
        else t(
            "Reminder: tomorrow is the koffiemoment, {when}, at {place}.",
            when=when_text(t, moment, settings.tz),
            place=moment.place,
        )
    )
    return Outgoing(
        key=f"koffie:remind:{signup.id}:{reminder.kind}{decision(moment, decided)}",
        chat_id=chat,
        kind="koffie:reminder",
        text=text,
    )


async def _sweep_job(context: BuurtContext) -> None:
    """The periodic sweep."""
    await sweep(context.application)


async def start_jobs(application: Any) -> None:
    """Run the sweeper every few minutes, starting now."""
    assert application.job_queue is not None
    application.job_queue.run_repeating(
        _sweep_job, interval=SWEEP_SECONDS, first=1, name="koffie:sweep"
    )
