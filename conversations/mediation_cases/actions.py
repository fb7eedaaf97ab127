"""Buurtbemiddeling cases: buttons that act at once (take, stages, undo, notes, close, invite)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Html, Translator, escape
from buurtsignaal.conversations import steps
from buurtsignaal.conversations.callbacks import Mediation, Outcome, Stage, Undo
from buurtsignaal.conversations.mediation_cases.common import (
    INVITE_PREFIX,
    OUTCOME_LABELS,
    PARTY_STATUS_LABELS,
    _case_for,
    _language,
    _outcome,
    _pressed_case,
    _problem_text,
    _stage,
    _tell,
    _update_key,
)
from buurtsignaal.conversations.mediation_cases.jobs import _closing_message
from buurtsignaal.conversations.mediation_cases.view import _show, _who
from buurtsignaal.conversations.ui import Refusal, keyboard, local_date, local_datetime, not_allowed
from buurtsignaal.storage import access
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.access import Permission
from buurtsignaal.storage.mediation import MediationProblem
from buurtsignaal.storage.models import MediationCase, MediationParty

# --- buttons that act at once ----------------------------------------------------------------


async def on_show(update: Update, context: BuurtContext) -> None:
    """A case in the /zaken list: show it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    if not await _show(context, user_id, Mediation.of(update).case):
        await steps.refuse(query, context)
        return
    await query.answer()


async def _change(
    update: Update,
    context: BuurtContext,
    case_id: int,
    change: Callable[[AsyncSession, MediationCase, int], Awaitable[str | None]],
) -> None:
    """A button that changes a case: ``change(session, case, presser)`` does it in one unit of
    work, only for a bemiddelaar of the case's wijk, and says what it did (None: nothing, the
    one refusal); a problem or a refusal it raises is answered and nothing of it is kept.
    Done, the buttons are spent and the case is shown again with what was done above it."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, case_id)
            done = await change(session, case, user_id) if case is not None else None
    except MediationProblem as problem:
        await query.answer(_problem_text(context.t, problem), show_alert=True)
        return
    except Refusal as refusal:
        await query.answer(refusal.text, show_alert=True)
        return
    if case is None or done is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    await steps.spend(query)
    await _show(context, user_id, case.id, done=done)


async def on_take(update: Update, context: BuurtContext) -> None:
    """Take the case: I become its coordinator."""
    t = context.t

    async def take(session: AsyncSession, case: MediationCase, user_id: int) -> str:
        if not await store.take(session, case, user_id, now=context.now):
            raise Refusal(
                t("You are already the coordinator of {reference}.", reference=case.reference)
            )
        return t("You are now the coordinator of this case.")

    await _change(update, context, Mediation.of(update).case, take)


async def on_next(update: Update, context: BuurtContext) -> None:
    """Next stage; the joint talk only when both neighbours agreed."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    press = Stage.of(update)
    from_stage = press.stage
    refused: tuple[MediationCase, MediationParty | None] | None = None
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, press.case)
            if case is None:
                raise Refusal(not_allowed(t))
            if case.stage != from_stage:
                raise Refusal(
                    t(
                        "{reference} is already in stage {stage}; nothing changed.",
                        reference=case.reference,
                        stage=_stage(t, case.stage),
                    )
                )
            to_stage = store.next_stage(case.stage)
            if to_stage is None:
                raise MediationProblem("not_forward")
            if to_stage == store.JOINT_TALK and not store.both_agreed(case):
                refused = (case, store.party_of(case, 2))
            else:
                await store.move_stage(
                    session,
                    case,
                    to_stage,
                    actor=store.pro_actor(user_id),
                    now=context.now,
                    nazorg_after=dt.timedelta(weeks=context.settings.mediation.nazorg_weeks),
                )
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    except Refusal as refusal:
        await query.answer(refusal.text, show_alert=True)
        return
    await query.answer()
    if refused is not None:
        case, second = refused
        status = (
            t(PARTY_STATUS_LABELS.get(second.status, second.status))
            if second is not None
            else t("not invited yet")
        )
        await context.bot.send_message(
            user_id,
            t(
                "A joint talk (bemiddelingsgesprek) only happens when both neighbours agreed "
                "to mediation. The neighbour (party 2) of {reference}: {status}.\n"
                "You can skip to the agreements stage, or close the case.",
                reference=case.reference,
                status=status,
            ),
            reply_markup=keyboard(
                [
                    ("⏭ " + t("Skip to agreements"), Stage("skip", case.id, case.stage).pack()),
                    ("🏁 " + t("Close"), Mediation("close", case.id).pack()),
                ],
                columns=2,
            ),
        )
        return
    await steps.spend(query)
    done = t("Stage is now: {stage}.", stage=_stage(t, to_stage))
    if to_stage == store.NAZORG:
        done += " " + t.ngettext(
            "In {n} week both parties get a check-in from the bot.",
            "In {n} weeks both parties get a check-in from the bot.",
            context.settings.mediation.nazorg_weeks,
        )
    await _show(context, user_id, case.id, done=done + " " + _undo_hint(t))


