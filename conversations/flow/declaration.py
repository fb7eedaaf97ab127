"""A guided flow declared as data: its steps, choices and texts, and the draft it keeps."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import filters

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator
from buurtsignaal.storage import access
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.wijken import active_wijken

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
SUMMARY = "summary"

Draft = dict[str, Any]
State = str | int | None  # None keeps the conversation where it is
Callback = Callable[[Update, BuurtContext], Coroutine[Any, Any, State]]
Step = Callable[[Update, BuurtContext, Draft, str], Coroutine[Any, Any, State]]
Question = Callable[[BuurtContext, Draft, str], Awaitable[tuple[str, Any]]]


@dataclass(frozen=True)
class FlowTexts:
    """The flow-specific sentences (msgids marked with N_ where they are defined)."""

    cancelled: str
    resumed: str
    # Said when a draft that was already sent is sent or resumed again ({reference}).
    already: str | None = None


@dataclass
class FlowDeclaration:
    """One guided flow as data: its steps, fixed choices and the question for each step,
    and the draft it keeps while it is under way."""

    name: str
    order: Sequence[str]
    choices: Mapping[str, Mapping[str, str]]
    texts: FlowTexts
    question: Question | None = None
    columns: Mapping[str, int] = field(default_factory=dict)
    # What to say when a step gets something it cannot use: step -> msgid.
    hints: Mapping[str, str] = field(default_factory=dict)
    # Steps that are skipped when the draft says so: step -> predicate.
    skip: Mapping[str, Callable[[Draft], bool]] = field(default_factory=dict)
    # For a flow that stores what it sends: the reference stored from a draft, by its key
    # (see draft_key), so a draft that was sent before is never stored twice.
    stored: Callable[[AsyncSession, str], Awaitable[str | None]] | None = None

    # --- the draft --------------------------------------------------------------------------

    def draft(self, context: BuurtContext) -> Draft | None:
        """The draft under way, if any."""
        data = context.user_data
        return None if data is None else data.get(self.name)

    def new_draft(self, context: BuurtContext, **fields: Any) -> Draft:
        """Start a fresh draft (a new nonce makes every older button stale)."""
        assert context.user_data is not None
        draft: Draft = {"nonce": secrets.token_hex(4), "editing": False, **fields}
        context.user_data[self.name] = draft
        return draft

    def drop(self, context: BuurtContext) -> None:
        """Forget the draft."""
        if context.user_data is not None:
            context.user_data.pop(self.name, None)

    def draft_key(self, resident_id: int, nonce: str) -> str:
        """What a sent draft is known by in the database: ``<flow>:<resident id>:<nonce>``.

        Stored (unique) with what the draft became, in the same transaction: a draft whose key
        is stored counts as sent, however the reply fared. Resident ids, not Telegram ids, so
        /vergeetmij leaves nothing that points to the account."""
        return f"{self.name}:{resident_id}:{nonce}"

    async def begin(
        self,
        update: Update,
        context: BuurtContext,
        no_wijk: Callable[[Translator], str],
        *,
        on_behalf: bool = True,
        **fields: Any,
    ) -> Draft | None:
        """A fresh draft for a resident: their wijk (or the only one), whether a wijk is to be
        chosen, and the wijken where they may act on behalf of someone (unless ``on_behalf``
        is off). None, after saying ``no_wijk``, when no wijk is configured."""
        message = update.effective_message
        user = update.effective_user
        assert message is not None and user is not None
        async with context.db.begin() as session:
            resident = await ensure_resident(session, user.id, context.language_for(update))
            wijken = await active_wijken(session)
            resident_wijk = resident.wijk_id if resident.wijk and resident.wijk.active else None
            me = await access.person(session, user.id, context.settings.admins)
            key_figure_wijken = sorted(me.wijken_for(access.Permission.ON_BEHALF))
        if not wijken:
            await message.reply_text(no_wijk(context.t))
            return None
        return self.new_draft(
            context,
            wijk_id=resident_wijk or (wijken[0].id if len(wijken) == 1 else None),
            wijk_choice=len(wijken) > 1,
            key_figure_wijken=key_figure_wijken if on_behalf else [],
            **fields,
        )
