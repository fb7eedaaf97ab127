"""Storage functions on SQLite and PostgreSQL: references, history, wijken, persistence rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.bot.persistence import SqlPersistence
from buurtsignaal.storage import access, gatherings, migrate, purpose
from buurtsignaal.storage.db import Database
from buurtsignaal.storage.mediation import NewMediation, store_case_once
from buurtsignaal.storage.models import (
    BotState,
    Moment,
    RoleGrant,
    Signal,
    SignalEvent,
    Signup,
    utcnow,
)
from buurtsignaal.storage.residents import ensure_resident, get_resident
from buurtsignaal.storage.signals import (
    NewSignal,
    create_signal,
    signal_by_reference,
    signals_of_resident,
    store_signal_once,
)
from buurtsignaal.storage.wijken import WijkSpec, active_wijken, sync_wijken, wijk_by_group

T = TypeVar("T")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(migrate.upgrade, db_url)
    database = Database(db_url)
    yield database
    await database.dispose()


async def _wijk_id(db: Database) -> int:
    async with db.begin() as session:
        [wijk] = await sync_wijken(session, [WijkSpec("noord", "Noord", -100)])
        return wijk.id


def _new(wijk_id: int, resident_id: int | None = None, **changes: object) -> NewSignal:
    values: dict[str, object] = {
        "wijk_id": wijk_id,
        "resident_id": resident_id,
        "category": "geluidsoverlast",
        "description": "Harde muziek",
        "occurred": "now",
        "frequency": "first",
        "contactable": False,
        "location_text": "Dorpsstraat",
    }
    values.update(changes)
    return NewSignal(**values)  # type: ignore[arg-type]


async def test_references_count_up_per_year(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    references = []
    for year in (2026, 2026, 2027, 2026):
        async with db.begin() as session:
            references.append(
                (await create_signal(session, _new(wijk_id), year=year, now=utcnow())).reference
            )
    assert references == ["BS-2026-0001", "BS-2026-0002", "BS-2027-0001", "BS-2026-0003"]


async def test_concurrent_reports_get_distinct_references(db: Database) -> None:
    wijk_id = await _wijk_id(db)

    async def one() -> str:
        async with db.begin() as session:
            return (await create_signal(session, _new(wijk_id), year=2026, now=utcnow())).reference

    references = await asyncio.gather(*(one() for _ in range(8)))
    assert sorted(references) == [f"BS-2026-{n:04d}" for n in range(1, 9)]


async def test_signal_history_and_lookup(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    when = dt.datetime(2026, 3, 1, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    async with db.begin() as session:
        resident = await ensure_resident(session, 7_000_000_001, "nl")
        created = await create_signal(session, _new(wijk_id, resident.id), year=2026, now=when)
    async with db.begin() as session:
        found = await signal_by_reference(session, created.reference.lower())
        assert found is not None
        assert found.created_at == when  # aware, in UTC, the same moment
        assert found.created_at.tzinfo == dt.UTC
        assert [(e.kind, e.to_status, e.actor) for e in found.history] == [
            ("created", "nieuw", "resident")
        ]
        mine = await signals_of_resident(session, resident.id)
        assert [s.reference for s in mine] == [created.reference]


async def test_telegram_ids_are_bigint(db: Database) -> None:
    big = 2**40 + 12345
    async with db.begin() as session:
        await ensure_resident(session, big, "en")
    async with db.begin() as session:
        found = await get_resident(session, big)
    assert found is not None and found.telegram_id == big and found.language == "en"


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.begin() as session:
            session.add(SignalEvent(signal_id=999_999, kind="created", actor="resident"))


async def test_deleting_a_resident_keeps_their_signal(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    async with db.begin() as session:
        resident = await ensure_resident(session, 42, "nl")
        await create_signal(session, _new(wijk_id, resident.id), year=2026, now=utcnow())
    async with db.begin() as session:
        await session.delete(await get_resident(session, 42))
    async with db.begin() as session:
        [signal] = (await session.scalars(select(Signal))).all()
    assert signal.resident_id is None


def test_new_signal_validates() -> None:
    with pytest.raises(ValueError, match="category"):
        _new(1, category="weer")
    with pytest.raises(ValueError, match="location"):
        _new(1, location_text=None)
    with pytest.raises(ValueError, match="contact"):
        _new(1, contact_name="Anna")


async def test_wijken_follow_the_configuration(db: Database) -> None:
    async with db.begin() as session:
        await sync_wijken(session, [WijkSpec("noord", "Noord", -100), WijkSpec("zuid", "Zuid")])
    async with db.begin() as session:
        active = await sync_wijken(session, [WijkSpec("zuid", "Zuid-Oost")])
        assert [(w.slug, w.name) for w in active] == [("zuid", "Zuid-Oost")]
        assert await wijk_by_group(session, -100) is None  # noord is no longer served
    async with db.begin() as session:
        assert [w.slug for w in await active_wijken(session)] == ["zuid"]


async def test_persistence_round_trip(db: Database) -> None:
    persistence = SqlPersistence(db)
    await persistence.update_conversation("melden", (5, 5), "description")
    await persistence.update_conversation("melden", (6, 6), "summary")
    await persistence.update_conversation("other", (5, 5), "x")
    await persistence.update_user_data(5, {"lang": "en", "melden": {"category": "anders"}})
    await persistence.update_user_data(6, {})
    await persistence.update_chat_data(-100, {"k": [1, 2]})
    await persistence.update_bot_data({"digest": "2026-11-26"})
    await persistence.write()  # all of it in one transaction

    fresh = SqlPersistence(db)
    assert await fresh.get_conversations("melden") == {(5, 5): "description", (6, 6): "summary"}
    assert await fresh.get_user_data() == {5: {"lang": "en", "melden": {"category": "anders"}}}
    assert await fresh.get_chat_data() == {-100: {"k": [1, 2]}}
    assert await fresh.get_bot_data() == {"digest": "2026-11-26"}

    await fresh.update_conversation("melden", (5, 5), None)
    await fresh.drop_user_data(5)
    await fresh.write()
    assert await fresh.get_conversations("melden") == {(6, 6): "summary"}
    assert await fresh.get_user_data() == {}


async def test_persistence_writes_only_what_changed(db: Database) -> None:
    persistence = SqlPersistence(db)
    await persistence.update_user_data(5, {"lang": "nl"})
    await persistence.write()
    async with db.begin() as session:
        first = await session.scalar(select(BotState.updated_at).where(BotState.key == "5"))
    await persistence.update_user_data(5, {"lang": "nl"})  # the same again: not written
    await persistence.update_user_data(7, {})  # never stored: nothing to delete
    await persistence.write()
    async with db.begin() as session:
        rows = (await session.execute(select(BotState.key, BotState.updated_at))).all()
    assert rows == [("5", first)]
    # What it remembers of a stored row is a fingerprint, not a copy of the data.
    assert all(isinstance(mark, bytes) for mark in persistence._stored.values())


async def test_a_database_is_either_live_or_demo(db: Database) -> None:
    async with db.begin() as session:
        assert await purpose.claim(session, "demo") is None  # unmarked: now the demo's
    async with db.begin() as session:
        assert await purpose.claim(session, "demo") is None  # the demo again: fine
    async with db.begin() as session:
        assert await purpose.claim(session, "live") == "demo"  # the live bot is refused
    async with db.begin() as session:
        assert await purpose.claim(session, "live") == "demo"  # and the mark stays


# --- finishing twice at the same moment stores once ---------------------------------------


async def _while_first_is_open(
    db: Database,
    first: Callable[[AsyncSession], Awaitable[T]],
    second: Callable[[AsyncSession], Awaitable[T]],
) -> tuple[T, T]:
    """Run ``first`` in a unit of work that stays open while ``second`` runs in another one
    (another press of the same button, handled elsewhere at the same moment); ``second``
    has to wait for the first to commit."""

    async def other() -> T:
        async with db.begin() as session:
            return await second(session)

    async with db.begin() as session:
        result = await first(session)
        later = asyncio.create_task(other())
        await asyncio.sleep(0.3)
        assert not later.done()  # it waits for the first unit of work
    return result, await later


async def test_a_draft_sent_twice_at_once_is_stored_once(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    new = _new(wijk_id, draft_key="melden:1:0123abcd")

    async def send(session: AsyncSession) -> tuple[str, bool]:
        signal, created = await store_signal_once(session, new, year=2026, now=utcnow())
        return signal.reference, created

    first, second = await _while_first_is_open(db, send, send)
    assert first == ("BS-2026-0001", True)
    assert second == ("BS-2026-0001", False)
    async with db.begin() as session:
        assert len((await session.scalars(select(Signal))).all()) == 1
        # The second one took no reference number either.
        assert (await create_signal(session, _new(wijk_id), year=2026, now=utcnow())).reference == (
            "BS-2026-0002"
        )


async def test_a_draft_sent_twice_at_once_around_new_year_is_stored_once(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    new = _new(wijk_id, draft_key="melden:1:0123abcd")

    def send(year: int) -> Callable[[AsyncSession], Awaitable[tuple[str, bool]]]:
        async def store(session: AsyncSession) -> tuple[str, bool]:
            signal, created = await store_signal_once(session, new, year=year, now=utcnow())
            return signal.reference, created

        return store

    # Two numbering sequences do not wait for each other: the unique draft key decides.
    first, second = await _while_first_is_open(db, send(2026), send(2027))
    assert first == ("BS-2026-0001", True)
    assert second == ("BS-2026-0001", False)
    async with db.begin() as session:
        # The number of 2027 that was taken for nothing was given back.
        assert (await create_signal(session, _new(wijk_id), year=2027, now=utcnow())).reference == (
            "BS-2027-0001"
        )


async def test_a_mediation_draft_sent_twice_at_once_is_stored_once(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    async with db.begin() as session:
        resident_id = (await ensure_resident(session, 1001, "nl")).id
    new = NewMediation(
        wijk_id=wijk_id,
        resident_id=resident_id,
        topic="geluid",
        duration="kort",
        talked="nee",
        other_party="De bovenburen",
        contact_via="bot",
        reachable="altijd",
        draft_key=f"bemiddeling:{resident_id}:0123abcd",
    )

    async def send(session: AsyncSession) -> tuple[str, bool]:
        case, created = await store_case_once(session, new, year=2026, now=utcnow())
        return case.reference, created

    first, second = await _while_first_is_open(db, send, send)
    assert first == ("BM-2026-0001", True)
    assert second == ("BM-2026-0001", False)


async def test_a_koffie_sign_up_pressed_twice_at_once_is_one_sign_up(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    start = dt.datetime(2026, 12, 12, 9, 0, tzinfo=dt.UTC)
    async with db.begin() as session:
        series = await gatherings.plan(
            session,
            wijk_id=wijk_id,
            kind="koffie",
            place="Buurthuis",
            starts_at=start,
            repeat="none",
            created_by=1,
            tz=dt.UTC,
            now=start - dt.timedelta(days=3),
        )
        [moment] = (
            await session.scalars(select(Moment).where(Moment.series_id == series.id))
        ).all()
        resident = await ensure_resident(session, 1001, "nl")

    async def press(session: AsyncSession) -> tuple[int, bool]:
        signup, new = await gatherings.sign_up(session, moment, resident, "Anna", now=utcnow())
        return signup.id, new

    first, second = await _while_first_is_open(db, press, press)
    assert first[1] is True and second == (first[0], False)
    async with db.begin() as session:
        assert len((await session.scalars(select(Signup))).all()) == 1


async def test_one_role_granted_by_two_invites_at_once_is_one_grant(db: Database) -> None:
    wijk_id = await _wijk_id(db)
    codes = []
    async with db.begin() as session:
        for _ in range(2):
            _, code = await access.create_invite(
                session,
                role="wijkagent",
                wijk_id=wijk_id,
                created_by=1,
                valid_for=dt.timedelta(hours=1),
                now=utcnow(),
            )
            codes.append(code)

    def redeem(code: str) -> Callable[[AsyncSession], Awaitable[tuple[int, bool]]]:
        async def use(session: AsyncSession) -> tuple[int, bool]:
            grant, _, new = await access.redeem_invite(
                session, code, telegram_id=2001, display_name="Sanne", now=utcnow()
            )
            return grant.id, new

        return use

    first, second = await _while_first_is_open(db, redeem(codes[0]), redeem(codes[1]))
    assert first[0] == second[0]
    async with db.begin() as session:
        assert len((await session.scalars(select(RoleGrant))).all()) == 1


async def test_one_rule_for_the_name_a_colleague_is_shown_with(db: Database) -> None:
    """/melding and /zaak name a colleague alike: the newest active grant's name, else (a
    revoked colleague still in a history) the newest grant's."""
    start = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    async with db.begin() as session:
        [noord, zuid] = await sync_wijken(
            session, [WijkSpec("noord", "Noord", -100), WijkSpec("zuid", "Zuid")]
        )

        def grant(who: int, wijk: int, name: str, days: int, revoked: bool = False) -> RoleGrant:
            at = start + dt.timedelta(days=days)
            return RoleGrant(
                telegram_id=who,
                role="wijkagent",
                wijk_id=wijk,
                display_name=name,
                granted_at=at,
                revoked_at=at + dt.timedelta(hours=1) if revoked else None,
            )

        session.add_all(
            [
                grant(1, noord.id, "Sanne", 0),
                grant(1, zuid.id, "Sanne B.", 5, revoked=True),  # newer, but revoked
                grant(2, noord.id, "Wim", 0, revoked=True),
                grant(2, zuid.id, "Wim de Vries", 3, revoked=True),
            ]
        )
    async with db.begin() as session:
        names = await access.display_names(session, [1, 2, 3, None])
    assert names == {1: "Sanne", 2: "Wim de Vries"}


