"""Roles are enforced on the server side: every professional command and every professional
button, replayed or forged, gets the same polite refusal and changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from bot.settings import Settings
from storage import gatherings
from storage.models import (
    AuditEntry,
    Moment,
    RoleGrant,
    Signal,
    SignalEvent,
    Wijk,
)
from storage.residents import ensure_resident
from storage.signals import NewSignal, create_signal
from tests.conftest import make_settings
from tests.harness import BotUnderTest, grant_role

REFUSAL = "Sorry, dat kan ik niet voor je doen."
PROFESSIONAL_COMMANDS = (
    "/overzicht",
    "/open",
    "/melding BS-2026-0001",
    "/export",
    "/uitnodigen wijkagent schilderswijk",
    "/rollen",
    "/profilering",
    "/mijnlink",
    "/koffieplannen",
    "/aanwezig",
    "/beheer",
    "/zaken",
    "/zaak BM-2026-0001",
    "/bemiddelingen",
)


async def seed(bot: BotUnderTest, wijk_slug: str = "schilderswijk") -> tuple[int, int, int]:
    """A signal, a role grant and a koffie date to aim forged buttons at."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk).where(Wijk.slug == wijk_slug))
        assert wijk is not None
        reporter = await ensure_resident(session, 1009, "nl")
        signal = await create_signal(
            session,
            NewSignal(
                wijk_id=wijk.id,
                resident_id=reporter.id,
                category="vernieling",
                description="Geheime inhoud van de melding",
                occurred="now",
                frequency="first",
                contactable=False,
                location_text="Hobbemaplein",
            ),
            year=2026,
        )
        grant = RoleGrant(telegram_id=3002, role="wijkagent", wijk_id=wijk.id, display_name="Wim")
        session.add(grant)
        series = await gatherings.plan(
            session,
            wijk_id=wijk.id,
            kind="koffie",
            place="Buurthuis",
            starts_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=4),
            repeat="weekly",
            created_by=3002,
            tz=dt.UTC,
        )
        await session.flush()
        moment = await session.scalar(select(Moment).where(Moment.series_id == series.id))
        assert moment is not None
        return signal.id, grant.id, moment.id


def forged(signal: int, grant: int, moment: int) -> list[str]:
    """Callback data of every professional button, aimed at real rows."""
    return [
        "cases:page:0",
        f"cases:show:{signal}",
        f"cases:take:{signal}",
        f"cases:status:{signal}",
        f"cases:status:{signal}:afgehandeld",
        f"cases:note:{signal}",
        f"cases:reply:{signal}",
        f"cases:nonote:{signal}",
        f"roles:revoke:{grant}",
        f"roles:revoke-yes:{grant}",
        f"roles:keep:{grant}",
        f"koffie:m:{moment}",
        f"koffie:cancel:{moment}",
        f"koffie:cancel-yes:{moment}",
        f"koffie:cancelseries:{moment}",
        f"koffie:cancelseries-yes:{moment}",
        f"koffie:editm:{moment}",
        f"koffie:edits:{moment}",
    ]


async def state(bot: BotUnderTest) -> tuple[object, ...]:
    """What a refused action must not change."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        signal = await session.scalar(select(Signal))
        assert signal is not None
        return (
            signal.status,
            signal.assigned_to,
            await session.scalar(select(func.count()).select_from(SignalEvent)),
            await session.scalar(
                select(func.count()).select_from(RoleGrant).where(RoleGrant.revoked_at.is_(None))
            ),
            await session.scalar(
                select(func.count()).select_from(Moment).where(Moment.cancelled_at.is_not(None))
            ),
            await session.scalar(select(func.count()).select_from(AuditEntry)),
        )


async def test_a_resident_gets_a_refusal_for_everything_professional(bot: BotUnderTest) -> None:
    ids = await seed(bot)
    before = await state(bot)
    anna = bot.user(1001, "Anna")
    for command in PROFESSIONAL_COMMANDS:
        reply = await anna.says(command)
        assert reply.text == REFUSAL, command
    for data in forged(*ids):
        reply = await anna.forges(data)
        assert reply.alert == REFUSAL, data
        assert reply.messages == [], data
    assert await state(bot) == before
    everything = "\n".join(m.plain_text for m in bot.emulator.messages(1001))
    assert "Geheime inhoud" not in everything


async def test_a_professional_of_another_wijk_learns_nothing(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    wijken = [
        {"name": "Schilderswijk", "slug": "schilderswijk"},
        {"name": "Transvaal", "slug": "transvaal"},
    ]
    bot = await start_bot(make_settings(db_url, wijken=wijken))
    ids = await seed(bot, "schilderswijk")
    before = await state(bot)
    other = bot.user(3100, "Tineke")
    await grant_role(bot, other, "wijkagent", "transvaal")
    grants = before[3]
    assert isinstance(grants, int)
    before = (*before[:3], grants + 1, *before[4:])
    await other.says("/open")  # their own wijk's list: something to forge a press on
    for data in forged(*ids):
        if data.startswith("roles:") or data == "cases:page:0":
            continue  # role buttons are for admins (above); paging shows their own wijk
        reply = await other.forges(data)
        # A refusal, or (for a button that only lives inside a typing step) "no longer
        # active": either way nothing about this wijk is shown.
        assert reply.alert in (REFUSAL, "Deze knop werkt niet meer."), data
        assert reply.messages == [], data
    reply = await other.says("/melding BS-2026-0001")
    assert "Geheime inhoud" not in reply.text
    assert await state(bot) == before
