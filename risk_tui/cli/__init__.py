"""The command line (SPEC.md "Command line"): parse, load settings, run, map failures to one line.

Exit codes: 0 ok, 1 verification failed (a chain, or an export file), 2 bad configuration
or usage, 3 feed unusable, 4 database unusable, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from risk_tui import __version__
from risk_tui.cli.common import (
    EXIT_CONFIG,
    Failure,
    demo_db_path,
    operator_name,
    settings_from,
    terminal_binding_ids,
)
from risk_tui.config import ConfigError
from risk_tui.core.calendar import CalendarConfigError
from risk_tui.core.text import sanitize


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="settings file (else RISK_TUI_CONFIG, ./risk-tui.toml, the user config dir)",
    )
    parser.add_argument("--feed-url", help="FEED.md base URL (overrides feed.url)")
    parser.add_argument(
        "--db",
        help="SQLAlchemy URL (overrides db.url): sqlite+aiosqlite:////ABSOLUTE/PATH.db (four "
        "slashes; three make the path relative to the current directory, whose folders "
        "must exist) or postgresql+asyncpg://USER@HOST/DB",
    )
    parser.add_argument("--operator", default=None, help="operator name (default: login user)")


# The simulator's scenarios (risk_tui.sim.scenarios.SCENARIOS), named here so that
# parsing a command line does not import numpy and the book generator.
SIM_SCENARIOS = ("seed", "calm", "selloff", "recall", "crash", "faults")
ALWAYS_OPEN_HELP = (
    "a 24-hour test market: the simulator fills orders at any hour (default: only in "
    "each market's trading session, by its exchange calendar, as a broker does)"
)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0–65535")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be ≥ 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds ≥ 0")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _absolute(text: str) -> Path:
    """A path made absolute where it was given (an export's audit record names it so)."""
    return Path(text).absolute()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="risk-tui", description="Margin-call risk desk: warnings, calls, snapshots."
    )
    parser.add_argument("--version", action="version", version=f"risk-tui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    report = commands.add_parser("report", help="one poll, print the current warnings, exit")
    _common(report)
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")

    cure = commands.add_parser(
        "cure",
        help="one poll, then the least-value cure in board lots for ACCOUNT and the "
        "account after it (exit 2: no such account; 3: feed unusable or no figures for it)",
    )
    cure.add_argument("account", metavar="ACCOUNT", help="the account id, e.g. A1001")
    _common(cure)
    cure.add_argument("--format", choices=("table", "json"), default="table")

    demo = commands.add_parser(
        "demo",
        help="the desk on the built-in simulated feed and a local SQLite file",
        description="The desk on the built-in simulated feed (a crash day, started anew "
        f"on every run) and a fresh SQLite database at {demo_db_path()} (the demo's own "
        "data directory; replaced on every run, since the simulated market starts over).",
    )
    _common(demo)
    demo.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default=None,
        help="print one report and exit instead of starting the terminal UI",
    )
    demo.add_argument("--seed", type=int, default=0, help="the simulator's random seed")
    demo.add_argument("--always-open", action="store_true", help=ALWAYS_OPEN_HELP)

    run = commands.add_parser(
        "run",
        help="the terminal UI against the configured feed (on PostgreSQL: one terminal of "
        "a desk whose lifecycle `risk-tui engine` runs)",
    )
    _common(run)

    engine = commands.add_parser(
        "engine",
        help="the desk's headless engine on PostgreSQL: one is active, the others wait "
        "as standby and take over when it dies",
    )
    _common(engine)

    sim = commands.add_parser("sim", help="the simulator alone, serving FEED.md")
    sim.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; anything else only when given here)",
    )
    sim.add_argument("--port", type=_port, default=8765, help="0 picks a free port")
    sim.add_argument(
        "--scenario",
        choices=SIM_SCENARIOS,
        default="seed",
        help="seed: the static worked example; calm, selloff, recall, crash, faults: a generated "
        "desk whose market moves every tick",
    )
    sim.add_argument(
        "--accounts",
        type=_count,
        default=None,
        help="generated accounts besides the seed desk (default 10000; not with seed)",
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed: same seed, same run")
    sim.add_argument("--always-open", action="store_true", help=ALWAYS_OPEN_HELP)
    sim.add_argument(
        "--tick-interval",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="seconds between ticks (default 1; 0: no ticker)",
    )
    sim.add_argument(
        "--token",
        default=os.environ.get("RISK_TUI_FEED_TOKEN", ""),
        help="require this bearer token (default: RISK_TUI_FEED_TOKEN)",
    )

    audit = commands.add_parser("audit", help="compliance checks")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check every snapshot and audit record against its hash chain"
    )
    _common(verify)
    verify.add_argument(
        "--export",
        type=Path,
        metavar="PATH",
        help="verify an export file (jsonl or csv, from `risk-tui export`) instead of "
        "the database; needs no configuration",
    )

    export = commands.add_parser(
        "export",
        help="a period's calls, snapshots and audit records with their hash chain fields",
    )
    _common(export)
    export.add_argument(
        "--from", dest="first", type=_day, required=True, metavar="DATE", help="first day (UTC)"
    )
    export.add_argument(
        "--to", dest="last", type=_day, required=True, metavar="DATE", help="last day (UTC)"
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "--output",
        type=_absolute,
        metavar="PATH",
        default=None,
        help="write here (default: stdout)",
    )

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply schema migrations")
    _common(upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `risk-tui` alone is `risk-tui run`
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return asyncio.run(_dispatch(args))
    except Failure as failure:
        _error(str(failure))
        return failure.code
    except ConfigError as bad:
        for problem in bad.problems:  # one line each
            _error(f"config: {problem}")
        return EXIT_CONFIG
    except CalendarConfigError as bad:
        _error(f"calendar overrides: {bad}")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    print(f"risk-tui: {sanitize(message)}", file=sys.stderr)


async def _dispatch(args: argparse.Namespace) -> int:
    from risk_tui.cli import commands

    if args.command == "report":
        return await commands.report(settings_from(args), args.format)
    if args.command == "cure":
        return await commands.cure(
            settings_from(args), args.account, args.format, operator_name(args)
        )
    if args.command == "demo":
        return await commands.demo(args, operator_name(args))
    if args.command == "run":
        settings = settings_from(args, binding_ids=terminal_binding_ids())
        return await commands.run_tui(settings, operator_name(args))
    if args.command == "engine":
        return await commands.run_engine(settings_from(args))
    if args.command == "sim":
        return await commands.sim(
            args.host,
            args.port,
            args.token,
            scenario=args.scenario,
            accounts=args.accounts,
            seed=args.seed,
            tick_interval=args.tick_interval,
            always_open=args.always_open,
        )
    if args.command == "audit":
        if args.export is not None:  # offline: the file alone, no settings or database
            return commands.verify_export_file(args.export)
        return await commands.audit_verify(settings_from(args))
    if args.command == "export":
        return await commands.export(
            settings_from(args), args.first, args.last, args.format, args.output
        )
    if args.command == "db":
        return await commands.db_upgrade(settings_from(args))
    raise Failure(f"unknown command {args.command}", EXIT_CONFIG)
