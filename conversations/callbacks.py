"""Callback data: every button's payload as a small typed class, written and read in one place.

A payload is ``feature:action[:field...]`` (a flow's button ``<flow>:<nonce>:<step>:<value>``).
Each class says its prefix and its fields, typed with a wire form::

    @dataclass(frozen=True)
    class Show(Button, prefix="cases:show"):
        signal: Id

    Show(12).pack()                        # "cases:show:12" (ValueError beyond 64 bytes)
    Show.parse("cases:show:12")            # Show(signal=12); None for forged or old data
    CallbackQueryHandler(on_show, pattern=Show.pattern)  # anchored, built from the fields
    Show.of(update).signal                 # in the handler: the pressed button, parsed

The pattern and :meth:`Button.parse` are made from the same fields, so what a handler is
routed by is exactly what it can read. Every feature keeps its catch-all (``^cases:``) for
presses no class accepts (old buttons, forged data). The wire forms are the ones the buttons
already in people's chats carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin, get_type_hints

from telegram import Update

from buurtsignaal.storage.digest import DIGEST_ONLY, IMMEDIATE
from buurtsignaal.storage.mediation import CODE_ALPHABET, NAZORG_ANSWERS, OUTCOMES

MAX_BYTES = 64  # Telegram's limit on callback data, in UTF-8 bytes
SEPARATOR = ":"


# --- wire forms of a field ------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """How one field is written in callback data: ``regex`` has no capturing group and never
    matches the separator."""

    regex: str

    def read(self, text: str) -> Any:
        """The field's value from its text (which matched ``regex`` in full)."""
        return text

    def write(self, value: Any) -> str:
        """The text of a value; ValueError when it is not one this field can carry."""
        if not isinstance(value, str) or not re.fullmatch(self.regex, value):
            raise ValueError(f"{value!r} does not match {self.regex}")
        return value


@dataclass(frozen=True)
class Number(Wire):
    """A whole number of at most ``digits`` ASCII digits (an id: 9, fits the database)."""

    regex: str = ""
    digits: int = 9

    def __post_init__(self) -> None:
        # One way to write a number (no leading zeros), so what parses packs to the same data.
        object.__setattr__(self, "regex", f"0|[1-9][0-9]{{0,{self.digits - 1}}}")

    def read(self, text: str) -> int:
        return int(text)

    def write(self, value: Any) -> str:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{value!r} is not a whole number")
        if not 0 <= value < 10**self.digits:
            raise ValueError(f"{value} does not fit in {self.digits} digits")
        return str(value)


@dataclass(frozen=True)
class Choice(Wire):
    """One of a few fixed values (words or small numbers); a ``Literal[...]`` field is one."""

    values: tuple[Any, ...] = ()

    def read(self, text: str) -> Any:
        return next(v for v in self.values if str(v) == text)

    def write(self, value: Any) -> str:
        if value not in self.values or isinstance(value, bool):
            raise ValueError(f"{value!r} is not one of {self.values}")
        return str(value)


def choice(*values: Any) -> Choice:
    """One of a few fixed values."""
    return Choice("|".join(re.escape(str(v)) for v in values), values)


def code(regex: str) -> Wire:
    """A short code of a given form (a nonce, a stage, an invite code)."""
    return Wire(regex)


Id = Annotated[int, Number()]
Nonce = Annotated[str, code("[0-9a-f]{8}")]
YesNo = Literal["yes", "no"]


def _wire_of(hint: Any) -> Wire | None:
    """The wire form of a field's type: given with ``Annotated``, or a ``Literal``'s choice."""
    wire = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Wire)), None)
    if wire is not None:
        return wire
    inner = get_args(hint)[0] if hasattr(hint, "__metadata__") else hint
    if get_origin(inner) is Literal:
        return choice(*get_args(inner))
    return None


# --- the base class -------------------------------------------------------------------------


