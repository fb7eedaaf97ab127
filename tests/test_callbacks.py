"""Callback data classes: pack and parse round trips, Telegram's 64 bytes, forged data."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buurtsignaal.conversations import callbacks as cb
from buurtsignaal.conversations.callbacks import (
    Button,
    Choice,
    FlowPress,
    Koffie,
    Number,
    Report,
    ReportStatus,
    StartWijken,
    code,
)
from buurtsignaal.conversations.koffie.planning import PLAN
from buurtsignaal.conversations.mediation import FLOW as MEDIATION_FLOW
from buurtsignaal.conversations.report import FLOW as REPORT_FLOW

CLASSES: list[type[Button]] = sorted(
    (
        value
        for value in vars(cb).values()
        if isinstance(value, type) and issubclass(value, Button) and value is not Button
    ),
    key=lambda c: c.__name__,
)


@dataclass(frozen=True)
class Note(Button, prefix="test:note"):
    """A class with free text, to try the byte limit with characters of several bytes."""

    text: Annotated[str, code("[^:]{1,80}")]


# --- round trips and the wire format --------------------------------------------------------


@pytest.mark.parametrize(
    ("button", "data"),
    [
        (Report("show", 12), "cases:show:12"),
        (ReportStatus(3, "afgehandeld"), "cases:status:3:afgehandeld"),
        (cb.ReportPage(0), "cases:page:0"),
        (cb.FollowUp(9, "unknown"), "cases:fu:9:unknown"),
        (cb.Referral(4, "yes"), "mref:4:yes"),
        (cb.Mine("withdraw-yes", 5), "mine:withdraw-yes:5"),
        (cb.Mediation("mediators", 7), "mcase:mediators:7"),
        (cb.Stage("next", 7, "intake"), "mcase:next:7:intake"),
        (cb.Undo(7, 88), "mcase:undo:7:88"),
        (cb.Outcome(7, "opgelost"), "mcase:out:7:opgelost"),
        (cb.PartyMessage("ans", 7, 2), "mcase:ans:7:2"),
        (cb.AppointmentParties(7, "12"), "mcase:apptp:7:12"),
        (cb.Invitation("ABCDE23456", "call"), "mcase:p2:ABCDE23456:call"),
        (cb.Invitation("ABCDE234", "agree"), "mcase:p2:ABCDE234:agree"),
        (cb.Nazorg(3, "beter"), "mcase:nz:3:beter"),
        (Koffie("cancelseries-yes", 2), "koffie:cancelseries-yes:2"),
        (cb.Guests(2, 3), "koffie:guests:2:3"),
        (cb.Grant("revoke-yes", 6), "roles:revoke-yes:6"),
        (cb.AlertMode(1, "immediate"), "digest:alerts:1:immediate"),
        (cb.Forget("no"), "privacy:forget:no"),
        (cb.StartWijk(1), "start:wijk:1"),
        (StartWijken(), "start:wijken"),
        (StartWijken(2), "start:wijken:2"),
        (cb.Language("tr"), "taal:tr"),
        (FlowPress("melden", "0123abcd", "summary", "send"), "melden:0123abcd:summary:send"),
        (FlowPress("melden", "0123abcd", "description"), "melden:0123abcd:description:"),
        (cb.FlowSwitch("0123abcd", "keep"), "flow:switch:0123abcd:keep"),
    ],
)
def test_the_wire_format_is_the_one_in_peoples_chats(button: Button, data: str) -> None:
    """Buttons sent before this module keep working: the same bytes, read back the same."""
    assert button.pack() == data
    assert type(button).parse(data) == button
    assert type(button).pattern.match(data)


def test_a_flow_button_is_parsed_with_its_fields() -> None:
    press = FlowPress.parse("bemiddeling:0123abcd:wijk:page-2")
    assert press == FlowPress("bemiddeling", "0123abcd", "wijk", "page-2")
    pattern = FlowPress.matching(flow="bemiddeling", step="wijk")
    assert pattern.match("bemiddeling:0123abcd:wijk:3")
    assert not pattern.match("bemiddeling:0123abcd:topic:3")
    assert not pattern.match("melden:0123abcd:wijk:3")


def test_every_choice_of_every_flow_fits() -> None:
    """Every button a flow can show packs within the limits and parses back."""
    for flow in (REPORT_FLOW, MEDIATION_FLOW, PLAN):
        for step in flow.order:
            values = [*flow.choices.get(step, {}), "keep", "skip", f"page-{10**8}", "9" * 9]
            values += [f"edit-{s}" for s in flow.order]
            for value in values:
                data = flow.data({"nonce": "0123abcd"}, step, value)
                assert FlowPress.parse(data) == FlowPress(flow.name, "0123abcd", step, value)
                assert flow.pattern(step).match(data)


# --- 64 bytes -------------------------------------------------------------------------------


def test_pack_refuses_more_than_64_bytes() -> None:
    assert Note("x" * 54).pack() == "test:note:" + "x" * 54  # 64 bytes
    with pytest.raises(ValueError, match="64 bytes"):
        Note("x" * 55).pack()


def test_the_limit_is_counted_in_utf8_bytes() -> None:
    """Telegram counts bytes: 18 characters of 3 bytes are 54, 19 are too many."""
    assert len(Note("€" * 18).pack().encode()) == 64
    with pytest.raises(ValueError, match="64 bytes"):
        Note("€" * 19).pack()
    assert Note("🙂" * 13 + "ab").pack()  # 4 bytes each: 10 + 52 + 2 = 64
    with pytest.raises(ValueError, match="64 bytes"):
        Note("🙂" * 13 + "abc").pack()
    assert Note.parse("test:note:" + "€" * 19) is None  # never read what could not be sent


def test_pack_refuses_values_a_field_cannot_carry() -> None:
    refused: tuple[Callable[[], str], ...] = (
        lambda: Report("show", 10**9).pack(),
        lambda: Report("show", -1).pack(),
        lambda: Report("show", True).pack(),
        lambda: Report("shows", 1).pack(),  # type: ignore[arg-type]
        lambda: cb.Guests(1, 10).pack(),
        lambda: FlowPress("melden", "NOTHEX!!", "wijk", "1").pack(),
        lambda: FlowPress("melden", "0123abcd", "wijk", "a:b").pack(),
        lambda: cb.PartyMessage("msg", 1, 3).pack(),
    )
    for bad in refused:
        with pytest.raises(ValueError):
            bad()


# --- forged and old data --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "",
        "cases",
        "cases:show",
        "cases:show:",
        "mine:show:1",  # another feature's prefix
        "cases:shows:1",  # another action
        "cases:show:x",  # not a number
        "cases:show:-1",
        "cases:show:1.0",
        "cases:show:١٢",  # digits, but not ASCII ones
        "cases:show:１",
        "cases:show:1234567890",  # beyond 9 digits
        "cases:show:007",  # one number, one way of writing it
        "cases:show:" + "9" * 60,
        "cases:show:1:2",  # a field too many
        "cases:show:1:",
        "cases:show:1\n",
        " cases:show:1",
        "CASES:SHOW:1",
    ],
)
def test_forged_data_parses_to_none(data: str) -> None:
    assert Report.parse(data) is None
    assert not Report.pattern.match(data)


def test_other_forgeries() -> None:
    assert StartWijken.parse("start:wijken:") is None
    assert StartWijken.parse("start:wijken:12345") is None
    assert ReportStatus.parse("cases:status:1:ingetrokken") is None  # not a status one sets
    assert cb.Invitation.parse("mcase:p2:ABCDE2345:agree") is None  # 9 characters
    assert cb.Invitation.parse("mcase:p2:abcde23456:agree") is None
    assert cb.Invitation.parse("mcase:p2:ABCDE2345O:agree") is None  # no O in codes
    assert FlowPress.parse("melden:0123abcd:wijk:1:2") is None
    assert FlowPress.parse("melden:0123ABCD:wijk:1") is None
    assert Report.parse(None) is None
    assert Report.parse(b"cases:show:1") is None


def test_classes_do_not_read_each_others_data() -> None:
    """No payload is two kinds of button, so a handler never gets another's press."""
    samples = [example(cls) for cls in CLASSES]
    for cls in CLASSES:
        for data in samples:
            parsed = cls.parse(data)
            assert (parsed is not None) == (type(parsed) is cls and parsed.pack() == data)
    for data in samples:
        assert sum(cls.parse(data) is not None for cls in CLASSES) == 1, data


