"""Signing up: in the private chat, by the group's 'Ik kom' button or its link; guests, .ics."""

from __future__ import annotations

import datetime as dt
import logging

from icalendar import Calendar, Event
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.callbacks import Guests, Koffie
from buurtsignaal.conversations.koffie.announcement import schedule_count_update
from buurtsignaal.conversations.koffie.common import kind_label, pressed_moment, when_text
from buurtsignaal.conversations.ui import keyboard
from buurtsignaal.storage import gatherings
from buurtsignaal.storage.models import Moment, Signup
from buurtsignaal.storage.residents import ensure_resident, get_resident

log = logging.getLogger(__name__)

MAX_GUESTS = 3


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


def _signed_up_markup(t: Translator, moment: Moment, guests: int) -> InlineKeyboardMarkup:
    guest_buttons = [
        (
            ("✔️ " if n == guests else "") + (t("Just me") if n == 0 else f"+{n}"),
            Guests(moment.id, n).pack(),
        )
        for n in range(MAX_GUESTS + 1)
    ]
    return InlineKeyboardMarkup(
        [
            *keyboard(guest_buttons, columns=4).inline_keyboard,
            [
                InlineKeyboardButton(
                    "📅 " + t("Add to calendar"), callback_data=Koffie("ics", moment.id).pack()
                ),
                InlineKeyboardButton(t("Cancel"), callback_data=Koffie("leave", moment.id).pack()),
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
    _, user, moment_id = pressed_moment(update)
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
    assert query is not None and user is not None
    pressed = Guests.of(update)
    moment_id, guests = pressed.moment, pressed.guests
    t = context.t
    refusal: str | None = None
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
        signup = await gatherings.signup_of(session, moment_id, resident.id) if resident else None
        if signup is None or signup.cancelled_at is not None or signup.moment.cancelled_at:
            refusal = t("This button is no longer active.")
        else:
            try:
                await gatherings.set_guests(session, signup, min(guests, MAX_GUESTS))
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
    query, user, moment_id = pressed_moment(update)
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
    query, _, moment_id = pressed_moment(update)
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


async def on_rsvp(update: Update, context: BuurtContext) -> None:
    """'Ik kom' in the group: sign up, or open a private chat to finish."""
    query, user, moment_id = pressed_moment(update)
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
