"""Roles by invite: /uitnodigen, redeeming /start inv-<code>, /rollen with revoking.

Admins (from the configuration) manage roles in every wijk, a beheerder in their own wijk.
Every change is written to the audit log by storage.access.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from buurtsignaal.bot.commands import publish_personal_menu
from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import ADMIN_MENU, Command, Feature
from buurtsignaal.bot.i18n import N_, Html, Translator
from buurtsignaal.conversations import relay
from buurtsignaal.conversations.callbacks import Grant
from buurtsignaal.conversations.ui import (
    first_commands,
    keyboard,
    local_date,
    local_datetime,
    not_allowed,
    role_label,
)
from buurtsignaal.storage import access
from buurtsignaal.storage.access import Permission, Person
from buurtsignaal.storage.guard import guard_counts
from buurtsignaal.storage.models import ROLES, RoleGrant, Wijk
from buurtsignaal.storage.wijken import active_wijken

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
INVITE_PREFIX = "inv-"


def _find_wijk(wijken: list[Wijk], name: str) -> Wijk | None:
    wanted = name.strip().lower()
    for wijk in wijken:
        if wanted in (wijk.slug, wijk.name.lower()):
            return wijk
    return None


def _usage(t: Translator, wijken: list[Wijk]) -> str:
    return t(
        "Use: /uitnodigen &lt;role&gt; &lt;wijk&gt;, for example /uitnodigen wijkagent {slug}\n"
        "Roles: {roles}\nWijken: {wijken}",
        slug=wijken[0].slug if wijken else "noord",
        roles=", ".join(ROLES),
        wijken=", ".join(f"{w.slug} ({w.name})" for w in wijken) or "-",
    )


async def invite(update: Update, context: BuurtContext) -> None:
    """/uitnodigen <rol> <wijk>: a single-use, expiring deep link that grants the role."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    args = context.args or []
    settings = context.settings
    async with context.db.begin() as session:
        me = await access.person(session, user.id, settings.admins)
        allowed = me.may_manage_roles()
        wijken = [w for w in await active_wijken(session) if allowed and me.may_manage_roles(w.id)]
        wijk = _find_wijk(wijken, " ".join(args[1:])) if len(args) >= 2 else None
        role = args[0].lower() if args else ""
        created = None
        if allowed and role in ROLES and wijk is not None:
            created = await access.create_invite(
                session,
                role=role,
                wijk_id=wijk.id,
                created_by=user.id,
                valid_for=dt.timedelta(hours=settings.professionals.invite_hours),
                now=context.now,
            )
    # Answered after the unit of work: no transaction waits for a round trip to Telegram.
    if not allowed:
        await message.reply_text(not_allowed(t))
        return
    if created is None or wijk is None:
        await message.reply_text(_usage(t, wijken))
        return
    invite, code = created
    expires, wijk_name = invite.expires_at, wijk.name
    link = f"https://t.me/{context.bot.username}?start={INVITE_PREFIX}{code}"
    await message.reply_text(
        t(
            "Invite for <b>{role}</b> in <b>{wijk}</b>. It works once and until {expires}.\n"
            "Send this link only to the person it is meant for:\n{link}",
            role=role_label(t, role),
            wijk=wijk_name,
            expires=local_datetime(expires, settings.tz),
            link=link,
        )
    )


