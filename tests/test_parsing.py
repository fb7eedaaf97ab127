"""The one grammar for typed dates, times, phone numbers and references."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from buurtsignaal.storage import parsing

AMS = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("26-11-2026", dt.date(2026, 11, 26)),
        (" 26/11/2026 ", dt.date(2026, 11, 26)),
        ("26.11.2026", dt.date(2026, 11, 26)),
        ("2026-11-26", dt.date(2026, 11, 26)),
        ("26-11-26", dt.date(2026, 11, 26)),
        ("1-2-2027", dt.date(2027, 2, 1)),
        ("31-02-2027", None),
        ("26 november", None),
        ("", None),
        ("01-01-0001x", None),
    ],
)
def test_dates(typed: str, expected: dt.date | None) -> None:
    assert parsing.local_date(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("10:00", dt.time(10)),
        ("10.30", dt.time(10, 30)),
        ("9:05", dt.time(9, 5)),
        ("10u", dt.time(10)),
        ("10u30", dt.time(10, 30)),
        ("10 uur", dt.time(10)),
        ("10", dt.time(10)),
        ("om 11 uur", dt.time(11)),
        ("at 9:30", dt.time(9, 30)),
        ("24:00", None),
        ("10:60", None),
        ("9:5", None),
        ("tien uur", None),
        ("", None),
    ],
)
def test_times(typed: str, expected: dt.time | None) -> None:
    assert parsing.local_time(typed) == expected


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("25:00", True),
        ("10.30", True),
        ("01-01-2027 25:99", True),
        ("31-02-2026", True),
        ("3.12.2026", True),
        ("3/12", True),
        ("om 11 uur", True),
        ("25", True),
        ("Buurthuis De Mussen, Hobbemastraat 56", False),
        ("Hobbemastraat 1-3", False),
        ("Zaal 2.1", False),
        ("☕", False),
    ],
)
def test_what_reads_as_a_date_or_time(typed: str, meant: bool) -> None:
    """A try at a date or a time, valid or not, is not taken for a place name; an address
    with a house number or a range of them is."""
    assert parsing.looks_like_when(typed) is meant


def test_date_and_time_in_the_local_zone() -> None:
    expected = dt.datetime(2027, 3, 28, 14, 0, tzinfo=AMS)  # the day summer time starts
    for typed in ("28-03-2027 14:00", "28-03-2027 om 14.00", "28/03/2027 at 14u", "28-3-2027 14"):
        assert parsing.local_datetime(typed, AMS) == expected, typed
    assert parsing.local_datetime("28-03-2027", AMS) is None
    assert parsing.local_datetime("morgen 14:00", AMS) is None
    assert parsing.local_datetime("28-03-2027 25:00", AMS) is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("06 12345678", "06 12345678"),
        (" +31 (0)6-1234 5678 ", "+31 (0)6-1234 5678"),
        ("0612345", None),  # too few digits
        ("06 1234567890123456", None),  # too many
        ("06-12345678 bel na 5", None),
        ("", None),
    ],
)
def test_phone_numbers(typed: str, expected: str | None) -> None:
    assert parsing.phone_number(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("BS-2026-0042", "BS-2026-0042"),
        ("bs 2026 42", "BS-2026-0042"),
        ("bs2026-42", "BS-2026-0042"),
        ("2025-0042", "BS-2025-0042"),
        ("42", "BS-2027-0042"),
        ("0", None),
        ("BM-2026-0042", None),  # a mediation case is not a signal
        ("42a", None),
        ("9999999", None),
    ],
)
def test_references(typed: str, expected: str | None) -> None:
    assert parsing.reference(typed, prefix="BS", year=2027) == expected


def test_the_same_grammar_for_mediation_cases() -> None:
    assert parsing.reference("bm 2026 7", prefix="BM", year=2027) == "BM-2026-0007"
    assert parsing.reference("7", prefix="BM", year=2027) == "BM-2027-0007"
    assert parsing.reference("BS-2026-0007", prefix="BM", year=2027) is None
