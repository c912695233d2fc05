"""The composition root: a desk process built for its role on the configured feed and
database, and the Desk API that a terminal is handed (`risk_tui.desk.api`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from alembic.script import ScriptDirectory

from risk_tui.cli.common import EXIT_DB, Failure, database_errors, no_desk
from risk_tui.config import Settings
from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.clock import utc_now
from risk_tui.core.roles import Actor
from risk_tui.desk.api import DeskApi, DeskRole
from risk_tui.desk.compose import compose_desk
from risk_tui.desk.runtime import Desk
from risk_tui.desk.service import DeskService
from risk_tui.feed.broker import Broker
from risk_tui.feed.client import make_client
from risk_tui.storage import Store, create_engine, upgrade
from risk_tui.storage.db import alembic_config, current_revision, is_sqlite


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def calendars_for(settings: Settings) -> TradingCalendars:
    return TradingCalendars.from_file(settings.calendar.overrides)


def default_role(settings: Settings) -> DeskRole:
    """The whole desk in one process on SQLite; an operator's terminal of a shared desk
    on PostgreSQL, where `risk-tui engine` runs the lifecycle."""
    return DeskRole.EMBEDDED if is_sqlite(settings.db.url) else DeskRole.TERMINAL


async def prepare_database(url: str) -> None:
    """The database a desk runs on, checked (and on SQLite created or upgraded) before
    anything starts: a file that is not a database, one that cannot be opened, a missing
    directory or a PostgreSQL schema not current is one line and exit 4, never a screen
    waiting for ever."""
    with database_errors(url):
        if is_sqlite(url):
            await upgrade(url)  # the embedded default keeps itself current
            return
        revision = await current_revision(url)
    if revision is None:
        raise no_desk(url)
    if revision != head_revision(url):
        raise Failure("database schema is not current: run `risk-tui db upgrade`", EXIT_DB)


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Store]:
    """An up-to-date schema and a Store."""
    url = settings.db.url
    await prepare_database(url)
    with database_errors(url):
        engine = await create_engine(url)
        try:
            yield Store(engine)
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def desk_process(
    settings: Settings,
    calendars: TradingCalendars,
    *,
    role: DeskRole | None = None,
    broker: bool = True,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Desk]:
    """A desk process on the configured feed and database, for its role (by default
    `default_role`), with its client for the broker's orders and messages unless
    `broker=False` (`report`, which sends nothing)."""
    async with make_client(settings.feed) as client, database(settings) as store:
        yield compose_desk(
            role or default_role(settings),
            settings,
            store,
            calendars,
            client,
            broker=Broker(client, deadline=settings.feed.timeout) if broker else None,
            clock=clock,
            monotonic=monotonic,
        )


@contextlib.asynccontextmanager
async def desk_api(
    settings: Settings,
    calendars: TradingCalendars,
    operator: Actor,
    *,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[DeskApi]:
    """The Desk API a terminal is handed: this process's desk, as `operator`."""
    async with desk_process(settings, calendars, clock=clock, monotonic=monotonic) as desk:
        yield DeskService(desk, operator)
