"""The access matrix: every professional command and every professional button, generated from
what the features register, tried as a resident, as a professional of another wijk and as a
revoked professional. Each gets a kind refusal (or, for the other wijk's professional, only
their own wijk), learns nothing, and nothing is stored.

A command or button pattern registered by a feature is professional unless it is one of the
resident menus' commands or matched by a resident button below. A professional one without a
case here fails the test, so a new command or button cannot skip the matrix.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, text
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ConversationHandler

from buurtsignaal.bot.app import FEATURES
from buurtsignaal.bot.commands import Menus
from buurtsignaal.bot.settings import Settings
from buurtsignaal.conversations.flow import FlowPart
from buurtsignaal.storage import access, gatherings
from buurtsignaal.storage import mediation as mediation_store
from buurtsignaal.storage.db import Base
from buurtsignaal.storage.models import ROLES, MediationEvent, Moment, RoleGrant, Wijk, utcnow
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.signals import NewSignal, create_signal
from tests.conftest import make_settings
from tests.harness import BotUnderTest, Person, grant_role

REFUSAL = "Sorry, dat kan ik niet voor je doen."
STALE = "Deze knop werkt niet meer."
SECRETS = ("Geheime inhoud van de melding", "Geheime ruzie op de galerij", "Verborgen buur")
WIJKEN = [
    {"name": "Schilderswijk", "slug": "schilderswijk"},
    {"name": "Transvaal", "slug": "transvaal"},
]

# --- the registry ------------------------------------------------------------------------------


def _walk(handler: BaseHandler[Any, Any, Any]) -> Iterator[BaseHandler[Any, Any, Any]]:
    if isinstance(handler, FlowPart | ConversationHandler):
        for inner in (
            *handler.entry_points,
            *(h for hs in handler.states.values() for h in hs),
            *handler.fallbacks,
        ):
            yield from _walk(inner)
    else:
        yield handler


def registered() -> tuple[list[str], list[str]]:
    """Every command and every button pattern the features register (no catch-alls)."""
    commands: list[str] = []
    patterns: list[str] = []
    for feature in FEATURES:
        for top in feature.handlers():
            for handler in _walk(top):
                if isinstance(handler, CommandHandler):
                    commands += [c for c in sorted(handler.commands) if c not in commands]
                elif isinstance(handler, CallbackQueryHandler) and handler.pattern is not None:
                    pattern = str(getattr(handler.pattern, "pattern", handler.pattern))
                    # "^cases:" and the like only answer stale presses of a feature.
                    if not re.fullmatch(r"\^[a-z_]+:", pattern) and pattern not in patterns:
                        patterns.append(pattern)
    return commands, patterns


MENUS = Menus.of(FEATURES)
RESIDENT_COMMANDS = {name for name, _ in (*MENUS.private, *MENUS.group)}

# Buttons residents (and the parties of a mediation) press: reviewed, not professional.
RESIDENT_BUTTONS = (
    "melden:0123abcd:safety:no",
    "melden:0123abcd:for_whom:self",
    "melden:0123abcd:wijk:1",
    "melden:0123abcd:category:anders",
    "melden:0123abcd:description:keep",
    "melden:0123abcd:when:now",
    "melden:0123abcd:frequency:first",
    "melden:0123abcd:photo:skip",
    "melden:0123abcd:contact:no",
    "melden:0123abcd:summary:send",
    "bemiddeling:0123abcd:intro:go",
    "bemiddeling:0123abcd:unsafe:no",
    "bemiddeling:0123abcd:wijk:1",
    "bemiddeling:0123abcd:topic:geluid",
    "bemiddeling:0123abcd:duration:kort",
    "bemiddeling:0123abcd:talked:nee",
    "bemiddeling:0123abcd:situation:keep",
    "bemiddeling:0123abcd:other:keep",
    "bemiddeling:0123abcd:other_address:skip",
    "bemiddeling:0123abcd:address:skip",
    "bemiddeling:0123abcd:for_whom:self",
    "bemiddeling:0123abcd:via:bot",
    "bemiddeling:0123abcd:reachable:avond",
    "bemiddeling:0123abcd:consent:yes",
    "bemiddeling:0123abcd:summary:send",
    "mref:1:yes",
    "mcase:p2:ABCDE23456:agree",
    "mcase:p2:ABCDE23456:decline",
    "mcase:p2:ABCDE23456:call",
    "mcase:nz:1:beter",
    "mcase:ans:1:1",
    "koffie:join:1",
    "koffie:guests:1:2",
    "koffie:leave:1",
    "koffie:ics:1",
    "koffie:rsvp:1",
    "cases:fu:1:yes",
    "cases:answer:1",
    "mine:withdraw:1",
    "mine:withdraw-yes:1",
    "mine:withdraw-no:1",
    "mine:add:1",
    "mine:keep:1",
    "privacy:forget:yes",
    "start:wijk:1",
    "start:wijken:1",
    "taal:nl",
)


@dataclass(frozen=True)
class Case:
    """A professional command line or button data, aimed at rows of the first wijk."""

    template: str
    # False for what is not aimed at a wijk (a page of one's own list): the other wijk's
    # professional may use it, and sees only their own wijk.
    aimed: bool = True
    # The kind answer expected from someone without the role.
    refusal: str = REFUSAL
    # Typed in the neighbourhood group instead of the private chat.
    in_group: bool = False


GROUP = -1001  # the neighbourhood group a group command is tried in


COMMANDS: dict[str, Case | tuple[Case, ...]] = {
    "overzicht": Case("/overzicht", aimed=False),
    "meldingen_instellen": Case("/meldingen_instellen", aimed=False),
    "open": Case("/open", aimed=False),
    "melding": Case("/melding {signal_ref}"),
    "export": Case("/export", aimed=False),
    "koffieplannen": Case("/koffieplannen", aimed=False),
    "aanwezig": Case("/aanwezig", aimed=False),
    "beheer": Case("/beheer", aimed=False),
    "zaken": Case("/zaken", aimed=False),
    "zaak": Case("/zaak {case_ref}"),
    "bemiddelingen": Case("/bemiddelingen", aimed=False),
    "mijnlink": Case("/mijnlink", aimed=False),
    "uitnodigen": Case("/uitnodigen wijkagent schilderswijk"),
    "rollen": Case("/rollen", aimed=False),
    "profilering": Case("/profilering"),  # only the configured admins
    # Meant for a group (there: only admins and the wijk's beheerder); in a private chat it
    # is not a command at all.
    "koppelgroep": (
        Case("/koppelgroep schilderswijk", in_group=True),
        Case(
            "/koppelgroep schilderswijk",
            refusal="Dat commando ken ik niet. /help laat zien wat ik kan.",
        ),
    ),
}
BUTTONS: tuple[Case, ...] = (
    Case("cases:page:0", aimed=False),
    Case("cases:show:{signal}"),
    Case("cases:take:{signal}"),
    Case("cases:status:{signal}"),
    Case("cases:status:{signal}:afgehandeld"),
    Case("cases:refer:{signal}"),
    Case("cases:note:{signal}"),
    Case("cases:reply:{signal}"),
    Case("cases:nonote:{signal}"),
    Case("mcase:show:{case}"),
    Case("mcase:take:{case}"),
    Case("mcase:next:{case}:intake"),
    Case("mcase:skip:{case}:intake"),
    Case("mcase:undo:{case}:{event}"),
    Case("mcase:notes:{case}"),
    Case("mcase:close:{case}"),
    Case("mcase:out:{case}:opgelost"),
    Case("mcase:invite:{case}"),
    Case("mcase:mediators:{case}"),
    Case("mcase:note:{case}"),
    Case("mcase:appt:{case}"),
    Case("mcase:apptp:{case}:12"),
    Case("mcase:msg:{case}:1"),
    Case("koffie:m:{moment}"),
    Case("koffie:cancel:{moment}"),
    Case("koffie:cancelseries:{moment}"),
    Case("koffie:cancel-yes:{moment}"),
    Case("koffie:cancelseries-yes:{moment}"),
    Case("koffie:keep:{moment}"),
    Case("koffie:editm:{moment}"),
    Case("koffie:edits:{moment}"),
    Case("roles:revoke:{grant}"),
    Case("roles:revoke-yes:{grant}"),
    Case("roles:keep:{grant}"),
    Case("digest:alerts:{wijk}:digest"),
    Case("plannen:0123abcd:wijk:{wijk}"),
    Case("plannen:0123abcd:kind:koffie"),
    Case("plannen:0123abcd:repeat:weekly"),
    Case("plannen:0123abcd:capacity:none"),
    Case("plannen:0123abcd:summary:send"),
)
DUMMY = {k: "1" for k in ("signal", "case", "event", "moment", "grant", "wijk")}


def _is_resident_button(pattern: str) -> bool:
    return any(re.match(pattern, data) for data in RESIDENT_BUTTONS)


def matrix() -> list[Any]:
    """One case per professional command and button pattern the features register."""
    commands, patterns = registered()
    return [
        *(pytest.param("command", c, id=f"/{c}") for c in commands if c not in RESIDENT_COMMANDS),
        *(pytest.param("button", p, id=p) for p in patterns if not _is_resident_button(p)),
    ]


def cases_for(kind: str, name: str) -> list[Case]:
    if kind == "command":
        found = COMMANDS.get(name)
        return list(found) if isinstance(found, tuple) else [found] if found else []
    return [case for case in BUTTONS if re.match(name, case.template.format(**DUMMY))]


# --- the people and the rows they aim at ---------------------------------------------------


async def seed(bot: BotUnderTest) -> dict[str, Any]:
    """A signal, a mediation case, a grant and a koffie date in Schilderswijk."""
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk).where(Wijk.slug == "schilderswijk"))
        assert wijk is not None
        reporter = await ensure_resident(session, 1009, "nl")
        signal = await create_signal(
            session,
            NewSignal(
                wijk_id=wijk.id, resident_id=reporter.id, category="vernieling",
                description=SECRETS[0], occurred="now", frequency="first",
                contactable=False, location_text="Hobbemaplein",
            ),
            year=2026,
            now=utcnow(),
        )  # fmt: skip
        case = await mediation_store.create_case(
            session,
            mediation_store.NewMediation(
                wijk_id=wijk.id, resident_id=reporter.id, topic="geluid", duration="kort",
                talked="nee", other_party=SECRETS[2], contact_via="bot", reachable="avond",
                situation=SECRETS[1],
            ),
            year=2026,
            now=utcnow(),
        )  # fmt: skip
        grant = RoleGrant(telegram_id=3002, role="wijkagent", wijk_id=wijk.id, display_name="Wim")
        session.add(grant)
        series = await gatherings.plan(
            session, wijk_id=wijk.id, kind="koffie", place="Buurthuis",
            starts_at=utcnow() + dt.timedelta(days=4), repeat="weekly",
            created_by=3002, tz=dt.UTC, now=utcnow(),
        )  # fmt: skip
        await session.flush()
        moment = await session.scalar(select(Moment).where(Moment.series_id == series.id))
        event = await session.scalar(
            select(MediationEvent.id).where(MediationEvent.case_id == case.id)
        )
        assert moment is not None and event is not None
        return {
            "signal": signal.id, "signal_ref": signal.reference, "case": case.id,
            "case_ref": case.reference, "event": event, "grant": grant.id,
            "moment": moment.id, "wijk": wijk.id,
        }  # fmt: skip


async def revoked_professional(bot: BotUnderTest) -> Person:
    """Someone who held every role in Schilderswijk, all revoked."""
    person = bot.user(3200, "Rob")
    for role in ROLES:
        await grant_role(bot, person, role, "schilderswijk")
    assert bot.db is not None
    async with bot.db.begin() as session:
        grants = await session.scalars(select(RoleGrant).where(RoleGrant.telegram_id == 3200))
        for grant in grants.all():
            await access.revoke(session, grant.id, by=1, now=utcnow())
    return person


async def other_wijk_professional(bot: BotUnderTest) -> Person:
    """Someone who holds every role, in Transvaal."""
    person = bot.user(3100, "Tineke")
    for role in ROLES:
        await grant_role(bot, person, role, "transvaal")
    return person


async def snapshot(bot: BotUnderTest) -> dict[str, list[Any]]:
    """Every row of every table that holds what the bot decided (not the conversation state,
    the inbox or the resident rows made when someone writes)."""
    assert bot.db is not None
    skip = {"bot_state", "inbox_updates", "residents", "alembic_version"}
    rows: dict[str, list[Any]] = {}
    async with bot.db.begin() as session:
        for table in Base.metadata.sorted_tables:
            if table.name not in skip:
                result = await session.execute(text(f"SELECT * FROM {table.name} ORDER BY 1"))
                rows[table.name] = [tuple(row) for row in result.all()]
    return rows


# --- the matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), matrix())
async def test_access_matrix(
    kind: str,
    name: str,
    db_url: str,
    start_bot: Callable[[Settings], Awaitable[BotUnderTest]],
) -> None:
    cases = cases_for(kind, name)
    if not cases:
        pytest.fail(
            f"the professional {kind} {name!r} has no case in tests/test_access.py: add one to "
            "COMMANDS or BUTTONS (or, if residents use it, to RESIDENT_BUTTONS)"
        )
    bot = await start_bot(make_settings(db_url, wijken=WIJKEN))
    ids = await seed(bot)
    resident = bot.user(1001, "Anna")
    people = {
        "resident": resident,
        "revoked": await revoked_professional(bot),
        "other wijk": await other_wijk_professional(bot),
    }
    for person in people.values():
        await person.says("/help")  # a message in the chat to press forged buttons on
    bot.emulator.add_group(GROUP, "Buurtgroep")
    before = await snapshot(bot)
    for who, person in people.items():
        for case in cases:
            action = case.template.format(**ids)
            if kind == "command":
                there = Person(bot, person.id, person.name)
                there.chat_id = GROUP if case.in_group else person.chat_id
                reply = await there.says(action)
                if who != "other wijk":
                    assert reply.text == case.refusal, (who, action, reply.text)
            else:
                reply = await person.forges(action)
                if who != "other wijk" or case.aimed:
                    assert reply.alerts, (who, action)
                    answer = reply.alerts[0]
                    assert answer == REFUSAL or answer.startswith(STALE), (who, action, answer)
                    assert reply.messages == [] and reply.edited == [], (who, action)
            seen = "\n".join([*reply.alerts, *(m.plain_text for m in reply.messages)])
            for secret in (*SECRETS, ids["signal_ref"], ids["case_ref"]):
                if secret not in action:  # a reference they typed may be named back
                    assert secret not in seen, (who, action, secret)
            if who == "other wijk" and not case.aimed:
                before = await snapshot(bot)  # their own wijk's things, e.g. their own link
            else:
                assert await snapshot(bot) == before, (who, action)