CODES = {
    ("Language", "code"): "nl",
    ("Invitation", "code"): "ABCDE23456",
    ("FlowPress", "nonce"): "0123abcd",
    ("FlowSwitch", "nonce"): "0123abcd",
}


def example(cls: type[Button]) -> str:
    """Callback data of ``cls`` with the first value of each field."""
    values: dict[str, Any] = {}
    for name, wire, optional in cls.wires:
        if optional:
            continue
        if isinstance(wire, Choice):
            values[name] = wire.values[0]
        elif isinstance(wire, Number):
            values[name] = 1
        else:
            values[name] = CODES.get((cls.__name__, name), "ab")
    return cls(**values).pack()


def test_every_class_has_an_anchored_pattern_of_its_own() -> None:
    patterns = [cls.pattern.pattern for cls in CLASSES]
    assert len(set(patterns)) == len(patterns)
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith(r"\Z")


def test_a_class_must_say_how_each_field_is_written() -> None:
    with pytest.raises(TypeError, match="no wire form"):

        @dataclass(frozen=True)
        class Bad(Button, prefix="test:bad"):
            value: int

    with pytest.raises(TypeError, match="optional"):

        @dataclass(frozen=True)
        class Gap(Button, prefix="test:gap"):
            first: Annotated[int | None, Number()] = None
            second: Literal["a", "b"] = "a"


