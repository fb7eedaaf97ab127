"""Managing by the organiser (/beheer): who comes, change or cancel a date or a series."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import CallbackQueryHandler, ConversationHandler

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.callbacks import Koffie
from buurtsignaal.conversations.flow import Draft, Field, FlowPart, State, TypedFlow
from buurtsignaal.conversations.koffie.announcement import (
    refresh_announcement,
    refresh_wijk_announcements,
)
from buurtsignaal.conversations.koffie.common import (
    KOFFIE_KINDS,
    MAX_AHEAD,
    MAX_PLACE,
    PRESENCE_KINDS,
    decision,
    example_day,
    kind_label,
    pressed_moment,
    when_text,
)
from buurtsignaal.conversations.koffie.residents import koffie
from buurtsignaal.conversations.ui import keyboard, not_allowed
from buurtsignaal.storage import access, gatherings, outbox, parsing
from buurtsignaal.storage.models import Moment, Signup
from buurtsignaal.storage.outbox import Outgoing

log = logging.getLogger(__name__)

NAMES_SHOWN = 40  # first names on a date's page; the rest is counted (one message)


async def _manageable(context: BuurtContext, user_id: int) -> dict[int, tuple[str, ...]]:
    """The wijken where someone manages dates, each with the kinds they may manage there:
    koffiemomenten with the koffie permission (organisers), the pair's spreekuur and walks
    with the presence permission (the pair). An organiser does not move the pair's walk."""
    async with context.db.begin() as session:
        me = await access.person(session, user_id, context.settings.admins)
    koffie = me.wijken_for(access.Permission.KOFFIE)
    presence = me.wijken_for(access.Permission.PRESENCE)
    return {
        wijk_id: (KOFFIE_KINDS if wijk_id in koffie else ())
        + (PRESENCE_KINDS if wijk_id in presence else ())
        for wijk_id in koffie | presence
    }


def _may_manage(manageable: dict[int, tuple[str, ...]], moment: Moment) -> bool:
    return moment.kind in manageable.get(moment.wijk_id, ())


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
        for wijk_id, kinds in sorted(wijken.items()):
            moments.extend(await gatherings.upcoming(session, wijk_id, kinds, now=context.now))
        numbers = await gatherings.counts(session, [m.id for m in moments])
    if not moments:
        await message.reply_text(t("Nothing is planned. Plan with /koffieplannen or /aanwezig."))
        return
    tz = context.settings.tz
    buttons = [
        (
            f"{when_text(t, m, tz)} · {kind_label(t, m.kind)[:20]}"
            + (f" ({numbers[m.id].people})" if m.kind == "koffie" else ""),
            Koffie("m", m.id).pack(),
        )
        for m in sorted(moments, key=lambda m: m.starts_at)
    ]
    await message.reply_text(t("<b>Planned</b>: choose a date."), reply_markup=keyboard(buttons))


async def _moment_for_manager(update: Update, context: BuurtContext) -> Moment | None:
    query, user, moment_id = pressed_moment(update)
    wijken = await _manageable(context, user.id)
    async with context.db.begin() as session:
        moment = await gatherings.get_moment(session, moment_id)
    if moment is None or not _may_manage(wijken, moment):
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
        lines.append(t.ngettext("Coming: {n} person", "Coming: {n} people", total))
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
        buttons.append((t("Change place or time of this date"), Koffie("editm", moment.id).pack()))
        buttons.append((t("Cancel this date"), Koffie("cancel", moment.id).pack()))
        if moment.series.repeat != "none" and moment.series.cancelled_at is None:
            buttons.append((t("Change the whole series"), Koffie("edits", moment.id).pack()))
            buttons.append((t("Cancel the whole series"), Koffie("cancelseries", moment.id).pack()))
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
    assert query is not None and update.effective_message is not None
    whole = Koffie.of(update).action == "cancelseries"
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
                    Koffie("cancelseries-yes" if whole else "cancel-yes", moment.id).pack(),
                ),
                (t("No"), Koffie("keep", moment.id).pack()),
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
    assert query is not None
    whole = Koffie.of(update).action == "cancelseries-yes"
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
            if cancelled.previewed_at is not None:  # the group was told "tomorrow"
                await _correct_note(context, session, cancelled, cancelled=True)
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
    notices = []
    for signup in signups:
        if signup.resident.unreachable_since is not None:
            continue  # they blocked the bot
        chat = signup.resident.telegram_id
        t = context.translator_for(chat)
        text = _cancel_text(t, moment, tz) if what == "cancelled" else _moved_text(t, moment, tz)
        # A moved date's notice is one per change (moved there and back again: told twice).
        key = f"koffie:{what}:{moment.id}:{signup.id}" + (
            decision(moment, context.now) if what == "moved" else ""
        )
        notices.append(Outgoing(key=key, chat_id=chat, kind=f"koffie:{what}", text=text))
    await outbox.enqueue(session, *notices, now=context.now)


async def _correct_note(
    context: BuurtContext, session: AsyncSession, moment: Moment, *, cancelled: bool = False
) -> None:
    """The group was told the day before about a spreekuur or walk that has now changed or
    been cancelled: tell it so (in the unit of work that changes it; the outbox sends it)."""
    chat = moment.wijk.group_chat_id
    if chat is None:
        return
    t = Translator(context.settings.default_language)
    facts = {
        "kind": kind_label(t, moment.kind),
        "when": when_text(t, moment, context.settings.tz),
        "place": moment.place,
    }
    if cancelled:
        text = t("Cancelled: {kind}, {when}, {place}.", **facts)
        key = f"koffie:noted-cancel:{moment.id}"
    else:
        text = t("Changed: {kind} is now {when}, {place}.", **facts)
        key = f"koffie:noted-change:{moment.id}{decision(moment, context.now)}"
    await outbox.enqueue(
        session, Outgoing(key=key, chat_id=chat, kind="koffie:preview", text=text), now=context.now
    )


