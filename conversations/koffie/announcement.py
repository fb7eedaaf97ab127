"""The group's announcement of a date, its 'Ik kom' count kept up to date in place."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application

from buurtsignaal.bot.context import BuurtApplication, BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.callbacks import Koffie
from buurtsignaal.conversations.koffie.common import kind_label, when_text
from buurtsignaal.storage import gatherings
from buurtsignaal.storage.models import Moment

log = logging.getLogger(__name__)

COUNT_DELAY_SECONDS = 2.0  # coalesce "Ik kom" presses into one edit (groups allow 20 per minute)


def announcement_text(
    t: Translator, moment: Moment, people: int, tz: dt.tzinfo, pair: Moment | None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The group's announcement of a date. The wijkagent and opbouwwerker are named only when
    they announced a spreekuur or walk (``pair``) at that time: no promise they did not make."""
    if moment.cancelled_at is not None:
        return t(
            "☕ <s>Koffiemoment {when}, {place}</s>\nThis koffiemoment has been cancelled.",
            when=when_text(t, moment, tz),
            place=moment.place,
        ), None
    lines = [
        t(
            "☕ <b>Koffiemoment in {wijk}</b>\n{when}, {place}",
            wijk=moment.wijk.name,
            when=when_text(t, moment, tz),
            place=moment.place,
        )
    ]
    if pair is not None:
        lines.append(
            t(
                "At the same time: {kind}, {place}, from {time}.",
                kind=kind_label(t, pair.kind),
                place=pair.place,
                time=f"{pair.starts_at.astimezone(tz):%H:%M}",
            )
        )
    lines.append(t("Everyone is welcome. Coming: {n}", n=people))
    text = "\n".join(lines)
    return text, InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t("I'm coming ☕ ({n})", n=people),
                    callback_data=Koffie("rsvp", moment.id).pack(),
                )
            ]
        ]
    )


def schedule_count_update(
    application: Application[Any, Any, Any, Any, Any, Any], moment_id: int
) -> None:
    """Edit the group announcement soon, once for a burst of presses."""
    queue = application.job_queue
    if queue is None:
        return
    name = f"koffie:count:{moment_id}"
    for job in queue.get_jobs_by_name(name):
        job.schedule_removal()
    queue.run_once(_update_count, COUNT_DELAY_SECONDS, data=moment_id, name=name)


async def _update_count(context: BuurtContext) -> None:
    """Edit the group announcement with the current count."""
    assert context.job is not None
    assert isinstance(context.job.data, int)
    await refresh_announcement(context.application, context.job.data)


async def refresh_wijk_announcements(application: Any, wijk_id: int) -> None:
    """Bring the coming koffie announcements of a wijk up to date after the Koppel's presence
    changed (they name the pair only when the pair is there)."""
    assert isinstance(application, BuurtApplication)
    async with application.services.db.begin() as session:
        ids = await gatherings.announced(session, wijk_id, now=application.services.clock())
    for moment_id in ids:
        await refresh_announcement(application, moment_id)


async def refresh_announcement(application: Any, moment_id: int) -> None:
    """Bring a date's group announcement up to date (count, or cancelled)."""
    assert isinstance(application, BuurtApplication)
    settings, db = application.services.settings, application.services.db
    async with db.begin() as session:
        moment = await gatherings.get_moment(session, moment_id)
        if moment is None or moment.group_message_id is None or moment.group_chat_id is None:
            return
        people = (await gatherings.counts(session, [moment_id]))[moment_id].people
        pair = await gatherings.presence_during(session, moment)
    t = Translator(settings.default_language)
    text, markup = announcement_text(t, moment, people, settings.tz, pair)
    try:
        await application.bot.edit_message_text(
            text,
            chat_id=moment.group_chat_id,
            message_id=moment.group_message_id,
            reply_markup=markup,
        )
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.warning("could not update the announcement of %s: %s", moment_id, exc)
    except TelegramError as exc:
        log.warning("could not update the announcement of %s: %s", moment_id, exc)
