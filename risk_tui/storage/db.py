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


def _create_engine(url: str | URL, *, foreign_keys: bool = True) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed)
    _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


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
    """The schema revision the database is at, or None before the first upgrade."""
    engine = _create_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY)
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
