"""/open and /melding: professionals handle signals in chat; the reporter gets anonymous
messages and, a few days after closing, the question "is het opgelost?".

Professionals who may handle signals (wijkagent, opbouwwerker) list the open signals of their
wijken, look at one with its photo, place and history, take it, change its status with a
short internal note, add internal notes and write to the reporter. Messages between the two
sides go through the bot: the reporter sees only the role ("— de wijkagent"), the
professional only "the reporter of BS-…". Every button checks again, on the server side,
that the person may handle *that* signal's wijk, or for the reporter's own buttons, that the
signal is theirs.

The typed steps (a status note, an internal note, a message, an answer) are one persistent
ConversationHandler, so a restart in the middle of typing loses nothing. The follow-up
question is sent by a sweeper job that reads what is due from the database.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
)

from bot.context import BuurtContext
from bot.feature import Command, Feature, Job
from bot.i18n import N_, Html, Translator, escape
from bot.outbox import Settled
from conversations import relay, steps
from conversations.flow import PRIVATE, State, persistent_conversation
from conversations.steps import MEDIA, TYPED, TypedSteps
from conversations.ui import (
    category_label,
    keyboard,
    local_date,
    local_datetime,
    mediation_explanation,
    not_allowed,
    role_label,
    shorten,
    signal_line,
    signal_place,
    signal_when,
    status_label,
)
from storage import access, outbox
from storage import cases as store
from storage.access import Permission, Person
from storage.models import Resident, Signal, SignalEvent
from storage.outbox import Outgoing
from storage.signals import STATUSES, WITHDRAWN

log = logging.getLogger(__name__)

PER_PAGE = 5
FOLLOWUP_JOB = "cases:followups"
FOLLOWUP_EVERY = dt.timedelta(minutes=5)
DESCRIPTION_SHOWN = 2500  # characters of the description in the detail message
ADDED_PHOTOS_SHOWN = 3  # the newest photos a reporter added later, shown with the signal

# Conversation states: what the person is typing.
STATUS_NOTE, NOTE, REPLY, ANSWER = "status_note", "note", "reply", "answer"

FOLLOWUP_LABELS = {"yes": N_("Yes"), "no": N_("No"), "unknown": N_("I don't know")}
# Every kind of history entry as a human line (never the internal code).
EVENT_LABELS = {
    "created": N_("reported"),
    store.ASSIGNED: N_("taken"),
    store.NOTE: N_("internal note"),
    store.REPLY_OUT: N_("message to the reporter"),
    store.REPLY_OUT_UNDELIVERED: N_("message to the reporter, NOT delivered"),
    store.REPLY_IN: N_("answer from the reporter"),
    store.NOTICE_UNDELIVERED: N_("the reporter could not be told that it was closed"),
    store.FOLLOWUP_SENT: N_("asked the reporter whether it is solved"),
    store.FOLLOWUP_UNDELIVERED: N_("could not ask the reporter whether it is solved"),
    store.FOLLOWUP: N_("the reporter answered whether it is solved"),
    store.ADDITION: N_("the reporter added information"),
    store.WITHDRAWN_EVENT: N_("withdrawn by the reporter"),
    store.MEDIATION_PROPOSED: N_("buurtbemiddeling proposed to the reporter"),
    store.MEDIATION_ACCEPTED: N_("the reporter wants buurtbemiddeling"),
    store.MEDIATION_DECLINED: N_("the reporter does not want buurtbemiddeling"),
    store.REPORTER_LEFT: N_("the reporter removed their data (/vergeetmij)"),
    store.RETENTION_CONTACT: N_("contact details removed (retention period)"),
    store.RETENTION_CONTENT: N_("description, typed place and photos removed (retention period)"),
}
INTERNAL = (store.NOTE, store.STATUS)

# The typed step under way, in user_data["cases"].
STEPS = TypedSteps(
    key="cases",
    cancelled=lambda t: t("Stopped. Nothing has been sent or saved."),
    unfinished=lambda t, reference: t(
        "(You did not finish your text about {reference}; nothing was sent.)",
        reference=reference,
    ),
)


# --- small helpers ---------------------------------------------------------------------------


def _age(t: Translator, since: dt.datetime, now: dt.datetime) -> str:
    """How long ago, roughly: days, else hours."""
    delta = max(now - since, dt.timedelta(0))
    if delta.days >= 1:
        return t.ngettext("{n} day", "{n} days", delta.days)
    hours = delta.seconds // 3600
    if hours >= 1:
        return t.ngettext("{n} hour", "{n} hours", hours)
    return t("less than an hour")


async def _pro_signal(
    session: AsyncSession,
    context: BuurtContext,
    telegram_id: int,
    signal_id: int,
    *,
    for_update: bool = False,
) -> tuple[Person, Signal | None]:
    """The signal, only if this person may handle signals in its wijk."""
    person = await access.person(session, telegram_id, context.settings.admins)
    if not person.may(Permission.SIGNALS):
        return person, None
    signal = await store.get_signal(session, signal_id, for_update=for_update)
    if signal is None or not person.may(Permission.SIGNALS, signal.wijk_id):
        return person, None
    return person, signal


def _remember(
    context: BuurtContext, action: str, signal: Signal, status: str | None = None
) -> None:
    """Remember the typed step under way on ``signal``."""
    STEPS.remember(context, action, signal.reference, signal_id=signal.id, status=status)


async def _typed(update: Update, context: BuurtContext) -> str | None:
    """The typed text, or None (after saying why) when it is empty or too long."""
    return await steps.typed(update, context, context.settings.reports.max_text_length)


# --- showing signals -------------------------------------------------------------------------


def _who(t: Translator, actor: str, names: dict[int, str]) -> str:
    """Who did something, as colleagues see it (a resident only as "reporter")."""
    if actor == store.RESIDENT:
        return t("reporter")
    telegram_id = store.actor_telegram_id(actor)
    if telegram_id is not None:
        return names.get(telegram_id, t("a colleague"))
    if actor == store.BOT:
        return t("bot")
    return t("automatic")  # the system: retention, a reporter who left


def _event_text(t: Translator, event: SignalEvent) -> str:
    """What happened in one history entry, in words (escaped)."""
    if event.kind in (store.STATUS, store.REOPENED):
        if event.from_status:
            text = t(
                "status {old} → {new}",
                old=status_label(t, event.from_status),
                new=status_label(t, event.to_status or ""),
            )
        else:
            text = t("status {new}", new=status_label(t, event.to_status or ""))
        if event.kind == store.REOPENED:
            text = t("reopened, not solved according to the reporter: {change}", change=Html(text))
        return text
    if event.kind == store.FOLLOWUP and event.note in FOLLOWUP_LABELS:
        answer = t(FOLLOWUP_LABELS[event.note])
        return t("is it solved? the reporter answered: {answer}", answer=answer)
    if event.kind == store.ADDITION and event.photo_file_id:
        return t("the reporter added a photo (shown above)")
    label = EVENT_LABELS.get(event.kind)
    return t(label) if label else t("another change")


def _history_line(t: Translator, tz: dt.tzinfo, event: SignalEvent, names: dict[int, str]) -> str:
    return relay.history_line(
        t,
        local_datetime(event.at, tz),
        _event_text(t, event),
        _who(t, event.actor, names),
        event.note if event.kind != store.FOLLOWUP else None,
        internal=event.kind in INTERNAL,
    )


def _detail_text(
    t: Translator,
    tz: dt.tzinfo,
    signal: Signal,
    names: dict[int, str],
    *,
    now: dt.datetime,
    photo_problem: bool,
) -> str:
    """Everything about one signal, within Telegram's message limit (oldest history first
    left out when it does not fit)."""
    when = signal_when(t, signal, tz)
    taken = names.get(signal.assigned_to, t("a colleague")) if signal.assigned_to else None
    if signal.contactable and signal.contact_name:
        contact = t("contactable: {name}", name=signal.contact_name)
    else:
        contact = t("pseudonymous")
    header = [
        t(
            "<b>{reference}</b> · {wijk}",
            reference=signal.reference,
            wijk=signal.wijk.name if signal.wijk else "?",
        ),
        t("<b>What:</b> {category}", category=category_label(t, signal.category)),
        t(
            "<b>Description:</b> {text}",
            text=shorten(signal.description or "", DESCRIPTION_SHOWN),
        ),
        t("<b>Where:</b> {place}", place=Html(signal_place(t, signal))),
        t("<b>When:</b> {when}", when=Html(when)),
        t(
            "<b>Reported:</b> {date} ({age} ago)",
            date=local_datetime(signal.created_at, tz),
            age=_age(t, signal.created_at, now),
        ),
        t(
            "<b>How often:</b> {frequency}",
            frequency=t("recurring") if signal.frequency == "recurring" else t("first time"),
        ),
        t("<b>Status:</b> {status}", status=status_label(t, signal.status)),
        t("<b>Taken by:</b> {name}", name=taken or t("nobody yet")),
        t("<b>Contact:</b> {contact}", contact=Html(contact)),
    ]
    if signal.photo_file_id:
        photo = t("could not be shown") if photo_problem else t("see above")
        header.append(t("<b>Photo:</b> {photo}", photo=photo))
    if signal.resident_id is None:
        header.append(t("The reporter has removed their data and can no longer be reached."))
    lines = [_history_line(t, tz, event, names) for event in signal.history]
    return steps.with_history(t, "\n".join(header), lines)


def _detail_buttons(t: Translator, signal: Signal, viewer: int) -> InlineKeyboardMarkup:
    buttons = []
    withdrawn = signal.status == WITHDRAWN
    if signal.assigned_to != viewer and not withdrawn:
        buttons.append(("✋ " + t("Take"), f"cases:take:{signal.id}"))
    if not withdrawn:
        buttons.append(("🔄 " + t("Status"), f"cases:status:{signal.id}"))
    buttons.append(("📝 " + t("Note"), f"cases:note:{signal.id}"))
    if signal.resident_id is not None:
        buttons.append(("✉️ " + t("Reply to reporter"), f"cases:reply:{signal.id}"))
        if not withdrawn and store.mediation_answer(signal) is None:
            buttons.append(("🤝 " + t("Propose mediation"), f"cases:refer:{signal.id}"))
    return keyboard(buttons, columns=2)


def _withdrawn(t: Translator, signal: Signal) -> str:
    return t(
        "The reporter has withdrawn {reference}; it can no longer be taken or change status.",
        reference=signal.reference,
    )


async def _show(context: BuurtContext, chat_id: int, signal: Signal, names: dict[int, str]) -> None:
    """Send one signal: its photo, a location pin, then the details with the actions."""
    t = context.t
    photo_problem = False
    if signal.photo_file_id:
        try:
            await context.bot.send_photo(
                chat_id,
                signal.photo_file_id,
                caption=t("📷 Photo with report <b>{reference}</b>", reference=signal.reference),
            )
        except BadRequest as exc:  # e.g. a file id Telegram no longer knows
            log.warning("photo of %s could not be shown: %s", signal.reference, exc)
            photo_problem = True
    added = [e for e in signal.history if e.kind == store.ADDITION and e.photo_file_id]
    for event in added[-ADDED_PHOTOS_SHOWN:]:
        assert event.photo_file_id is not None
        try:
            await context.bot.send_photo(
                chat_id,
                event.photo_file_id,
                caption=t(
                    "📷 Added by the reporter of <b>{reference}</b> on {date}",
                    reference=signal.reference,
                    date=local_datetime(event.at, context.settings.tz),
                ),
            )
        except BadRequest as exc:
            log.warning("added photo of %s could not be shown: %s", signal.reference, exc)
    if signal.latitude is not None and signal.longitude is not None:
        await context.bot.send_location(chat_id, signal.latitude, signal.longitude)
    text = _detail_text(
        t, context.settings.tz, signal, names, now=context.now, photo_problem=photo_problem
    )
    await context.bot.send_message(chat_id, text, reply_markup=_detail_buttons(t, signal, chat_id))


def _open_view(
    t: Translator,
    listing: store.OpenPage,
    names: dict[int, str],
    *,
    many_wijken: bool,
    now: dt.datetime,
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and buttons of one page of /open."""
    if listing.total == 0:
        return t("There are no open reports in your wijk right now."), None
    lines = [
        t(
            "<b>Open reports: {total}</b> (oldest first) · page {page} of {pages}",
            total=listing.total,
            page=listing.page + 1,
            pages=listing.pages,
        )
    ]
    rows: list[list[InlineKeyboardButton]] = []
    for signal in listing.signals:
        if signal.assigned_to:
            taken = t("taken by {name}", name=names.get(signal.assigned_to, t("a colleague")))
        else:
            taken = t("not taken yet")
        line = signal_line(t, signal)
        if many_wijken:
            line += " · " + escape(signal.wijk.name if signal.wijk else "?")
        lines += [
            "",
            line,
            t(
                "open for {age} · {status} · {taken}",
                age=_age(t, signal.created_at, now),
                status=status_label(t, signal.status),
                taken=Html(taken),
            ),
        ]
        label = f"🔎 {signal.reference} · {category_label(t, signal.category)}"
        rows.append([InlineKeyboardButton(label, callback_data=f"cases:show:{signal.id}")])
    nav = []
    if listing.page > 0:
        nav.append(
            InlineKeyboardButton(
                "‹ " + t("previous"), callback_data=f"cases:page:{listing.page - 1}"
            )
        )
    if listing.page < listing.pages - 1:
        nav.append(
            InlineKeyboardButton(t("next") + " ›", callback_data=f"cases:page:{listing.page + 1}")
        )
    if nav:
        rows.append(nav)
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def _open_page(
    context: BuurtContext, telegram_id: int, page: int
) -> tuple[str, InlineKeyboardMarkup | None] | None:
    """One page of /open for this person, or None if they may not see signals."""
    async with context.db.begin() as session:
        person = await access.person(session, telegram_id, context.settings.admins)
        wijken = person.wijken_for(Permission.SIGNALS)
        if not wijken:
            return None
        listing = await store.open_signals(session, wijken, page=page, per_page=PER_PAGE)
        names = await access.display_names(session, (s.assigned_to for s in listing.signals))
    return _open_view(context.t, listing, names, many_wijken=len(wijken) > 1, now=context.now)


