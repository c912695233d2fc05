"""What each command does, once the CLI has parsed it and loaded the settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import ipaddress
import logging
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING

import platformdirs
from sqlalchemy.exc import SQLAlchemyError

from risk_tui.cli.common import (
    EXIT_CONFIG,
    EXIT_DB,
    EXIT_FEED,
    EXIT_OK,
    EXIT_VERIFY,
    Failure,
    database_errors,
    demo_db_path,
    first_line,
    os_login,
    require_desk,
    safe_url,
    settings_from,
    terminal_binding_ids,
)
from risk_tui.cli.compose import (
    calendars_for,
    desk_api,
    desk_process,
    head_revision,
    prepare_database,
)
from risk_tui.cli.report import DEFAULT_WIDTH, render
from risk_tui.config import Settings
from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.clock import utc_now
from risk_tui.core.margin import is_monitored
from risk_tui.core.roles import Actor, Role
from risk_tui.core.text import sanitize
from risk_tui.desk.api import DeskRole
from risk_tui.desk.heartbeat import DESK
from risk_tui.desk.runtime import Desk
from risk_tui.desk.service import DeskService
from risk_tui.feed.client import FeedAuthError, FeedUnavailable
from risk_tui.sim.app import SimState, create_app
from risk_tui.sim.orders import MarketHours, exchange_hours
from risk_tui.sim.server import listen, serve_on_loopback, serving
from risk_tui.storage import create_engine, run_verify, upgrade
from risk_tui.storage.db import current_revision, is_sqlite
from risk_tui.storage.election import Leadership, LeadershipLost

if TYPE_CHECKING:
    from risk_tui.core.export import Period

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def polled_desk(settings: Settings) -> AsyncIterator[Desk]:
    """The embedded desk after one successful poll through the robust poller (it opens and
    ends calls with their snapshots, as any poll does), or a Failure once stale_after
    runs out: what `report` and `cure` print from."""
    calendars = calendars_for(settings)
    async with desk_process(
        settings, calendars, role=DeskRole.EMBEDDED, broker=False
    ) as desk:
        await desk.start()
        limit = settings.feed.stale_after
        try:
            result = await desk.poller.poll(give_up_after=limit)
        except FeedAuthError as denied:
            raise Failure(str(denied), EXIT_FEED) from None
        except FeedUnavailable as down:
            raise Failure(f"no successful feed poll within {limit:g}s: {down}", EXIT_FEED) from None
        if result.rejected:
            print(
                f"risk-tui: {result.rejected} feed records rejected (see the log)", file=sys.stderr
            )
        yield desk


async def report(settings: Settings, fmt: str) -> int:
    """One poll, then the current warnings."""
    async with polled_desk(settings) as desk:
        view = desk.engine.view
    # The terminal's width (COLUMNS first); piped, the table keeps every column.
    width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    sys.stdout.write(render(view, fmt, width=width))
    return EXIT_OK


async def cure(settings: Settings, account_id: str, fmt: str, operator: str) -> int:
    """One poll, then the desk's least-value cure of `account_id` (`DeskApi.cure`): a
    query, asked as a viewer would."""
    from risk_tui.cli.cure import render as render_cure

    async with polled_desk(settings) as desk:
        api = DeskService(desk, Actor(operator, Role.VIEWER))
        entry = api.accounts([account_id]).get(account_id)
        if entry is None:
            raise Failure(f"cure: no account {account_id} in the feed", EXIT_CONFIG)
        proposal = api.cure(account_id)
        if proposal is None:
            raise _no_cure(desk, account_id)
        as_of = desk.engine.view.as_of
    sys.stdout.write(render_cure(proposal, fmt, entry.client_name, as_of))
    return EXIT_OK


def _no_cure(desk: Desk, account_id: str) -> Failure:
    """Why the desk has no cure for a known account: not monitored (a usage error), or
    its figures cannot be computed from the feed."""
    account = desk.engine.book.accounts[account_id]
    if not is_monitored(account):
        return Failure(
            f"cure: {account_id} is a {account.kind.value} account: never in margin call",
            EXIT_CONFIG,
        )
    result = desk.engine.results.get(account_id)
    reason = (result.incomplete if result is not None else None) or "no figures"
    return Failure(f"cure: {account_id}: its figures cannot be computed ({reason})", EXIT_FEED)


async def run_engine(settings: Settings) -> int:
    """`risk-tui engine`: the desk's lifecycle without a screen, on PostgreSQL.

    Standby (with a heartbeat, so terminals can count it) until it holds the desk's lock,
    then the desk: polls, calls and snapshots, daily jobs, auto-liquidation, orders. It
    exits — code 4, one line — when the lock's connection is lost, so that it never acts
    beside the engine that took over; run it under a supervisor that starts it again
    (it comes back as standby). SIGTERM and ctrl-c stop it cleanly.
    """
    url = settings.db.url
    if is_sqlite(url):
        raise Failure(
            "the engine shares a desk through PostgreSQL: give --db postgresql+asyncpg://… "
            "(on SQLite, `risk-tui run` runs the whole desk in one process)",
            EXIT_CONFIG,
        )
    await prepare_database(url)  # before anything starts: one line and exit 4 if unusable
    log_to_stderr()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # not on Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    engine = asyncio.create_task(_engine(settings))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((engine, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not engine.done():
        log.info("SIGTERM: stopping")
        engine.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await engine
        return EXIT_OK
    stopping.cancel()
    return engine.result()


async def _engine(settings: Settings) -> int:
    url = settings.db.url
    calendars = calendars_for(settings)
    leadership = Leadership(url, DESK)
    with database_errors(url):
        async with desk_process(settings, calendars, role=DeskRole.ENGINE) as desk:
            heartbeat = desk.heartbeat
            assert heartbeat is not None  # an engine's desk beats
            standby = asyncio.create_task(heartbeat.beats("standby"))
            try:
                await leadership.acquire()
            finally:
                standby.cancel()
            log.info("active engine %s", heartbeat.engine_id)
            try:
                await desk.start()
                await desk.recover()
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(desk.run())
                    tasks.create_task(leadership.watch())
            except* LeadershipLost as lost:
                raise Failure(
                    f"{lost.exceptions[0]}; stopping so that only the new active engine acts",
                    EXIT_DB,
                ) from None
            finally:
                await leadership.release()
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await heartbeat.beat("stopped")
    return EXIT_OK


def log_to_stderr() -> None:
    """A headless process: logs go to stderr, for its supervisor's journal."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per poll


