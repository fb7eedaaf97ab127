"""/open and /melding: one signal with its history, and the list of open signals."""

from __future__ import annotations

import datetime as dt
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Html, Translator, escape
from buurtsignaal.conversations import relay, steps
from buurtsignaal.conversations.callbacks import Report, ReportPage
from buurtsignaal.conversations.cases.common import (
    ADDED_PHOTOS_SHOWN,
    DESCRIPTION_SHOWN,
    EVENT_LABELS,
    FOLLOWUP_LABELS,
    INTERNAL,
    PER_PAGE,
    _age,
)
from buurtsignaal.conversations.ui import (
    category_label,
    keyboard,
    local_datetime,
    shorten,
    signal_line,
    signal_place,
    signal_when,
    status_label,
)
from buurtsignaal.storage import access
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.models import Signal, SignalEvent
from buurtsignaal.storage.signals import WITHDRAWN

log = logging.getLogger(__name__)


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
        buttons.append(("✋ " + t("Take"), Report("take", signal.id).pack()))
    if not withdrawn:
        buttons.append(("🔄 " + t("Status"), Report("status", signal.id).pack()))
    buttons.append(("📝 " + t("Note"), Report("note", signal.id).pack()))
    if signal.resident_id is not None:
        buttons.append(("✉️ " + t("Reply to reporter"), Report("reply", signal.id).pack()))
        if not withdrawn and store.mediation_answer(signal) is None:
            buttons.append(("🤝 " + t("Propose mediation"), Report("refer", signal.id).pack()))
    return keyboard(buttons, columns=2)


def _withdrawn(t: Translator, signal: Signal) -> str:
    return t(
        "The reporter has withdrawn {reference}; it can no longer be taken or change status.",
        reference=signal.reference,
    )


async def _show(context: BuurtContext, chat_id: int, signal: Signal) -> None:
    """Send one signal: its photo, a location pin, then the details with the actions."""
    t = context.t
    async with context.db.begin() as session:
        names = await access.display_names(session, store.history_actors(signal))
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
        rows.append([InlineKeyboardButton(label, callback_data=Report("show", signal.id).pack())])
    nav = []
    if listing.page > 0:
        nav.append(
            InlineKeyboardButton(
                "‹ " + t("previous"), callback_data=ReportPage(listing.page - 1).pack()
            )
        )
    if listing.page < listing.pages - 1:
        nav.append(
            InlineKeyboardButton(
                t("next") + " ›", callback_data=ReportPage(listing.page + 1).pack()
            )
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