class Button:
    """Callback data of one kind of button: a frozen dataclass with a prefix and typed fields.

    A field with default None is optional and may only come last (``start:wijken[:<page>]``).
    """

    prefix: ClassVar[str]
    wires: ClassVar[tuple[tuple[str, Wire, bool], ...]]  # name, wire form, optional
    pattern: ClassVar[re.Pattern[str]]

    def __init_subclass__(cls, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = get_type_hints(cls, include_extras=True)
        wires: list[tuple[str, Wire, bool]] = []
        for name in cls.__annotations__:
            wire = _wire_of(hints[name])
            if wire is None:
                raise TypeError(f"{cls.__name__}.{name}: no wire form (Annotated or Literal)")
            if re.compile(wire.regex).groups:
                raise TypeError(f"{cls.__name__}.{name}: {wire.regex} has a capturing group")
            optional = name in cls.__dict__ and cls.__dict__[name] is None
            if wires and wires[-1][2] and not optional:
                raise TypeError(f"{cls.__name__}: only the last fields may be optional")
            wires.append((name, wire, optional))
        cls.prefix, cls.wires = prefix, tuple(wires)
        cls.pattern = cls.matching()

    @classmethod
    def matching(cls, **fixed: Any) -> re.Pattern[str]:
        """The anchored pattern of this class, with some fields pinned to a value (a flow's
        buttons of one step: ``FlowPress.matching(flow="melden", step="wijk")``)."""
        parts = [re.escape(cls.prefix)] if cls.prefix else []
        optional = ""
        for name, wire, is_optional in cls.wires:
            regex = re.escape(wire.write(fixed[name])) if name in fixed else wire.regex
            if is_optional:
                optional += f"(?:{SEPARATOR}({regex}))?"
            else:
                parts.append(f"({regex})")
        return re.compile("^" + SEPARATOR.join(parts) + optional + r"\Z")

    def pack(self) -> str:
        """The callback data; ValueError for a value a field cannot carry or beyond 64 bytes."""
        parts = [self.prefix] if self.prefix else []
        for name, wire, optional in self.wires:
            value = getattr(self, name)
            if value is None and optional:
                continue
            parts.append(wire.write(value))
        data = SEPARATOR.join(parts)
        if len(data.encode("utf-8")) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    @classmethod
    def parse(cls, data: object) -> Self | None:
        """The button of this class that ``data`` is, or None (another kind, forged, old)."""
        if not isinstance(data, str) or len(data.encode("utf-8", "replace")) > MAX_BYTES:
            return None
        found = cls.pattern.match(data)
        if found is None:
            return None
        values: dict[str, Any] = {}
        for (name, wire, _), text in zip(cls.wires, found.groups(), strict=True):
            values[name] = None if text is None else wire.read(text)
        return cls(**values)

    @classmethod
    def of(cls, update: Update) -> Self:
        """The pressed button, in a handler routed here by :attr:`pattern`."""
        query = update.callback_query
        pressed = cls.parse(query.data if query is not None else None)
        if pressed is None:  # only when a handler is registered with another pattern
            raise LookupError(f"not a {cls.__name__} button")
        return pressed


# --- guided flows (conversations/flow) ------------------------------------------------------


@dataclass(frozen=True)
class FlowPress(Button, prefix=""):
    """A flow's button: ``<flow>:<nonce>:<step>:<value>``; the nonce is the draft's."""

    flow: Annotated[str, code("[a-z_]{1,20}")]
    nonce: Nonce
    step: Annotated[str, code("[a-z_]{1,24}")]
    value: Annotated[str, code("[A-Za-z0-9_-]{0,24}")] = ""


@dataclass(frozen=True)
class FlowSwitch(Button, prefix="flow:switch"):
    """The answer to "leave the current flow?"."""

    nonce: Nonce
    choice: Literal["keep", "stop", "back"]


# --- onboarding and language ----------------------------------------------------------------


@dataclass(frozen=True)
class StartWijk(Button, prefix="start:wijk"):
    wijk: Id


@dataclass(frozen=True)
class StartWijken(Button, prefix="start:wijken"):
    page: Annotated[int | None, Number(digits=4)] = None


@dataclass(frozen=True)
class Language(Button, prefix="taal"):
    code: Annotated[str, code("[a-z]{2}")]


# --- privacy, digest, roles -----------------------------------------------------------------


@dataclass(frozen=True)
class Forget(Button, prefix="privacy:forget"):
    answer: YesNo


@dataclass(frozen=True)
class AlertMode(Button, prefix="digest:alerts"):
    wijk: Id
    mode: Annotated[str, choice(IMMEDIATE, DIGEST_ONLY)]


@dataclass(frozen=True)
class Grant(Button, prefix="roles"):
    """Revoke a grant, confirm, or keep it."""

    action: Literal["revoke", "revoke-yes", "keep"]
    grant: Id


# --- reports: the professionals' side (cases), the reporter's (mine), mediation referral -----


@dataclass(frozen=True)
class Report(Button, prefix="cases"):
    """A button on a report: show, take, status menu, note, reply, refer, answer, without note."""

    action: Literal["show", "take", "status", "note", "reply", "refer", "answer", "nonote"]
    signal: Id


@dataclass(frozen=True)
class ReportPage(Button, prefix="cases:page"):
    page: Id


@dataclass(frozen=True)
class ReportStatus(Button, prefix="cases:status"):
    signal: Id
    status: Annotated[str, choice("nieuw", "in_behandeling", "afgehandeld")]


@dataclass(frozen=True)
class FollowUp(Button, prefix="cases:fu"):
    """The reporter's answer to "did it help?" after a report was closed."""

    signal: Id
    answer: Annotated[str, choice("yes", "no", "unknown")]


@dataclass(frozen=True)
class Referral(Button, prefix="mref"):
    """The reporter's answer to a proposal of mediation for their report."""

    signal: Id
    answer: YesNo


@dataclass(frozen=True)
class Mine(Button, prefix="mine"):
    """/mijnmeldingen: add to a report, keep an addition, withdraw (and confirm or not)."""

    action: Literal["add", "keep", "withdraw", "withdraw-yes", "withdraw-no"]
    signal: Id


# --- mediation cases ------------------------------------------------------------------------

# Invite codes of 10 characters; those of 8 made before are still read.
InviteCode = Annotated[str, code(f"[{CODE_ALPHABET}]{{8}}(?:[{CODE_ALPHABET}]{{2}})?")]


@dataclass(frozen=True)
class Mediation(Button, prefix="mcase"):
    """A button on a mediation case."""

    action: Literal[
        "show", "take", "notes", "close", "invite", "mediators", "note", "appt"
    ]  # fmt: skip
    case: Id


@dataclass(frozen=True)
class Stage(Button, prefix="mcase"):
    """Next stage or skip to the agreements, from the stage the case was in when shown."""

    action: Literal["next", "skip"]
    case: Id
    stage: Annotated[str, code("[a-z0-9_]{1,30}")]


@dataclass(frozen=True)
class Undo(Button, prefix="mcase:undo"):
    case: Id
    event: Id


@dataclass(frozen=True)
class Outcome(Button, prefix="mcase:out"):
    case: Id
    outcome: Annotated[str, choice(*OUTCOMES)]


@dataclass(frozen=True)
class PartyMessage(Button, prefix="mcase"):
    """A message to a party (the mediator) or an answer to one (the party)."""

    action: Literal["msg", "ans"]
    case: Id
    party: Annotated[int, choice(1, 2)]


@dataclass(frozen=True)
class AppointmentParties(Button, prefix="mcase:apptp"):
    case: Id
    parties: Annotated[str, choice("1", "2", "12")]


@dataclass(frozen=True)
class Invitation(Button, prefix="mcase:p2"):
    """The neighbour's answer to an invitation (by its code)."""

    code: InviteCode
    answer: Annotated[str, choice("agree", "decline", "call")]


@dataclass(frozen=True)
class Nazorg(Button, prefix="mcase:nz"):
    party: Id
    answer: Annotated[str, choice(*NAZORG_ANSWERS)]


# --- koffie ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Koffie(Button, prefix="koffie"):
    """A button on a koffie date: residents join, leave, get the calendar file, RSVP in the
    group; organisers open a date, cancel it or its series (and confirm), keep it, edit."""

    action: Literal["join", "leave", "ics", "rsvp", "m", "cancel", "cancelseries", "cancel-yes",
            "cancelseries-yes", "keep", "editm", "edits"]  # fmt: skip
    moment: Id


@dataclass(frozen=True)
class Guests(Button, prefix="koffie:guests"):
    moment: Id
    guests: Annotated[int, Number(digits=1)]
