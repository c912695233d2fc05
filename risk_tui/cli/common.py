"""What every command shares: exit codes, the one-line failure, settings and the operator."""

from __future__ import annotations

import argparse
import contextlib
import getpass
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from risk_tui.config import Settings, load_settings

EXIT_OK, EXIT_VERIFY, EXIT_CONFIG, EXIT_FEED, EXIT_DB = 0, 1, 2, 3, 4


class Failure(Exception):
    """A failure the CLI reports as one line with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def settings_from(args: argparse.Namespace, **defaults: Any) -> Settings:
    overrides = {
        ("feed", "url"): getattr(args, "feed_url", None) or defaults.get("feed_url"),
        ("db", "url"): getattr(args, "db", None) or defaults.get("db_url"),
    }
    return load_settings(getattr(args, "config", None), overrides=overrides)


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
    except (SQLAlchemyError, OSError) as problem:
        raise Failure(f"database {safe_url(url)}: {first_line(problem)}", EXIT_DB) from None


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "(unparseable URL)"


def first_line(problem: BaseException) -> str:
    text = str(getattr(problem, "orig", None) or problem).strip().splitlines()
    return text[0] if text else type(problem).__name__