# --- commands ----------------------------------------------------------------------------


async def open_command(update: Update, context: BuurtContext) -> None:
    """/open: the open signals of my wijken, oldest first, five per page."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    view = await _open_page(context, user.id, 0)
    if view is None:
        await message.reply_text(not_allowed(context.t))
        return
    text, markup = view
    await message.reply_text(text, reply_markup=markup)


async def melding_command(update: Update, context: BuurtContext) -> None:
    """/melding <nr>: one signal with its photo, place, history and the actions."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    typed = " ".join(context.args or []).strip()
    year = context.now.astimezone(context.settings.tz).year
    reference = store.parse_reference(typed, year=year) if typed else None
    async with context.db.begin() as session:
        person = await access.person(session, user.id, context.settings.admins)
        wijken = person.wijken_for(Permission.SIGNALS)
        signal = await store.find_signal(session, reference) if wijken and reference else None
        if signal is not None and signal.wijk_id not in wijken:
            signal = None  # another wijk's report: answered exactly as one that does not exist
        names = await access.display_names(session, store.history_actors(signal)) if signal else {}
    if not wijken:
        await message.reply_text(not_allowed(t))
    elif not typed:
        await message.reply_text(
            t("Which report? For example: /melding BS-2026-0001, or just the number: /melding 1")
        )
    elif signal is None:
        await message.reply_text(
            t(
                "I cannot find report {reference} among the reports of your wijk.",
                reference=reference or shorten(typed, 40),
            )
        )
    else:
        await _show(context, user.id, signal, names)


