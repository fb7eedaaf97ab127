"""What the two professional desks do the same way: signals (/open and /melding, in
``conversations.cases``) and mediation cases (/zaken and /zaak, in
``conversations.mediation_cases``), and the residents' side of them (/mijnmeldingen, the
answer to a check-in question).

The outline is written once here; each desk passes what differs (its permission, how it
finds an item, its texts):

- :func:`handled`: the one rule for what a professional may act on: an item of the desk in a
  wijk where they hold the desk's permission; another wijk's item is answered exactly as one
  that does not exist.
- :func:`by_reference`: ``/melding <nr>`` and ``/zaak <nr>``: the reference typed after the
  command (read by :mod:`storage.parsing`), looked up under that rule, with the answers for
  "not allowed", "which one?" and "cannot find".
- :func:`pressed_on`: a button and the item it names, refused in one way when there is none.
- :func:`check_in_answered`: how a resident's answer to a check-in question (is it solved?
  how are things now?) ends: refused, already answered, or thanked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.i18n import Translator, escape
from buurtsignaal.conversations import steps
from buurtsignaal.conversations.ui import not_allowed, shorten
from buurtsignaal.storage import access
from buurtsignaal.storage.access import Permission, Person

TYPED_SHOWN = 40  # characters of an unreadable reference repeated in "cannot find"


class InWijk(Protocol):
    """An item of a desk: it belongs to one wijk."""

    @property
    def wijk_id(self) -> int: ...


class ReadReference(Protocol):
    """A desk's reference grammar (``storage.cases.parse_reference``, ...)."""

    def __call__(self, typed: str, /, *, year: int) -> str | None: ...


Item = TypeVar("Item", bound=InWijk)
T = TypeVar("T")


async def handled(
    session: AsyncSession,
    context: BuurtContext,
    telegram_id: int,
    permission: Permission,
    load: Callable[[], Awaitable[Item | None]],
) -> tuple[Person, Item | None]:
    """The person, and the item ``load`` finds only when they hold ``permission`` in its
    wijk (nothing is loaded for someone without the permission anywhere)."""
    person = await access.person(session, telegram_id, context.settings.admins)
    if not person.may(permission):
        return person, None
    item = await load()
    if item is None or not person.may(permission, item.wijk_id):
        return person, None
    return person, item


@dataclass(frozen=True)
class Lookup(Generic[Item]):
    """How a desk's command finds one of its items by the reference typed after it."""

    permission: Permission
    read: ReadReference
    find: Callable[[AsyncSession, str], Awaitable[Item | None]]
    which: Callable[[Translator], str]  # nothing typed: which one? (with an example)
    missing: Callable[[Translator, str], str]  # (t, reference): not among your wijk's


async def by_reference(update: Update, context: BuurtContext, lookup: Lookup[Item]) -> Item | None:
    """The item named after the command (``/melding 12``, ``/zaak BM-2026-0003``) among the
    wijken where this person holds the desk's permission; None once the person has been told
    why not (not allowed, nothing typed, not found)."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    t = context.t
    typed = " ".join(context.args or []).strip()
    year = context.now.astimezone(context.settings.tz).year
    reference = lookup.read(typed, year=year) if typed else None
    async with context.db.begin() as session:
        person, item = await handled(
            session,
            context,
            user.id,
            lookup.permission,
            lambda: lookup.find(session, reference) if reference else _nothing(),
        )
    if not person.may(lookup.permission):
        await message.reply_text(not_allowed(t))
    elif not typed:
        await message.reply_text(lookup.which(t))
    elif item is None:
        await message.reply_text(lookup.missing(t, reference or shorten(typed, TYPED_SHOWN)))
    return item


async def _nothing() -> None:
    return None


async def pressed_on(
    update: Update,
    context: BuurtContext,
    load: Callable[[AsyncSession, int], Awaitable[T | None]],
) -> tuple[CallbackQuery, int, T] | None:
    """The pressed button, the presser and what it acts on (``load(session, presser)``, in a
    unit of work of its own); None after the one refusal when the button may not be used
    (outside a private chat, or nothing the presser may act on)."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return None
    query, user_id = pressed
    async with context.db.begin() as session:
        item = await load(session, user_id)
    if item is None:
        await steps.refuse(query, context)
        return None
    return query, user_id, item


async def check_in_answered(
    query: CallbackQuery,
    context: BuurtContext,
    *,
    found: bool,
    counted: bool,
    label: str,
    thanks: Callable[[Translator], str],
) -> None:
    """The end of a resident's answer to a check-in question: refused when it is not theirs
    (``found``), "already answered" when it did not count, else the buttons are spent and the
    answer (``label``, a msgid) is confirmed with ``thanks``."""
    t = context.t
    if not found:
        await steps.refuse(query, context)
        return
    if not counted:
        await query.answer(
            t("You have already answered this question. Thank you!"), show_alert=True
        )
        return
    await query.answer()
    await steps.spend(query)
    await context.bot.send_message(query.from_user.id, f"✔️ {escape(t(label))}\n{thanks(t)}")
