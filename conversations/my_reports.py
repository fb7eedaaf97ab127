"""/mijnmeldingen: the resident's own reports with their status, and following up on an open
one: add something (text or a photo) or withdraw it.

Every button names the report by id and is checked again on the server side: only the
reporter's own, still open report. An addition is a typed step (a one-field flow, its draft
persisted), with the same text limit and profiling guard as /melden; it goes into the
signal's history and to the professionals of the wijk, without the reporter's identity unless
they chose to be contactable. Withdrawing asks for a confirmation first; the report then
counts as closed, stays in the statistics, and the professionals are told.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import PRIVATE_MENU, Command, Feature
from buurtsignaal.bot.i18n import N_, Translator, escape
from buurtsignaal.conversations import desk, relay, steps
from buurtsignaal.conversations.callbacks import Mine, Report
from buurtsignaal.conversations.flow import (
    PRIVATE,
    Draft,
    Field,
    State,
    TypedFlow,
    behaviour_request,
    keep_label,
    too_long,
)
from buurtsignaal.conversations.ui import (
    category_label,
    keyboard,
    local_date,
    not_allowed,
    status_label,
)
from buurtsignaal.storage import access
from buurtsignaal.storage import cases as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.guard import count_guard, mentions_appearance
from buurtsignaal.storage.models import Signal
from buurtsignaal.storage.residents import get_resident
from buurtsignaal.storage.signals import count_signals_of_resident, signals_of_resident

log = logging.getLogger(__name__)

SHOWN = 20
ADD = "add"
# How long a pressed "Add" waits for the text or photo. Later, a message is not silently
# attached to an old report (the resident may have moved on to something else).
ADD_WAITS = dt.timedelta(hours=2)
IMAGE = PRIVATE & (filters.PHOTO | filters.Document.IMAGE)


# --- the list ---------------------------------------------------------------------------------


def _list_view(
    t: Translator, signals: list[Signal], total: int, tz: dt.tzinfo
) -> tuple[str, InlineKeyboardMarkup | None]:
    lines = [t("<b>Your reports</b>")]
    rows: list[list[InlineKeyboardButton]] = []
    for signal in signals:
        lines.append(
            t(
                "<b>{reference}</b> · {category} · {date} · {status}",
                reference=signal.reference,
                category=category_label(t, signal.category),
                date=local_date(signal.created_at, tz),
                status=status_label(t, signal.status),
            )
        )
        if store.is_open(signal):
            rows.append(
                [
                    InlineKeyboardButton(
                        "➕ " + t("Add to {reference}", reference=signal.reference),
                        callback_data=Mine("add", signal.id).pack(),
                    ),
                    InlineKeyboardButton(
                        "↩️ " + t("Withdraw"), callback_data=Mine("withdraw", signal.id).pack()
                    ),
                ]
            )
    if total > len(signals):
        lines.append(t("… and {n} older reports.", n=total - len(signals)))
    if rows:
        lines.append("")
        lines.append(
            t(
                "Something to add to an open report, such as a new incident or a photo? Or is "
                "it no longer needed? Use the buttons below."
            )
        )
    return "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None


async def my_reports(update: Update, context: BuurtContext) -> None:
    """List the resident's reports: reference, category, date and status; buttons to add to
    or withdraw each open one."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
        signals = await signals_of_resident(session, resident.id, limit=SHOWN) if resident else []
        total = await count_signals_of_resident(session, resident.id) if resident else 0
    if not signals:
        await message.reply_text(t("You have not made any reports yet. Start one with /melden."))
        return
    text, markup = _list_view(t, list(signals), total, context.settings.tz)
    await message.reply_text(text, reply_markup=markup)


# --- checks -------------------------------------------------------------------------------------


def _no_longer_open(t: Translator, signal: Signal) -> str:
    return t(
        "Report {reference} is no longer open ({status}), so it cannot be changed.",
        reference=signal.reference,
        status=status_label(t, signal.status),
    )


def _contact_line(t: Translator, signal: Signal) -> str | None:
    if signal.contactable and signal.contact_name:
        return t("Contact: {name}", name=signal.contact_name)
    return None


