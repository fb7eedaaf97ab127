"""moments are known by their place in the series

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27

A date of a series used to be known by its start time, so moving a date (10:00 to 10:30) made
the next sweep plan the 10:00 date again. Now each date carries its ``occurrence``: 0 for the
first date of the series, 1 for the next, and so on, whatever happens to its time.

Existing dates are numbered in the order they were created (which is the order of the series):
a date still on its planned time (give or take the hour of summer time) gets that place; a
date that was moved keeps the place after the previous one. A second date on a place that is
already taken is such a wrongly re-planned copy: it gets a negative number (outside the
series), and a coming one that nobody signed up for is cancelled.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import buurtsignaal.storage.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEPS = {"weekly": dt.timedelta(weeks=1), "biweekly": dt.timedelta(weeks=2)}
SUMMER_TIME = dt.timedelta(hours=1)

series_table = sa.table(
    "series",
    sa.column("id", sa.Integer()),
    sa.column("repeat", sa.String()),
    sa.column("first_starts_at", buurtsignaal.storage.models.UTCDateTime()),
)
moments_table = sa.table(
    "moments",
    sa.column("id", sa.Integer()),
    sa.column("series_id", sa.Integer()),
    sa.column("starts_at", buurtsignaal.storage.models.UTCDateTime()),
    sa.column("cancelled_at", buurtsignaal.storage.models.UTCDateTime()),
    sa.column("occurrence", sa.Integer()),
)
signups_table = sa.table(
    "signups",
    sa.column("moment_id", sa.Integer()),
    sa.column("cancelled_at", buurtsignaal.storage.models.UTCDateTime()),
)


def _planned_place(starts_at: dt.datetime, first: dt.datetime, step: dt.timedelta) -> int | None:
    """The place in the series when ``starts_at`` is still on a planned time, else None."""
    number = round((starts_at - first) / step)
    off = abs(starts_at - first - number * step)
    return number if number >= 0 and off <= SUMMER_TIME else None


def _number(connection: sa.Connection, now: dt.datetime) -> None:
    """Fill in ``occurrence`` for every existing date (see the module docstring)."""
    signed_up = set(
        connection.scalars(
            sa.select(signups_table.c.moment_id).where(signups_table.c.cancelled_at.is_(None))
        ).all()
    )
    for series_id, repeat, first in connection.execute(sa.select(series_table)).all():
        rows = connection.execute(
            sa.select(moments_table.c.id, moments_table.c.starts_at, moments_table.c.cancelled_at)
            .where(moments_table.c.series_id == series_id)
            .order_by(moments_table.c.id)
        ).all()
        taken: set[int] = set()
        for moment_id, starts_at, cancelled_at in rows:
            step = STEPS.get(repeat)
            planned = _planned_place(starts_at, first, step) if step else 0
            if planned is None:
                number = max(taken, default=-1) + 1  # moved: the place after the previous date
            elif planned not in taken:
                number = planned
            else:
                number = -moment_id  # a copy of a date that had been moved
            values: dict[str, object] = {"occurrence": number}
            if (
                number < 0
                and cancelled_at is None
                and starts_at > now
                and moment_id not in signed_up
            ):
                values["cancelled_at"] = now
            taken.add(number)
            connection.execute(
                sa.update(moments_table).where(moments_table.c.id == moment_id).values(**values)
            )


def upgrade() -> None:
    with op.batch_alter_table("moments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence", sa.Integer(), nullable=True))

    # A migration has no clock service: it runs once, now.
    _number(op.get_bind(), dt.datetime.now(dt.UTC))

    with op.batch_alter_table("moments", schema=None) as batch_op:
        batch_op.alter_column("occurrence", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint("uq_moments_series_start", type_="unique")
        batch_op.create_unique_constraint(
            "uq_moments_series_occurrence", ["series_id", "occurrence"]
        )


def downgrade() -> None:
    with op.batch_alter_table("moments", schema=None) as batch_op:
        batch_op.drop_constraint("uq_moments_series_occurrence", type_="unique")
        batch_op.create_unique_constraint("uq_moments_series_start", ["series_id", "starts_at"])
        batch_op.drop_column("occurrence")
