"""Who may do what: roles per wijk, single-use invites, and the audit log of role changes.

The permission table is the single source of truth; every professional command and button
asks :func:`wijken_for` (or :func:`allowed`) on the server side before it shows anything.
Admins come from the configuration and manage roles; they see no report content unless they
also hold a role that may.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.codes import code_hash
from buurtsignaal.storage.models import ROLES, AuditEntry, Invite, RoleGrant


class Permission(StrEnum):
    """Things a role may do in its wijk."""

    SIGNALS = "signals"  # see and handle signals, reply to residents
    DIGEST = "digest"  # receive the daily digest and hotspot alerts
    EXPORT = "export"  # export the wijk's signals as CSV
    MEDIATION = "mediation"  # see and handle mediation cases
    MEDIATION_COUNTS = "mediation_counts"  # only counts and outcomes of mediation
    KOFFIE = "koffie"  # organise koffiemomenten
    PRESENCE = "presence"  # publish the pair's presence in the wijk
    ON_BEHALF = "on_behalf"  # report on behalf of someone else
    ROLES = "roles"  # invite and revoke roles in the wijk


PAIR = ("wijkagent", "opbouwwerker")

PERMISSIONS: dict[str, frozenset[Permission]] = {
    "wijkagent": frozenset(
        {
            Permission.SIGNALS,
            Permission.DIGEST,
            Permission.EXPORT,
            Permission.MEDIATION_COUNTS,
            Permission.KOFFIE,
            Permission.PRESENCE,
        }
    ),
    "opbouwwerker": frozenset(
        {
            Permission.SIGNALS,
            Permission.DIGEST,
            Permission.EXPORT,
            Permission.MEDIATION_COUNTS,
            Permission.KOFFIE,
            Permission.PRESENCE,
        }
    ),
    "bemiddelaar": frozenset({Permission.MEDIATION}),
    "organisator": frozenset({Permission.KOFFIE}),
    "sleutelfiguur": frozenset({Permission.ON_BEHALF}),
    "beheerder": frozenset({Permission.ROLES}),
}
assert set(PERMISSIONS) == set(ROLES)


@dataclass(frozen=True)
class Person:
    """Who is asking: a Telegram id, whether the configuration names them admin, their roles."""

    telegram_id: int
    is_admin: bool
    grants: tuple[RoleGrant, ...]

    def wijken_for(self, permission: Permission) -> set[int]:
        """The wijk ids where this person has ``permission``."""
        return {g.wijk_id for g in self.grants if permission in PERMISSIONS[g.role]}

    def may(self, permission: Permission, wijk_id: int | None = None) -> bool:
        """True when the person has ``permission`` (in ``wijk_id``, or in any wijk)."""
        wijken = self.wijken_for(permission)
        return bool(wijken) if wijk_id is None else wijk_id in wijken

    def may_manage_roles(self, wijk_id: int | None = None) -> bool:
        """Admins manage every wijk; a beheerder only their own."""
        return self.is_admin or self.may(Permission.ROLES, wijk_id)

    @property
    def roles(self) -> set[str]:
        """The role names this person holds in any wijk."""
        return {g.role for g in self.grants}


async def display_names(
    session: AsyncSession, telegram_ids: Iterable[int | None]
) -> dict[int, str]:
    """The one rule for the name a professional is shown to colleagues with, by Telegram id:
    the name on their newest active grant, else (revoked, still in a history) on their newest
    grant. Residents never get a name here; they are not in the grants."""
    wanted = {i for i in telegram_ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(RoleGrant.telegram_id, RoleGrant.display_name)
        .where(RoleGrant.telegram_id.in_(wanted))
        # Read in order; the last one read wins: revoked before active, older before newer.
        .order_by(RoleGrant.revoked_at.is_(None), RoleGrant.granted_at, RoleGrant.id)
    )
    return {int(telegram_id): name for telegram_id, name in rows.all()}


async def active_grants(session: AsyncSession, telegram_id: int) -> Sequence[RoleGrant]:
    """The roles a person holds now."""
    result = await session.scalars(
        select(RoleGrant)
        .where(RoleGrant.telegram_id == telegram_id, RoleGrant.revoked_at.is_(None))
        .order_by(RoleGrant.id)
    )
    return result.all()


async def person(session: AsyncSession, telegram_id: int, admins: Collection[int]) -> Person:
    """Everything needed to decide what ``telegram_id`` may do."""
    grants = tuple(await active_grants(session, telegram_id))
    return Person(telegram_id=telegram_id, is_admin=telegram_id in admins, grants=grants)


async def holders(
    session: AsyncSession, wijk_id: int, roles: Collection[str]
) -> Sequence[RoleGrant]:
    """The active grants of ``roles`` in a wijk (for example: who gets the digest)."""
    result = await session.scalars(
        select(RoleGrant)
        .where(
            RoleGrant.wijk_id == wijk_id,
            RoleGrant.role.in_(list(roles)),
            RoleGrant.revoked_at.is_(None),
        )
        .order_by(RoleGrant.id)
    )
    return result.all()


async def recipients(session: AsyncSession, wijk_id: int, permission: Permission) -> list[int]:
    """Telegram ids of everyone with ``permission`` in a wijk, each once."""
    roles = [role for role, granted in PERMISSIONS.items() if permission in granted]
    seen: dict[int, None] = {}
    for grant in await holders(session, wijk_id, roles):
        seen.setdefault(grant.telegram_id, None)
    return list(seen)


async def all_grants(
    session: AsyncSession, wijk_ids: Collection[int] | None = None
) -> Sequence[RoleGrant]:
    """Active grants, optionally only in some wijken, by wijk and role."""
    query = select(RoleGrant).where(RoleGrant.revoked_at.is_(None))
    if wijk_ids is not None:
        query = query.where(RoleGrant.wijk_id.in_(list(wijk_ids)))
    result = await session.scalars(query.order_by(RoleGrant.wijk_id, RoleGrant.role, RoleGrant.id))
    return result.all()


async def audit(
    session: AsyncSession,
    action: str,
    *,
    actor: int | None,
    subject: int | None = None,
    role: str | None = None,
    wijk_id: int | None = None,
    detail: str | None = None,
    now: dt.datetime,
) -> None:
    """Write one line to the audit log."""
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action=action,
            subject=subject,
            role=role,
            wijk_id=wijk_id,
            detail=detail,
        )
    )
    await session.flush()


async def create_invite(
    session: AsyncSession,
    *,
    role: str,
    wijk_id: int,
    created_by: int,
    valid_for: dt.timedelta,
    now: dt.datetime,
) -> tuple[Invite, str]:
    """A fresh single-use invite for ``role`` in a wijk, and its code. Only the code's hash is
    stored: the code is in the link and nowhere else."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    code = secrets.token_urlsafe(12)
    invite = Invite(
        code_hash=code_hash(code),
        role=role,
        wijk_id=wijk_id,
        created_by=created_by,
        created_at=now,
        expires_at=now + valid_for,
    )
    session.add(invite)
    await session.flush()
    await audit(session, "invite_created", actor=created_by, role=role, wijk_id=wijk_id, now=now)
    return invite, code


