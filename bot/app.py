"""Composition root: builds the Application and is the only place that registers handlers."""

from __future__ import annotations

import functools
import html
import logging
import ssl
from typing import Any

import httpx
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from buurtsignaal.bot import inbox, outbox, reach
from buurtsignaal.bot.commands import Menus, publish_default_menus, publish_personal_menu
from buurtsignaal.bot.context import BuurtApplication, BuurtContext, Services
from buurtsignaal.bot.feature import Feature
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.bot.limiter import Lanes
from buurtsignaal.bot.messenger import GATEWAY_TOKEN, MessengerBot
from buurtsignaal.bot.persistence import SqlPersistence
from buurtsignaal.bot.processor import ChatOrderedProcessor
from buurtsignaal.bot.settings import Settings
from buurtsignaal.conversations import (
    cases,
    digest,
    export,
    group,
    koffie,
    mediation,
    mediation_cases,
    my_reports,
    onboarding,
    privacy,
    report,
    roles,
)
from buurtsignaal.conversations.flow import FlowPart, one_conversation
from buurtsignaal.storage import access
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.residents import get_resident
from buurtsignaal.storage.wijken import WijkSpec, sync_wijken

log = logging.getLogger(__name__)

POOL_SPARE = 4  # database connections beyond one per update in hand (jobs, inbox, sender)


def build_application(
    settings: Settings,
    *,
    db: Database | None = None,
    token: str | None = None,
    base_url: str | None = None,
    base_file_url: str | None = None,
    rate_limiter: bool | Lanes = True,
    signal_url: str | None = None,
) -> BuurtApplication:
    """Build the bot: settings and database in, a ready (not yet initialised) Application out.

    ``token`` and the URLs override the settings (the emulator and tests use this);
    ``signal_url`` is the origin of the Signal gateway (default: from ``[signal]``);
    ``rate_limiter`` may be lanes of one's own (the benchmark's memory part lifts the overall
    pace) or False for none.
    """
    secret = settings.telegram.token
    token = token or (secret.get_secret_value() if secret else None)
    if not token:
        raise ValueError("no bot token configured (telegram.token)")
    concurrency = settings.telegram.concurrent_updates
    database = db or Database(
        settings.database.url,
        echo=settings.database.echo,
        # Every update in hand may hold a connection, plus the jobs and the inbox.
        pool_size=concurrency + POOL_SPARE,
    )
    persistence = SqlPersistence(database)
    defaults = Defaults(parse_mode=ParseMode.HTML, tzinfo=settings.tz)
    signal_bot: ExtBot[None] | None = None
    if settings.signal is not None or signal_url is not None:
        # Signal residents are reached through the gateway's Bot API (bot.messenger).
        api = f"{signal_url}/bot" if signal_url else settings.signal.bot_api_url  # type: ignore[union-attr]
        files = f"{signal_url}/file/bot" if signal_url else settings.signal.bot_file_url  # type: ignore[union-attr]
        signal_bot = ExtBot(
            GATEWAY_TOKEN,
            base_url=api,
            base_file_url=files,
            defaults=defaults,
            request=_http(connection_pool_size=64),
            get_updates_request=_http(),
        )
    bot = MessengerBot(
        token,
        base_url=base_url or settings.telegram.base_url,
        base_file_url=base_file_url or settings.telegram.base_file_url,
        defaults=defaults,
        request=_http(connection_pool_size=256),
        get_updates_request=_http(),
        rate_limiter=Lanes() if rate_limiter is True else rate_limiter or None,
        signal=signal_bot,
        # Keeps the Telegram copies of Signal photos, so the gateway need not (bot.messenger).
        db=database if signal_bot is not None else None,
    )
    builder = (
        ApplicationBuilder()
        .application_class(BuurtApplication)
        .bot(bot)
        .context_types(ContextTypes(context=BuurtContext))
        .persistence(persistence)
        # Different chats side by side, one chat strictly in order (bot.processor).
        .concurrent_updates(ChatOrderedProcessor(concurrency))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        # No Updater: bot.inbox fetches the updates, storing each before it is confirmed.
        .updater(None)
    )
    application = builder.build()
    assert isinstance(application, BuurtApplication)
    application.services = Services(
        settings=settings,
        db=database,
        # A stored signal may make a hotspot: the digest feature's early warning reacts.
        signal_hooks=[hook for feature in FEATURES for hook in feature.signal_hooks],
        menus=Menus.of(FEATURES),
    )
    persistence.clock = lambda: application.services.clock()
    bot.set_clock(lambda: application.services.clock())
    application.outbox = outbox.Sender(
        application,
        {name: hook for feature in FEATURES for name, hook in feature.outbox_hooks.items()},
    )
    _register_handlers(application)
    return application


