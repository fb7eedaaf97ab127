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
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.db import Base


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
    """Someone who talks to the bot. Only what the bot needs: id, language, wijk."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    language: Mapped[str] = mapped_column(String(5), default="nl")
    wijk_id: Mapped[int | None] = mapped_column(ForeignKey("wijken.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    wijk: Mapped[Wijk | None] = relationship(lazy="joined")


class Signal(Base):
    """An early signal reported by a resident."""

    __tablename__ = "signals"
    __table_args__ = (
        CheckConstraint("status in ('nieuw', 'in_behandeling', 'afgehandeld')", name="status"),
        CheckConstraint("frequency in ('first', 'recurring')", name="frequency"),
        CheckConstraint("occurred in ('now', 'today', 'earlier')", name="occurred"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    wijk_id: Mapped[int] = mapped_column(ForeignKey("wijken.id", ondelete="RESTRICT"), index=True)
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

    wijk: Mapped[Wijk] = relationship(lazy="joined")
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
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

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