# Changing a date or a series: a one-field typed flow (the new time, date and time, or place).
EDIT_VALUE = "edit_value"
EDIT_FLOW = TypedFlow(
    name="koffie_edit",
    cancelled=lambda t: t("Nothing changed."),
    unfinished=lambda t, reference: t(
        "(You did not finish the change of {reference}; nothing was changed.)",
        reference=reference,
    ),
    # An older release kept the change under way under the same key, without an action.
    legacy_action=EDIT_VALUE,
)


async def ask_edit(update: Update, context: BuurtContext) -> State:
    """Ask for the new place or time of a date or series."""
    moment = await _moment_for_manager(update, context)
    if moment is None:
        return ConversationHandler.END
    query = update.callback_query
    assert query is not None and context.user_data is not None
    if moment.cancelled_at is not None:  # a button on an older page of a date since cancelled
        await query.answer(context.t("This date was already cancelled."), show_alert=True)
        return ConversationHandler.END
    whole = Koffie.of(update).action == "edits"
    reference = f"{moment.starts_at.astimezone(context.settings.tz):%d-%m-%Y}"
    EDIT_FLOW.begin(context, EDIT_VALUE, reference, moment=moment.id, series=whole)
    await query.answer()
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        context.t(
            "Type the new time (for example 10:30), or the new date and time (for example "
            "{example}), or the new place. /annuleren to stop.",
            example=f"{example_day(context.now, context.settings.tz)} 10:30",
        )
    )
    return EDIT_VALUE


async def on_edit_value(update: Update, context: BuurtContext, edit: Draft, text: str) -> State:
    """Apply a new time, date and time, or place; tell whoever signed up."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    tz = context.settings.tz
    wijken = await _manageable(context, user.id)
    refusal: str | None = None
    end = False
    async with context.db.begin() as session:
        moment = await gatherings.get_moment(session, int(edit["moment"]))
        kept = 0
        changed: list[gatherings.Changed] = []
        if moment is None or not _may_manage(wijken, moment):
            refusal, end = not_allowed(t), True
        elif moment.cancelled_at is not None:  # cancelled while the new value was typed
            refusal, end = t("This date was already cancelled."), True
        else:
            local = moment.starts_at.astimezone(tz)
            # A date and a time, a time on the same day, or else a place.
            new_start = parsing.local_datetime(text, tz)
            if new_start is None and (moment_of_day := parsing.local_time(text)) is not None:
                new_start = dt.datetime.combine(local.date(), moment_of_day, tz)
            place: str | None = None
            if new_start is None and parsing.looks_like_when(text):  # 25:00, 31-02-2026
                refusal = t(
                    "I cannot read that as a time or a date. Type for example 10:30, or a date "
                    "and time like {example}.",
                    example=f"{example_day(context.now, tz)} 10:30",
                )
            elif new_start is None and 2 <= len(text) <= MAX_PLACE:
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
                change = await gatherings.move_moment(
                    session, moment, starts_at=new_start, place=place, now=context.now
                )
                changed = [change] if change is not None else []
            for change in changed:
                await _tell(context, session, change.signups, change.moment, "moved")
                if change.noted:
                    await _correct_note(context, session, change.moment)
    # Answered after the unit of work: no transaction waits for a round trip to Telegram.
    if refusal is not None or moment is None:
        await message.reply_text(refusal or not_allowed(t))
        return ConversationHandler.END if end else None
    EDIT_FLOW.done(context)  # stored: a confirmation that does not arrive changes nothing twice
    if not changed and not kept:  # the time and place it already had: nobody is told
        await message.reply_text(t("Nothing changed."))
        return ConversationHandler.END
    context.outbox.wake()
    if moment.kind in PRESENCE_KINDS:  # nobody signs up for these; the group may have a note
        answer = t.ngettext("Changed: {n} date.", "Changed: {n} dates.", len(changed))
        if any(change.noted for change in changed):
            answer += " " + t("The wijk's group has been told.")
    else:
        answer = t.ngettext(
            "Changed: {n} date. Everyone who signed up has been told.",
            "Changed: {n} dates. Everyone who signed up has been told.",
            len(changed),
        )
    if not edit["series"]:  # what the date is now, so a typo shows at once
        answer += "\n" + t(
            "Now: {when}, {place}.", when=when_text(t, moment, tz), place=moment.place
        )
    if kept:
        answer += "\n" + t.ngettext(
            "{n} date that was changed on its own keeps its own time and place.",
            "{n} dates that were changed on their own keep their own time and place.",
            kept,
        )
    await message.reply_text(answer)
    for change in changed:
        await refresh_announcement(context.application, change.moment.id)
    if moment.kind in PRESENCE_KINDS:
        await refresh_wijk_announcements(context.application, moment.wijk_id)
    return ConversationHandler.END


def editing_conversation() -> FlowPart:
    """Changing a date or a series: started by a button, continued by typing."""
    return EDIT_FLOW.part(
        [
            CallbackQueryHandler(ask_edit, pattern=Koffie.matching(action="editm")),
            CallbackQueryHandler(ask_edit, pattern=Koffie.matching(action="edits")),
        ],
        [Field(EDIT_VALUE, on_edit_value, None)],  # read as a time, a date and time, or a place
        # Another koffie command while typing leaves the change: the next text is not read
        # as a new time or place for the date left behind.
        leave={"beheer": manage, "koffie": koffie},
    )