NARROW = ("status=", "category=", "created_at>", "hotspot_id=", "rowid=")


async def test_digest_and_hotspot_queries_read_only_their_period(db: Database) -> None:
    """Every query the digest and the hotspot check make on the signals goes through an index
    that narrows it to the wijk and the period (status, category): none reads the table or a
    whole index (EXPLAIN: SQLite's query plan; PostgreSQL's plan with sequential scans
    priced out, so a plan that still has one had no usable index)."""
    from sqlalchemy import event

    from buurtsignaal.storage.digest import build_digest
    from buurtsignaal.storage.hotspots import HotspotRules, register_signal

    wijk_id = await _wijk_id(db)
    now = dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)
    seen: list[tuple[str, object]] = []

    def remember(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        if "signals" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with db.begin() as session:
            await build_digest(
                session,
                wijk_id,
                since=now - dt.timedelta(days=1),
                until=now,
                now=now,
                response_days=2,
                tz=dt.UTC,
                hotspot_days=14,
            )
        async with db.sessions() as session:
            signal = await create_signal(
                session, _new(wijk_id, location_text="Dorpsstraat 3"), year=2026, now=now
            )
            await register_signal(session, signal, HotspotRules())
            await session.rollback()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
    assert len(seen) >= 7  # new, open (list, count), overdue (count, list, edge), previous, ...

    async with db.engine.connect() as connection:
        for statement, parameters in seen:
            if db.dialect == "sqlite":
                plan = (
                    await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)  # type: ignore[arg-type]
                ).all()
                steps = [str(row[-1]) for row in plan]
                on_signals = [s for s in steps if s.split()[1:2] == ["signals"]]
                assert on_signals, (statement, steps)
                for step in on_signals:
                    # An index search narrowed beyond the wijk (a wijk's whole history is no
                    # better than the table).
                    assert step.startswith("SEARCH signals USING"), (statement, steps)
                    assert any(c in step for c in NARROW), (statement, steps)
            else:
                await connection.exec_driver_sql("SET enable_seqscan = off")
                plan = (
                    await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)  # type: ignore[arg-type]
                ).all()
                text = "\n".join(str(row[0]) for row in plan)
                assert "Seq Scan on signals" not in text, (statement, text)
