"""What a database is for: the live bot or the demo. One row, so the two never mix.

``buurtsignaal run`` marks its database "live" and ``buurtsignaal shell`` marks its database
"demo"; each refuses a database the other has marked, so made-up people, roles and reports of
a demo never end up next to real ones.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from buurtsignaal.storage import bot_state

Purpose = Literal["live", "demo"]

_KIND, _KEY = "install", "purpose"


async def claim(session: AsyncSession, purpose: Purpose) -> Purpose | None:
    """Mark the database for ``purpose``; if it is already marked for the other purpose,
    change nothing and return that purpose."""
    current = await bot_state.load_one(session, _KIND, _KEY)
    if current is not None and current != purpose:
        return "demo" if current == "demo" else "live"
    if current is None:
        await bot_state.save(session, _KIND, _KEY, purpose)
    return None
