"""SQLAlchemy 2 typed models. Telegram ids are BIGINT, datetimes are timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from buurtsignaal.storage.db import Base


def utcnow() -> dt.datetime:
    """Now, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as UTC; always returns aware UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Wijk(Base):
    """A neighbourhood, mirrored from the configuration at start-up."""

    __tablename__ = "wijken"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    group_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Resident(Base):
    """Someone who talks to the bot. Only what the bot needs: id, language, wijk, and since
    when Telegram refuses messages to them (they blocked the bot or deleted the chat)."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    language: Mapped[str] = mapped_column(String(5), default="nl")
    wijk_id: Mapped[int | None] = mapped_column(ForeignKey("wijken.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    unreachable_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    wijk: Mapped[Wijk | None] = relationship(lazy="joined")


class Signal(Base):
    """An early signal reported by a resident."""

    __tablename__ = "signals"
    __table_args__ = (
        CheckConstraint(
            "status in ('nieuw', 'in_behandeling', 'afgehandeld', 'ingetrokken')", name="status"
        ),
        CheckConstraint("frequency in ('first', 'recurring')", name="frequency"),
        CheckConstraint("occurred in ('now', 'today', 'earlier')", name="occurred"),
        # The digest and the hotspot check read one wijk's signals of a period, by status or
        # by category; each reads only that period (see migration 0013 and test_storage.py).
        Index("ix_signals_wijk_created", "wijk_id", "created_at"),
        Index("ix_signals_wijk_status_created", "wijk_id", "status", "created_at"),
        Index("ix_signals_wijk_category_created", "wijk_id", "category", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="RESTRICT"))
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"), index=True
    )
    category: Mapped[str] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_text: Mapped[str | None] = mapped_column(String(300))
    occurred: Mapped[str] = mapped_column(String(10))
    occurred_text: Mapped[str | None] = mapped_column(String(300))
    frequency: Mapped[str] = mapped_column(String(10))
    photo_file_id: Mapped[str | None] = mapped_column(String(200))
    contactable: Mapped[bool] = mapped_column(Boolean, default=False)
    # Only when the resident chose to be contactable: their Telegram name and @username.
    contact_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="nieuw")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Case handling: who took it (a professional's Telegram id), and the follow-up question.
    assigned_to: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    followup_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    followup_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    followup_answer: Mapped[str | None] = mapped_column(String(10))
    hotspot_id: Mapped[int | None] = mapped_column(
        ForeignKey("hotspots.id", ondelete="SET NULL"), index=True
    )
    # Made by a sleutelfiguur for someone else; the sleutelfiguur is the contact.
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    # The draft this report was sent from ("melden:<resident id>:<nonce>"): sending the same
    # draft again finds this report instead of storing a second one. None for older reports
    # and after /vergeetmij.
    draft_key: Mapped[str | None] = mapped_column(String(60), unique=True)

    wijk: Mapped[Wijk] = relationship(lazy="joined")
    resident: Mapped[Resident | None] = relationship(lazy="joined")
    history: Mapped[list[SignalEvent]] = relationship(
        back_populates="signal", cascade="all, delete-orphan", order_by="SignalEvent.id"
    )


class SignalEvent(Base):
    """One entry of a signal's history: a status change or another recorded event."""

    __tablename__ = "signal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    # A photo the reporter added later (a Telegram file id; removed with the other content).
    photo_file_id: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The typed step this entry came from (an addition, a reply; see conversations.steps):
    # a step handled again (a restart, a repeated send) stores and relays it once.
    step_key: Mapped[str | None] = mapped_column(String(60), unique=True)

    signal: Mapped[Signal] = relationship(back_populates="history")


class ReferenceCounter(Base):
    """Per-prefix sequence for human-readable reference numbers (BS-2026-0042)."""

    __tablename__ = "reference_counters"

    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class BotState(Base):
    """python-telegram-bot persistence: conversation states and user/chat/bot data as JSON."""

    __tablename__ = "bot_state"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


ROLES: tuple[str, ...] = (
    "wijkagent",
    "opbouwwerker",
    "bemiddelaar",
    "organisator",
    "sleutelfiguur",
    "beheerder",
)