def _register_handlers(application: BuurtApplication) -> None:
    # Group -1 runs first for every update: know the user's language before anything answers,
    # and that someone who had blocked the bot can be reached again.
    application.add_handler(TypeHandler(Update, _first_look), group=-1)
    # Group 0: at most one handler answers, tried in the order of FEATURES. The features'
    # guided flows and typed steps become one conversation, in the place of the first one, so
    # a person is in at most one flow at a time.
    handlers: list[BaseHandler[Any, Any, Any]] = []
    parts: list[FlowPart] = []
    for feature in FEATURES:
        for handler in feature.handlers():
            if isinstance(handler, FlowPart):
                if not parts:
                    handlers.append(handler)  # the placeholder of the one conversation
                parts.append(handler)
            else:
                handlers.append(handler)
    for handler in handlers:
        application.add_handler(one_conversation(parts) if handler is parts[0] else handler)
    application.add_error_handler(_on_error)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (the CA bundle read once) for every HTTP client of the process."""
    return httpx.create_ssl_context()


def _http(**options: Any) -> HTTPXRequest:
    """PTB's HTTP client, sharing the process's TLS context."""
    return HTTPXRequest(**options, httpx_kwargs={"verify": _tls()})


async def _post_init(application: Any) -> None:
    """Mirror the configured wijken and publish the command menus."""
    assert isinstance(application, BuurtApplication)
    settings, db = application.services.settings, application.services.db
    async with db.begin() as session:
        await sync_wijken(
            session,
            (WijkSpec(w.slug, w.name, w.group_chat_id) for w in settings.wijken),
        )
    await publish_commands(application)
    # Jobs are (re)built from the database at every start, so a restart sends nothing twice
    # and misses nothing.
    for feature in FEATURES:
        if feature.start is not None:
            await feature.start(application)


async def publish_commands(application: BuurtApplication) -> None:
    """Set the default command menus, and the personal ones of admins and professionals."""
    settings, db = application.services.settings, application.services.db
    now = application.services.clock()
    menus = application.services.menus
    await publish_default_menus(application.bot, menus, settings.default_language, db=db, now=now)
    async with db.begin() as session:
        people = [
            await access.person(session, telegram_id, settings.admins)
            for telegram_id in {
                *settings.admins,
                *(g.telegram_id for g in await access.all_grants(session)),
            }
        ]
    for someone in people:
        await publish_personal_menu(
            application.bot, menus, someone, settings.default_language, db=db, now=now
        )


async def _post_shutdown(application: Any) -> None:
    """Close the database connections."""
    assert isinstance(application, BuurtApplication)
    await application.services.db.dispose()


async def _first_look(update: Update, context: BuurtContext) -> None:
    """Before anything answers a private chatter: they can be reached (they just wrote), and
    their language is known (stored choice, else Telegram's, else the default)."""
    data = context.user_data
    chat = update.effective_chat
    user = update.effective_user
    if data is None or user is None or chat is None or chat.type != "private":
        return
    if "lang" in data:
        await reach.wrote(context.db, user.id)
        return
    async with context.db.begin() as session:
        resident = await get_resident(session, user.id)
    data["lang"] = resident.language if resident else context.language_for(update)
    if resident is not None and resident.unreachable_since is not None:
        await reach.wrote(context.db, user.id)


async def _stale_button(update: Update, context: BuurtContext) -> None:
    """A button nothing handles any more (old message, finished flow, forged data)."""
    query = update.callback_query
    assert query is not None
    await query.answer(context.t("This button is no longer active."), show_alert=True)


async def _unknown_command(update: Update, context: BuurtContext) -> None:
    """A command the bot does not know."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(context.t("I don't know that command. /help shows what I can do."))


async def _outside_conversation(update: Update, context: BuurtContext) -> None:
    """A message outside any flow: kindly point to reporting, following up and /help."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(
        context.t(
            "Thank you for your message. I cannot read loose messages, but I am glad to help:\n"
            "• Want to report something? Tap /melden.\n"
            "• Something to add to an earlier report? Tap /mijnmeldingen.\n"
            "• With /help you see everything I can do."
        )
    )


async def _on_error(update: object, context: BuurtContext) -> None:
    """Log the error with its update (id and type) and tell the user something kind in their
    language."""
    log.error("error while handling update %s", update, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.effective_chat.type != "private":
        return
    try:
        t = context.t if context.user_data is not None else Translator("nl")
        text = t(
            "Sorry, something went wrong on our side. What you entered so far is kept; "
            "please try again in a moment."
        )
        await context.bot.send_message(update.effective_chat.id, text)
    except (TelegramError, RuntimeError, KeyError) as exc:
        log.warning("could not tell the user about the error: %s", html.escape(str(exc)))


def _core_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """What answers when no feature did: stale buttons, unknown commands, stray text."""
    return [
        CallbackQueryHandler(_stale_button),
        MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.COMMAND,
            _unknown_command,
        ),
        MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & ~filters.COMMAND,
            _outside_conversation,
        ),
    ]


CORE = Feature(name="core", handlers=_core_handlers)

# Every feature, in the order its handlers are tried (group 0: the first match answers).
# Conversations first, so their steps win over general commands; professional features come
# before onboarding, because /start with an invite code is theirs; the catch-alls come last.
FEATURES: tuple[Feature, ...] = (
    report.FEATURE,
    mediation.FEATURE,
    mediation_cases.FEATURE,
    koffie.FEATURE,
    roles.FEATURE,
    cases.FEATURE,
    digest.FEATURE,
    export.FEATURE,
    privacy.FEATURE,
    # Every feature with a typed step comes before onboarding, so that /annuleren stops the
    # step instead of hearing "nothing to cancel".
    my_reports.FEATURE,
    onboarding.FEATURE,
    group.FEATURE,
    inbox.FEATURE,  # no handlers: the clean-up of the inbox
    outbox.FEATURE,  # no handlers: the one sender of what the bot sends on its own
    CORE,
)
