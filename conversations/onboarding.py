"""/start, /help and /taal: welcome, who sees what, choosing the wijk and the language."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import GROUP_MENU, PRIVATE_MENU, Command, Feature
from buurtsignaal.bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Html, Translator
from buurtsignaal.conversations.callbacks import Language, StartWijk, StartWijken
from buurtsignaal.conversations.ui import (
    keyboard,
    language_keyboard,
    paged_keyboard,
    privacy_text,
    role_sections,
)
from buurtsignaal.storage import access
from buurtsignaal.storage.models import Wijk
from buurtsignaal.storage.residents import ensure_resident, get_resident, set_language, set_wijk
from buurtsignaal.storage.wijken import active_wijken, get_wijk, wijk_by_slug

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
ONBOARDING = "onboarding"


def help_text(t: Translator) -> str:
    """What the bot can do, for /help and after onboarding."""
    return "\n".join(
        [
            t("<b>What I can do</b>"),
            t(
                "/melden: report an early signal (a quarrel, noise, children without "
                "supervision, graffiti, ...)"
            ),
            t("/mijnmeldingen: your reports: what happened, add something, or withdraw one"),
            t("/bemiddeling: ask for mediation in a conflict with neighbours"),
            t("/koffie: koffiemomenten in your wijk"),
            t("/koppel: when the wijkagent and opbouwwerker are around"),
            t("/privacy: who sees what; /mijngegevens and /vergeetmij: your data"),
            t("/taal: choose your language"),
            t("/start: welcome and choose your wijk"),
            t("/annuleren: stop what you are doing"),
            t("/help: this list"),
            "",
            t("In danger? Always call 112 first."),
        ]
    )


async def start(update: Update, context: BuurtContext) -> None:
    """/start [payload]: welcome, privacy, then the wijk and the language."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None and context.user_data is not None
    payload = context.args[0] if context.args else ""
    async with context.db.begin() as session:
        first_time = await get_resident(session, user.id) is None
        resident = await ensure_resident(session, user.id, context.lang)
        wijken = await active_wijken(session)
        if payload.startswith("w-"):
            chosen = await wijk_by_slug(session, payload[2:])
            if chosen is not None:
                await set_wijk(session, resident, chosen.id)
        elif payload.startswith(access.KEY_FIGURE_PREFIX):
            # A sleutelfiguur's personal link: their wijk, and a count (never who came).
            grant = await access.arrive_via_link(
                session, payload.removeprefix(access.KEY_FIGURE_PREFIX), new=first_time
            )
            if grant is not None and first_time:
                await set_wijk(session, resident, grant.wijk_id)
        if resident.wijk_id is None and len(wijken) == 1:
            await set_wijk(session, resident, wijken[0].id)
        current = await get_wijk(session, resident.wijk_id) if resident.wijk_id else None
    t = context.t
    await message.reply_text(
        t(
            "<b>Welcome to Buurtsignaal.</b>\n"
            "Here you can report early signs of trouble in your neighbourhood, so the wijkagent "
            "and the opbouwwerker can act before it grows.\n\n{privacy}",
            privacy=Html(privacy_text(t, context.settings, full=False)),
        )
    )
    if not wijken:
        await message.reply_text(
            t("This bot has no wijk configured yet. Please tell the administrator.")
        )
        return
    if current is None or not current.active:
        context.user_data[ONBOARDING] = first_time
        await message.reply_text(
            t("Which wijk do you live in?"), reply_markup=_wijk_buttons(t, wijken, 0)
        )
        return
    if len(wijken) > 1:
        await message.reply_text(
            t("Your wijk: <b>{wijk}</b>.", wijk=current.name),
            reply_markup=keyboard([(t("Choose another wijk"), "start:wijken")]),
        )
    if first_time:
        context.user_data[ONBOARDING] = True
        await _ask_language(update, context)
        return
    await message.reply_text(help_text(t))


async def _ask_language(update: Update, context: BuurtContext) -> None:
    message = update.effective_message
    assert message is not None
    await message.reply_text(
        context.t("Which language do you prefer?"), reply_markup=language_keyboard()
    )