# --- buttons that act at once ----------------------------------------------------------------


async def on_page(update: Update, context: BuurtContext) -> None:
    """‹ previous / next ›: another page of /open."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    view = await _open_page(context, user_id, int(steps.match(context, 1)))
    if view is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    text, markup = view
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc):
            raise


async def on_show(update: Update, context: BuurtContext) -> None:
    """A report in the /open list (or under an alert): show it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    async with context.db.begin() as session:
        _, signal = await _pro_signal(session, context, user_id, int(steps.match(context, 1)))
        names = await access.display_names(session, store.history_actors(signal)) if signal else {}
    if signal is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    await _show(context, user_id, signal, names)


async def on_take(update: Update, context: BuurtContext) -> None:
    """Take: the signal becomes mine; a new one is now "in behandeling"."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        _, signal = await _pro_signal(
            session, context, user_id, int(steps.match(context, 1)), for_update=True
        )
        open_ = signal is not None and signal.status != WITHDRAWN
        taken = (
            await store.take(session, signal, user_id, now=context.now)
            if signal and open_
            else None
        )
        previous = taken.previous if taken and taken.previous != user_id else None
        names = await access.display_names(session, [previous])
    if signal is not None and not open_:
        await query.answer(_withdrawn(t, signal), show_alert=True)
        return
    if signal is None or taken is None:
        await steps.refuse(query, context)
        return
    if not taken.changed:
        await query.answer(
            t("You have already taken {reference}.", reference=signal.reference), show_alert=True
        )
        return
    await query.answer(t("Taken"))
    lines = [t("You have taken <b>{reference}</b>.", reference=signal.reference)]
    if taken.to_status != taken.from_status:
        lines.append(
            t(
                "Its status went from {old} to {new}.",
                old=status_label(t, taken.from_status),
                new=status_label(t, taken.to_status),
            )
        )
    if previous is not None:
        lines.append(t("Before, {name} had it.", name=names.get(previous, t("a colleague"))))
    await context.bot.send_message(user_id, "\n".join(lines))


async def on_refer(update: Update, context: BuurtContext) -> None:
    """Propose buurtbemiddeling to the reporter; only their own yes in the bot starts it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    refusal: str | None = None
    async with context.db.begin() as session:
        person, signal = await _pro_signal(session, context, user_id, int(steps.match(context, 1)))
        if signal is None or signal.resident is None:
            refusal = not_allowed(t)
        elif not await store.propose_mediation(session, signal, user_id, now=context.now):
            refusal = (
                t("Mediation was already proposed; the reporter has not answered yet.")
                if store.mediation_answer(signal) == store.MEDIATION_PROPOSED
                else t("The reporter already asked for mediation.")
            )
        else:
            role = store.signing_role(person, signal.wijk_id) or "wijkagent"
            reporter, reference = signal.resident.telegram_id, signal.reference
            their = context.translator_for(reporter)
            unreachable = t("The reporter cannot be reached through the bot.")
            await relay.enqueue(
                context,
                session,
                relay.message(
                    relay.key(f"cases:refer:{signal.id}", reporter),
                    reporter,
                    "cases:proposal",
                    _mediation_proposal(their, role, reference),
                    _proposal_buttons(their, signal.id),
                    hook=RELAY_HOOK,
                    bounce=relay.Bounce(user_id, unreachable, unreachable, _show_button(t, signal)),
                ),
            )
    # Answered after the unit of work: no transaction waits for a round trip to Telegram.
    if refusal is not None or signal is None:
        await query.answer(refusal, show_alert=True)
        return
    relay.wake(context)
    await query.answer(t("Proposal sent"))
    await context.bot.send_message(
        user_id,
        t(
            "The reporter of {reference} has been asked whether they want mediation. Nothing "
            "is passed on unless they agree.",
            reference=reference,
        ),
    )


