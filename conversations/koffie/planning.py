"""Planning by the organiser and the Koppel: the /koffieplannen and /aanwezig flow."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CommandHandler, ConversationHandler, MessageHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import N_
from buurtsignaal.conversations.flow import (
    PRIVATE,
    SUMMARY,
    Callback,
    Draft,
    FlowPart,
    FlowTexts,
    GuidedFlow,
    State,
)
from buurtsignaal.conversations.koffie.announcement import refresh_wijk_announcements
from buurtsignaal.conversations.koffie.common import (
    MAX_AHEAD,
    MAX_PLACE,
    PRESENCE_KINDS,
    TYPED,
    example_day,
    kind_label,
)
from buurtsignaal.conversations.koffie.jobs import sweep
from buurtsignaal.conversations.ui import local_datetime, not_allowed, small_number
from buurtsignaal.storage import access, gatherings, parsing
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.wijken import active_wijken, get_wijk

log = logging.getLogger(__name__)

MAX_CAPACITY = 500

WIJK, KIND, PLACE, DATE, TIME, REPEAT, CAPACITY, CAPACITY_NUMBER = (
    "wijk",
    "kind",
    "place",
    "date",
    "time",
    "repeat",
    "capacity",
    "capacity_number",
)
PLAN_ORDER = (WIJK, KIND, PLACE, DATE, TIME, REPEAT, CAPACITY, SUMMARY)
PLAN_EDITABLE = (PLACE, DATE, TIME, REPEAT, CAPACITY)

PLAN = GuidedFlow(
    name="plannen",
    order=PLAN_ORDER,
    choices={
        KIND: {"spreekuur": N_("Spreekuur"), "wandeling": N_("Walk")},
        REPEAT: {
            "none": N_("Once"),
            "weekly": N_("Every week"),
            "biweekly": N_("Every two weeks"),
        },
        CAPACITY: {"none": N_("No maximum"), "number": N_("Set a maximum")},
    },
    columns={REPEAT: 3, KIND: 2},
    texts=FlowTexts(
        cancelled=N_("Planning cancelled. Nothing has been saved."),
        resumed=N_("You were already planning; let's continue where you were."),
        already=N_(
            "This was already published ({reference}); nothing was planned twice. Manage it "
            "with /beheer."
        ),
    ),
    hints={
        PLACE: N_("Please send this as a text message."),
        DATE: N_("Please type the date as day-month-year (dd-mm-yyyy)."),
        TIME: N_("Please type the time, for example 10:00."),
        CAPACITY_NUMBER: N_("Please type a number, for example 20."),
    },
    skip={
        WIJK: lambda draft: draft.get("wijk_id") is not None,
        KIND: lambda draft: draft.get("kind") == "koffie",
        CAPACITY: lambda draft: draft.get("kind") != "koffie",
    },
)


async def plan_question(context: BuurtContext, draft: Draft, step: str) -> tuple[str, Any]:
    """The text and keyboard that ask ``step``."""
    t = context.t
    if step == WIJK:
        async with context.db.begin() as session:
            wijken = await active_wijken(session)
        allowed = set(draft["wijken"])
        return t("For which wijk?"), PLAN.wijk_buttons(
            t, draft, WIJK, (w for w in wijken if w.id in allowed)
        )
    if step == KIND:
        return t("A spreekuur or a walk?"), PLAN.buttons(t, draft, KIND)
    if step == PLACE:
        return t("<b>Where?</b> For example: Buurthuis De Mussen, Hobbemastraat 56."), None
    if step == DATE:
        example = example_day(context.now, context.settings.tz)
        return t("<b>Which date?</b> For example {example}.", example=example), None
    if step == TIME:
        return t("<b>What time does it start?</b> For example 10:00."), None
    if step == REPEAT:
        return t("<b>Once, or repeating?</b>"), PLAN.buttons(t, draft, REPEAT)
    if step == CAPACITY:
        return t("<b>Is there a maximum number of people?</b>"), PLAN.buttons(t, draft, CAPACITY)
    if step == CAPACITY_NUMBER:
        return t("How many people at most (guests included)?"), None
    if step == SUMMARY:
        return await _plan_summary(context, draft)
    raise ValueError(step)


PLAN.question = plan_question


async def _published(session: AsyncSession, draft_key: str) -> str | None:
    """Where the series planned from a draft is, if it was published."""
    series = await gatherings.series_of_draft(session, draft_key)
    return None if series is None else series.place


PLAN.stored = _published


def _plan_start(draft: Draft, tz: dt.tzinfo) -> dt.datetime:
    day = dt.date.fromisoformat(draft["date"])
    hour, minute = (int(x) for x in draft["time"].split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tz)


async def _plan_summary(context: BuurtContext, draft: Draft) -> tuple[str, InlineKeyboardMarkup]:
    t = context.t
    async with context.db.begin() as session:
        wijk = await get_wijk(session, int(draft["wijk_id"]))
    start = _plan_start(draft, context.settings.tz)
    capacity = draft.get("capacity")
    lines = [
        t(
            "<b>{kind}</b> in {wijk}: please check.",
            kind=kind_label(t, draft["kind"]),
            wijk=wijk.name if wijk else "?",
        ),
        t("<b>Where:</b> {place}", place=draft["place"]),
        t("<b>First date:</b> {date}", date=local_datetime(start, context.settings.tz)),
        t("<b>Repeats:</b> {repeat}", repeat=PLAN.label(t, REPEAT, draft["repeat"])),
    ]
    if draft["kind"] == "koffie":
        lines.append(t("<b>Maximum:</b> {capacity}", capacity=capacity if capacity else t("none")))
    labels = {
        PLACE: t("Where"),
        DATE: t("Date"),
        TIME: t("Time"),
        REPEAT: t("Repeats"),
        CAPACITY: t("Maximum"),
    }
    editable = [s for s in PLAN_EDITABLE if s != CAPACITY or draft["kind"] == "koffie"]
    markup = PLAN.summary_keyboard(t, draft, labels, editable, t("Publish"))
    return "\n".join(lines), markup


def _planner(kind: str) -> Callback:
    permission = access.Permission.KOFFIE if kind == "koffie" else access.Permission.PRESENCE

    async def start(update: Update, context: BuurtContext) -> State:
        """Plan a koffiemoment (/koffieplannen) or the pair's presence (/aanwezig)."""
        message = update.effective_message
        user = update.effective_user
        assert message is not None and user is not None
        async with context.db.begin() as session:
            me = await access.person(session, user.id, context.settings.admins)
            wijken = sorted(me.wijken_for(permission))
        if not wijken:
            await message.reply_text(not_allowed(context.t))
            return ConversationHandler.END
        draft = PLAN.new_draft(
            context,
            kind=kind if kind == "koffie" else None,
            wijken=wijken,
            wijk_id=wijken[0] if len(wijken) == 1 else None,
            capacity=None,
        )
        first = PLAN.next_step(draft, WIJK) if draft["wijk_id"] else WIJK
        return await PLAN.ask(message, context, draft, first)

    return start


