"""Engines for SQLite and PostgreSQL, and applying the Alembic migrations shipped here.

SQLite is tuned for durability over speed: WAL with `synchronous=FULL` (a committed
snapshot survives `kill -9` and power loss), a 10 s busy timeout, foreign keys on, and
writes that start with `BEGIN IMMEDIATE`, so two writers queue for the lock up front
instead of failing half-way through a transaction. SQLAlchemy emits the BEGIN itself
(the documented recipe for pysqlite/aiosqlite), which also makes DDL transactional.

A read that should not take the write lock asks for a deferred BEGIN with
`await conn.execution_options(**READ_ONLY)`; in WAL mode it then reads a consistent
snapshot while writers carry on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

BUSY_TIMEOUT_MS = 10_000

# Execution option naming the BEGIN flavour on SQLite (ignored on PostgreSQL).
SQLITE_BEGIN_OPTION = "risk_tui_sqlite_begin"
READ_ONLY: dict[str, Any] = {SQLITE_BEGIN_OPTION: "DEFERRED"}


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


async def create_engine(url: str | URL) -> AsyncEngine:
    """An AsyncEngine for `sqlite+aiosqlite:///path` or `postgresql+asyncpg://…`."""
    return _create_engine(url)


class DatabaseUnusable(Exception):
    """The database cannot be used, for a reason found before connecting; str() is one line."""


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names; None for another backend, memory or a `file:` URI."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def require_directory(url: str | URL) -> None:
    """A SQLite file may be created, but never a directory: one that is missing is an error.

    Why: `sqlite+aiosqlite:///tmp/desk.db` (three slashes) names `./tmp/desk.db`, relative
    to where the command runs; creating `./tmp` for it hid the mistake and put the desk's
    evidence where nobody would look for it.
    """
    path = sqlite_file(url)
    if path is None or path.parent.is_dir():
        return
    hint = ""
    if not path.is_absolute():
        hint = (
            f" (a relative path, from {Path.cwd()}; an absolute path takes four slashes: "
            f"sqlite+aiosqlite:////{str(path).lstrip('/')})"
        )
    raise DatabaseUnusable(f"directory {path.parent} does not exist{hint}")


def probe_sqlite(url: str | URL, *, create: bool) -> None:
    """Open a SQLite file once, with the standard library, before any async engine does: a
    file that is not a database, or one that cannot be opened, is `DatabaseUnusable` here.

    Why not let the engine find out: after a failed connect, aiosqlite's worker thread may
    outlive the event loop and print a traceback under the command's one-line error.
    `create`: the file may be created (commands that run the desk); otherwise it must exist
    and is opened read-write, never created.
    """
    path = sqlite_file(url)
    if path is None:
        return
    require_directory(url)
    target = path.resolve().as_uri() + ("" if create else "?mode=rw")
    try:
        connection = sqlite3.connect(target, uri=True)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as problem:
        raise DatabaseUnusable(str(problem)) from None


def _create_engine(url: str | URL, *, foreign_keys: bool = True) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True)
    require_directory(parsed)
    engine = create_async_engine(parsed)
    _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


def _inspecting_engine(url: str | URL) -> AsyncEngine:
    """An engine that reads what is there and changes nothing: on SQLite, the file opened
    read-write but never created (`mode=rw`) and its journal mode left as it is, so a file
    that is not a desk is neither created nor turned into one."""
    path = sqlite_file(url)
    if path is None:
        return _create_engine(url)
    return create_async_engine(f"sqlite+aiosqlite:///{path.resolve().as_uri()}?mode=rw&uri=true")


def _configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver: SQLAlchemy emits it (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(url: str) -> Config:
    """Alembic configured in code: works from an installed package, no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # `%` would be read as configparser interpolation; escape it (passwords may have one).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to `revision`, in one transaction."""
    probe_sqlite(url, create=True)
    # SQLite table rebuilds (Alembic batch mode) must run with foreign keys off; they are
    # checked once at the end instead.
    engine = _create_engine(url, foreign_keys=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, url, revision)
            if conn.dialect.name == "sqlite":
                problems = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if problems:
                    raise RuntimeError(f"migration broke foreign keys: {problems[:5]}")
    finally:
        await engine.dispose()


def _upgrade_sync(connection: Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection  # env.py runs on this connection
    command.upgrade(config, revision)


async def current_revision(url: str) -> str | None:
    """The schema revision the database is at, or None before the first upgrade (or, on
    SQLite, when the file does not exist). Creates and changes nothing."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        require_directory(url)
        return None
    probe_sqlite(url, create=False)
    engine = _inspecting_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            if "alembic_version" not in tables:
                return None
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar_one_or_none()
    finally:
        await engine.dispose()


async def database_login(engine: AsyncEngine) -> str | None:
    """Who the connection is logged in as on PostgreSQL (`session_user`: the person, per
    SPEC.md); None on SQLite, which has no logins (the operator is the OS login)."""
    if engine.dialect.name == "sqlite":
        return None
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT session_user"))
        return str(result.scalar_one())
