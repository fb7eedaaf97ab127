"""Koffiemomenten and the Koppel in de wijk.

- Organisers (and the pair) plan a koffiemoment with /koffieplannen: place, date, time, once or
  every week or two weeks, optional capacity. The pair publishes a spreekuur or walk with
  /aanwezig. /beheer shows what is planned: who comes (first names only), change or cancel one
  date or the whole series; cancelling tells everyone who signed up.
- Residents see the coming koffiemomenten with /koffie, sign up (with guests), cancel, and get
  an .ics file; /koppel shows when the pair is around.
- The group gets each new koffiemoment with an "Ik kom" button whose count is edited in place,
  and a short note the day before a spreekuur or walk.
- One sweeper job (``koffie:sweep``) decides announcements, reminders and notes from the
  database and writes them to the outbox (``bot.outbox`` sends them), so a restart sends
  nothing twice and misses nothing. Notices to everyone who signed up (a cancelled or moved
  date) go the same way: never sent from a handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Sequence
from typing import Any

from icalendar import Calendar, Event
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.context import BuurtApplication, BuurtContext
from bot.feature import GROUP_MENU, PRIVATE_MENU, Command, Feature, Job
from bot.i18n import N_, Translator
from bot.outbox import Settled
from conversations.flow import (
    PRIVATE,
    SUMMARY,
    Callback,
    Draft,
    FlowTexts,
    GuidedFlow,
    State,
    persistent_conversation,
)
from conversations.ui import (
    keyboard,
    local_datetime,
    not_allowed,
    short_date,
    small_number,
)
from storage import access, gatherings, outbox, parsing
from storage.access import Permission
from storage.models import Moment, Resident, Signup, Wijk
from storage.outbox import Outgoing
from storage.residents import ensure_resident, get_resident
from storage.wijken import active_wijken, get_wijk

log = logging.getLogger(__name__)

SWEEP_SECONDS = 300
COUNT_DELAY_SECONDS = 2.0  # coalesce "Ik kom" presses into one edit (groups allow 20 per minute)
MAX_GUESTS = 3
MAX_CAPACITY = 500
# Plans are made at most a year ahead (a typed 31-12-9999 is a typing error, not a plan).
MAX_AHEAD = dt.timedelta(days=366)
MAX_PLACE = 200
NAMES_SHOWN = 40  # first names on a date's page; the rest is counted (one message)
KOFFIE_KINDS = ("koffie",)
PRESENCE_KINDS = gatherings.PRESENCE_KINDS
KIND_LABELS = {
    "koffie": N_("Koffiemoment"),
    "spreekuur": N_("Spreekuur of the wijkagent and opbouwwerker"),
    "wandeling": N_("Walk through the wijk with the wijkagent and opbouwwerker"),
}


def when_text(t: Translator, moment: Moment, tz: dt.tzinfo) -> str:
    """'donderdag 03-12-2026 10:00' in the reader's language."""
    return local_datetime(moment.starts_at, tz).render(t.language)


def kind_label(t: Translator, kind: str) -> str:
    """The translated name of a kind of gathering."""
    return t(KIND_LABELS[kind])


def ics(t: Translator, moment: Moment, now: dt.datetime) -> bytes:
    """An iCalendar file for one date."""
    calendar = Calendar()
    calendar.add("prodid", "-//Buurtsignaal//koffiemomenten//NL")
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"moment-{moment.id}@buurtsignaal")
    event.add("dtstamp", now)
    event.add("dtstart", moment.starts_at)
    event.add("dtend", moment.starts_at + dt.timedelta(minutes=moment.duration_minutes))
    event.add("summary", f"{kind_label(t, moment.kind)} {moment.wijk.name}")
    event.add("location", moment.place)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