def _proposal_buttons(t: Translator, signal_id: int) -> InlineKeyboardMarkup:
    """Yes / no to a proposal of mediation (answered in the mediation intake)."""
    return keyboard(
        [
            (t("Yes, I want to ask for mediation"), f"mref:{signal_id}:yes"),
            (t("No, thank you"), f"mref:{signal_id}:no"),
        ]
    )


def _mediation_proposal(t: Translator, role: str, reference: str) -> str:
    """Asked to the reporter, in their language: would mediation help?"""
    return t(
        "The {role} suggests buurtbemiddeling for your report {reference}.\n\n{explanation}\n\n"
        "Would you like to ask for it? Only if you say yes do you get the questions of the "
        "intake; nothing is passed on without you.",
        role=role_label(t, role),
        reference=reference,
        explanation=Html(mediation_explanation(t)),
    )


async def on_status_menu(update: Update, context: BuurtContext) -> None:
    """Status: offer the other statuses."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        _, signal = await _pro_signal(session, context, user_id, int(steps.match(context, 1)))
    if signal is None:
        await steps.refuse(query, context)
        return
    if signal.status == WITHDRAWN:
        await query.answer(_withdrawn(t, signal), show_alert=True)
        return
    await query.answer()
    choices = [
        (status_label(t, status), f"cases:status:{signal.id}:{status}")
        for status in STATUSES
        if status != signal.status
    ]
    await context.bot.send_message(
        user_id,
        t(
            "New status for <b>{reference}</b>? It is now: {status}.",
            reference=signal.reference,
            status=status_label(t, signal.status),
        ),
        reply_markup=keyboard(choices),
    )


# --- the typed steps ---------------------------------------------------------------------


async def on_status_chosen(update: Update, context: BuurtContext) -> State:
    """A new status was chosen: ask for a short internal note."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    to_status = steps.match(context, 2)
    async with context.db.begin() as session:
        _, signal = await _pro_signal(session, context, user_id, int(steps.match(context, 1)))
    if signal is None:
        await steps.refuse(query, context)
        return None
    if signal.status == WITHDRAWN:
        await query.answer(_withdrawn(t, signal), show_alert=True)
        return None
    if signal.status == to_status:
        await query.answer(
            t(
                "{reference} already has the status {status}.",
                reference=signal.reference,
                status=status_label(t, to_status),
            ),
            show_alert=True,
        )
        return None
    _remember(context, STATUS_NOTE, signal, to_status)
    await query.answer()
    await steps.spend(query)
    lines = [
        t(
            "Change the status of <b>{reference}</b> from {old} to {new}: not done yet.",
            reference=signal.reference,
            old=status_label(t, signal.status),
            new=status_label(t, to_status),
        ),
        t(
            "Type a short note for your colleagues (the reporter does not see it) and the "
            "status changes, or press “Without note”. /annuleren stops and changes nothing."
        ),
    ]
    if to_status == store.CLOSED and signal.resident_id is not None:
        lines.append(
            t(
                "The reporter is told that the report is closed (without your note). To tell "
                "them more, use “Reply to reporter”."
            )
        )
    await context.bot.send_message(
        user_id,
        "\n".join(lines),
        reply_markup=keyboard([(t("Without note"), f"cases:nonote:{signal.id}")]),
    )
    return STATUS_NOTE


