"""The typed custom context every callback receives, and the services it reaches."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from buurtsignaal.bot.commands import Menus
from buurtsignaal.bot.i18n import Translator, normalise_language
from buurtsignaal.bot.limiter import BULK, INTERACTIVE, LANE
from buurtsignaal.bot.persistence import Finish, SqlPersistence
from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.messengers import TELEGRAM, messenger_of
from buurtsignaal.storage.models import Signal, utcnow

if TYPE_CHECKING:
    from buurtsignaal.bot.inbox import Inbox
    from buurtsignaal.bot.outbox import Sender

_log = logging.getLogger(__name__)


# A reaction to a newly stored signal, run inside the same unit of work. It may return a
# follow-up to run after the transaction committed (e.g. sending an alert), or None.
AfterCommit = Callable[[], Awaitable[None]]
SignalHook = Callable[["BuurtContext", AsyncSession, Signal], Awaitable[AfterCommit | None]]


@dataclass
class Services:
    """Shared services, created before the application starts and closed after it stops."""

    settings: Settings
    db: Database
    # Wired in bot.app so that features react to each other without importing each other.
    signal_hooks: list[SignalHook] = field(default_factory=list)
    # The one source of time (UTC, aware): handlers use ``context.now``, jobs and senders
    # ``services.clock()``, and storage takes ``now`` as an argument. Nothing else reads the
    # wall clock; tests move it with time-machine.
    clock: Callable[[], dt.datetime] = utcnow
    # Every command menu, built from what the features declare (bot.commands).
    menus: Menus = field(default_factory=lambda: Menus({}))


class BuurtApplication(
    Application[ExtBot[None], "BuurtContext", dict[str, Any], dict[str, Any], dict[str, Any], Any]
):
    """The Application, with its services and write-through persistence."""

    services: Services
    # The inboxes the updates come from when polling (bot.inbox: Telegram's, and the Signal
    # gateway's when configured); none when fed directly.
    inboxes: tuple[Inbox, ...] = ()
    # The one sender of what the bot sends on its own (bot.outbox), set by bot.app.
    outbox: Sender

    async def process_update(self, update: object) -> None:
        """Process one update, then store conversation and user data right away.

        An update from the inbox is marked there as handled, in the transaction that stores
        what it changed (see bot.inbox)."""
        inbox = next((each for each in self.inboxes if each.owns(update)), None)
        if inbox is not None:
            assert isinstance(update, Update)
            await inbox.handle(update, lambda finish: self._process(update, finish))
        else:
            await self._process(update)

    async def _process(self, update: object, finish: Finish | None = None) -> None:
        """Handle one update; calls made meanwhile take the interactive lane (bot.limiter).
        What it changed is stored, with ``finish``, before it counts as handled."""
        _log.debug("handling update %s", update)  # by id and type only (bot.logs.private)
        lane = LANE.set(INTERACTIVE)
        try:
            await super().process_update(update)
        finally:
            LANE.reset(lane)
        if self.persistence is not None:
            await self.update_persistence(finish)
        elif finish is not None:
            async with self.services.db.begin() as session:
                await finish(session)

    async def update_persistence(self, finish: Finish | None = None) -> None:
        """Hand what changed to the persistence, and store it in one transaction, together
        with ``finish`` (more writes of the caller).

        With updates handled side by side, one call may store another update's changes too;
        a call that finds nothing left waits until what was taken is committed."""
        await super().update_persistence()
        persistence = self.persistence
        if isinstance(persistence, SqlPersistence):
            await persistence.write(finish)
        elif finish is not None:
            async with self.services.db.begin() as session:
                await finish(session)


class BuurtContext(CallbackContext[ExtBot[None], dict[str, Any], dict[str, Any], dict[str, Any]]):
    """CallbackContext with the services, the user's language and a translator."""

    @classmethod
    def from_job(cls, job: Any, application: Any) -> BuurtContext:
        """The context of a job run: its calls take the bulk lane, also when the job was
        scheduled while a person's update was handled (APScheduler copies that context)."""
        LANE.set(BULK)  # the job's own task: it ends with the run
        return super().from_job(job, application)

    @property
    def services(self) -> Services:
        """The application's shared services."""
        return cast("BuurtApplication", self.application).services

    @property
    def outbox(self) -> Sender:
        """The one sender of what the bot sends on its own (``wake()`` it after writing)."""
        return cast("BuurtApplication", self.application).outbox

    @property
    def settings(self) -> Settings:
        """The validated settings."""
        return self.services.settings

    @property
    def now(self) -> dt.datetime:
        """Now (UTC), from the application's one clock."""
        return self.services.clock()

    @property
    def db(self) -> Database:
        """The database (open a unit of work with ``async with context.db.begin()``)."""
        return self.services.db

    @property
    def messenger(self) -> str:
        """The messenger of the person this update is about: ``"telegram"`` or ``"signal"``
        (storage.messengers). Only where it matters: what a resident is told about it."""
        who = self._user_id or self._chat_id
        return messenger_of(who) if who is not None else TELEGRAM

    @property
    def lang(self) -> str:
        """The language of the user this update is about."""
        data = self.user_data
        if data is not None and data.get("lang"):
            return str(data["lang"])
        return self.settings.default_language

    @property
    def t(self) -> Translator:
        """Translator for the user's language: ``context.t("Hello {name}", name=...)``."""
        return Translator(self.lang)

    def translator_for(self, telegram_id: int) -> Translator:
        """A translator in the language of someone else (for messages to other chats)."""
        data = self.application.user_data.get(telegram_id) or {}
        return Translator(str(data.get("lang") or self.settings.default_language))

    def language_for(self, update: Update) -> str:
        """The language to use for ``update`` before the user chose one."""
        user = update.effective_user
        code = user.language_code if user else None
        return normalise_language(code, self.settings.default_language)