async def redeem(update: Update, context: BuurtContext) -> None:
    """/start inv-<code>: take the role the invite grants, and tell whoever invited. Opened
    again by the same person, the same welcome, and nothing changes twice."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    code = (context.args or [""])[0].removeprefix(INVITE_PREFIX)
    settings = context.settings
    try:
        async with context.db.begin() as session:
            grant, used, new = await access.redeem_invite(
                session, code, telegram_id=user.id, display_name=user.first_name, now=context.now
            )
            role, wijk_name, inviter = grant.role, grant.wijk.name, used.created_by
            me = await access.person(session, user.id, settings.admins)
            if new:  # the inviter hears it once, through the outbox
                await relay.to_each(
                    context,
                    session,
                    f"roles:invite-used:{used.id}",
                    "roles:news",
                    {inviter: context.translator_for(inviter).language},
                    lambda t: (_invite_used(t, user.first_name, role, wijk_name), None),
                )
    except access.InviteProblem as problem:
        reasons = {
            "unknown": t("This invite link is not valid. Ask for a new one."),
            "used": t("This invite link has already been used. Ask for a new one."),
            "expired": t("This invite link has expired. Ask for a new one."),
        }
        await message.reply_text(reasons[problem.reason])
        return
    try:
        await message.reply_text(
            t(
                "Welcome! You are now <b>{role}</b> in <b>{wijk}</b>.\n{commands}",
                role=role_label(t, role),
                wijk=wijk_name,
                commands=Html(first_commands(t, context.services.menus, role)),
            )
        )
    finally:
        # Their menu does not wait for the welcome to arrive.
        await _refresh_menu(context, me)
        relay.wake(context, new)


def _invite_used(t: Translator, name: str, role: str, wijk: str) -> str:
    """Told to whoever invited, in their language."""
    return t(
        "{name} used your invite and is now {role} in {wijk}.",
        name=name,
        role=role_label(t, role),
        wijk=wijk,
    )


def _role_ended(t: Translator, role: str, wijk: str) -> str:
    """Told to someone whose role was revoked, in their language."""
    return t("Your role as {role} in {wijk} has ended.", role=role_label(t, role), wijk=wijk)


async def list_roles(update: Update, context: BuurtContext) -> None:
    """/rollen: who holds which role, with a button to revoke each."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        me = await access.person(session, user.id, context.settings.admins)
        wijken = [w.id for w in await active_wijken(session) if me.may_manage_roles(w.id)]
        grants = list(await access.all_grants(session, wijken)) if me.may_manage_roles() else []
    if not me.may_manage_roles():
        await message.reply_text(not_allowed(t))
        return
    if not grants:
        await message.reply_text(t("Nobody holds a role yet. Invite someone with /uitnodigen."))
        return
    lines = [t("<b>Roles</b>")]
    for grant in grants:
        lines.append(_grant_line(t, grant, context))
    buttons = [
        (t("Revoke: {name}, {role}", name=g.display_name, role=role_label(t, g.role)), _revoke(g))
        for g in grants
    ]
    await message.reply_text("\n".join(lines), reply_markup=keyboard(buttons))


def _grant_line(t: Translator, grant: RoleGrant, context: BuurtContext) -> str:
    return t(
        "{wijk}: {role}: {name} (since {date})",
        wijk=grant.wijk.name,
        role=role_label(t, grant.role),
        name=grant.display_name,
        date=local_date(grant.granted_at, context.settings.tz),
    )


def _revoke(grant: RoleGrant) -> str:
    return Grant("revoke", grant.id).pack()


