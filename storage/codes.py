"""Secret codes (role invites, the neighbour's mediation code) are stored as a hash only.

The link or card carries the code; the database holds its SHA-256, so a copy of the database
(a backup, an export of a table) cannot be used to take a role or answer for a neighbour.
The codes are random and long enough that a plain, unsalted hash is safe to look up by.
"""

from __future__ import annotations

import hashlib


def code_hash(code: str) -> str:
    """The stored form of a code: its SHA-256 as 64 hex digits."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()
