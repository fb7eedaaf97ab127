"""Privacy as a feature: /privacy, /mijngegevens and /vergeetmij.

/privacy is generated from the role table and the configuration. /mijngegevens shows
everything stored about the resident, as a message and as a JSON file, and nothing about
anyone else. /vergeetmij removes their personal data after an explicit confirmation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from buurtsignaal.bot.context import BuurtApplication, BuurtContext
from buurtsignaal.bot.feature import PRIVATE_MENU, Command, Feature, Job
from buurtsignaal.bot.i18n import LANGUAGE_NAMES, N_, Translator
from buurtsignaal.bot.messenger import MessengerBot
from buurtsignaal.bot.settings import Settings
from buurtsignaal.conversations import relay
from buurtsignaal.conversations.callbacks import Forget
from buurtsignaal.conversations.ui import keyboard, local_date, privacy_text
from buurtsignaal.storage import access
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.messengers import drop_unused_copies
from buurtsignaal.storage.privacy import Removal, apply_retention, collect, forget, retention_plan

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
log = logging.getLogger(__name__)


async def privacy(update: Update, context: BuurtContext) -> None:
    """/privacy: who sees what and how long it is kept, from the actual configuration."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(privacy_text(context.t, context.settings, full=True))


def _summary(t: Translator, data: dict[str, Any], tz: dt.tzinfo) -> str:
    lines = [t("<b>What we store about you</b>")]
    resident = data.get("resident")
    if resident:
        lines.append(
            t(
                "Language: {language}; wijk: {wijk}; known since {since}.",
                language=LANGUAGE_NAMES.get(resident["language"], resident["language"]),
                wijk=resident["wijk"] or "-",
                since=(
                    local_date(dt.datetime.fromisoformat(resident["since"]), tz)
                    if resident["since"]
                    else "-"
                ),
            )
        )
    lines.append(
        t.ngettext("{n} report", "{n} reports", len(data.get("reports", [])))
        + ": "
        + (", ".join(r["reference"] for r in data.get("reports", [])) or "-")
    )
    lines.append(
        t.ngettext("{n} mediation case", "{n} mediation cases", len(data.get("mediation", [])))
        + ": "
        + (", ".join(c["reference"] for c in data.get("mediation", [])) or "-")
    )
    lines.append(
        t.ngettext("{n} koffie sign-up", "{n} koffie sign-ups", len(data.get("koffie", [])))
    )
    for role in data.get("roles", []):
        lines.append(t("Role: {role} in {wijk}", role=role["role"], wijk=role["wijk"]))
    if data.get("unfinished"):
        lines.append(
            t("Something you had not finished yet: {what}", what=", ".join(data["unfinished"]))
        )
    lines.append(t("Everything in detail is in the attached file."))
    return "\n".join(lines)