async def on_status_note(update: Update, context: BuurtContext) -> State:
    """The note with a status change."""
    pending = STEPS.pending(context, STATUS_NOTE)
    if pending is None:
        return ConversationHandler.END
    note = await _typed(update, context)
    if note is None:
        return STATUS_NOTE
    return await _apply_status(update, context, pending, note)


async def on_without_note(update: Update, context: BuurtContext) -> State:
    """Without note: change the status right away."""
    pressed = await steps.pressed(update, context)
    pending = STEPS.pending(context, STATUS_NOTE)
    if pressed is None:
        return None
    query, _ = pressed
    if pending is None or str(pending["signal_id"]) != steps.match(context, 1):
        await query.answer(context.t("This button is no longer active."), show_alert=True)
        return None
    await query.answer()
    await steps.spend(query)
    return await _apply_status(update, context, pending, None)


async def _apply_status(
    update: Update, context: BuurtContext, pending: dict[str, Any], note: str | None
) -> int:
    user = update.effective_user
    assert user is not None
    t = context.t
    now = context.now
    to_status = str(pending["status"])
    changed = False
    old = ""
    told: bool | None = None  # whether the reporter is told it is closed (None: not closed)
    async with context.db.begin() as session:
        _, signal = await _pro_signal(
            session, context, user.id, int(pending["signal_id"]), for_update=True
        )
        if signal is not None:
            old = signal.status
            changed = await store.change_status(
                session,
                signal,
                to_status,
                actor=store.pro_actor(user.id),
                note=note,
                now=now,
                followup_days=context.settings.professionals.followup_days,
            )
            resident = signal.resident
            if changed and to_status == store.CLOSED and resident is not None:
                told = await _tell_closed(context, session, signal, resident, user.id)
    STEPS.forget(context)
    if signal is None:
        await context.bot.send_message(user.id, not_allowed(t))
        return ConversationHandler.END
    if old == WITHDRAWN:
        await context.bot.send_message(user.id, _withdrawn(t, signal))
        return ConversationHandler.END
    if not changed:
        await context.bot.send_message(
            user.id,
            t(
                "{reference} already has the status {status}; nothing changed.",
                reference=signal.reference,
                status=status_label(t, to_status),
            ),
        )
        return ConversationHandler.END
    lines = [
        t(
            "<b>{reference}</b>: status {old} → {new}.",
            reference=signal.reference,
            old=status_label(t, old),
            new=status_label(t, to_status),
        )
    ]
    if note:
        lines.append(t("Your note is saved in the history (internal)."))
    if told is not None:
        relay.wake(context, told)
        lines.append(_closed_told(t) if told else _closed_untold(t))
    await context.bot.send_message(user.id, "\n".join(lines))
    return ConversationHandler.END


def _closed_told(t: Translator) -> str:
    return t("The reporter has been told that it is closed.")


def _closed_untold(t: Translator) -> str:
    return t("The reporter could not be told: the bot cannot reach them. This is noted.")


async def _tell_closed(
    context: BuurtContext, session: AsyncSession, signal: Signal, resident: Resident, by: int
) -> bool:
    """Decide to tell the reporter their signal is closed (through the outbox; the history
    notes it if it cannot be delivered). A reporter who blocked the bot is noted at once."""
    now = context.now
    if resident.unreachable_since is not None:
        await store.record(session, signal, store.NOTICE_UNDELIVERED, actor=store.BOT, now=now)
        return False
    t = context.t
    text = _closed_notice(
        Translator(resident.language), signal, context.settings.professionals.followup_days
    )
    await relay.enqueue(
        context,
        session,
        relay.message(
            relay.key(f"cases:closed:{signal.id}:{now:%Y%m%d%H%M%S%f}", resident.telegram_id),
            resident.telegram_id,
            "cases:closed",
            text,
            hook=RELAY_HOOK,
            mark={"signal": signal.id, "kind": store.NOTICE_UNDELIVERED},
            bounce=relay.Bounce(by, _closed_untold(t), _closed_untold(t), _show_button(t, signal)),
        ),
    )
    return True