class RoleGrant(Base):
    """A professional role of one person in one wijk, granted through an invite."""

    __tablename__ = "roles"
    __table_args__ = (
        CheckConstraint(
            "role in ('wijkagent', 'opbouwwerker', 'bemiddelaar', 'organisator', "
            "'sleutelfiguur', 'beheerder')",
            name="role",
        ),
        # One active grant per person, role and wijk (revoked ones stay as history).
        Index(
            "uq_roles_active",
            "telegram_id",
            "role",
            "wijk_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, index=True)
    role: Mapped[str] = mapped_column(String(20))
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="CASCADE"), index=True)
    # The first name the professional uses in Telegram; shown to colleagues and admins only.
    display_name: Mapped[str] = mapped_column(String(100))
    granted_by: Mapped[int | None] = mapped_column(BigInteger)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[int | None] = mapped_column(BigInteger)
    # A sleutelfiguur's personal link (t.me/<bot>?start=sf-<code>) and how often it brought
    # someone new.
    link_code: Mapped[str | None] = mapped_column(String(20), unique=True)
    link_uses: Mapped[int] = mapped_column(Integer, default=0)

    wijk: Mapped[Wijk] = relationship(lazy="joined")


class Invite(Base):
    """A single-use, expiring deep-link code that grants a role in a wijk."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The SHA-256 of the code (storage.codes); the code itself is only in the link.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="CASCADE"))
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    used_by: Mapped[int | None] = mapped_column(BigInteger)

    wijk: Mapped[Wijk] = relationship(lazy="joined")


class AuditEntry(Base):
    """Who changed whose role, and when. Never deleted by retention."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str | None] = mapped_column(String(20))
    wijk_id: Mapped[int | None] = mapped_column(ForeignKey("wijken.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(String(300))


class DigestDelivery(Base):
    """Per wijk and recipient: up to which moment signals have been delivered in a digest."""

    __tablename__ = "digest_deliveries"

    wijk_id: Mapped[int] = mapped_column(
        ForeignKey("wijken.id", ondelete="CASCADE"), primary_key=True
    )
    recipient: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    covered_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


ALERT_MODES: tuple[str, ...] = ("immediate", "digest")


class AlertPreference(Base):
    """How a professional hears of new signals in one wijk: each at once, or only in the
    daily digest. Without a row the default applies (see storage/digest.py)."""

    __tablename__ = "alert_preferences"
    __table_args__ = (CheckConstraint("mode in ('immediate', 'digest')", name="mode"),)

    wijk_id: Mapped[int] = mapped_column(
        ForeignKey("wijken.id", ondelete="CASCADE"), primary_key=True
    )
    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    mode: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignalAlert(Base):
    """One "new signal" alert to one professional: written with the signal, in the unit of
    work that writes the alert to the outbox (``sent_at``: when it was decided)."""

    __tablename__ = "signal_alerts"

    signal_id: Mapped[int] = mapped_column(
        ForeignKey("signals.id", ondelete="CASCADE"), primary_key=True
    )
    recipient: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Hotspot(Base):
    """Signals of one category recurring near one place; alerted once, shown until calm."""

    __tablename__ = "hotspots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(40))
    # A normalised street name, or None when the hotspot is found by distance.
    place_key: Mapped[str | None] = mapped_column(String(300))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(300))
    first_signal_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_signal_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    alerted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    calmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    wijk: Mapped[Wijk] = relationship(lazy="joined")


MEDIATION_STAGES: tuple[str, ...] = (
    "aangemeld",
    "intake",
    "gesprek_partij_1",
    "gesprek_partij_2",
    "bemiddelingsgesprek",
    "afspraken",
    "nazorg",
    "afgesloten",
)
MEDIATION_OUTCOMES: tuple[str, ...] = ("opgelost", "deels_opgelost", "niet_opgelost", "gestopt")


class MediationCase(Base):
    """A request for buurtbemiddeling. Content is seen by the bemiddelaar role only."""

    __tablename__ = "mediation_cases"
    __table_args__ = (
        CheckConstraint(
            "stage in ('aangemeld', 'intake', 'gesprek_partij_1', 'gesprek_partij_2', "
            "'bemiddelingsgesprek', 'afspraken', 'nazorg', 'afgesloten')",
            name="stage",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(30), default="aangemeld")
    outcome: Mapped[str | None] = mapped_column(String(20))
    # What the conflict is about, from the intake (None once anonymised).
    topic: Mapped[str] = mapped_column(String(30))
    duration: Mapped[str] = mapped_column(String(20))
    talked: Mapped[str] = mapped_column(String(20))
    other_party: Mapped[str | None] = mapped_column(Text)
    # "Wat speelt er?" in the requester's words (behaviour first; None once anonymised, and
    # for cases from before it was asked).
    situation: Mapped[str | None] = mapped_column(Text)
    # Street and house number of the requester and of the other party, when given (optional;
    # for the mediation coordinators only, never shown to the other party or the pair).
    requester_address: Mapped[str | None] = mapped_column(String(120))
    other_address: Mapped[str | None] = mapped_column(String(120))
    # The bemiddelaar who took the case (Telegram id) and the mediators (volunteers' names).
    coordinator: Mapped[int | None] = mapped_column(BigInteger)
    mediators: Mapped[str | None] = mapped_column(String(200))
    # A referral by a professional (always with the resident's consent in the bot).
    referred_by: Mapped[int | None] = mapped_column(BigInteger)
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id", ondelete="SET NULL"))
    # Asked for by a sleutelfiguur on behalf of someone else; the sleutelfiguur is the contact.
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    nazorg_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The intake draft this case was sent from ("bemiddeling:<resident id>:<nonce>"), so the
    # same draft sent again finds this case (see Signal.draft_key).
    draft_key: Mapped[str | None] = mapped_column(String(60), unique=True)

    wijk: Mapped[Wijk] = relationship(lazy="joined")
    parties: Mapped[list[MediationParty]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="MediationParty.number"
    )
    history: Mapped[list[MediationEvent]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="MediationEvent.id"
    )


class MediationParty(Base):
    """One side of a mediation: the requester (1) or the neighbour (2)."""

    __tablename__ = "mediation_parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"), index=True
    )
    # agreed / declined / call_requested / invited (party 2 before answering)
    status: Mapped[str] = mapped_column(String(20))
    contact_via: Mapped[str] = mapped_column(String(10), default="bot")
    phone: Mapped[str | None] = mapped_column(String(40))
    reachable: Mapped[str | None] = mapped_column(String(200))
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The SHA-256 of the neighbour's invite code (storage.codes); the code is only on the card.
    invite_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Failed tries of this code (already used, the requester's own...); locked at a limit.
    invite_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    invite_locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    nazorg_answer: Mapped[str | None] = mapped_column(String(20))
    nazorg_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    case: Mapped[MediationCase] = relationship(back_populates="parties")
    resident: Mapped[Resident | None] = relationship(lazy="joined")


class CodeFailure(Base):
    """A failed try of a neighbour's mediation code by a resident, kept for a day: a person
    gets only a few tries a day (storage.mediation)."""

    __tablename__ = "code_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class MediationAppointment(Base):
    """A talk that was planned; both parties (or one) get a reminder the day before."""

    __tablename__ = "mediation_appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))  # the stage the talk belongs to
    # Which parties: "1", "2" or "1,2".
    parties: Mapped[str] = mapped_column(String(5))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    place: Mapped[str | None] = mapped_column(String(200))
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class MediationEvent(Base):
    """The case history: stage changes, notes, invites, reminders, anonymisation."""

    __tablename__ = "mediation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    from_stage: Mapped[str | None] = mapped_column(String(30))
    to_stage: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The typed step this entry came from (a message to a party, a party's answer): a step
    # handled again stores and relays it once (as SignalEvent.step_key).
    step_key: Mapped[str | None] = mapped_column(String(60), unique=True)

    case: Mapped[MediationCase] = relationship(back_populates="history")


GATHERING_KINDS: tuple[str, ...] = ("koffie", "spreekuur", "wandeling")
REPEATS: tuple[str, ...] = ("none", "weekly", "biweekly")


class Series(Base):
    """A planned gathering: a koffiemoment, or the Koppel's spreekuur or walk; once or repeating."""

    __tablename__ = "series"
    __table_args__ = (
        CheckConstraint("kind in ('koffie', 'spreekuur', 'wandeling')", name="kind"),
        CheckConstraint("repeat in ('none', 'weekly', 'biweekly')", name="repeat"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    place: Mapped[str] = mapped_column(String(200))
    repeat: Mapped[str] = mapped_column(String(10), default="none")
    first_starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer, default=90)
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The /koffieplannen draft it was published from ("plannen:<resident id>:<nonce>"): a
    # draft is published at most once, also when "Publish" is pressed again or the update is
    # handled again after a restart.
    draft_key: Mapped[str | None] = mapped_column(String(80), unique=True)

    wijk: Mapped[Wijk] = relationship(lazy="joined")


class Moment(Base):
    """One date of a series (repeating series are filled in a few weeks ahead)."""

    __tablename__ = "moments"
    __table_args__ = (
        UniqueConstraint("series_id", "occurrence", name="uq_moments_series_occurrence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    # Which date of its series this is (0 for the first): a date is known by its place in the
    # series, not by its start, so a date that was moved or cancelled is never planned again.
    # Negative only for a stray copy an older version planned (see migration 0006).
    occurrence: Mapped[int] = mapped_column(Integer)
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=90)
    place: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The announcement in the wijk's group, edited in place as sign-ups come in.
    group_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    group_message_id: Mapped[int | None] = mapped_column(Integer)
    announced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The short note in the group the day before (spreekuur and walks).
    previewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    series: Mapped[Series] = relationship(lazy="joined")
    wijk: Mapped[Wijk] = relationship(lazy="joined")


class Signup(Base):
    """Someone who comes to a koffiemoment (first name only, for the organiser)."""

    __tablename__ = "signups"
    # One sign-up per person and date: signing up again revives the cancelled one.
    __table_args__ = (
        UniqueConstraint("moment_id", "resident_id", name="uq_signups_moment_resident"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    moment_id: Mapped[int] = mapped_column(ForeignKey("moments.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    first_name: Mapped[str] = mapped_column(String(64))
    guests: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reminded_day_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reminded_morning_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    moment: Mapped[Moment] = relationship(lazy="joined")
    resident: Mapped[Resident] = relationship(lazy="joined")


class GuardCount(Base):
    """How often the profiling guard asked to describe behaviour, per month. No content."""

    __tablename__ = "guard_counts"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


INBOX_STATES: tuple[str, ...] = ("new", "done", "failed")


class InboxUpdate(Base):
    """An update from Telegram, stored before it is confirmed and handled from here.

    ``raw`` is the update as Telegram sent it (with the message text): it is dropped as soon as
    the update is handled, and the row itself soon after (see ``storage.inbox``). A failed update
    keeps it, with the error, until it is removed too.
    """

    __tablename__ = "inbox_updates"
    __table_args__ = (CheckConstraint("state in ('new', 'done', 'failed')", name="state"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The chat it belongs to (None for an update without one): updates of one chat in order.
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    raw: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    state: Mapped[str] = mapped_column(String(10), default="new", index=True)
    # Handling attempts started; one that never finished was cut off by a stop of the process.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """A message the bot sends on its own (a digest, an alert, a reminder, a notice, a relay),
    written in the unit of work that decides to send it and sent from here by one sender.

    ``dedupe_key`` makes a repeated decision add nothing. ``state`` is ``pending`` until
    Telegram accepted the message (``sent``, with its ``message_id``) or refused it for good
    (``failed``, with the error). ``hook`` names what should happen once it is settled (for
    example: store the id of a group announcement that is edited later), with ``hook_data``.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint("state in ('pending', 'sent', 'failed')", name="state"),
        Index("ix_outbox_messages_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    parse_mode: Mapped[str | None] = mapped_column(String(20))
    reply_markup: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    # A photo to send with ``text`` as its caption: the bytes, or a Telegram file id.
    photo: Mapped[bytes | None] = mapped_column(LargeBinary)
    photo_file_id: Mapped[str | None] = mapped_column(String(200))
    hook: Mapped[str | None] = mapped_column(String(60))
    hook_data: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(500))


class FileCopy(Base):
    """The bot's own copy of a photo a resident sent over Signal: the Telegram file id it got
    when it first showed the photo on Telegram. The Signal gateway drops the photo then
    (bot.messenger), and the gateway's file id keeps working through this copy. Removed with
    the last reference to the gateway's file id (storage.messengers.drop_unused_copies)."""

    __tablename__ = "file_copies"

    # The gateway's file id, as stored with a report (``signal:...``).
    file_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    telegram_file_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
