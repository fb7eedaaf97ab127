"""Pytest plugin: a throwaway PostgreSQL server for the tests, with a fresh database per test.

Load it with ``pytest_plugins = ["tests.pgserver"]`` in ``tests/conftest.py``.

Fixtures
--------
``pg_server`` (session scope)
    Starts one PostgreSQL server for the whole test session (one per xdist worker) with
    pytest-postgresql's :class:`~pytest_postgresql.executors.PostgreSQLExecutor`
    (``pg_ctl initdb`` + ``pg_ctl start -w``), listening on 127.0.0.1 on a free port with
    ``trust`` authentication for the ``postgres`` role, and stops it afterwards.
    Returns a :class:`PgServer`.
``pg_url`` (function scope)
    Creates a new, empty database on that server, returns a SQLAlchemy URL string for it
    (``postgresql+asyncpg://postgres@127.0.0.1:<port>/<db>``) and drops the database after
    the test (terminating connections the test left open).

Every test that uses one of these fixtures gets the ``postgres`` marker automatically,
so ``-m "not postgres"`` deselects them.

Finding the server binaries
---------------------------
``$PG_CTL`` if set, else the newest ``/usr/lib/postgresql/<version>/bin/pg_ctl`` (Debian and
Ubuntu), else ``pg_ctl`` on ``$PATH``; ``initdb`` and ``postgres`` must sit next to it.
If none is found, tests marked ``postgres`` *fail* when ``$CI`` is set (``CI=true``, as
``.ci/run`` does) and are skipped with the reason otherwise.

Running as root
---------------
``postgres``/``initdb`` refuse to run as root, and both developers and CI run the suite as
root. So when ``os.geteuid() == 0`` the plugin does not hand pytest-postgresql the real
``pg_ctl`` but a generated wrapper script (kept in a root-only pytest temp directory) that
does ``cd /`` and then execs the real ``pg_ctl`` as an unprivileged user through
``setpriv --reuid/--regid --clear-groups`` (``runuser -u`` if setpriv is missing).
That user is ``$PGSERVER_USER`` if set, else the ``postgres`` system user (created by
Debian's packages), else ``nobody``. Every ``pg_ctl`` call pytest-postgresql makes
(``--version``, ``initdb``, ``start``, ``status``, ``stop``) goes through the wrapper, so the
cluster is created and run by that user, and exit codes pass straight through.

The data directory, the Unix socket and the server log live in a fresh ``mkdtemp``
directory (in ``$TMPDIR`` if the unprivileged user can reach it, else ``/tmp``) that is
``chown``-ed to that user. pytest's own ``tmp_path_factory`` directories cannot be used
for this, because pytest creates them mode 0700 for root, which is also why this module
builds the executor itself instead of using pytest-postgresql's ``postgresql_proc``
factory. When not root, ``pg_ctl`` is used directly and nothing is chown-ed.

Shutdown: ``pg_ctl stop -m fast``, then mirakuru's kill of every process carrying its
environment marker (setpriv/runuser keep the environment, so this reaches the server
processes too), then the temporary directory is removed. No server outlives the session
unless pytest itself is SIGKILL-ed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import port_for
import pytest
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

__all__ = ["PgServer", "find_pg_ctl", "pg_server", "pg_url", "require_postgres_binaries"]

POSTGRES_MARKER = "postgres"
PG_FIXTURES = frozenset({"pg_server", "pg_url"})
HOST = "127.0.0.1"
SUPERUSER = "postgres"  # database role created by initdb; unrelated to the OS user
# Test-speed settings; fsync is already off because pytest-postgresql starts the server with -F.
_SERVER_OPTIONS = f"-c listen_addresses={HOST} -c synchronous_commit=off -c full_page_writes=off"
_START_ATTEMPTS = 3
_db_counter = itertools.count(1)


# --------------------------------------------------------------------------- discovery


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin/pg_ctl (``9.6`` < ``15`` < ``17``)."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name)) or (0,)


def _complete_bindir(pg_ctl: Path) -> Path | None:
    """Return the real pg_ctl if ``initdb`` and ``postgres`` sit next to it."""
    real = Path(os.path.realpath(pg_ctl))
    for name in ("pg_ctl", "initdb", "postgres"):
        binary = real.parent / name
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            return None
    return real


@cache
def find_pg_ctl() -> Path | None:
    """Locate a usable ``pg_ctl``: ``$PG_CTL``, newest Debian-style install, then ``$PATH``."""
    override = os.environ.get("PG_CTL")
    if override:
        return _complete_bindir(Path(override))
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=_version_key)
    for candidate in reversed(installed):
        found = _complete_bindir(candidate)
        if found is not None:
            return found
    on_path = shutil.which("pg_ctl")
    return _complete_bindir(Path(on_path)) if on_path else None


def _missing_message() -> str:
    override = os.environ.get("PG_CTL")
    where = (
        f"PG_CTL={override} (pg_ctl, initdb and postgres must be executables in one directory)"
        if override
        else "/usr/lib/postgresql/*/bin or PATH (pg_ctl with initdb and postgres next to it)"
    )
    return (
        f"PostgreSQL server binaries not found in {where}. Install the server "
        "(Debian/Ubuntu: apt-get install postgresql) or point PG_CTL at its pg_ctl."
    )


def require_postgres_binaries() -> Path:
    """Return pg_ctl, or fail (``$CI`` set) / skip (locally) the current test."""
    pg_ctl = find_pg_ctl()
    if pg_ctl is not None:
        return pg_ctl
    if _ci():
        pytest.fail(f"{_missing_message()} Not skipping because CI is set.", pytrace=False)
    pytest.skip(f"{_missing_message()} (With CI=true this is a failure.)")


# --------------------------------------------------------------------------- root workaround


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged OS user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    requested = os.environ.get("PGSERVER_USER")
    for name in [requested] if requested else ["postgres", "nobody"]:
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if user.pw_uid != 0:
            return user
    wanted = f"PGSERVER_USER={requested}" if requested else "'postgres' or 'nobody'"
    pytest.fail(
        f"Running as root and no unprivileged user to run PostgreSQL as ({wanted} not found "
        "or is root). Create one, e.g. `useradd --system postgres`.",
        pytrace=False,
    )


def _write_wrapper(directory: Path, pg_ctl: Path, user: pwd.struct_passwd) -> Path:
    """Write a pg_ctl stand-in that drops root privileges and execs the real pg_ctl."""
    setpriv = shutil.which("setpriv")
    runuser = shutil.which("runuser")
    if setpriv:
        command = [
            setpriv,
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
            str(pg_ctl),
        ]
    elif runuser:
        command = [runuser, "-u", user.pw_name, "--", str(pg_ctl)]
    else:
        pytest.fail(
            "Running as root but neither setpriv nor runuser (util-linux) is available "
            "to drop privileges for PostgreSQL.",
            pytrace=False,
        )
    wrapper = directory / "pg_ctl"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"# Generated by tests/pgserver.py: PostgreSQL refuses to run as root,\n"
        f"# so run pg_ctl as {user.pw_name} (uid {user.pw_uid}).\n"
        "cd / || exit 1\n"
        f'exec {shlex.join(command)} "$@"\n'
    )
    wrapper.chmod(0o700)
    return wrapper


def _reachable_by_others(path: Path) -> bool:
    """Whether every directory from / down to path can be traversed by any user."""
    resolved = path.resolve()
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [resolved, *resolved.parents])


def _make_base_dir(user: pwd.struct_passwd | None) -> Path:
    """Create the directory for data, socket and log, owned by the user running the server."""
    parent = Path(tempfile.gettempdir())
    if user is not None and not _reachable_by_others(parent):
        parent = Path("/tmp")
    base = Path(tempfile.mkdtemp(prefix="pgserver-", dir=parent))
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    return base


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class PgServer:
    """Connection facts for the session's PostgreSQL server."""

    host: str
    port: int
    user: str
    password: str | None
    version: str
    datadir: Path
    logfile: Path

    def url(self, database: str, driver: str = "asyncpg") -> str:
        """SQLAlchemy URL string, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/db``."""
        return URL.create(
            f"postgresql+{driver}",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def _janitor(self, database: str, template: str | None = None) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            dbname=database,
            template_dbname=template,
            connection_timeout=10,
        )

    def create_database(self, database: str, template: str | None = None) -> None:
        """Create an empty database, or a copy of ``template`` (synchronous, via psycopg)."""
        self._janitor(database, template).init()

    def drop_database(self, database: str) -> None:
        """Drop a database if it exists, terminating connections still open to it."""
        self._janitor(database).drop()

    @contextlib.contextmanager
    def database(self, prefix: str = "test", template: str | None = None) -> Iterator[str]:
        """Create a uniquely named database (empty, or a copy of ``template``); yield its URL;
        drop it afterwards."""
        name = f"{prefix}_{os.getpid()}_{next(_db_counter)}"
        self.create_database(name, template)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