def _wijk_buttons(t: Translator, wijken: Sequence[Wijk], page: int) -> InlineKeyboardMarkup:
    """The wijken to choose from, a page at a time (``start:wijken:<page>`` turns pages)."""
    return paged_keyboard(
        t,
        [(w.name, StartWijk(w.id).pack()) for w in wijken],
        page=page,
        page_data=lambda n: StartWijken(n).pack(),
    )


async def choose_wijken(update: Update, context: BuurtContext) -> None:
    """Show the wijken to pick another one (or another page of them)."""
    query = update.callback_query
    assert query is not None
    page = StartWijken.of(update).page
    async with context.db.begin() as session:
        wijken = await active_wijken(session)
    await query.answer()
    await query.edit_message_text(
        context.t("Which wijk do you live in?"),
        reply_markup=_wijk_buttons(context.t, wijken, page or 0),
    )


async def on_wijk(update: Update, context: BuurtContext) -> None:
    """A wijk was chosen."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    assert context.user_data is not None
    wijk_id = StartWijk.of(update).wijk
    t = context.t
    async with context.db.begin() as session:
        wijk = await get_wijk(session, wijk_id)
        if wijk is not None and wijk.active:
            resident = await ensure_resident(session, user.id, context.lang)
            await set_wijk(session, resident, wijk.id)
    if wijk is None or not wijk.active:
        await query.answer(t("This wijk is not available."), show_alert=True)
        return
    name = wijk.name
    await query.answer()
    await query.edit_message_text(t("Your wijk: <b>{wijk}</b>.", wijk=name))
    if context.user_data.get(ONBOARDING):
        await _ask_language(update, context)


async def taal(update: Update, context: BuurtContext) -> None:
    """/taal: choose a language."""
    await _ask_language(update, context)


async def on_language(update: Update, context: BuurtContext) -> None:
    """A language was chosen: store it and answer in it."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    assert context.user_data is not None
    code = Language.of(update).code
    if code not in LANGUAGES:
        await query.answer(context.t("This button is no longer active."), show_alert=True)
        return
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, code)
        await set_language(session, resident, code)
    context.user_data["lang"] = code
    t = context.t
    await query.answer()
    await query.edit_message_text(t("Language: {language}.", language=LANGUAGE_NAMES[code]))
    message = update.effective_message
    assert message is not None
    if context.user_data.pop(ONBOARDING, False):
        await message.reply_text(t("You're all set. {help}", help=Html(help_text(t))))


async def help_command(update: Update, context: BuurtContext) -> None:
    """/help: what this person can do, grouped by role (residents' commands last)."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        me = await access.person(session, user.id, context.settings.admins)
        names = {w.id: w.name for w in await active_wijken(session)}
    sections = role_sections(t, context.services.menus, me, names)
    if sections:
        sections.append(t("<b>As a resident</b>") + "\n" + help_text(t).split("\n", 1)[1])
        await message.reply_text("\n\n".join(sections))
        return
    await message.reply_text(help_text(t))


async def nothing_to_cancel(update: Update, context: BuurtContext) -> None:
    """/annuleren outside any flow."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(context.t("There is nothing to cancel right now."))


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for /start, /help, /taal and their buttons."""
    return [
        CommandHandler("start", start, filters=PRIVATE),
        CommandHandler("help", help_command, filters=PRIVATE),
        CommandHandler("taal", taal, filters=PRIVATE),
        CommandHandler("annuleren", nothing_to_cancel, filters=PRIVATE),
        CallbackQueryHandler(on_wijk, pattern=StartWijk.pattern),
        CallbackQueryHandler(choose_wijken, pattern=StartWijken.pattern),
        CallbackQueryHandler(on_language, pattern=Language.pattern),
    ]


FEATURE = Feature(
    name="onboarding",
    handlers=build_handlers,
    commands=(
        Command("taal", N_("Choose your language"), PRIVATE_MENU, order=60),
        Command("start", N_("Welcome and choose your wijk"), PRIVATE_MENU, order=100),
        Command("help", N_("What this bot can do"), PRIVATE_MENU, order=110),
        Command("annuleren", N_("Stop what you are doing"), PRIVATE_MENU, order=120),
        Command("help", N_("What this bot can do"), GROUP_MENU, order=40),
    ),
)