def _undo_hint(t: Translator) -> str:
    minutes = int(store.UNDO_WINDOW.total_seconds() // 60)
    return t.ngettext(
        "A mistake? “Undo” puts the stage back (for {n} minute, until the next move).",
        "A mistake? “Undo” puts the stage back (for {n} minutes, until the next move).",
        minutes,
    )


async def on_skip(update: Update, context: BuurtContext) -> None:
    """Skip the joint talk: on to the agreements stage."""
    t = context.t

    async def skip(session: AsyncSession, case: MediationCase, user_id: int) -> str:
        # Only past the joint talk, from the stage just before it.
        at = case.stage
        if at != Stage.of(update).stage or store.next_stage(at) != store.JOINT_TALK:
            raise MediationProblem("not_forward")
        await store.move_stage(
            session,
            case,
            store.AGREEMENTS,
            actor=store.pro_actor(user_id),
            now=context.now,
            nazorg_after=dt.timedelta(weeks=context.settings.mediation.nazorg_weeks),
        )
        return t("Stage is now: {stage}.", stage=_stage(t, store.AGREEMENTS)) + " " + _undo_hint(t)

    await _change(update, context, Stage.of(update).case, skip)


async def on_undo(update: Update, context: BuurtContext) -> None:
    """Undo the latest stage move (shortly after it, and only until the next move)."""
    t = context.t

    async def undo(session: AsyncSession, case: MediationCase, user_id: int) -> str | None:
        back = await store.undo_stage(
            session,
            case,
            Undo.of(update).event,
            actor=store.pro_actor(user_id),
            now=context.now,
        )
        return t("Undone: the stage is {stage} again.", stage=_stage(t, back)) if back else None

    await _change(update, context, Undo.of(update).case, undo)


async def on_notes(update: Update, context: BuurtContext) -> None:
    """Notes: every note of the case in full, over as many messages as needed."""
    pressed = await _pressed_case(update, context, Mediation.of(update).case)
    if pressed is None:
        return
    query, user_id, case = pressed
    t = context.t
    notes = [e for e in case.history if e.kind == store.NOTE and e.note]
    if not notes:
        await query.answer(
            t("There are no notes in {reference}.", reference=case.reference), show_alert=True
        )
        return
    await query.answer()
    async with context.db.begin() as session:
        names = await access.display_names(session, store.history_actors(case))
    tz = context.settings.tz
    blocks = [
        (
            f"<i>{escape(local_datetime(e.at, tz))}</i> · {escape(_who(t, e.actor, names))}",
            e.note or "",
        )
        for e in notes
    ]
    pages = steps.pages(blocks)
    for number, page in enumerate(pages, start=1):
        title = t.ngettext(
            "🗒 <b>{n} note in {reference}</b>",
            "🗒 <b>{n} notes in {reference}</b>",
            len(notes),
            reference=case.reference,
        )
        if len(pages) > 1:
            title += " " + t("({page}/{pages})", page=number, pages=len(pages))
        await context.bot.send_message(user_id, f"{title}\n\n{page}")


async def on_close(update: Update, context: BuurtContext) -> None:
    """Close: choose the outcome."""
    pressed = await _pressed_case(update, context, Mediation.of(update).case)
    if pressed is None:
        return
    query, user_id, case = pressed
    t = context.t
    if case.stage == store.CLOSED:
        await query.answer(_problem_text(t, MediationProblem("closed")), show_alert=True)
        return
    await query.answer()
    await context.bot.send_message(
        user_id,
        t(
            "How did mediation <b>{reference}</b> end? Both parties get a short thank-you "
            "message, without any content.",
            reference=case.reference,
        ),
        reply_markup=keyboard(
            [(t(label), Outcome(case.id, code).pack()) for code, label in OUTCOME_LABELS.items()],
            columns=2,
        ),
    )


async def on_outcome(update: Update, context: BuurtContext) -> None:
    """An outcome was chosen: close the case and thank the parties."""
    t = context.t
    outcome = Outcome.of(update).outcome

    async def close(session: AsyncSession, case: MediationCase, user_id: int) -> str:
        parties = await store.close_case(
            session, case, outcome, actor=store.pro_actor(user_id), now=context.now
        )
        thank: dict[int, str] = {}
        for party in parties:
            if party.resident is not None:
                telegram_id = party.resident.telegram_id
                thank[telegram_id] = _language(context, telegram_id, party.resident.language)
        await _tell(context, session, thank, _closing_message, key=_update_key(update))
        return t("Closed as: {outcome}.", outcome=_outcome(t, outcome))

    await _change(update, context, Outcome.of(update).case, close)


async def on_invite(update: Update, context: BuurtContext) -> None:
    """Invite the neighbour: a single-use code, a deep link and a text for a card."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    t = context.t
    settings = context.settings
    try:
        async with context.db.begin() as session:
            case = await _case_for(session, context, user_id, Mediation.of(update).case)
            invited = (
                await store.create_party_invite(
                    session,
                    case,
                    actor=store.pro_actor(user_id),
                    now=context.now,
                    valid_for=dt.timedelta(days=settings.mediation.invite_days),
                )
                if case is not None
                else None
            )
    except MediationProblem as problem:
        await query.answer(_problem_text(t, problem), show_alert=True)
        return
    if case is None or invited is None:
        await steps.refuse(query, context)
        return
    await query.answer()
    party, code = invited
    shown = store.format_code(code)
    bot_name = context.bot.username
    link = f"https://t.me/{bot_name}?start={INVITE_PREFIX}{code}"
    until = local_date(party.invite_expires_at or context.now, settings.tz)
    card = t(
        "Hello neighbour, the buurtbemiddeling team of {wijk} would like to invite you for a "
        "talk about living together in the street. Buurtbemiddeling is free, voluntary and "
        "confidential. Open {link} or send /bemiddeling {code} to @{bot} in Telegram. The "
        "code works until {date}.",
        wijk=case.wijk.name,
        link=link,
        code=shown,
        bot=bot_name,
        date=until,
    )
    await context.bot.send_message(
        user_id,
        t(
            "✉️ Invitation for the neighbour (party 2) of <b>{reference}</b>.\n"
            "<b>Code:</b> <code>{code}</code> (works once, until {date})\n"
            "<b>Link:</b> {link}\n"
            "An earlier code for this case no longer works.\n\n"
            "<b>Text for a card or letter:</b>\n{card}\n\n"
            "The neighbour sees only what buurtbemiddeling is; nothing of what party 1 told.",
            reference=case.reference,
            code=shown,
            date=until,
            link=link,
            card=Html(card),
        ),
    )


# Any other mcase: button (an old step, forged data): refuse, change nothing.
stale = steps.stale_button(Permission.MEDIATION)
