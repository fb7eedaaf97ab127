"""What a feature declares: its handlers, its commands, its scheduled jobs and its hooks.

Every module in ``conversations/`` exports one :class:`Feature` as ``FEATURE``. ``bot.app``
keeps one ordered tuple of them and registers and schedules everything from it, so a job that
a feature declares cannot be left unscheduled and a handler cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import BaseHandler

if TYPE_CHECKING:
    from buurtsignaal.bot.context import SignalHook
    from buurtsignaal.bot.outbox import OutboxHook

Handlers = Callable[[], Sequence[BaseHandler[Any, Any, Any]]]
Start = Callable[[Any], Awaitable[None]]


def _no_handlers() -> Sequence[BaseHandler[Any, Any, Any]]:
    return ()


@dataclass(frozen=True)
class Job:
    """A job a feature schedules at every start (rebuilt from the database).

    ``name`` is the job's name in the JobQueue; a name ending in ``:<slug>`` is scheduled once
    per configured wijk. ``when`` says in words when it runs (the README lists the same).
    """

    name: str
    when: str

    @property
    def per_wijk(self) -> bool:
        """True for a job scheduled once per wijk (``digest:<slug>``)."""
        return self.name.endswith(":<slug>")

    def names(self, slugs: Sequence[str]) -> list[str]:
        """The JobQueue names this job has with the configured wijken."""
        if self.per_wijk:
            prefix = self.name.removesuffix("<slug>")
            return [prefix + slug for slug in slugs]
        return [self.name]


# The menus a command can be listed in, besides the menu of a professional permission (a
# ``storage.access.Permission``, whose holders see it in their own chat).
PRIVATE_MENU = "private"  # everyone's private chat
GROUP_MENU = "group"  # every group the bot is in
ADMIN_MENU = "admin"  # the administrators named in the configuration


@dataclass(frozen=True)
class Command:
    """A command in Telegram's "/" menu, and in /help and the welcome after an invite.

    ``menu`` is ``PRIVATE_MENU``, ``GROUP_MENU``, ``ADMIN_MENU`` or the ``Permission`` whose
    holders see it; ``order`` places it among that menu's commands (smaller first, then the
    features' order). ``description`` is a msgid, translated when the menu is published.
    """

    name: str
    description: str
    menu: str
    order: int = 0


@dataclass(frozen=True)
class Feature:
    """One feature: everything ``bot.app`` needs to wire it, declared in one place.

    - ``handlers`` builds the feature's handlers for handler group 0, in the order they are
      tried (guided flows among them are combined into one conversation by ``bot.app``);
    - ``commands`` are the feature's commands in the menus (``bot.commands`` builds every
      menu from them);
    - ``start`` schedules the feature's ``jobs`` at start-up, after the database is ready;
    - ``signal_hooks`` react to a newly stored signal in the same unit of work, so features
      react to each other without importing each other;
    - ``outbox_hooks`` run when a message the feature wrote to the outbox with that hook's name
      is settled (sent or refused), in the transaction that settles it (``bot.outbox``).
    """

    name: str
    handlers: Handlers = _no_handlers
    commands: tuple[Command, ...] = ()
    start: Start | None = None
    jobs: tuple[Job, ...] = ()
    signal_hooks: tuple[SignalHook, ...] = ()
    outbox_hooks: Mapping[str, OutboxHook] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.jobs and self.start is None:
            raise ValueError(f"feature {self.name!r} declares jobs but no start function")