async def my_data(update: Update, context: BuurtContext) -> None:
    """/mijngegevens: everything stored about the resident, as a message and a JSON file."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        data = await collect(session, user.id)
    if data is None:
        await message.reply_text(t("We store nothing about you."))
        return
    await message.reply_text(_summary(t, data, context.settings.tz))
    await message.reply_document(
        InputFile(
            json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"),
            filename="mijngegevens.json",
        )
    )


async def forget_me(update: Update, context: BuurtContext) -> None:
    """/vergeetmij: explain what happens and ask to confirm."""
    message = update.effective_message
    assert message is not None
    t = context.t
    await message.reply_text(
        t(
            "<b>Remove your personal data?</b>\n"
            "• The link between your account (on Telegram or Signal) and your reports and "
            "mediation cases is removed, with your contact details, photos, koffie sign-ups and "
            "anything you had not finished.\n"
            "• Open reports stay for the professionals, without you; they can no longer reach "
            "you. Of closed reports only the category, date, wijk and a rough place remain.\n"
            "• This cannot be undone."
        ),
        reply_markup=keyboard(
            [
                (t("Yes, remove my data"), Forget("yes").pack()),
                (t("No, keep it"), Forget("no").pack()),
            ],
            columns=2,
        ),
    )


async def on_forget(update: Update, context: BuurtContext) -> None:
    """Forget the resident (after the explicit yes) and tell professionals who lose a contact."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    t = context.t
    if Forget.of(update).answer == "no":
        await query.answer()
        await query.edit_message_text(t("Nothing changed."))
        return
    async with context.db.begin() as session:
        done = await forget(session, user.id, now=context.now)
        await drop_unused_copies(session)  # the bot's copies of their Signal photos
        tell: list[tuple[int, str]] = []
        for wijk_id, reference, assigned in done.tell:
            people = set(await access.recipients(session, wijk_id, access.Permission.SIGNALS))
            if assigned:
                people.add(assigned)
            tell.extend((person, reference) for person in sorted(people))
        await relay.enqueue(  # the professionals who lose a contact, through the outbox
            context,
            session,
            *(
                relay.message(
                    relay.key(f"privacy:left:{reference}", person),
                    person,
                    "privacy:news",
                    _reporter_left(context.translator_for(person), reference),
                )
                for person, reference in tell
            ),
        )
    relay.wake(context, len(tell))
    context.application.drop_user_data(user.id)
    await query.answer()
    await query.edit_message_text(
        t(
            "Done: your personal data has been removed. If you use the bot again, it treats "
            "you as new."
        )
    )
    if isinstance(context.bot, MessengerBot):
        # Told after the last message to them: the Signal gateway forgets them too.
        await context.bot.forget_chat(user.id)


def _reporter_left(t: Translator, reference: str) -> str:
    """Told to professionals when a contactable reporter is gone."""
    return t(
        "The reporter of {reference} had their data removed and can no longer be reached. "
        "The report stays open.",
        reference=reference,
    )


async def run_retention(application: Any, *, dry_run: bool = False) -> list[Removal]:
    """Remove (or, dry, list) personal data whose time is up, as configured."""
    assert isinstance(application, BuurtApplication)
    return await retention(
        application.services.db,
        application.services.settings,
        now=application.services.clock(),
        dry_run=dry_run,
    )


async def retention(
    db: Database, settings: Settings, *, now: dt.datetime, dry_run: bool
) -> list[Removal]:
    """The retention run on a database: what is removed (or would be, with ``dry_run``)."""
    keep = settings.retention
    periods = {
        "contact_days": keep.contact_days,
        "content_days": keep.content_days,
        "signup_days": keep.signup_days,
        "mediation_days": settings.mediation.retention_days,
    }
    async with db.begin() as session:
        if dry_run:
            return await retention_plan(session, now=now, **periods)
        removed = list(await apply_retention(session, now=now, **periods))
        await drop_unused_copies(session)
    if removed:
        log.info("retention removed %s item(s)", len(removed))
    return removed


async def _retention_job(context: BuurtContext) -> None:
    """The daily retention run."""
    await run_retention(context.application)


async def start_jobs(application: Any) -> None:
    """Run retention every night, and once shortly after start-up."""
    queue = application.job_queue
    assert queue is not None
    tz = application.services.settings.tz
    queue.run_daily(_retention_job, time=dt.time(3, 30, tzinfo=tz), name="privacy:retention")
    queue.run_once(_retention_job, when=60, name="privacy:retention-start")


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for privacy commands."""
    return [
        CommandHandler("privacy", privacy, filters=PRIVATE),
        CommandHandler("mijngegevens", my_data, filters=PRIVATE),
        CommandHandler("vergeetmij", forget_me, filters=PRIVATE),
        CallbackQueryHandler(on_forget, pattern=Forget.pattern),
    ]


FEATURE = Feature(
    name="privacy",
    handlers=build_handlers,
    commands=(
        Command("privacy", N_("Who sees what, and how long it is kept"), PRIVATE_MENU, order=70),
        Command("mijngegevens", N_("Everything we store about you"), PRIVATE_MENU, order=80),
        Command("vergeetmij", N_("Remove your personal data"), PRIVATE_MENU, order=90),
    ),
    start=start_jobs,
    jobs=(Job("privacy:retention", "every night at 03:30, and once shortly after start"),),
)