async def _tell(
    context: BuurtContext,
    session: AsyncSession,
    signal: Signal,
    step: str,
    text: Callable[[Translator], str],
    photo: str | None = None,
) -> int:
    """Write ``text`` (after the photo) for each professional of the signal's wijk (whoever
    took it is one of them), in their language, to the outbox in the caller's unit of work, as
    the relay ``step``; how many messages were new."""
    people = await access.recipients(session, signal.wijk_id, Permission.SIGNALS)
    languages = await steps.languages(context, session, people)
    added = 0
    if photo is not None:
        added += await relay.enqueue(
            context,
            session,
            *(
                relay.message(
                    relay.key(step, person, "photo"),
                    person,
                    "mine:photo",
                    _photo_caption(Translator(language), signal),
                    photo_file_id=photo,
                )
                for person, language in languages.items()
            ),
        )
    return added + await relay.to_each(
        context,
        session,
        step,
        "mine:news",
        languages,
        lambda t: (
            text(t),
            keyboard([("🔎 " + t("Show report"), Report("show", signal.id).pack())]),
        ),
    )


def _photo_caption(t: Translator, signal: Signal) -> str:
    return t("📷 Photo added by the reporter of <b>{reference}</b>", reference=signal.reference)


async def _pressed_own(
    update: Update, context: BuurtContext, signal_id: int
) -> tuple[CallbackQuery, int, Signal] | None:
    """A button on a report: the press, the presser and the report, only their own (the one
    refusal otherwise)."""
    return await desk.pressed_on(
        update, context, lambda session, user_id: store.own_signal(session, user_id, signal_id)
    )


# --- adding to a report -------------------------------------------------------------------------


async def on_add_chosen(update: Update, context: BuurtContext) -> State:
    """Add: ask for the text or photo."""
    pressed = await _pressed_own(update, context, Mine.of(update).signal)
    if pressed is None:
        return None
    query, user_id, signal = pressed
    t = context.t
    if not store.is_open(signal):
        await query.answer(_no_longer_open(t, signal), show_alert=True)
        return None
    FLOW.begin(context, ADD, signal.reference, signal_id=signal.id, since=context.now.isoformat())
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "What would you like to add to report <b>{reference}</b>? Type it, or send a "
            "photo (a caption is welcome). Please describe behaviour, not what people look "
            "like or where they come from. (At most {limit} characters.) /annuleren stops.",
            reference=signal.reference,
            limit=context.settings.reports.max_text_length,
        ),
    )
    return ADD


async def _add_expired(update: Update, context: BuurtContext) -> None:
    """Something arrives after "Add" waited too long: it is not added, and the step ends."""
    pending = FLOW.drop(context) or {}
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        context.t(
            "This was not added to {reference}: it is a while since you pressed “Add”. "
            "Want to add it after all? Open /mijnmeldingen and press “Add” again. Want to "
            "report something new? Tap /melden.",
            reference=str(pending.get("reference", "")),
        )
    )


# The addition under way is the flow's draft (an older release kept it in user_data["mine"],
# the flow's name, in the same shape).
FLOW = TypedFlow(
    name="mine",
    cancelled=lambda t: t("Stopped. Nothing has been added."),
    unfinished=lambda t, reference: t(
        "(You did not finish your addition to {reference}; nothing was added.)",
        reference=reference,
    ),
    timeout=ADD_WAITS,
    on_expired=_add_expired,
)


async def on_add_text(update: Update, context: BuurtContext, pending: Draft, text: str) -> State:
    """The typed addition."""
    return await _add(update, context, pending, text, None)


async def on_add_photo(update: Update, context: BuurtContext) -> State:
    """A photo (or an image sent as a file), with or without a caption."""
    pending = FLOW.draft(context, ADD)
    message = update.effective_message
    assert message is not None
    if pending is None:
        return ConversationHandler.END
    photo = message.photo[-1].file_id if message.photo else None
    if photo is None and message.document is not None:
        photo = message.document.file_id
    caption = (message.caption or "").strip() or None
    if caption and await too_long(
        message, context, caption, context.settings.reports.max_text_length
    ):
        return ADD
    return await _add(update, context, pending, caption, photo)