async def _ask_typed(
    update: Update,
    context: BuurtContext,
    state: str,
    lookup: Callable[[AsyncSession, int, int], Awaitable[Signal | None]],
    prompt: Callable[[Translator, Signal], str],
) -> State:
    """A button that starts a typed step: check who may, remember the signal, ask."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    async with context.db.begin() as session:
        signal = await lookup(session, user_id, int(steps.match(context, 1)))
    if signal is None:
        await steps.refuse(query, context)
        return None
    _remember(context, state, signal)
    await query.answer()
    await context.bot.send_message(user_id, prompt(context.t, signal))
    return state


async def on_note_chosen(update: Update, context: BuurtContext) -> State:
    """Note: ask for an internal note."""

    async def lookup(session: AsyncSession, user_id: int, signal_id: int) -> Signal | None:
        return (await _pro_signal(session, context, user_id, signal_id))[1]

    return await _ask_typed(
        update,
        context,
        NOTE,
        lookup,
        lambda t, signal: t(
            "Type the internal note for <b>{reference}</b>. Only colleagues see it, never the "
            "reporter. /annuleren stops.",
            reference=signal.reference,
        ),
    )


async def on_note(update: Update, context: BuurtContext) -> State:
    """The internal note, as typed."""
    pending = STEPS.pending(context, NOTE)
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    if pending is None:
        return ConversationHandler.END
    note = await _typed(update, context)
    if note is None:
        return NOTE
    t = context.t
    async with context.db.begin() as session:
        _, signal = await _pro_signal(
            session, context, user.id, int(pending["signal_id"]), for_update=True
        )
        if signal is not None:
            await store.add_note(
                session, signal, note, actor=store.pro_actor(user.id), now=context.now
            )
    STEPS.forget(context)
    if signal is None:
        await message.reply_text(not_allowed(t))
    else:
        await message.reply_text(
            t("Internal note added to <b>{reference}</b>.", reference=signal.reference)
        )
    return ConversationHandler.END


async def on_reply_chosen(update: Update, context: BuurtContext) -> State:
    """Reply to reporter: ask for the message."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    t = context.t
    async with context.db.begin() as session:
        person, signal = await _pro_signal(session, context, user_id, int(steps.match(context, 1)))
    if signal is None:
        await steps.refuse(query, context)
        return None
    if signal.resident_id is None:
        await query.answer(_unreachable(t, signal), show_alert=True)
        return None
    role = store.signing_role(person, signal.wijk_id) or ""
    _remember(context, REPLY, signal)
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "Type your message for the reporter of <b>{reference}</b>. They see it signed only "
            "as “the {role}”; your name stays hidden. /annuleren stops.",
            reference=signal.reference,
            role=role_label(t, role),
        ),
    )
    return REPLY


def _unreachable(t: Translator, signal: Signal) -> str:
    return t(
        "The reporter of {reference} has removed their data and can no longer be reached.",
        reference=signal.reference,
    )


async def on_reply(update: Update, context: BuurtContext) -> State:
    """The message for the reporter: stored and written to the outbox in one unit of work,
    once per step, signed only with the role."""
    pending = STEPS.pending(context, REPLY)
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    if pending is None:
        return ConversationHandler.END
    text = await _typed(update, context)
    if text is None:
        return REPLY
    t = context.t
    role = ""
    step_key = STEPS.step_key(pending)
    async with context.db.begin() as session:
        person, signal = await _pro_signal(session, context, user.id, int(pending["signal_id"]))
        before = await store.event_of_step(session, step_key)
        resident = signal.resident if signal is not None else None
        if signal is not None and resident is not None and before is None:
            event = await store.record(
                session,
                signal,
                store.REPLY_OUT,
                actor=store.pro_actor(user.id),
                now=context.now,
                note=text,
                step_key=step_key,
            )
            role = store.signing_role(person, signal.wijk_id) or ""
            relayed, markup = _to_reporter(Translator(resident.language), signal, text, role)
            bounce = relay.Bounce(
                user.id,
                blocked=t(
                    "Your message could not be delivered: the reporter has blocked the bot or "
                    "deleted the chat. This is noted in the history."
                ),
                refused=relay.not_accepted(t),
                markup=_show_button(t, signal),
            )
            await relay.enqueue(
                context,
                session,
                relay.message(
                    relay.key(step_key or f"cases:reply:{event.id}", resident.telegram_id),
                    resident.telegram_id,
                    "cases:reply",
                    relayed,
                    markup,
                    hook=RELAY_HOOK,
                    mark={
                        "signal": signal.id,
                        "event": event.id,
                        "kind": store.REPLY_OUT_UNDELIVERED,
                    },
                    bounce=bounce,
                ),
            )
    STEPS.forget(context)
    if signal is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    if before is not None:  # this step was relayed before (handled again, or sent again)
        await message.reply_text(
            t(
                "Your message for the reporter of <b>{reference}</b> had already been sent; it "
                "was not sent twice.",
                reference=signal.reference,
            )
        )
        return ConversationHandler.END
    if resident is None:
        await message.reply_text(_unreachable(t, signal))
        return ConversationHandler.END
    relay.wake(context)
    await message.reply_text(
        t(
            "Sent to the reporter of <b>{reference}</b>, signed “the {role}”.",
            reference=signal.reference,
            role=role_label(t, role),
        )
    )
    return ConversationHandler.END


async def on_answer_chosen(update: Update, context: BuurtContext) -> State:
    """Answer (the reporter, under a message about their report): ask for the answer."""
    return await _ask_typed(
        update,
        context,
        ANSWER,
        store.own_signal,
        lambda t, signal: t(
            "Type your answer about report <b>{reference}</b>. It is passed on without your "
            "name. /annuleren stops.",
            reference=signal.reference,
        ),
    )


async def on_answer(update: Update, context: BuurtContext) -> State:
    """The reporter's answer: to the professional who last wrote, without the reporter's name,
    stored and written to the outbox in one unit of work, once per step."""
    pending = STEPS.pending(context, ANSWER)
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    if pending is None:
        return ConversationHandler.END
    text = await _typed(update, context)
    if text is None:
        return ANSWER
    t = context.t
    step_key = STEPS.step_key(pending)
    added = 0
    async with context.db.begin() as session:
        signal = await store.own_signal(session, user.id, int(pending["signal_id"]))
        before = await store.event_of_step(session, step_key)
        if signal is not None and before is None:
            event = await store.record(
                session,
                signal,
                store.REPLY_IN,
                actor=store.RESIDENT,
                now=context.now,
                note=text,
                step_key=step_key,
            )
            targets = await store.reply_targets(session, signal)
            added = await relay.to_each(
                context,
                session,
                step_key or f"cases:answer:{event.id}",
                "cases:answer",
                await steps.languages(context, session, targets),
                lambda their: _to_professional(their, signal, text),
            )
    STEPS.forget(context)
    if signal is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    relay.wake(context, added)
    if added or before is not None:
        reply = t(
            "Thank you. Your answer about <b>{reference}</b> has been passed on.",
            reference=signal.reference,
        )
    else:
        reply = t(
            "Thank you. Your answer has been added to report <b>{reference}</b>.",
            reference=signal.reference,
        )
    await message.reply_text(reply)
    return ConversationHandler.END


