"""Nonce'd buttons: a flow's callback data, its keyboards and reading a pressed button back."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.callbacks import FlowPress
from buurtsignaal.conversations.flow.declaration import SUMMARY, Callback, Draft, FlowDeclaration
from buurtsignaal.conversations.ui import is_id, keyboard, paged_keyboard
from buurtsignaal.storage.models import Wijk

log = logging.getLogger(__name__)


class FlowButtons(FlowDeclaration):
    """A flow's buttons: callback data ``<flow>:<nonce>:<step>:<value>`` packed and parsed in
    one place, so a stale, double-tapped or forged press is recognised."""

    def data(self, draft: Draft, step: str, value: str = "") -> str:
        """Callback data of a button: ``<flow>:<nonce>:<step>:<value>``."""
        return FlowPress(self.name, str(draft["nonce"]), step, value).pack()

    def pattern(self, step: str) -> re.Pattern[str]:
        """The anchored pattern of this step's buttons."""
        return FlowPress.matching(flow=self.name, step=step)

    def label(self, t: Translator, step: str, value: str) -> str:
        """The translated label of a fixed choice."""
        return t(self.choices[step][value])

    def buttons(self, t: Translator, draft: Draft, step: str) -> InlineKeyboardMarkup:
        """The buttons of a fixed-choice question."""
        return keyboard(
            (
                (t(label), self.data(draft, step, value))
                for value, label in self.choices[step].items()
            ),
            columns=self.columns.get(step, 1),
        )

    def wijk_buttons(
        self, t: Translator, draft: Draft, step: str, wijken: Iterable[Wijk]
    ) -> InlineKeyboardMarkup:
        """The wijken to choose from at ``step``, a page at a time (a city may have many)."""
        return paged_keyboard(
            t,
            [(w.name, self.data(draft, step, str(w.id))) for w in wijken],
            page=int(draft.get("wijk_page", 0)),
            page_data=lambda page: self.data(draft, step, f"page-{page}"),
        )

    @staticmethod
    def wijk_value(value: str) -> bool:
        """Whether a wijk step's button value is valid: a wijk id, or another page."""
        return is_id(value) or (value.startswith("page-") and is_id(value[5:]))

    def buttons_of(self, step: str, callback: Callback) -> CallbackQueryHandler[Any, Any]:
        """The handler of ``step``'s buttons."""
        return CallbackQueryHandler(callback, pattern=self.pattern(step))

    def summary_keyboard(
        self,
        t: Translator,
        draft: Draft,
        labels: Mapping[str, str],
        editable: Iterable[str],
        send_label: str,
    ) -> InlineKeyboardMarkup:
        """The summary's buttons: change each editable step (two a row), then send and cancel."""
        edits = keyboard(
            (("✏️ " + labels[s], self.data(draft, SUMMARY, f"edit-{s}")) for s in editable),
            columns=2,
        )
        finish = keyboard(
            [
                ("✅ " + send_label, self.data(draft, SUMMARY, "send")),
                ("✖️ " + t("Cancel"), self.data(draft, SUMMARY, "cancel")),
            ]
        )
        return InlineKeyboardMarkup([*edits.inline_keyboard, *finish.inline_keyboard])

    @staticmethod
    def summary_action(editable: Collection[str]) -> Callable[[str], bool]:
        """Which summary buttons are valid: send, cancel, or change one of ``editable``."""

        def valid(value: str) -> bool:
            return value in ("send", "cancel") or value.removeprefix("edit-") in editable

        return valid

    def value_of(self, update: Update, draft: Draft) -> str | None:
        """The value of a pressed button, or None when it belongs to another draft."""
        press = FlowPress.parse(update.callback_query.data if update.callback_query else None)
        if press is None or press.flow != self.name:
            return None
        return press.value if press.nonce == draft.get("nonce") else None

    @staticmethod
    async def spend_buttons(update: Update) -> None:
        """Take the buttons off the message a pressed button was on (the flow is done); a
        failure here only leaves spent buttons, which answer that they are no longer active."""
        query = update.callback_query
        if query is None:
            return
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError as exc:
            log.info("could not take the buttons off a finished summary: %s", exc)