def log_to_file() -> Path:
    """The TUI owns the terminal: logs go to a file, never to the screen."""
    path = Path(platformdirs.user_log_dir("risk-tui")) / "risk-tui.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return path


async def run_tui(settings: Settings, operator: str, *, notice: str | None = None) -> int:
    """The terminal on a configured desk (`risk-tui run`); `notice` is said at start."""
    from risk_tui.app import RiskApp

    url = settings.db.url
    await prepare_database(url)  # before the screen: one line and exit 4 if unusable
    log_to_file()
    calendars = calendars_for(settings)
    app = RiskApp(
        settings,
        operator,
        lambda actor: desk_api(settings, calendars, actor),
        calendars=calendars,
        notice=notice,
    )
    await app.run_async()
    stopped = app.desk_error
    if stopped is not None:  # the desk could not run: say why, never exit 0 in silence
        if isinstance(stopped, Failure):
            raise stopped
        with database_errors(url):
            raise stopped
        raise Failure(f"the desk stopped: {first_line(stopped)}", EXIT_DB)
    return app.return_code or EXIT_OK


async def fresh_demo_database(given: str | None) -> tuple[str, str]:
    """The demo's database, new for this run, and the line that says so.

    Why new: the demo's simulator starts its crash day over on every run (its market,
    clients' positions and fills live in memory only), so the calls a previous run left
    open would meet a market that was reset, and end as "met / prices up" on prices that
    never rose. Resuming the simulated day would need the simulator's whole state saved
    beside the desk's; a demo is better served by saying it starts anew. Only the demo's
    own file is replaced (and its directory, the demo's own, created); a database given
    with --db must not hold a desk yet.
    """
    if given is not None:
        with database_errors(given):
            revision = await current_revision(given)
        if revision is not None:
            raise Failure(
                f"demo: {safe_url(given)} already holds a desk; the demo's simulated market "
                "starts anew on every run and would end its calls: give a new database, or "
                "leave out --db",
                EXIT_CONFIG,
            )
        return given, f"Demo: a new simulated crash day on a new database ({safe_url(given)})."
    path = demo_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, *(path.with_name(path.name + tail) for tail in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    notice = (
        f"Demo: a new simulated crash day on a fresh database ({path}); the simulator's "
        "market starts over on every run, so the last run's calls are not carried over."
    )
    return f"sqlite+aiosqlite:///{path}", notice


@contextlib.asynccontextmanager
async def serve_simulator(state: SimState) -> AsyncIterator[str]:
    """The simulator on a free loopback port for the life of the block; yields its URL.

    Lifespan on: the app's lifespan runs the simulator's ticker.
    """
    async with serve_on_loopback(create_app(state)) as url:
        yield url


DEMO_ACCOUNTS = 2_000  # a lively desk that still starts in about a second


async def demo(args: argparse.Namespace, operator: str) -> int:
    """The desk on the simulator in-process (a crash day: sell-off and recalls), SQLite, the
    local user as a trader unless configured otherwise (`[operators]`, e.g.
    RISK_TUI_OPERATORS__ALICE=supervisor); `--format` prints one report instead of the TUI."""
    from risk_tui.sim.scenarios import build_state

    if not args.format:  # the terminal will start: its [keys] are checked before anything
        settings_from(args, binding_ids=terminal_binding_ids())
    db_url, notice = await fresh_demo_database(args.db)
    state = build_state(
        "crash",
        accounts=DEMO_ACCOUNTS,
        seed=args.seed,
        market_hours=sim_market_hours(always_open=args.always_open),
    )
    notice = f"{notice} {_market_words(state)}" if notice else _market_words(state)
    async with serve_simulator(state) as url:
        settings = settings_from(args, feed_url=url, db_url=db_url)
        settings = settings.model_copy(
            update={"operators": {operator: Role.TRADER, **settings.operators}}
        )
        if args.format:
            return await report(settings, args.format)
        return await run_tui(settings, operator, notice=notice)


async def sim(
    host: str,
    port: int,
    token: str,
    *,
    scenario: str = "seed",
    accounts: int | None = None,
    seed: int = 0,
    tick_interval: float = 1.0,
    always_open: bool = False,
) -> int:
    """The simulator alone: build the book, listen, say where in one line, serve until
    interrupted."""
    from risk_tui.sim.scenarios import build_state

    if scenario == "seed" and accounts:
        raise Failure(
            "sim: --accounts needs a generated scenario (calm, selloff, recall, crash, faults)",
            EXIT_CONFIG,
        )
    started = time.monotonic()
    state = build_state(
        scenario,
        accounts=accounts,
        seed=seed,
        token=token,
        tick_interval=tick_interval or None,
        market_hours=sim_market_hours(always_open=always_open),
    )
    built = time.monotonic() - started
    try:
        sock = listen(host, port)
    except OSError as problem:
        raise Failure(
            f"sim: cannot listen on {host}:{port}: {problem.strerror or problem}", EXIT_CONFIG
        ) from None
    async with serving(create_app(state), sock) as task:
        print(_sim_banner(state, sock, host, built), flush=True)
        await task  # until uvicorn's own signal handling stops it
    return EXIT_OK


def _sim_banner(state: SimState, sock: socket.socket, host: str, built: float) -> str:
    """The one line `risk-tui sim` prints: where, what, and how it was built."""
    bound_port = sock.getsockname()[1]
    where = f"[{host}]" if ":" in host else host
    accounts = state.store.count("accounts")
    interval = f"a tick every {state.tick_interval:g}s" if state.tick_interval else "no ticker"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    exposed = "" if loopback else " — not loopback: reachable from other machines"
    auth = ", bearer token required" if state.token else ""
    return (
        f"risk-tui sim: serving FEED.md at http://{where}:{bound_port} — scenario "
        f"{state.scenario.name}, {accounts:,} accounts (random seed {state.seed}), {interval}"
        f"{auth}, {_market_words(state)[:-1]}, built in {built:.1f}s{exposed}"
    )


def sim_market_hours(*, always_open: bool) -> MarketHours | None:
    """When the simulator fills orders: in each market's session by its exchange calendar
    (the packaged one), or at any hour (`--always-open`, a 24-hour test market)."""
    if always_open:
        return None
    return exchange_hours(TradingCalendars.from_file())


def _market_words(state: SimState) -> str:
    if state.desk.market_hours is None:
        return "The simulator runs a 24-hour test market: orders fill at any hour."
    return "The simulator fills orders only in each market's trading session."


async def audit_verify(settings: Settings) -> int:
    await require_desk(settings.db.url)
    with database_errors(settings.db.url):
        result = await run_verify(settings.db.url)
    print(result.message)
    return EXIT_OK if result.ok else EXIT_VERIFY


async def db_upgrade(settings: Settings) -> int:
    url = settings.db.url
    with database_errors(url):
        await upgrade(url)
    print(f"database {safe_url(url)} is at revision {head_revision(url)}")
    return EXIT_OK


class _Output:
    """The export's destination: a write that fails is exit 2 with one line, not a
    database error (`database_errors` turns OSError into exit 4)."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self._stream, self._name = stream, name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as problem:
            raise self.failure(problem) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as problem:
            raise self.failure(problem) from None

    def failure(self, problem: OSError) -> Failure:
        return Failure(
            f"export: cannot write {self._name}: {problem.strerror or problem}", EXIT_CONFIG
        )


async def export(settings: Settings, first: date, last: date, fmt: str, output: Path | None) -> int:
    """`risk-tui export`: a period's calls, snapshots and audit records (`risk_tui.desk.export`)
    to stdout, or to `output`, which appears only once the export is complete and its
    audit record (who, the period, where to, the SHA-256 written) is in the audit chain."""
    from risk_tui.core.export import STDOUT, Period

    try:
        period = Period(first, last)
    except ValueError as bad:
        raise Failure(f"export: {bad}", EXIT_CONFIG) from None
    url = settings.db.url
    await require_desk(url)
    if output is None:
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        out = _Output(stdout, STDOUT)
        try:
            await _export_to(url, period, fmt, out, STDOUT)
        finally:
            with contextlib.suppress(OSError, ValueError):  # already reported if it failed
                stdout.detach()  # leave sys.stdout itself open
        return EXIT_OK
    partial = output.with_name(f".{output.name}.partial")
    try:
        try:
            stream = partial.open("w", encoding="utf-8", newline="")
        except OSError as problem:
            raise Failure(
                f"export: cannot write {output}: {problem.strerror or problem}", EXIT_CONFIG
            ) from None
        out = _Output(stream, str(output))
        try:
            await _export_to(url, period, fmt, out, str(output))
        finally:
            with contextlib.suppress(OSError):  # flushed before auditing; reported there
                stream.close()
        try:
            partial.replace(output)
        except OSError as problem:
            raise out.failure(problem) from None
    finally:
        partial.unlink(missing_ok=True)
    return EXIT_OK


async def _export_to(url: str, period: Period, fmt: str, out: _Output, destination: str) -> None:
    """Write the export to `out`, flush it, then audit it (`desk.export.audit_export`) as
    the person logged in: the database login on PostgreSQL, the OS login on SQLite."""
    from risk_tui.desk.export import Exporter, audit_export, write_export
    from risk_tui.storage.db import database_login

    now = utc_now()
    with database_errors(url):
        engine = await create_engine(url)
        try:
            try:
                written = await write_export(engine, period, fmt, out, now=now)
            except ValueError as unreadable:  # a stored row edited beyond reading
                raise Failure(
                    f"export: {unreadable} (run `risk-tui audit verify`)", EXIT_VERIFY
                ) from None
            out.flush()
            try:
                login = await database_login(engine) or os_login()
                exporter = Exporter(login, "cli")
                await audit_export(engine, exporter, period, fmt, destination, written, at=now)
            except SQLAlchemyError as problem:
                raise Failure(
                    f"export: not audited, so not delivered: database {safe_url(url)}: "
                    f"{first_line(problem)}",
                    EXIT_DB,
                ) from None
        finally:
            await engine.dispose()


def verify_export_file(path: Path) -> int:
    """`risk-tui audit verify --export PATH`: the export file alone, offline."""
    from risk_tui.desk.export import verify_file

    try:
        result = verify_file(path)
    except (OSError, UnicodeError) as problem:
        reason = getattr(problem, "strerror", None) or problem
        raise Failure(f"cannot read export {path}: {reason}", EXIT_CONFIG) from None
    print(sanitize(result.message))
    return EXIT_OK if result.ok else EXIT_VERIFY
