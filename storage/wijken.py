"""Wijken: mirrored from the configuration; the database keeps ids stable for foreign keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage.models import Wijk


@dataclass(frozen=True)
class WijkSpec:
    """What the configuration says about a wijk."""

    slug: str
    name: str
    group_chat_id: int | None = None


async def sync_wijken(session: AsyncSession, specs: Iterable[WijkSpec]) -> list[Wijk]:
    """Create or update the configured wijken; wijken no longer configured become inactive."""
    specs = list(specs)
    existing = {w.slug: w for w in (await session.scalars(select(Wijk))).all()}
    for spec in specs:
        wijk = existing.get(spec.slug)
        if wijk is None:
            wijk = Wijk(slug=spec.slug, name=spec.name, group_chat_id=spec.group_chat_id)
            session.add(wijk)
            existing[spec.slug] = wijk
        else:
            wijk.name = spec.name
            wijk.active = True
            if spec.group_chat_id is not None:
                wijk.group_chat_id = spec.group_chat_id
    configured = {s.slug for s in specs}
    for slug, wijk in existing.items():
        if slug not in configured:
            wijk.active = False
    await session.flush()
    return await active_wijken(session)


async def active_wijken(session: AsyncSession) -> list[Wijk]:
    """The wijken the bot serves, by name."""
    result = await session.scalars(select(Wijk).where(Wijk.active.is_(True)).order_by(Wijk.name))
    return list(result.all())


async def get_wijk(session: AsyncSession, wijk_id: int) -> Wijk | None:
    """A wijk by id (active or not)."""
    return await session.get(Wijk, wijk_id)


async def wijk_by_slug(session: AsyncSession, slug: str) -> Wijk | None:
    """An active wijk by its slug."""
    return await session.scalar(select(Wijk).where(Wijk.slug == slug, Wijk.active.is_(True)))


async def wijk_by_group(session: AsyncSession, chat_id: int) -> Wijk | None:
    """The active wijk whose neighbourhood group is ``chat_id``."""
    return await session.scalar(
        select(Wijk).where(Wijk.group_chat_id == chat_id, Wijk.active.is_(True))
    )


async def link_group(session: AsyncSession, wijk_id: int, chat_id: int) -> None:
    """Make ``chat_id`` the neighbourhood group of a wijk (and of no other wijk)."""
    for other in (await session.scalars(select(Wijk).where(Wijk.group_chat_id == chat_id))).all():
        other.group_chat_id = None
    wijk = await session.get(Wijk, wijk_id)
    assert wijk is not None
    wijk.group_chat_id = chat_id
    await session.flush()