# --- the follow-up ---------------------------------------------------------------------------


async def on_followup(update: Update, context: BuurtContext) -> None:
    """The reporter answers "is het opgelost?": yes, no (reopens it) or don't know."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    answer = steps.match(context, 2)
    alert_to: dict[int, str] = {}
    async with context.db.begin() as session:
        signal = await store.own_signal(
            session, user_id, int(steps.match(context, 1)), for_update=True
        )
        result = (
            await store.answer_followup(session, signal, answer, now=context.now)
            if signal
            else None
        )
        if signal is not None and result is not None and result.reopened_to is not None:
            for telegram_id in await access.recipients(session, signal.wijk_id, Permission.SIGNALS):
                alert_to[telegram_id] = await steps.language_of(context, session, telegram_id)
            # The pair hears of it through the outbox (a fan-out never runs in a handler).
            alerts = []
            for telegram_id, language in alert_to.items():
                alert, markup = _reopened_alert(Translator(language), signal)
                alerts.append(
                    Outgoing(
                        key=f"cases:reopened:{signal.id}:u{update.update_id}:{telegram_id}",
                        chat_id=telegram_id,
                        kind="cases:reopened",
                        text=alert,
                        reply_markup=markup.to_dict(),
                    )
                )
            await outbox.enqueue(session, *alerts, now=context.now)
    if signal is None:
        await steps.refuse(query, context)
        return
    if result is None:
        await query.answer(
            t("You have already answered this question. Thank you!"), show_alert=True
        )
        return
    await query.answer()
    await steps.spend(query)
    if answer == "yes":
        thanks = t("Good to hear it is solved. Thank you for letting us know!")
    elif answer == "no":
        thanks = t(
            "Sorry to hear it is not solved. Report <b>{reference}</b> has been opened again "
            "and the wijkagent and the opbouwwerker have been told.",
            reference=signal.reference,
        )
    else:
        thanks = t("Thank you for letting us know.")
    await context.bot.send_message(user_id, f"✔️ {escape(t(FOLLOWUP_LABELS[answer]))}\n{thanks}")
    if alert_to:
        context.outbox.wake()


async def send_followups(context: BuurtContext) -> None:
    """Ask the reporters of closed signals whose follow-up is due: is het opgelost? Each
    question is decided (``followup_sent_at``) and written to the outbox in one unit of work;
    its hook notes in the history whether it was delivered."""
    now = context.now
    messages: list[Outgoing] = []
    async with context.db.begin() as session:
        for signal_id in await store.due_followups(session, now):
            signal = await store.decide_followup(session, signal_id, now=now)
            resident = signal.resident if signal is not None else None
            if signal is None or resident is None:
                continue
            if resident.unreachable_since is not None:  # they blocked the bot: noted
                await store.record(
                    session, signal, store.FOLLOWUP_UNDELIVERED, actor=store.BOT, now=now
                )
                continue
            text, markup = _followup_question(
                Translator(resident.language),
                signal,
                local_date(signal.closed_at or now, context.settings.tz),
            )
            closed = signal.closed_at or now
            messages.append(
                Outgoing(
                    key=f"cases:followup:{signal_id}:{closed:%Y%m%d%H%M%S}",
                    chat_id=resident.telegram_id,
                    kind="cases:followup",
                    text=text,
                    reply_markup=markup.to_dict(),
                    hook=FOLLOWUP_HOOK,
                    hook_data={"signal": signal_id},
                )
            )
        await outbox.enqueue(session, *messages, now=now)
    if messages:
        context.outbox.wake()


async def _followup_settled(session: AsyncSession, settled: Settled) -> None:
    """Note in the signal's history whether the follow-up question reached the reporter."""
    signal = await store.get_signal(session, int(settled.data["signal"]))
    if signal is not None:
        kind = store.FOLLOWUP_SENT if settled.delivered else store.FOLLOWUP_UNDELIVERED
        await store.record(session, signal, kind, actor=store.BOT, now=settled.now)


async def _relay_undelivered(
    session: AsyncSession, mark: Mapping[str, Any], now: dt.datetime
) -> None:
    """A message to the reporter could not be delivered: the history says so."""
    if mark:
        await store.note_undelivered(
            session, int(mark["signal"]), str(mark["kind"]), event_id=mark.get("event"), now=now
        )


FOLLOWUP_HOOK = "cases:followup"
RELAY_HOOK = "cases:relay"


# Any other cases: button (an old step, forged data): refuse, change nothing.
stale = steps.stale_button(Permission.SIGNALS)


# --- messages to someone else (in their language) ----------------------------------------------


def _closed_notice(t: Translator, signal: Signal, days: int) -> str:
    """To the reporter: the signal is closed, and the follow-up comes in ``days`` days."""
    return "\n".join(
        [
            t(
                "Your report <b>{reference}</b> ({category}) has been closed. Thank you for "
                "reporting it.",
                reference=signal.reference,
                category=category_label(t, signal.category),
            ),
            t.ngettext(
                "In {n} day I will ask you whether it is really solved.",
                "In {n} days I will ask you whether it is really solved.",
                days,
            ),
        ]
    )