# --- planning: /koffieplannen and /aanwezig ------------------------------------------------

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
        DATE: N_("Please type the date, for example 03-12-2026."),
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
        return t("<b>Which date?</b> For example 03-12-2026."), None
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
    if day is None or day < today:
        await message.reply_text(
            context.t(
                "Please type a date from today on, for example {example}.",
                example=f"{today + dt.timedelta(days=7):%d-%m-%Y}",
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
        dates = len(
            await gatherings.upcoming(
                session, series.wijk_id, [series.kind], now=context.now, within=gatherings.HORIZON
            )
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


# --- residents: /koffie, /koppel, signing up -----------------------------------------------


async def _resident_wijk(
    context: BuurtContext, user_id: int, language: str
) -> tuple[Resident, Wijk | None]:
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user_id, language)
        wijken = await active_wijken(session)
        wijk = resident.wijk if resident.wijk and resident.wijk.active else None
        if wijk is None and len(wijken) == 1:
            wijk = wijken[0]
        return resident, wijk


async def koffie(update: Update, context: BuurtContext) -> None:
    """/koffie: the coming koffiemomenten of the resident's wijk, to sign up or cancel."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    resident, wijk = await _resident_wijk(context, user.id, context.lang)
    if wijk is None:
        await message.reply_text(t("Choose your wijk first with /start."))
        return
    tz = context.settings.tz
    async with context.db.begin() as session:
        moments = list(await gatherings.upcoming(session, wijk.id, KOFFIE_KINDS, now=context.now))
        numbers = await gatherings.counts(session, [m.id for m in moments])
        mine = {
            m.id
            for m in moments
            if (s := await gatherings.signup_of(session, m.id, resident.id))
            and s.cancelled_at is None
        }
    if not moments:
        await message.reply_text(
            t("No koffiemomenten are planned in {wijk} for the coming weeks.", wijk=wijk.name)
        )
        return
    lines = [t("<b>Koffiemomenten in {wijk}</b>", wijk=wijk.name)]
    buttons = []
    for moment in moments:
        count = numbers[moment.id].people
        when = when_text(t, moment, tz)  # not inline: pybabel would then miss the plural
        lines.append(
            t.ngettext(
                "☕ {when}, {place}: {n} is coming",
                "☕ {when}, {place}: {n} are coming",
                count,
                when=when,
                place=moment.place,
            )
            + (" ✔️" if moment.id in mine else "")
        )
        short = short_date(moment.starts_at, tz)
        if moment.id in mine:
            buttons.append((t("Cancel {date}", date=short), f"koffie:leave:{moment.id}"))
        else:
            buttons.append((t("Sign up {date}", date=short), f"koffie:join:{moment.id}"))
    lines.append(t("Everyone is welcome: come by for a cup of coffee and a chat."))
    await message.reply_text("\n".join(lines), reply_markup=keyboard(buttons, columns=2))


async def koppel(update: Update, context: BuurtContext) -> None:
    """/koppel: when the wijkagent and opbouwwerker are around in the wijk."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    _, wijk = await _resident_wijk(context, user.id, context.lang)
    if wijk is None:
        await message.reply_text(t("Choose your wijk first with /start."))
        return
    async with context.db.begin() as session:
        moments = list(
            await gatherings.upcoming(
                session, wijk.id, PRESENCE_KINDS, now=context.now, within=dt.timedelta(weeks=3)
            )
        )
    if not moments:
        await message.reply_text(
            t(
                "The wijkagent and opbouwwerker have not announced a spreekuur or walk in {wijk} "
                "for the coming weeks. You can always report with /melden.",
                wijk=wijk.name,
            )
        )
        return
    lines = [t("<b>The Koppel in {wijk}</b>: drop by.", wijk=wijk.name)]
    for moment in moments:
        lines.append(
            t(
                "• {kind}: {when}, {place}",
                kind=kind_label(t, moment.kind),
                when=when_text(t, moment, context.settings.tz),
                place=moment.place,
            )
        )
    await message.reply_text("\n".join(lines))


def _signed_up_markup(t: Translator, moment: Moment, guests: int) -> InlineKeyboardMarkup:
    guest_buttons = [
        (
            ("✔️ " if n == guests else "") + (t("Just me") if n == 0 else f"+{n}"),
            f"koffie:guests:{moment.id}:{n}",
        )
        for n in range(MAX_GUESTS + 1)
    ]
    return InlineKeyboardMarkup(
        [
            *keyboard(guest_buttons, columns=4).inline_keyboard,
            [
                InlineKeyboardButton(
                    "📅 " + t("Add to calendar"), callback_data=f"koffie:ics:{moment.id}"
                ),
                InlineKeyboardButton(t("Cancel"), callback_data=f"koffie:leave:{moment.id}"),
            ],
        ]
    )


async def _join(
    context: BuurtContext, user_id: int, first_name: str, moment_id: int
) -> tuple[str, Moment | None, Signup | None]:
    """Sign up; returns ('ok'|'again'|'full'|'gone'|'other_wijk', moment, signup)."""
    async with context.db.begin() as session:
        moment = await gatherings.get_moment(session, moment_id)
        if (
            moment is None
            or moment.kind != "koffie"
            or moment.cancelled_at
            or moment.starts_at <= context.now
        ):
            return "gone", None, None
        resident = await ensure_resident(session, user_id, context.lang)
        try:
            signup, new = await gatherings.sign_up(
                session, moment, resident, first_name, now=context.now
            )
        except gatherings.Full:
            return "full", moment, None
        return ("ok" if new else "again"), moment, signup


async def on_join(update: Update, context: BuurtContext) -> None:
    """Sign up for a koffiemoment from the private chat."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    moment_id = int(query.data.rsplit(":", 1)[1])
    result, moment, signup = await _join(context, user.id, user.first_name, moment_id)
    await _answer_join(update, context, result, moment, signup)


async def _answer_join(
    update: Update, context: BuurtContext, result: str, moment: Moment | None, signup: Signup | None
) -> None:
    t = context.t
    query = update.callback_query
    message = update.effective_message
    if result == "gone" or moment is None:
        if query:
            await query.answer(t("This koffiemoment is no longer planned."), show_alert=True)
        elif message:
            await message.reply_text(t("This koffiemoment is no longer planned."))
        return
    if result == "full":
        text = t("Sorry, this koffiemoment is full.")
        if query:
            await query.answer(text, show_alert=True)
        elif message:
            await message.reply_text(text)
        return
    if query:
        await query.answer(t("You are signed up") if result == "ok" else None)
    assert message is not None and signup is not None
    await message.reply_text(
        t(
            "You are signed up for the koffiemoment on {when} at {place}. "
            "You get a reminder the day before and in the morning. Bringing someone?",
            when=when_text(t, moment, context.settings.tz),
            place=moment.place,
        ),
        reply_markup=_signed_up_markup(t, moment, signup.guests),
    )
    schedule_count_update(context.application, moment.id)


async def on_guests(update: Update, context: BuurtContext) -> None:
    """How many people someone brings along."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    _, _, moment_id, guests = query.data.split(":")
    t = context.t
    refusal: str | None = None
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
        signup = (
            await gatherings.signup_of(session, int(moment_id), resident.id) if resident else None
        )
        if signup is None or signup.cancelled_at is not None or signup.moment.cancelled_at:
            refusal = t("This button is no longer active.")
        else:
            try:
                await gatherings.set_guests(session, signup, min(int(guests), MAX_GUESTS))
            except gatherings.Full:
                refusal = t("Sorry, there is not enough room for that many.")
            moment = signup.moment
            now_guests = signup.guests
    if refusal is not None:  # answered after the unit of work, as everything below
        await query.answer(refusal, show_alert=True)
        return
    await query.answer(t("Noted"))
    try:
        await query.edit_message_reply_markup(reply_markup=_signed_up_markup(t, moment, now_guests))
    except BadRequest:
        pass  # the same number pressed again: nothing to change
    schedule_count_update(context.application, moment.id)


async def on_leave(update: Update, context: BuurtContext) -> None:
    """Cancel a sign-up."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    moment_id = int(query.data.rsplit(":", 1)[1])
    t = context.t
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
        signup = await gatherings.signup_of(session, moment_id, resident.id) if resident else None
        leaving = signup is not None and signup.cancelled_at is None
        if signup is not None and leaving:
            await gatherings.cancel_signup(session, signup, now=context.now)
    if signup is None or not leaving:
        await query.answer(t("You were not signed up for this one."), show_alert=True)
        return
    moment = signup.moment
    await query.answer(t("Cancelled"))
    await query.edit_message_reply_markup(reply_markup=None)
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        t(
            "You are no longer signed up for {when}. No reminders will follow.",
            when=when_text(t, moment, context.settings.tz),
        )
    )
    schedule_count_update(context.application, moment.id)


async def on_ics(update: Update, context: BuurtContext) -> None:
    """Send an .ics calendar file for a date."""
    query = update.callback_query
    assert query is not None and query.data is not None
    moment_id = int(query.data.rsplit(":", 1)[1])
    async with context.db.begin() as session:
        moment = await gatherings.get_moment(session, moment_id)
    t = context.t
    if moment is None or moment.cancelled_at is not None:
        await query.answer(t("This koffiemoment is no longer planned."), show_alert=True)
        return
    await query.answer()
    assert update.effective_message is not None
    local = moment.starts_at.astimezone(context.settings.tz)
    await update.effective_message.reply_document(
        InputFile(ics(t, moment, context.now), filename=f"{moment.kind}-{local:%Y-%m-%d}.ics")
    )


# --- the group: announcement with "Ik kom", count edited in place ------------------------


def _announcement(
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
                    t("I'm coming ☕ ({n})", n=people), callback_data=f"koffie:rsvp:{moment.id}"
                )
            ]
        ]
    )


async def on_rsvp(update: Update, context: BuurtContext) -> None:
    """'Ik kom' in the group: sign up, or open a private chat to finish."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    moment_id = int(query.data.rsplit(":", 1)[1])
    t = context.t
    async with context.db.begin() as session:
        known = await get_resident(session, user.id) is not None
    if not known:
        # The bot may not write first: let Telegram open the private chat with a start payload.
        await query.answer(url=f"https://t.me/{context.bot.username}?start=k-{moment_id}")
        return
    result, _, _ = await _join(context, user.id, user.first_name, moment_id)
    if result == "gone":
        await query.answer(t("This koffiemoment is no longer planned."), show_alert=True)
    elif result == "full":
        await query.answer(t("Sorry, this koffiemoment is full."), show_alert=True)
    elif result == "again":
        await query.answer(
            t("You are already signed up. Cancel with /koffie in a private chat."), show_alert=True
        )
    else:
        await query.answer(
            t("You are signed up! Reminders come in your private chat with me."), show_alert=True
        )
        schedule_count_update(context.application, moment_id)


async def join_from_link(update: Update, context: BuurtContext) -> None:
    """/start k-<id>: finish an 'Ik kom' from the group in the private chat."""
    user = update.effective_user
    assert user is not None
    moment_id = int((context.args or ["k-0"])[0].removeprefix("k-"))
    result, moment, signup = await _join(context, user.id, user.first_name, moment_id)
    await _answer_join(update, context, result, moment, signup)


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
    text, markup = _announcement(t, moment, people, settings.tz, pair)
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


# --- managing: /beheer ----------------------------------------------------------------------


async def _manageable(context: BuurtContext, user_id: int) -> set[int]:
    async with context.db.begin() as session:
        me = await access.person(session, user_id, context.settings.admins)
    return me.wijken_for(access.Permission.KOFFIE) | me.wijken_for(access.Permission.PRESENCE)


async def manage(update: Update, context: BuurtContext) -> None:
    """/beheer: the planned dates of the organiser's wijken."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    wijken = await _manageable(context, user.id)
    if not wijken:
        await message.reply_text(not_allowed(t))
        return
    async with context.db.begin() as session:
        moments: list[Moment] = []
        for wijk_id in sorted(wijken):
            moments.extend(
                await gatherings.upcoming(
                    session, wijk_id, KOFFIE_KINDS + PRESENCE_KINDS, now=context.now
                )
            )
        numbers = await gatherings.counts(session, [m.id for m in moments])
    if not moments:
        await message.reply_text(t("Nothing is planned. Plan with /koffieplannen or /aanwezig."))
        return
    tz = context.settings.tz
    buttons = [
        (
            f"{when_text(t, m, tz)} · {kind_label(t, m.kind)[:20]}"
            + (f" ({numbers[m.id].people})" if m.kind == "koffie" else ""),
            f"koffie:m:{m.id}",
        )
        for m in sorted(moments, key=lambda m: m.starts_at)
    ]
    await message.reply_text(t("<b>Planned</b>: choose a date."), reply_markup=keyboard(buttons))


async def _moment_for_manager(update: Update, context: BuurtContext) -> Moment | None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    moment_id = int(query.data.rsplit(":", 1)[1])
    wijken = await _manageable(context, user.id)
    async with context.db.begin() as session:
        moment = await gatherings.get_moment(session, moment_id)
    if moment is None or moment.wijk_id not in wijken:
        await query.answer(not_allowed(context.t), show_alert=True)
        return None
    return moment


async def show_moment(update: Update, context: BuurtContext) -> None:
    """One date for its organiser: who comes (first names), change or cancel."""
    moment = await _moment_for_manager(update, context)
    if moment is None:
        return
    query = update.callback_query
    assert query is not None and update.effective_message is not None
    t = context.t
    async with context.db.begin() as session:
        people = list(await gatherings.attendees(session, moment.id))
    lines = [
        t(
            "<b>{kind}</b>, {when}, {place}",
            kind=kind_label(t, moment.kind),
            when=when_text(t, moment, context.settings.tz),
            place=moment.place,
        )
    ]
    if moment.cancelled_at is not None:
        lines.append(t("Cancelled."))
    if moment.kind == "koffie":
        total = sum(1 + s.guests for s in people)
        # The first names fit one message: a long list is cut short with how many more.
        shown = people[:NAMES_SHOWN]
        names = ", ".join(s.first_name + (f" (+{s.guests})" if s.guests else "") for s in shown)
        lines.append(t("Coming: {n} people", n=total))
        if names:
            lines.append(t("Who: {names}", names=names))
        if len(people) > len(shown):
            lines.append(
                t.ngettext(
                    "... and {n} more sign-up.",
                    "... and {n} more sign-ups.",
                    len(people) - len(shown),
                )
            )
    buttons = []
    if moment.cancelled_at is None:
        buttons.append((t("Change place or time of this date"), f"koffie:editm:{moment.id}"))
        buttons.append((t("Cancel this date"), f"koffie:cancel:{moment.id}"))
        if moment.series.repeat != "none" and moment.series.cancelled_at is None:
            buttons.append((t("Change the whole series"), f"koffie:edits:{moment.id}"))
            buttons.append((t("Cancel the whole series"), f"koffie:cancelseries:{moment.id}"))
    await query.answer()
    await update.effective_message.reply_text(
        "\n".join(lines), reply_markup=keyboard(buttons) if buttons else None
    )


async def ask_cancel(update: Update, context: BuurtContext) -> None:
    """Confirm cancelling a date or a series."""
    moment = await _moment_for_manager(update, context)
    if moment is None:
        return
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_message is not None
    whole = query.data.startswith("koffie:cancelseries:")
    t = context.t
    await query.answer()
    await update.effective_message.reply_text(
        t("Cancel the whole series? Everyone who signed up for a coming date is told.")
        if whole
        else t(
            "Cancel {when}? Everyone who signed up is told.",
            when=when_text(t, moment, context.settings.tz),
        ),
        reply_markup=keyboard(
            [
                (
                    t("Yes, cancel"),
                    f"koffie:{'cancelseries' if whole else 'cancel'}-yes:{moment.id}",
                ),
                (t("No"), f"koffie:keep:{moment.id}"),
            ],
            columns=2,
        ),
    )


async def confirm_cancel(update: Update, context: BuurtContext) -> None:
    """Cancel a date or a series and tell everyone who signed up."""
    moment = await _moment_for_manager(update, context)
    if moment is None:
        return
    query = update.callback_query
    assert query is not None and query.data is not None
    whole = query.data.startswith("koffie:cancelseries-yes:")
    t = context.t
    async with context.db.begin() as session:
        fresh = await gatherings.get_moment(session, moment.id)
        assert fresh is not None
        if whole:
            affected = await gatherings.cancel_series(session, fresh.series, now=context.now)
        elif fresh.cancelled_at is None:
            affected = [(fresh, await gatherings.cancel_moment(session, fresh, now=context.now))]
        else:
            affected = []
        # Everyone who signed up is told through the outbox, not from this handler: the
        # organiser gets the answer at once, however many signed up.
        for cancelled, signups in affected:
            await _tell(context, session, signups, cancelled, "cancelled")
    context.outbox.wake()
    if not affected:
        await query.answer(t("This date was already cancelled."), show_alert=True)
        return
    await query.answer()
    await query.edit_message_text(
        t.ngettext(
            "Cancelled: {n} date. Everyone who signed up has been told.",
            "Cancelled: {n} dates. Everyone who signed up has been told.",
            len(affected),
        )
    )
    for cancelled, _signups in affected:
        await refresh_announcement(context.application, cancelled.id)
    if moment.kind in PRESENCE_KINDS:
        await refresh_wijk_announcements(context.application, moment.wijk_id)


async def keep_moment(update: Update, context: BuurtContext) -> None:
    """Do not cancel after all."""
    moment = await _moment_for_manager(update, context)
    if moment is None:
        return
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(context.t("Nothing changed."))


def _cancel_text(t: Translator, moment: Moment, tz: dt.tzinfo) -> str:
    return t(
        "The koffiemoment on {when} at {place} has been cancelled. Sorry! "
        "See /koffie for other dates.",
        when=when_text(t, moment, tz),
        place=moment.place,
    )


def _moved_text(t: Translator, moment: Moment, tz: dt.tzinfo) -> str:
    return t(
        "Change: the koffiemoment you signed up for is now on {when} at {place}.",
        when=when_text(t, moment, tz),
        place=moment.place,
    )


async def _tell(
    context: BuurtContext,
    session: AsyncSession,
    signups: Sequence[Signup],
    moment: Moment,
    what: str,
) -> None:
    """Write the notice of a cancelled or moved date to everyone who signed up, in the unit
    of work that cancels or moves it (the outbox sends them)."""
    tz = context.settings.tz
    version = f"{moment.starts_at:%Y%m%d%H%M}:{zlib.crc32(moment.place.encode()):08x}"
    notices = []
    for signup in signups:
        if signup.resident.unreachable_since is not None:
            continue  # they blocked the bot
        chat = signup.resident.telegram_id
        t = context.translator_for(chat)
        text = _cancel_text(t, moment, tz) if what == "cancelled" else _moved_text(t, moment, tz)
        key = f"koffie:{what}:{moment.id}:{signup.id}" + (":" + version if what == "moved" else "")
        notices.append(Outgoing(key=key, chat_id=chat, kind=f"koffie:{what}", text=text))
    await outbox.enqueue(session, *notices, now=context.now)


# Changing a date or a series: a short typed conversation.
EDIT_VALUE = "edit_value"


async def ask_edit(update: Update, context: BuurtContext) -> State:
    """Ask for the new place or time of a date or series."""
    moment = await _moment_for_manager(update, context)
    if moment is None:
        return ConversationHandler.END
    query = update.callback_query
    assert query is not None and query.data is not None and context.user_data is not None
    whole = query.data.startswith("koffie:edits:")
    context.user_data["koffie_edit"] = {"moment": moment.id, "series": whole}
    await query.answer()
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        context.t(
            "Type the new time (for example 10:30), or the new date and time (for example "
            "03-12-2026 10:30), or the new place. /annuleren to stop."
        )
    )
    return EDIT_VALUE


async def on_edit_value(update: Update, context: BuurtContext) -> State:
    """Apply a new time, date and time, or place; tell whoever signed up."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.text is not None and user is not None
    assert context.user_data is not None
    edit = context.user_data.get("koffie_edit")
    if not edit:
        return ConversationHandler.END
    t = context.t
    tz = context.settings.tz
    text = message.text.strip()
    wijken = await _manageable(context, user.id)
    refusal: str | None = None
    end = False
    async with context.db.begin() as session:
        moment = await gatherings.get_moment(session, int(edit["moment"]))
        kept = 0
        changed: list[tuple[Moment, Sequence[Signup]]] = []
        if moment is None or moment.wijk_id not in wijken:
            refusal, end = not_allowed(t), True
        else:
            local = moment.starts_at.astimezone(tz)
            # A date and a time, a time on the same day, or else a place.
            new_start = parsing.local_datetime(text, tz)
            if new_start is None and (moment_of_day := parsing.local_time(text)) is not None:
                new_start = dt.datetime.combine(local.date(), moment_of_day, tz)
            place: str | None = None
            if new_start is None and 2 <= len(text) <= MAX_PLACE:
                place = text
            elif new_start is None:
                refusal = t(
                    "Please keep the place short: at most {limit} characters.", limit=MAX_PLACE
                )
            if new_start is not None and new_start <= context.now:
                refusal = t("That moment has already passed; please pick a later time.")
            elif new_start is not None and new_start > context.now + MAX_AHEAD:
                refusal = t("That is more than a year away; please check the year.")
        if moment is not None and refusal is None:
            if edit["series"]:
                shift = None
                if new_start is not None:  # in wall time, from where the series puts this date
                    planned = gatherings.planned_start(moment.series, moment.occurrence, tz)
                    shift = new_start.replace(tzinfo=None) - planned.astimezone(tz).replace(
                        tzinfo=None
                    )
                changed, kept = await gatherings.change_series(
                    session, moment.series, place=place, shift=shift, now=context.now, tz=tz
                )
            else:
                changed = [
                    (
                        moment,
                        await gatherings.move_moment(
                            session, moment, starts_at=new_start, place=place
                        ),
                    )
                ]
            for changed_moment, signups in changed:
                await _tell(context, session, signups, changed_moment, "moved")
    # Answered after the unit of work: no transaction waits for a round trip to Telegram.
    if refusal is not None or moment is None:
        await message.reply_text(refusal or not_allowed(t))
        return ConversationHandler.END if end else None
    context.outbox.wake()
    context.user_data.pop("koffie_edit", None)
    answer = t.ngettext(
        "Changed: {n} date. Everyone who signed up has been told.",
        "Changed: {n} dates. Everyone who signed up has been told.",
        len(changed),
    )
    if kept:
        answer += "\n" + t.ngettext(
            "{n} date that was changed on its own keeps its own time and place.",
            "{n} dates that were changed on their own keep their own time and place.",
            kept,
        )
    await message.reply_text(answer)
    for changed_moment, _signups in changed:
        await refresh_announcement(context.application, changed_moment.id)
    if moment.kind in PRESENCE_KINDS:
        await refresh_wijk_announcements(context.application, moment.wijk_id)
    return ConversationHandler.END


async def cancel_edit(update: Update, context: BuurtContext) -> int:
    """/annuleren while changing a date."""
    assert context.user_data is not None and update.effective_message is not None
    context.user_data.pop("koffie_edit", None)
    await update.effective_message.reply_text(context.t("Nothing changed."))
    return ConversationHandler.END


# --- the sweeper: announcements, reminders, the Koppel's day-before notes ------------------


def _group_of(moment: Moment) -> int:
    chat = moment.wijk.group_chat_id
    assert chat is not None
    return chat


async def sweep(application: Any) -> None:
    """Announce new koffiemomenten, decide due reminders and day-before notes (idempotent).

    Each message is marked decided and written to the outbox in one unit of work, so two
    sweeps at once (the timer and one run right after planning) write it once, and the outbox
    sends it once."""
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
        reminders = await gatherings.due_reminders(session, now=now, tz=tz)
        numbers = await gatherings.counts(session, [m.id for m in announce])
        pairs = {m.id: await gatherings.presence_during(session, m) for m in announce}
        messages: list[Outgoing] = []
        for moment in announce:
            if not await gatherings.decide_group_message(session, moment.id, "announced", now=now):
                continue
            text, markup = _announcement(t, moment, numbers[moment.id].people, tz, pairs[moment.id])
            messages.append(
                Outgoing(
                    key=f"koffie:announced:{moment.id}",
                    chat_id=_group_of(moment),
                    kind="koffie:announcement",
                    text=text,
                    reply_markup=markup.to_dict() if markup else None,
                    hook=GROUP_HOOK,
                    hook_data={"moment": moment.id, "what": "announced"},
                )
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
                Outgoing(
                    key=f"koffie:previewed:{moment.id}",
                    chat_id=_group_of(moment),
                    kind="koffie:preview",
                    text=text,
                    hook=GROUP_HOOK,
                    hook_data={"moment": moment.id, "what": "previewed"},
                )
            )
        for reminder in reminders:
            if await gatherings.mark_reminded(session, reminder.signup.id, reminder.kind, now=now):
                messages.append(_reminder(application, reminder))
        await outbox.enqueue(session, *messages, now=now)
    if messages:
        application.outbox.wake()


async def _group_message_settled(session: AsyncSession, settled: Settled) -> None:
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


def _reminder(application: BuurtApplication, reminder: gatherings.Reminder) -> Outgoing:
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
        key=f"koffie:remind:{signup.id}:{reminder.kind}:{moment.starts_at:%Y%m%d%H%M}",
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


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for koffiemomenten and the Koppel."""
    text = PRIVATE & filters.TEXT & ~filters.COMMAND
    buttons = PLAN.buttons_of
    planning = PLAN.conversation(
        entry_points=[
            CommandHandler("koffieplannen", start_koffie, filters=PRIVATE),
            CommandHandler("aanwezig", start_presence, filters=PRIVATE),
        ],
        states={
            WIJK: [buttons(WIJK, on_plan_wijk)],
            KIND: [buttons(KIND, on_plan_kind)],
            PLACE: [MessageHandler(text, on_plan_place)],
            DATE: [MessageHandler(text, on_plan_date)],
            TIME: [MessageHandler(text, on_plan_time)],
            REPEAT: [buttons(REPEAT, on_plan_repeat)],
            CAPACITY: [buttons(CAPACITY, on_plan_capacity)],
            CAPACITY_NUMBER: [MessageHandler(text, on_plan_number)],
            SUMMARY: [buttons(SUMMARY, on_plan_summary)],
        },
        command="koffieplannen",
        start=start_koffie,
    )
    # Started by a button, continued by typing.
    editing = persistent_conversation(
        entry_points=[CallbackQueryHandler(ask_edit, pattern=r"^koffie:edit[ms]:\d{1,9}$")],
        states={EDIT_VALUE: [MessageHandler(text, on_edit_value)]},
        fallbacks=[CommandHandler("annuleren", cancel_edit, filters=PRIVATE)],
        name="koffie_edit",
    )
    return [
        planning,
        editing,
        CommandHandler(
            "start", join_from_link, filters=PRIVATE & filters.Regex(r"^/start k-\d{1,9}$")
        ),
        CommandHandler("koffie", koffie, filters=PRIVATE),
        CommandHandler("koppel", koppel, filters=PRIVATE),
        CommandHandler("beheer", manage, filters=PRIVATE),
        CallbackQueryHandler(on_join, pattern=r"^koffie:join:\d{1,9}$"),
        CallbackQueryHandler(on_guests, pattern=r"^koffie:guests:\d{1,9}:\d$"),
        CallbackQueryHandler(on_leave, pattern=r"^koffie:leave:\d{1,9}$"),
        CallbackQueryHandler(on_ics, pattern=r"^koffie:ics:\d{1,9}$"),
        CallbackQueryHandler(on_rsvp, pattern=r"^koffie:rsvp:\d{1,9}$"),
        CallbackQueryHandler(show_moment, pattern=r"^koffie:m:\d{1,9}$"),
        CallbackQueryHandler(ask_cancel, pattern=r"^koffie:cancel(series)?:\d{1,9}$"),
        CallbackQueryHandler(confirm_cancel, pattern=r"^koffie:cancel(series)?-yes:\d{1,9}$"),
        CallbackQueryHandler(keep_moment, pattern=r"^koffie:keep:\d{1,9}$"),
        PLAN.sent_again(),
    ]


FEATURE = Feature(
    name="koffie",
    handlers=build_handlers,
    commands=(
        Command("koffie", N_("Koffiemomenten in your wijk"), PRIVATE_MENU, order=40),
        Command(
            "koppel", N_("When the wijkagent and opbouwwerker are around"), PRIVATE_MENU, order=50
        ),
        Command("koffie", N_("Koffiemomenten in your wijk"), GROUP_MENU, order=20),
        Command("koffieplannen", N_("Plan a koffiemoment"), Permission.KOFFIE),
        Command(
            "beheer", N_("Planned koffiemomenten: who comes, change, cancel"), Permission.KOFFIE
        ),
        Command("aanwezig", N_("Publish a spreekuur or walk in the wijk"), Permission.PRESENCE),
    ),
    start=start_jobs,
    jobs=(Job("koffie:sweep", "every five minutes: announcements, reminders, the Koppel"),),
    outbox_hooks={GROUP_HOOK: _group_message_settled},
)