async def on_keep(update: Update, context: BuurtContext) -> State:
    """Keep my text: the addition the guard asked about is added as it was."""
    pressed = await steps.pressed(update, context)
    pending = FLOW.draft(context, ADD)
    if pressed is None:
        return None
    query, _ = pressed
    held = pending.get("held") if pending else None
    if pending is None or not held or str(pending["signal_id"]) != str(Mine.of(update).signal):
        await query.answer(context.t("This button is no longer active."), show_alert=True)
        return None
    await query.answer()
    await steps.spend(query)
    return await _add(update, context, pending, held.get("text"), held.get("photo"), kept=True)


async def _add(
    update: Update,
    context: BuurtContext,
    pending: dict[str, Any],
    text: str | None,
    photo: str | None,
    *,
    kept: bool = False,
) -> State:
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    t = context.t
    if text and not kept and not pending.get("guard_asked") and mentions_appearance(text):
        # Once, as in /melden: ask for behaviour instead; the resident may keep the text.
        pending["guard_asked"] = True
        pending["held"] = {"text": text, "photo": photo}
        async with context.db.begin() as session:
            await count_guard(session, context.now)
        await message.reply_text(
            behaviour_request(t),
            reply_markup=keyboard(
                [(keep_label(t), Mine("keep", int(pending["signal_id"])).pack())]
            ),
        )
        return ADD
    step_key = FLOW.step_key(pending)
    told = 0
    async with context.db.begin() as session:
        signal = await store.own_signal(
            session, user.id, int(pending["signal_id"]), for_update=True
        )
        before = await store.event_of_step(session, step_key)
        added = (
            await store.add_from_reporter(
                session,
                signal,
                text=text,
                photo_file_id=photo,
                now=context.now,
                step_key=step_key,
            )
            if signal is not None and before is None
            else None
        )
        if added is not None and signal is not None:
            told = await _tell(
                context,
                session,
                signal,
                step_key or f"mine:add:{added.id}",
                lambda t: _added(t, signal, text),
                photo,
            )
    FLOW.done(context, stored=added is not None or before is not None)
    if signal is None:
        await message.reply_text(not_allowed(t))
        return ConversationHandler.END
    if before is not None:  # this step was stored before (handled again, or sent again)
        await message.reply_text(
            t(
                "Your addition to <b>{reference}</b> had already been saved and passed on; "
                "nothing was added twice.",
                reference=signal.reference,
            )
        )
        return ConversationHandler.END
    if added is None:
        await message.reply_text(_no_longer_open(t, signal))
        return ConversationHandler.END
    relay.wake(context, told)
    if told:
        reply = t(
            "Thank you. Your addition to <b>{reference}</b> has been saved and passed on to "
            "the wijkagent and the opbouwwerker.",
            reference=signal.reference,
        )
    else:
        reply = t(
            "Thank you. Your addition has been saved with report <b>{reference}</b>.",
            reference=signal.reference,
        )
    await message.reply_text(reply)
    return ConversationHandler.END


def _added(t: Translator, signal: Signal, text: str | None) -> str:
    """To a professional, in their language: what the reporter added."""
    lines = [
        "➕ "
        + t(
            "The reporter of <b>{reference}</b> ({category}) added information:",
            reference=signal.reference,
            category=category_label(t, signal.category),
        ),
        "",
        escape(text) if text else t("(a photo, see above)"),
    ]
    contact = _contact_line(t, signal)
    if contact:
        lines += ["", contact]
    return "\n".join(lines)