start_koffie = _planner("koffie")
start_presence = _planner("presence")


@PLAN.button_step(WIJK, PLAN.wijk_value)
async def on_plan_wijk(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A wijk was chosen (only one the planner may plan for), or another page of them."""
    if value.isdigit() and int(value) not in draft["wijken"]:
        await PLAN.stale_button(update, context)
        return None
    return await PLAN.wijk_chosen(update, context, draft, WIJK, value)


@PLAN.button_step(KIND)
async def on_plan_kind(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Spreekuur or walk."""
    draft["kind"] = value
    return await PLAN.chosen(update, context, draft, KIND, value)


@PLAN.text_step(MAX_PLACE)
async def on_plan_place(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """Where it is."""
    draft["place"] = text
    return await PLAN.advance(update, context, draft, PLACE)


@PLAN.text_step(20)
async def on_plan_date(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """Which date (today or later)."""
    day = parsing.local_date(text)
    message = update.effective_message
    assert message is not None
    today = context.now.astimezone(context.settings.tz).date()
    if day is None:  # 31-02-2026, "morgen": not a date it can read, not one in the past
        await message.reply_text(context.t(PLAN.hints[DATE]))  # how to type one
        return None
    if day < today:
        await message.reply_text(
            context.t(
                "Please type a date from today on, for example {example}.",
                example=example_day(context.now, context.settings.tz),
            )
        )
        return None
    if day > today + MAX_AHEAD:
        await message.reply_text(context.t("That is more than a year away; please check the year."))
        return None
    draft["date"] = day.isoformat()
    return await PLAN.advance(update, context, draft, DATE)


@PLAN.text_step(10)
async def on_plan_time(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """What time."""
    moment = parsing.local_time(text)
    message = update.effective_message
    assert message is not None
    if moment is None:
        await message.reply_text(context.t("Please type the time, for example 10:00."))
        return None
    draft["time"] = f"{moment:%H:%M}"
    if _plan_start(draft, context.settings.tz) <= context.now:
        await message.reply_text(
            context.t("That moment has already passed; please pick a later time.")
        )
        return None
    return await PLAN.advance(update, context, draft, TIME)


@PLAN.button_step(REPEAT)
async def on_plan_repeat(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Once, weekly or every two weeks."""
    draft["repeat"] = value
    return await PLAN.chosen(update, context, draft, REPEAT, value)


@PLAN.button_step(CAPACITY)
async def on_plan_capacity(
    update: Update, context: BuurtContext, draft: Draft, value: str
) -> State:
    """No maximum, or type one."""
    if value == "none":
        draft["capacity"] = None
        return await PLAN.chosen(update, context, draft, CAPACITY, value)
    return await PLAN.chosen_then(update, context, draft, CAPACITY, value, CAPACITY_NUMBER)


@PLAN.text_step(5)
async def on_plan_number(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """The maximum number of people."""
    capacity = small_number(text, 1, MAX_CAPACITY)
    if capacity is None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            context.t("Please type a number from 1 to {most}, for example 20.", most=MAX_CAPACITY)
        )
        return None
    draft["capacity"] = capacity
    return await PLAN.advance(update, context, draft, CAPACITY)


@PLAN.button_step(SUMMARY, PLAN.summary_action(PLAN_EDITABLE))
async def on_plan_summary(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Publish, change something, or cancel."""
    if value != "send":
        return await PLAN.edit_or_finish(update, context, draft, value)
    query = update.callback_query
    user = update.effective_user
    message = update.effective_message
    assert query is not None and user is not None and message is not None
    settings = context.settings
    start = _plan_start(draft, settings.tz)
    permission = (
        access.Permission.KOFFIE if draft["kind"] == "koffie" else access.Permission.PRESENCE
    )
    # Published before (a double tap, a lost answer, handled again after a restart): once.
    if await PLAN.already_sent(update, context, draft["nonce"]):
        return ConversationHandler.END
    async with context.db.begin() as session:
        me = await access.person(session, user.id, settings.admins)
    if not me.may(permission, int(draft["wijk_id"])):
        await query.answer(not_allowed(context.t), show_alert=True)
        return None
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, context.lang)
        series = await gatherings.plan(
            session,
            wijk_id=int(draft["wijk_id"]),
            kind=draft["kind"],
            place=draft["place"],
            starts_at=start,
            repeat=draft["repeat"],
            created_by=user.id,
            tz=settings.tz,
            capacity=draft.get("capacity"),
            now=context.now,
            draft_key=PLAN.draft_key(resident.id, draft["nonce"]),
        )
        dates = sum(  # this series' dates (others of its kind in the wijk are not its own)
            1
            for m in await gatherings.upcoming(
                session, series.wijk_id, [series.kind], now=context.now, within=gatherings.HORIZON
            )
            if m.series_id == series.id
        )
    PLAN.drop(context)
    t = context.t
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    await message.reply_text(
        t(
            "Published: {kind} on {date} at {place}. Manage it with /beheer.",
            kind=kind_label(t, draft["kind"]),
            date=local_datetime(start, settings.tz),
            place=draft["place"],
        )
    )
    log.info("planned series %s with %s dates", series.id, dates)
    await sweep(context.application)
    if series.kind in PRESENCE_KINDS:
        await refresh_wijk_announcements(context.application, series.wijk_id)
    return ConversationHandler.END


def planning_conversation() -> FlowPart:
    """/koffieplannen and /aanwezig: the planning flow's part of the one flow conversation."""
    buttons = PLAN.buttons_of
    return PLAN.conversation(
        entry_points=[
            CommandHandler("koffieplannen", start_koffie, filters=PRIVATE),
            CommandHandler("aanwezig", start_presence, filters=PRIVATE),
        ],
        states={
            WIJK: [buttons(WIJK, on_plan_wijk)],
            KIND: [buttons(KIND, on_plan_kind)],
            PLACE: [MessageHandler(TYPED, on_plan_place)],
            DATE: [MessageHandler(TYPED, on_plan_date)],
            TIME: [MessageHandler(TYPED, on_plan_time)],
            REPEAT: [buttons(REPEAT, on_plan_repeat)],
            CAPACITY: [buttons(CAPACITY, on_plan_capacity)],
            CAPACITY_NUMBER: [MessageHandler(TYPED, on_plan_number)],
            SUMMARY: [buttons(SUMMARY, on_plan_summary)],
        },
        command="koffieplannen",
        start=start_koffie,
    )
