"""/open and /melding: texts for someone else (reporter or professional), in their language."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup

from buurtsignaal.bot.i18n import Translator
from buurtsignaal.conversations.callbacks import FollowUp, Report
from buurtsignaal.conversations.cases.common import FOLLOWUP_LABELS
from buurtsignaal.conversations.ui import category_label, keyboard, role_label, status_label
from buurtsignaal.storage.models import Signal

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
    return relayed, keyboard([("↩️ " + t("Answer"), Report("answer", signal.id).pack())])


def _to_professional(t: Translator, signal: Signal, text: str) -> tuple[str, InlineKeyboardMarkup]:
    """To a professional: the reporter's answer, without who they are."""
    relayed = t(
        "Answer from the reporter of <b>{reference}</b>:\n\n{text}",
        reference=signal.reference,
        text=text,
    )
    markup = keyboard(
        [
            ("✉️ " + t("Reply to reporter"), Report("reply", signal.id).pack()),
            ("🔎 " + t("Show report"), Report("show", signal.id).pack()),
        ],
        columns=2,
    )
    return relayed, markup


def _show_button(t: Translator, signal: Signal) -> InlineKeyboardMarkup:
    return keyboard([("🔎 " + t("Show report"), Report("show", signal.id).pack())])


def _reopened_alert(t: Translator, signal: Signal) -> tuple[str, InlineKeyboardMarkup]:
    """To the pair: the reporter says it is not solved; the signal is open again."""
    alert = t(
        "⚠️ Report <b>{reference}</b> ({category}) has been opened again: the reporter says it "
        "is not solved. Status now: {status}.",
        reference=signal.reference,
        category=category_label(t, signal.category),
        status=status_label(t, signal.status),
    )
    return alert, keyboard([("🔎 " + t("Show report"), Report("show", signal.id).pack())])


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
        [(t(label), FollowUp(signal.id, value).pack()) for value, label in FOLLOWUP_LABELS.items()],
        columns=3,
    )
    return text, markup
