"""Engine and unit-of-work setup. Callers own transactions: ``async with db.begin() as s``.

Under concurrent updates (bot.processor) many units of work run at once:

- **SQLite** allows one writer. Every unit of work of a :class:`Database` starts with
  ``BEGIN IMMEDIATE`` (it takes the write lock at the start, so a transaction that read first
  can never fail halfway with "database is locked" when it writes), and the units of work of
  one process take turns on an asyncio lock, so they wait for each other without polling;
  the busy timeout covers other processes (a CLI command next to the running bot). WAL with
  ``synchronous=NORMAL``: a crash of the application loses nothing, only a power cut may lose
  the last commits.
- **PostgreSQL** runs them side by side, on a pool sized to the concurrency.

Units of work are short: no Bot API call is made while one is open (the rate limiter logs
one that is, see :func:`transaction_open`). Small writes that many tasks make at about the same
time (the inbox counting attempts, the persistence storing each update's state and marking it
handled) share one transaction through :class:`GroupCommit`: a commit per batch, not per task.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
BUSY_TIMEOUT_MS = 5000
DEFAULT_POOL_SIZE = 5

# The task that has a unit of work open in this context (None: none).
_OPEN: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar(
    "buurtsignaal_unit_of_work", default=None
)


def transaction_open() -> bool:
    """Whether the running task has a unit of work open (a network call now would hold it)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return False
    return task is not None and _OPEN.get() is task


Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Many tasks' small writes served together (a group commit).

    ``serve`` takes the items of every task waiting at that moment and writes them (in one
    unit of work of its own), returning one result per item in order. A call returns its own
    item's result once the batch holding it is committed, and raises what the batch raised:
    nobody goes on believing a write happened that did not. One batch at a time; the items
    that arrive meanwhile form the next one.
    """

    def __init__(self, serve: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._serve = serve
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._lock = asyncio.Lock()

    async def __call__(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; its result."""
        mine: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, mine))
        async with self._lock:
            if not mine.done():
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._serve([each for each, _ in batch])
                except BaseException as exc:
                    # The others were not cancelled themselves: to them it is a failed write.
                    failed = exc if isinstance(exc, Exception) else RuntimeError(f"{exc!r}")
                    for _, future in batch:
                        if future is not mine and not future.done():
                            future.set_exception(failed)
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    future.set_result(result)
        return mine.result()


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable Alembic names)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL loses nothing when the bot crashes (only a power cut may undo the
    # last commits) and makes a commit about 20 times cheaper than FULL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_driver_transactions_off(dbapi_connection: Any, _record: Any) -> None:
    # The driver would begin transactions itself, late and deferred; SQLAlchemy's "begin"
    # event below begins them instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(
    url: str,
    *,
    echo: bool = False,
    immediate: bool = False,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout, and with
    ``immediate`` every transaction begins with BEGIN IMMEDIATE (not for migrations, which set
    pragmas outside a transaction). PostgreSQL gets a pool of ``pool_size``."""
    sqlite = url.startswith("sqlite")
    options: dict[str, Any] = {} if sqlite else {"pool_size": pool_size, "max_overflow": 2}
    engine = create_async_engine(url, echo=echo, pool_pre_ping=not sqlite, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if immediate:
            event.listen(engine.sync_engine, "connect", _sqlite_driver_transactions_off)
            event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo, immediate=True, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: the units of work of this process take turns (see the module docstring).
        self._turn: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on error."""
        task = asyncio.current_task()
        if _OPEN.get() is task and task is not None:
            raise RuntimeError("a unit of work is already open in this task; use its session")
        token = _OPEN.set(task)
        try:
            if self._turn is None:
                async with self.sessions() as session, session.begin():
                    yield session
            else:
                async with self._turn, self.sessions() as session, session.begin():
                    yield session
        finally:
            _OPEN.reset(token)

    async def dispose(self) -> None:
        """Close all pooled connections."""
        await self.engine.dispose()
