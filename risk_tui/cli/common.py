"""What every command shares: exit codes, the one-line failure, settings and the operator."""

from __future__ import annotations

import argparse
import contextlib
import getpass
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from risk_tui.config import Settings, load_settings
from risk_tui.storage.db import DatabaseUnusable, current_revision

EXIT_OK, EXIT_VERIFY, EXIT_CONFIG, EXIT_FEED, EXIT_DB = 0, 1, 2, 3, 4


class Failure(Exception):
    """A failure the CLI reports as one line with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def demo_db_path() -> Path:
    """Where the demo keeps its database: its own data directory (platformdirs)."""
    return Path(platformdirs.user_data_dir("risk-tui")) / "demo.db"


def settings_from(
    args: argparse.Namespace, *, binding_ids: Collection[str] | None = None, **defaults: Any
) -> Settings:
    """The settings for a command; `binding_ids` (a command that starts the terminal): the
    ids `[keys]` may name."""
    feed_url, db_url = getattr(args, "feed_url", None), getattr(args, "db", None)
    overrides = {
        ("feed", "url"): feed_url or defaults.get("feed_url"),
        ("db", "url"): db_url or defaults.get("db_url"),
    }
    # A problem with an option names it as typed; a command's own default, as that.
    option_names = {
        ("feed", "url"): "--feed-url" if feed_url else "the command's feed URL",
        ("db", "url"): "--db" if db_url else "the command's database",
    }
    return load_settings(
        getattr(args, "config", None),
        overrides=overrides,
        option_names=option_names,
        binding_ids=binding_ids,
    )


def terminal_binding_ids() -> frozenset[str]:
    """The terminal's binding ids (imports the terminal: only for commands that start it)."""
    from risk_tui.app import RiskApp

    return RiskApp.binding_ids()


def operator_name(args: argparse.Namespace) -> str:
    if getattr(args, "operator", None):
        return str(args.operator)
    return os_login()


def os_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextlib.contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Any database failure inside the block becomes one line and exit code 4."""
    try:
        yield
    except (SQLAlchemyError, OSError, DatabaseUnusable) as problem:
        raise Failure(f"database {safe_url(url)}: {first_line(problem)}", EXIT_DB) from None


async def require_desk(url: str) -> None:
    """Commands that only read a desk refuse a database without one, creating nothing:
    one line, exit 4 (SPEC.md, "Databases and commands")."""
    with database_errors(url):
        revision = await current_revision(url)
    if revision is None:
        raise no_desk(url)


def no_desk(url: str) -> Failure:
    return Failure(
        f"no risk-tui desk at {safe_url(url)} (create it with `risk-tui db upgrade`, "
        "or pass --db)",
        EXIT_DB,
    )


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "(unparseable URL)"


def first_line(problem: BaseException) -> str:
    text = str(getattr(problem, "orig", None) or problem).strip().splitlines()
    return text[0] if text else type(problem).__name__