async def _allowed_grant(
    update: Update, context: BuurtContext, *, revoked: bool = False
) -> RoleGrant | None:
    """The grant a roles button is about, if the presser may manage it (and, unless
    ``revoked``, it is still active); else refuse."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    grant_id = Grant.of(update).grant
    async with context.db.begin() as session:
        me = await access.person(session, user.id, context.settings.admins)
        grant = await session.get(RoleGrant, grant_id)
    if grant is None or not me.may_manage_roles(grant.wijk_id):
        await query.answer(not_allowed(context.t), show_alert=True)
        return None
    if grant.revoked_at is not None and not revoked:
        await query.answer(context.t("This role was already revoked."), show_alert=True)
        return None
    return grant


async def ask_revoke(update: Update, context: BuurtContext) -> None:
    """Ask to confirm revoking a role."""
    grant = await _allowed_grant(update, context)
    if grant is None:
        return
    query = update.callback_query
    message = update.effective_message
    assert query is not None and message is not None
    t = context.t
    await query.answer()
    await message.reply_text(
        t(
            "Revoke the role of {name} ({role} in {wijk})?",
            name=grant.display_name,
            role=role_label(t, grant.role),
            wijk=grant.wijk.name,
        ),
        reply_markup=keyboard(
            [
                (t("Yes, revoke"), Grant("revoke-yes", grant.id).pack()),
                (t("No, keep it"), Grant("keep", grant.id).pack()),
            ],
            columns=2,
        ),
    )


async def confirm_revoke(update: Update, context: BuurtContext) -> None:
    """Revoke the role, tell the person, and reset their command menu. Pressed again (a
    double tap, or after the answer was lost) it answers the same and changes nothing twice."""
    grant = await _allowed_grant(update, context, revoked=True)
    if grant is None:
        return
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    t = context.t
    settings = context.settings
    async with context.db.begin() as session:
        revoked = await access.revoke(session, grant.id, by=user.id, now=context.now)
        first = revoked is not None
        them = await access.person(session, grant.telegram_id, settings.admins)
        name, role, wijk, subject = (
            grant.display_name,
            grant.role,
            grant.wijk.name,
            grant.telegram_id,
        )
        if first:  # they are told once, through the outbox
            await relay.to_each(
                context,
                session,
                f"roles:ended:{grant.id}",
                "roles:news",
                {subject: context.translator_for(subject).language},
                lambda t: (_role_ended(t, role, wijk), None),
            )
    try:
        await query.answer()
        await query.edit_message_text(
            t(
                "Revoked: {name} is no longer {role} in {wijk}.",
                name=name,
                role=role_label(t, role),
                wijk=wijk,
            )
        )
    finally:
        # Their menu is reset however often this is pressed.
        await _refresh_menu(context, them)
        relay.wake(context, first)


async def keep(update: Update, context: BuurtContext) -> None:
    """Do not revoke after all."""
    grant = await _allowed_grant(update, context)
    if grant is None:
        return
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(context.t("Nothing changed."))


async def my_link(update: Update, context: BuurtContext) -> None:
    """/mijnlink: a sleutelfiguur's personal link that brings new residents to their wijk."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    async with context.db.begin() as session:
        grants = [
            g for g in await access.active_grants(session, user.id) if g.role == "sleutelfiguur"
        ]
        lines = []
        for grant in grants:
            code = await access.key_figure_link(session, grant)
            lines.append(
                t(
                    "<b>{wijk}</b>: https://t.me/{bot}?start={prefix}{code}\n"
                    "It brought {n} new residents so far.",
                    wijk=grant.wijk.name,
                    bot=context.bot.username,
                    prefix=access.KEY_FIGURE_PREFIX,
                    code=code,
                    n=grant.link_uses,
                )
            )
    if not grants:
        await message.reply_text(not_allowed(t))
        return
    await message.reply_text(
        t(
            "Share your personal link with the people you reach. It opens a private chat with "
            "me in your wijk; nobody sees who used it.\n{links}",
            links=Html("\n".join(lines)),
        )
    )


async def guard_statistics(update: Update, context: BuurtContext) -> None:
    """/profilering (admins): how often the profiling guard asked for behaviour, per month."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    if user.id not in context.settings.admins:
        await message.reply_text(not_allowed(t))
        return
    async with context.db.begin() as session:
        counts = await guard_counts(session)
    lines = [
        t(
            "<b>Profiling guard</b>: how often the bot asked to describe behaviour instead of "
            "appearance or origin. Nothing else is stored."
        )
    ]
    lines += [f"{month}: {count}" for month, count in counts] or [t("Not yet.")]
    await message.reply_text("\n".join(lines))


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers for invites and roles."""
    return [
        CommandHandler(
            "start", redeem, filters=PRIVATE & filters.Regex(rf"^/start {INVITE_PREFIX}\S+$")
        ),
        CommandHandler("uitnodigen", invite, filters=PRIVATE),
        CommandHandler("rollen", list_roles, filters=PRIVATE),
        CommandHandler("mijnlink", my_link, filters=PRIVATE),
        CommandHandler("profilering", guard_statistics, filters=PRIVATE),
        CallbackQueryHandler(ask_revoke, pattern=Grant.matching(action="revoke")),
        CallbackQueryHandler(confirm_revoke, pattern=Grant.matching(action="revoke-yes")),
        CallbackQueryHandler(keep, pattern=Grant.matching(action="keep")),
    ]


async def _refresh_menu(context: BuurtContext, person: Person) -> None:
    """Set a person's own command menu to what their roles now give them."""
    await publish_personal_menu(
        context.bot,
        context.services.menus,
        person,
        context.settings.default_language,
        db=context.db,
        now=context.now,
    )


FEATURE = Feature(
    name="roles",
    handlers=build_handlers,
    commands=(
        Command("mijnlink", N_("Your personal link to share"), Permission.ON_BEHALF),
        Command(
            "uitnodigen", N_("Invite a professional: /uitnodigen <role> <wijk>"), Permission.ROLES
        ),
        Command("rollen", N_("Roles: list and revoke"), Permission.ROLES),
        Command("profilering", N_("How often the profiling guard asked, per month"), ADMIN_MENU),
    ),
)