async def on_other(update: Update, context: BuurtContext) -> State:
    """A sticker, a file or a voice message while an addition is expected."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(context.t("Please send text or a photo, or stop with /annuleren."))
    return None


# --- withdrawing a report ------------------------------------------------------------------------


async def on_withdraw_chosen(update: Update, context: BuurtContext) -> None:
    """Withdraw: ask for a confirmation first."""
    pressed = await _pressed_own(update, context, Mine.of(update).signal)
    if pressed is None:
        return
    query, user_id, signal = pressed
    t = context.t
    if not store.is_open(signal):
        await query.answer(_no_longer_open(t, signal), show_alert=True)
        return
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "Withdraw report <b>{reference}</b> ({category})?\n"
            "The wijkagent and the opbouwwerker are told that you withdrew it, and it is no "
            "longer handled. It stays in the statistics, without your name.",
            reference=signal.reference,
            category=category_label(t, signal.category),
        ),
        reply_markup=keyboard(
            [
                ("↩️ " + t("Yes, withdraw it"), Mine("withdraw-yes", signal.id).pack()),
                (t("No, keep it open"), Mine("withdraw-no", signal.id).pack()),
            ]
        ),
    )


async def on_withdraw_confirmed(update: Update, context: BuurtContext) -> None:
    """Yes, withdraw: the report is withdrawn and the professionals are told."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    told = 0
    async with context.db.begin() as session:
        signal = await store.own_signal(session, user_id, Mine.of(update).signal, for_update=True)
        withdrawn = await store.withdraw(session, signal, now=context.now) if signal else False
        if withdrawn and signal is not None:
            told = await _tell(
                context,
                session,
                signal,
                f"mine:withdrawn:{signal.id}",
                lambda t: _withdrawn(t, signal),
            )
    if signal is None:
        await steps.refuse(query, context)
        return
    if not withdrawn:
        await query.answer(_no_longer_open(t, signal), show_alert=True)
        return
    relay.wake(context, told)
    await query.answer(t("Withdrawn"))
    await steps.spend(query)
    await context.bot.send_message(
        user_id,
        t(
            "Report <b>{reference}</b> has been withdrawn. Thank you for letting us know. "
            "Something new? You can always report it with /melden.",
            reference=signal.reference,
        ),
    )


def _withdrawn(t: Translator, signal: Signal) -> str:
    """To a professional, in their language: the reporter withdrew the report."""
    lines = [
        "↩️ "
        + t(
            "The reporter has withdrawn report <b>{reference}</b> ({category}). It no "
            "longer counts as open.",
            reference=signal.reference,
            category=category_label(t, signal.category),
        )
    ]
    contact = _contact_line(t, signal)
    if contact:
        lines.append(contact)
    return "\n".join(lines)


async def on_withdraw_declined(update: Update, context: BuurtContext) -> None:
    """No, keep it: nothing changes."""
    pressed = await _pressed_own(update, context, Mine.of(update).signal)
    if pressed is None:
        return
    query, _, _ = pressed
    await query.answer(context.t("Nothing changed"))
    await steps.spend(query)


async def stale(update: Update, context: BuurtContext) -> None:
    """Any other mine: button (an old step, forged data): change nothing."""
    query = update.callback_query
    assert query is not None
    await query.answer(context.t("This button is no longer active."), show_alert=True)


# --- wiring ---------------------------------------------------------------------------------------


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """/mijnmeldingen, adding to a report (a persistent typed step) and withdrawing one."""
    conversation = FLOW.part(
        [CallbackQueryHandler(on_add_chosen, pattern=Mine.matching(action="add"))],
        [Field(ADD, on_add_text)],
        leave={"mijnmeldingen": my_reports},
        also={
            ADD: [
                MessageHandler(IMAGE, on_add_photo),
                CallbackQueryHandler(on_keep, pattern=Mine.matching(action="keep")),
            ],
        },
        media=on_other,  # neither text nor an image (those the step takes)
    )
    return [
        conversation,
        CommandHandler("mijnmeldingen", my_reports, filters=PRIVATE),
        CallbackQueryHandler(on_withdraw_chosen, pattern=Mine.matching(action="withdraw")),
        CallbackQueryHandler(on_withdraw_confirmed, pattern=Mine.matching(action="withdraw-yes")),
        CallbackQueryHandler(on_withdraw_declined, pattern=Mine.matching(action="withdraw-no")),
        CallbackQueryHandler(stale, pattern=r"^mine:"),
    ]


FEATURE = Feature(
    name="my_reports",
    handlers=build_handlers,
    commands=(
        Command("mijnmeldingen", N_("Your reports and their status"), PRIVATE_MENU, order=20),
    ),
)
