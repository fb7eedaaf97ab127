"""/export: a CSV of the wijk's signals that a spreadsheet opens cleanly, read back with csv."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select

from buurtsignaal.storage.models import AuditEntry, Wijk
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.signals import NewSignal, create_signal
from tests.harness import BotUnderTest, grant_role

AMS = dt.timezone(dt.timedelta(hours=1))


async def seed(bot: BotUnderTest) -> None:
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk).where(Wijk.slug == "schilderswijk"))
        assert wijk is not None
        anna = await ensure_resident(session, 1001, "nl")
        bram = await ensure_resident(session, 1002, "nl")
        rows = [
            (dt.datetime(2026, 11, 2, 21, 15, tzinfo=AMS), anna.id, False, None, "geluidsoverlast"),
            (
                dt.datetime(2026, 11, 10, 9, 0, tzinfo=AMS),
                bram.id,
                True,
                "Bram (@bram)",
                "vernieling",
            ),
            (dt.datetime(2026, 10, 1, 12, 0, tzinfo=AMS), anna.id, False, None, "bekladding"),
        ]
        for when, resident_id, contactable, contact, category in rows:
            await create_signal(
                session,
                NewSignal(
                    wijk_id=wijk.id,
                    resident_id=resident_id,
                    category=category,
                    description='Muziek; "hard" 🎶\nen nog een regel',
                    occurred="earlier",
                    occurred_text="zaterdag",
                    frequency="recurring",
                    contactable=contactable,
                    contact_name=contact,
                    latitude=52.0705 if category == "vernieling" else None,
                    longitude=4.3007 if category == "vernieling" else None,
                    location_text=None if category == "vernieling" else "Hobbemaplein",
                ),
                year=when.year,
                now=when,
            )


async def test_export_opens_cleanly_in_a_spreadsheet(bot: BotUnderTest) -> None:
    await seed(bot)
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "wijkagent")
    reply = await sanne.says("/export 01-11-2026 30-11-2026")
    document = reply.last
    assert document.kind == "document"
    assert document.file_name == "buurtsignaal-schilderswijk-2026-11-01-2026-11-30.csv"
    assert document.plain_text == "2 meldingen van 01-11-2026 tot en met 30-11-2026."
    data = document.file_bytes
    assert data is not None and data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    header, first, second = rows
    assert header[:6] == ["Referentie", "Wijk", "Datum", "Tijd", "Categorie", "Beschrijving"]
    assert header[-1] == "Contact"
    assert first[:5] == ["BS-2026-0001", "Schilderswijk", "2026-11-02", "21:15", "Geluidsoverlast"]
    assert first[5] == 'Muziek; "hard" 🎶\nen nog een regel'  # quoting survives
    assert first[6] == "Hobbemaplein"
    assert first[-1] == ""  # pseudonymous: no contact
    assert second[4] == "Vernieling"
    assert (second[7], second[8]) == ("52,070500", "4,300700")  # Dutch decimal comma
    assert second[-1] == "Bram (@bram)"  # contactable
    assert "1001" not in data.decode("utf-8-sig") and "1002" not in data.decode("utf-8-sig")
    assert bot.db is not None
    async with bot.db.begin() as session:
        [entry] = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "export"))
        ).all()
    assert entry.actor == 2001 and "2 signals" in (entry.detail or "")


async def test_export_in_english_uses_commas(bot: BotUnderTest) -> None:
    await seed(bot)
    john = bot.user(2002, "John", language_code="en")
    await grant_role(bot, john, "opbouwwerker")
    reply = await john.says("/export 2026-10-01 2026-11-30")
    data = reply.last.file_bytes
    assert data is not None
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=","))
    assert rows[0][0] == "Reference" and len(rows) == 4
    assert rows[1][4] == "Graffiti"


async def test_export_refuses_residents_and_explains_bad_dates(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    for command in ("/export", "/export 01-11-2026", "/export gisteren"):
        reply = await anna.says(command)
        assert reply.text == "Sorry, dat kan ik niet voor je doen."
        assert reply.last.kind == "text"
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "wijkagent")
    reply = await sanne.says("/export gisteren")
    assert "Die datums begrijp ik niet" in reply.text
    reply = await sanne.says("/export")  # the last 30 days: nothing yet, still a valid file
    assert reply.last.kind == "document"
    assert reply.last.plain_text.startswith("0 meldingen van ")


async def test_hostile_cells_are_text_not_formulas(bot: BotUnderTest) -> None:
    """CSV injection (OWASP): a cell starting with = + - @ tab or CR gets a leading quote."""
    hostile = ['=HYPERLINK("http://x")', "+31 6 1234", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    assert bot.db is not None
    async with bot.db.begin() as session:
        wijk = await session.scalar(select(Wijk).where(Wijk.slug == "schilderswijk"))
        assert wijk is not None
        for text in hostile:
            await create_signal(
                session,
                NewSignal(
                    wijk_id=wijk.id,
                    resident_id=None,
                    category="anders",
                    description=text,
                    occurred="earlier",
                    occurred_text=None,
                    frequency="first",
                    contactable=True,
                    contact_name=text,
                    location_text=text,
                ),
                year=2026,
                now=dt.datetime(2026, 11, 5, 12, tzinfo=AMS),
            )
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "wijkagent")
    reply = await sanne.says("/export 01-11-2026 30-11-2026")
    data = reply.last.file_bytes
    assert data is not None
    _, *rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert [row[5] for row in rows] == ["'" + text for text in hostile]
    assert [row[6] for row in rows] == ["'" + text for text in hostile]
    assert [row[-1] for row in rows] == ["'" + text for text in hostile]
    assert rows[0][4] == "Anders"  # ordinary cells are untouched


async def test_export_with_absurd_dates_explains_instead_of_crashing(bot: BotUnderTest) -> None:
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "wijkagent")
    for args in ("01-01-0001 31-12-9999", "01-01-1900 01-01-1901", "31-12-9999"):
        reply = await sanne.says(f"/export {args}")
        assert "Die datums begrijp ik niet" in reply.text, args
