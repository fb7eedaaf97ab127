"""Placeholder: being written in this session (see issue 3)."""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """Handlers of this feature."""
    return []


async def start_jobs(application: Any) -> None:
    """Schedule this feature's jobs (called once at start-up, after the database is ready)."""
