"""Buurtbemiddeling cases: the commands /zaken, /zaak and /bemiddelingen."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Html, escape
from buurtsignaal.conversations import desk
from buurtsignaal.conversations.callbacks import Mediation
from buurtsignaal.conversations.mediation_cases.common import (
    LIST_LIMIT,
    NAME_SHOWN,
    REFERRALS_SHOWN,
    _days_ago,
    _outcome,
    _stage,
)
from buurtsignaal.conversations.mediation_cases.view import _show
from buurtsignaal.conversations.ui import not_allowed, shorten, topic_label
from buurtsignaal.storage import access
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.access import Permission

# --- commands --------------------------------------------------------------------------------


async def list_cases(update: Update, context: BuurtContext) -> None:
    """/zaken: the open mediation cases of my wijken, oldest first."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    settings = context.settings
    async with context.db.begin() as session:
        person = await access.person(session, user.id, settings.admins)
        wijken = person.wijken_for(Permission.MEDIATION)
        cases = list(await store.open_cases(session, wijken)) if wijken else []
        names = await access.display_names(session, (c.coordinator for c in cases))
    if not wijken:
        await message.reply_text(not_allowed(t))
        return
    if not cases:
        await message.reply_text(t("There are no open mediation cases in your wijk."))
        return
    now = context.now
    lines = [
        t.ngettext("<b>{n} open mediation case</b>", "<b>{n} open mediation cases</b>", len(cases))
    ]
    rows: list[list[InlineKeyboardButton]] = []
    for case in cases[:LIST_LIMIT]:
        who = shorten(names.get(case.coordinator, ""), NAME_SHOWN) if case.coordinator else None
        line = "• " + t(
            "<b>{reference}</b> · {topic} · {stage} · {age} · {coordinator}",
            reference=case.reference,
            topic=topic_label(t, case.topic),
            stage=_stage(t, case.stage),
            age=_days_ago(t, case.created_at, now),
            coordinator=(who or t("a mediation colleague")) if case.coordinator else t("not taken"),
        )
        if len(wijken) > 1:
            line += " · " + escape(case.wijk.name)
        if store.intake_overdue(
            case, now=now, tz=settings.tz, intake_days=settings.mediation.intake_days
        ):
            line += " · " + t("⚠️ intake overdue")
        lines.append(line)
        rows.append(
            [
                InlineKeyboardButton(
                    f"🔎 {case.reference} · {topic_label(t, case.topic)}",
                    callback_data=Mediation("show", case.id).pack(),
                )
            ]
        )
    if len(cases) > LIST_LIMIT:
        lines.append(t("… and {n} more (oldest shown first)", n=len(cases) - LIST_LIMIT))
    await message.reply_text("\n".join(lines), reply_markup=InlineKeyboardMarkup(rows))


# /zaak <nr>: a case of my wijken by its reference.
CASE = desk.Lookup(
    permission=Permission.MEDIATION,
    read=store.parse_reference,
    find=store.find_case,
    which=lambda t: t("Which case? For example: /zaak BM-2026-0001, or just the number: /zaak 1"),
    missing=lambda t, reference: t(
        "I cannot find case {reference} among the cases of your wijk.", reference=reference
    ),
)


async def show_case(update: Update, context: BuurtContext) -> None:
    """/zaak <reference>: one case with everything the mediation team knows."""
    user = update.effective_user
    assert user is not None
    case = await desk.by_reference(update, context, CASE)
    if case is not None:
        await _show(context, user.id, case.id)


async def counts_command(update: Update, context: BuurtContext) -> None:
    """/bemiddelingen: numbers only, and whether the cases I referred succeeded."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        person = await access.person(session, user.id, context.settings.admins)
        wijken = person.wijken_for(Permission.MEDIATION_COUNTS) | person.wijken_for(
            Permission.MEDIATION
        )
        if wijken:
            numbers = await store.counts(session, wijken)
            referred = await store.referrals(session, user.id, wijken)
    if not wijken:
        await message.reply_text(not_allowed(t))
        return
    lines = [t("🤝 <b>Buurtbemiddeling in numbers</b>")]
    for wijk in numbers:
        lines += ["", f"<b>{escape(wijk.wijk_name)}</b>"]
        open_total = sum(wijk.stages.values())
        if open_total:
            per_stage = " · ".join(
                f"{escape(_stage(t, s))} {wijk.stages[s]}"
                for s in store.OPEN_STAGES
                if s in wijk.stages
            )
            lines.append(t("Open: {n} ({stages})", n=open_total, stages=Html(per_stage)))
        else:
            lines.append(t("Open: 0"))
        closed_total = sum(wijk.outcomes.values())
        if closed_total:
            per_outcome = " · ".join(
                f"{escape(_outcome(t, o))} {wijk.outcomes[o]}"
                for o in (*store.OUTCOMES, "?")
                if o in wijk.outcomes
            )
            lines.append(t("Closed: {n} ({outcomes})", n=closed_total, outcomes=Html(per_outcome)))
        else:
            lines.append(t("Closed: 0"))
    if referred:
        lines += ["", t("<b>Cases you referred</b>")]
        if len(referred) > REFERRALS_SHOWN:
            lines.append(t("… and {n} more", n=len(referred) - REFERRALS_SHOWN))
        for referral in referred[-REFERRALS_SHOWN:]:
            if not referral.closed:
                result = t("not finished yet")
            elif referral.succeeded:
                result = t("geslaagd: ja")
            else:
                result = t("geslaagd: nee")
            lines.append(f"• {escape(referral.reference)}: {escape(result)}")
    lines += ["", t("What was said in a mediation stays with the mediation team.")]
    await message.reply_text("\n".join(lines))