# --- properties -----------------------------------------------------------------------------


def values_of(cls: type[Button]) -> st.SearchStrategy[Button]:
    """Any instance of ``cls`` whose fields are values the wire form can carry."""
    drawn: dict[str, st.SearchStrategy[Any]] = {}
    for name, wire, optional in cls.wires:
        strategy: st.SearchStrategy[Any]
        if isinstance(wire, Choice):
            strategy = st.sampled_from(wire.values)
        elif isinstance(wire, Number):
            strategy = st.integers(0, 10**wire.digits - 1)
        else:
            strategy = st.from_regex(re.compile(wire.regex), fullmatch=True)
        drawn[name] = st.none() | strategy if optional else strategy
    return st.builds(cls, **drawn)


@given(st.one_of([values_of(cls) for cls in CLASSES]))
def test_parse_of_pack_is_the_button(button: Button) -> None:
    parts = [button.prefix] if button.prefix else []
    values = [(wire, getattr(button, name)) for name, wire, _ in button.wires]
    parts += [wire.write(value) for wire, value in values if value is not None]
    written = ":".join(parts)
    if len(written.encode()) > 64:  # long codes drawn together: such a button is never sent
        with pytest.raises(ValueError, match="64 bytes"):
            button.pack()
        return
    data = button.pack()
    assert type(button).parse(data) == button
    assert list(vars(button)) == [name for name, _, _ in button.wires]


@given(st.text(max_size=80) | st.from_regex(r"\A(cases|mcase|koffie|mine|melden):.{0,40}\Z"))
def test_parse_of_any_text_never_raises(data: str) -> None:
    for cls in CLASSES:
        parsed = cls.parse(data)
        if parsed is not None:
            assert parsed.pack() == data