def _log_tail(logfile: Path, lines: int = 30) -> str:
    try:
        text = logfile.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _shutdown(executor: PostgreSQLExecutor) -> None:
    """Stop the server; then SIGKILL anything the executor started that is still alive."""
    try:
        if executor.running():  # `pg_ctl status`
            executor.stop()  # `pg_ctl stop -m f`, then reaps the launcher
    finally:
        executor.kill()  # kills leftovers carrying mirakuru's environment marker


def _start_server(
    executable: Path, pg_ctl: Path, user: pwd.struct_passwd | None, base: Path
) -> tuple[PostgreSQLExecutor, PgServer]:
    """initdb + start a server in ``base`` on a free port (retrying if the port gets taken)."""
    problem = ""
    for _ in range(_START_ATTEMPTS):
        port = port_for.select_random()
        datadir = base / f"data-{port}"
        logfile = base / f"postgresql-{port}.log"
        executor = PostgreSQLExecutor(
            executable=str(executable),
            host=HOST,
            port=port,
            datadir=str(datadir),
            unixsocketdir=str(base),
            logfile=str(logfile),
            startparams="-w",
            dbname="postgres",
            user=SUPERUSER,
            password=None,
            postgres_options=_SERVER_OPTIONS,
            timeout=60,
        )
        try:
            executor.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                _shutdown(executor)
            problem = (
                f"port {port}: {type(exc).__name__}: {exc}\n--- {logfile} ---\n{_log_tail(logfile)}"
            )
            if port_for.port_is_used(port):
                continue  # lost a race for the port; try another one
            break
        server = PgServer(
            host=HOST,
            port=port,
            user=SUPERUSER,
            password=None,
            version=str(executor.version),
            datadir=datadir,
            logfile=logfile,
        )
        return executor, server
    as_user = f" as user {user.pw_name}" if user is not None else ""
    pytest.fail(f"Could not start PostgreSQL ({pg_ctl}{as_user}), {problem}", pytrace=False)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """One PostgreSQL server for the session (see the module docstring)."""
    pg_ctl = require_postgres_binaries()
    user = _run_as()
    executable = pg_ctl
    if user is not None:
        executable = _write_wrapper(tmp_path_factory.mktemp("pg_ctl-as-user"), pg_ctl, user)

    base = _make_base_dir(user)
    try:
        executor, server = _start_server(executable, pg_ctl, user, base)
        try:
            yield server
        finally:
            _shutdown(executor)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL (``postgresql+asyncpg://...``) of a fresh empty database, dropped after the test."""
    prefix = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:30].strip("_") or "test"
    with pg_server.database(prefix) as url:
        yield url


# --------------------------------------------------------------------------- hooks


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``postgres`` marker unless the project configuration already does."""
    registered = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    if POSTGRES_MARKER not in registered:
        config.addinivalue_line(
            "markers",
            f"{POSTGRES_MARKER}: runs against a real PostgreSQL server started by the tests",
        )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the PostgreSQL fixtures with ``postgres``."""
    for item in items:
        if PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(POSTGRES_MARKER)


@pytest.hookimpl(tryfirst=True)  # before fixtures are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail (CI) or skip (locally) ``postgres`` tests when the server binaries are missing."""
    if item.get_closest_marker(POSTGRES_MARKER) is not None:
        require_postgres_binaries()