class InviteProblem(Exception):
    """Why an invite cannot be used: 'unknown', 'used' or 'expired'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def active_grant(
    session: AsyncSession, telegram_id: int, role: str, wijk_id: int
) -> RoleGrant | None:
    """Someone's active grant of ``role`` in a wijk (there is at most one)."""
    return await session.scalar(
        select(RoleGrant).where(
            RoleGrant.telegram_id == telegram_id,
            RoleGrant.role == role,
            RoleGrant.wijk_id == wijk_id,
            RoleGrant.revoked_at.is_(None),
        )
    )


async def redeem_invite(
    session: AsyncSession,
    code: str,
    *,
    telegram_id: int,
    display_name: str,
    now: dt.datetime,
) -> tuple[RoleGrant, Invite, bool]:
    """Use an invite: grant its role (once) and record who used it; returns the grant, the
    invite and whether this use was new. The person who used it opening it again (after a
    lost answer, a restart) gets the same grant back and nothing changes twice."""
    invite = await session.scalar(select(Invite).where(Invite.code_hash == code_hash(code)))
    if invite is None:
        raise InviteProblem("unknown")
    if invite.used_at is not None:
        if invite.used_by == telegram_id:
            again = await active_grant(session, telegram_id, invite.role, invite.wijk_id)
            if again is not None:
                return again, invite, False
        raise InviteProblem("used")
    if invite.expires_at <= now:
        raise InviteProblem("expired")
    # Claim it atomically: of two people opening the link at once, only one gets the role.
    claimed = await session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.used_at.is_(None))
        .values(used_at=now, used_by=telegram_id)
        .execution_options(synchronize_session="fetch")
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InviteProblem("used")
    grant = await active_grant(session, telegram_id, invite.role, invite.wijk_id)
    if grant is None:
        try:
            async with session.begin_nested():
                grant = RoleGrant(
                    telegram_id=telegram_id,
                    role=invite.role,
                    wijk_id=invite.wijk_id,
                    display_name=display_name[:100],
                    granted_by=invite.created_by,
                    granted_at=now,
                )
                session.add(grant)
                await session.flush()
        except IntegrityError:  # the same role granted at this moment by another invite
            grant = await active_grant(session, telegram_id, invite.role, invite.wijk_id)
            if grant is None:
                raise
    await audit(
        session,
        "role_granted",
        actor=invite.created_by,
        subject=telegram_id,
        role=invite.role,
        wijk_id=invite.wijk_id,
        detail=f"invite {invite.id}",
        now=now,
    )
    return grant, invite, True


async def revoke(
    session: AsyncSession, grant_id: int, *, by: int, now: dt.datetime
) -> RoleGrant | None:
    """Revoke an active grant; None when there is no such active grant."""
    grant = await session.get(RoleGrant, grant_id)
    if grant is None or grant.revoked_at is not None:
        return None
    grant.revoked_at = now
    grant.revoked_by = by
    await session.flush()
    await audit(
        session,
        "role_revoked",
        actor=by,
        subject=grant.telegram_id,
        role=grant.role,
        wijk_id=grant.wijk_id,
        now=now,
    )
    return grant


async def audit_entries(session: AsyncSession, limit: int = 50) -> Sequence[AuditEntry]:
    """The newest audit log lines."""
    result = await session.scalars(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    )
    return result.all()


KEY_FIGURE_PREFIX = "sf-"


async def key_figure_link(session: AsyncSession, grant: RoleGrant) -> str:
    """The sleutelfiguur's personal link code, made on first use."""
    if grant.link_code is None:
        grant.link_code = secrets.token_urlsafe(6)
        await session.flush()
    return grant.link_code


async def arrive_via_link(session: AsyncSession, code: str, *, new: bool) -> RoleGrant | None:
    """Someone opened a sleutelfiguur's link; counts them when they are new to the bot."""
    grant = await session.scalar(
        select(RoleGrant).where(
            RoleGrant.link_code == code,
            RoleGrant.role == "sleutelfiguur",
            RoleGrant.revoked_at.is_(None),
        )
    )
    if grant is not None and new:
        grant.link_uses += 1
        await session.flush()
    return grant