def _to_reporter(
    t: Translator, signal: Signal, text: str, role: str
) -> tuple[str, InlineKeyboardMarkup]:
    """To the reporter: a professional's message, signed only with the role."""
    relayed = t(
        "Message about your report <b>{reference}</b>:\n\n{text}\n\n— the {role}",
        reference=signal.reference,
        text=text,
        role=role_label(t, role),
    )
    return relayed, keyboard([("↩️ " + t("Answer"), f"cases:answer:{signal.id}")])


def _to_professional(t: Translator, signal: Signal, text: str) -> tuple[str, InlineKeyboardMarkup]:
    """To a professional: the reporter's answer, without who they are."""
    relayed = t(
        "Answer from the reporter of <b>{reference}</b>:\n\n{text}",
        reference=signal.reference,
        text=text,
    )
    markup = keyboard(
        [
            ("✉️ " + t("Reply to reporter"), f"cases:reply:{signal.id}"),
            ("🔎 " + t("Show report"), f"cases:show:{signal.id}"),
        ],
        columns=2,
    )
    return relayed, markup


def _show_button(t: Translator, signal: Signal) -> InlineKeyboardMarkup:
    return keyboard([("🔎 " + t("Show report"), f"cases:show:{signal.id}")])


def _reopened_alert(t: Translator, signal: Signal) -> tuple[str, InlineKeyboardMarkup]:
    """To the pair: the reporter says it is not solved; the signal is open again."""
    alert = t(
        "⚠️ Report <b>{reference}</b> ({category}) has been opened again: the reporter says it "
        "is not solved. Status now: {status}.",
        reference=signal.reference,
        category=category_label(t, signal.category),
        status=status_label(t, signal.status),
    )
    return alert, keyboard([("🔎 " + t("Show report"), f"cases:show:{signal.id}")])


def _followup_question(
    t: Translator, signal: Signal, date: str
) -> tuple[str, InlineKeyboardMarkup]:
    """To the reporter, some days after closing: is it solved?"""
    text = t(
        "Your report <b>{reference}</b> ({category}) was closed on {date}.\n<b>Is it solved?</b>",
        reference=signal.reference,
        category=category_label(t, signal.category),
        date=date,
    )
    markup = keyboard(
        [(t(label), f"cases:fu:{signal.id}:{value}") for value, label in FOLLOWUP_LABELS.items()],
        columns=3,
    )
    return text, markup


# --- wiring ----------------------------------------------------------------------------------


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The typed steps (one persistent conversation), /open, /melding and their buttons."""
    conversation = persistent_conversation(
        entry_points=[
            CallbackQueryHandler(
                on_status_chosen,
                pattern=r"^cases:status:(\d{1,9}):(nieuw|in_behandeling|afgehandeld)$",
            ),
            CallbackQueryHandler(on_note_chosen, pattern=r"^cases:note:(\d{1,9})$"),
            CallbackQueryHandler(on_reply_chosen, pattern=r"^cases:reply:(\d{1,9})$"),
            CallbackQueryHandler(on_answer_chosen, pattern=r"^cases:answer:(\d{1,9})$"),
        ],
        states={
            STATUS_NOTE: [
                MessageHandler(TYPED, on_status_note),
                CallbackQueryHandler(on_without_note, pattern=r"^cases:nonote:(\d{1,9})$"),
            ],
            NOTE: [MessageHandler(TYPED, on_note)],
            REPLY: [MessageHandler(TYPED, on_reply)],
            ANSWER: [MessageHandler(TYPED, on_answer)],
        },
        fallbacks=[
            CommandHandler("annuleren", STEPS.cancel, filters=PRIVATE),
            CommandHandler("open", STEPS.leaving(open_command), filters=PRIVATE),
            CommandHandler("melding", STEPS.leaving(melding_command), filters=PRIVATE),
            MessageHandler(MEDIA, steps.not_text),
        ],
        name="cases",
        allow_reentry=True,
    )
    return [
        conversation,
        CommandHandler("open", open_command, filters=PRIVATE),
        CommandHandler("melding", melding_command, filters=PRIVATE),
        CallbackQueryHandler(on_page, pattern=r"^cases:page:(\d{1,9})$"),
        CallbackQueryHandler(on_show, pattern=r"^cases:show:(\d{1,9})$"),
        CallbackQueryHandler(on_take, pattern=r"^cases:take:(\d{1,9})$"),
        CallbackQueryHandler(on_status_menu, pattern=r"^cases:status:(\d{1,9})$"),
        CallbackQueryHandler(on_refer, pattern=r"^cases:refer:(\d{1,9})$"),
        CallbackQueryHandler(on_followup, pattern=r"^cases:fu:(\d{1,9}):(yes|no|unknown)$"),
        CallbackQueryHandler(stale, pattern=r"^cases:"),
    ]


async def start_jobs(application: Any) -> None:
    """Schedule the follow-up sweeper: once right away, then every few minutes."""
    job_queue = application.job_queue
    assert job_queue is not None
    for job in job_queue.get_jobs_by_name(FOLLOWUP_JOB):
        job.schedule_removal()
    job_queue.run_repeating(send_followups, interval=FOLLOWUP_EVERY, first=0, name=FOLLOWUP_JOB)


FEATURE = Feature(
    name="cases",
    handlers=build_handlers,
    commands=(
        Command("open", N_("Open signals of your wijk"), Permission.SIGNALS),
        Command("melding", N_("One signal: /melding BS-2026-0001"), Permission.SIGNALS),
    ),
    start=start_jobs,
    jobs=(Job(FOLLOWUP_JOB, "every five minutes: 'is het opgelost?'"),),
    outbox_hooks={
        FOLLOWUP_HOOK: _followup_settled,
        RELAY_HOOK: relay.settled_hook(_relay_undelivered),
    },
)
