"""The first run (`make demo` / `make test` on a fresh clone) says what it does, and the
editable install it makes is a plain path entry, so setuptools has nothing to warn about.

The install itself (a minute of pip) is checked by hand on a fresh clone (issue 14: 10);
these keep what makes it quiet and clear from being undone.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_first_run_says_so_in_one_line_before_installing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # PYTHON=false: the recipe stops at its first command, right after the line is said.
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "venv", f"VENV={venv}", "PYTHON=false"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout.splitlines() == [f"first run: installing into {venv}, about a minute"]
    assert "pip" not in done.stdout  # the commands are not echoed: the line says it
    assert "Error" in done.stderr  # and a failure is still make's and pip's to report


def test_the_package_sits_at_the_top_of_the_checkout_and_says_so() -> None:
    """Without package-dir "" = ".", setuptools cannot tell the flat layout is simple,
    installs the editable checkout through an import hook and prints a warning box about
    folders named like the package on every first run."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"": "."}
    assert setuptools["packages"]["find"]["include"] == ["risk_tui*"]  # the wheel: risk_tui only
