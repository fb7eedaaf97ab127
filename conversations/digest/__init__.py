"""The daily digest, /overzicht, the Monday chart and the early-warning (hotspot) alerts.

Jobs (PTB JobQueue, times in ``settings.tz``):

- ``digest:<slug>``: daily at the wijk's ``digest_time``. Writes every due recipient's digest
  of the latest slot to the outbox, and lets quiet hotspots calm down.
- At start-up :func:`start_jobs` runs the same work once, right away: a digest missed while the
  bot was down is decided now.

Exactly once: a recipient is due when their watermark (``covered_until``) is before the latest
slot; the watermark moves to the slot in the unit of work that writes the digest to the
outbox (see storage/digest.py), and the outbox (bot/outbox.py) delivers it, retrying passing
failures.

``/overzicht`` covers the signals since the asker's last delivered digest (or the last 24
hours when they never had one) up to now, and moves no watermark.

New signals: a professional who wants each new signal at once (the default; switched per wijk
with ``/meldingen_instellen``) gets a short alert right after the signal is stored. The alerts,
and the alert of a new hotspot, are written to the outbox in the unit of work that stores the
signal.

Jobs and handlers read the time from the one clock (``context.now``, ``services.clock``).

By concern: ``daily`` (the digest and its job, the Monday chart), ``alerts`` (a new signal, a
new hotspot), ``preferences`` (/meldingen_instellen), ``overzicht`` (/overzicht), ``texts``
(every text), ``common`` (a wijk's settings and rules, a recipient's language).
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from buurtsignaal.bot.feature import Command, Feature, Job
from buurtsignaal.bot.i18n import N_
from buurtsignaal.conversations import steps
from buurtsignaal.conversations.callbacks import AlertMode
from buurtsignaal.conversations.digest.alerts import on_signal_created
from buurtsignaal.conversations.digest.common import hotspot_rules, wijk_settings
from buurtsignaal.conversations.digest.daily import (
    DIGEST_HOOK,
    digest_settled,
    run_wijk,
    start_jobs,
)
from buurtsignaal.conversations.digest.overzicht import overview
from buurtsignaal.conversations.digest.preferences import alert_settings, on_alert_mode
from buurtsignaal.conversations.digest.texts import (
    alert_text,
    digest_text,
    render_digest,
    signal_alert_text,
    weekly_chart,
)
from buurtsignaal.conversations.flow import PRIVATE
from buurtsignaal.storage.access import Permission

__all__ = [
    "FEATURE",
    "alert_text",
    "build_handlers",
    "digest_text",
    "hotspot_rules",
    "on_signal_created",
    "render_digest",
    "run_wijk",
    "signal_alert_text",
    "weekly_chart",
    "wijk_settings",
]


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """/overzicht and /meldingen_instellen with its buttons."""
    return [
        CommandHandler("overzicht", overview, filters=PRIVATE),
        CommandHandler("meldingen_instellen", alert_settings, filters=PRIVATE),
        CallbackQueryHandler(on_alert_mode, pattern=AlertMode.pattern),
        CallbackQueryHandler(steps.stale_button(Permission.DIGEST), pattern=r"^digest:"),
    ]


FEATURE = Feature(
    name="digest",
    handlers=build_handlers,
    commands=(
        Command("overzicht", N_("The digest of your wijk, now"), Permission.DIGEST),
        Command(
            "meldingen_instellen",
            N_("New signals: each at once, or only in the digest"),
            Permission.DIGEST,
        ),
    ),
    start=start_jobs,
    jobs=(Job("digest:<slug>", "daily at the wijk's digest_time, with a catch-up at start"),),
    signal_hooks=(on_signal_created,),
    outbox_hooks={DIGEST_HOOK: digest_settled},
)
