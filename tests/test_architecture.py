"""The house's import contracts stay complete (`make test` runs them: `lint-imports`), and
the core loads no I/O library at run time."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import risk_tui.core
import risk_tui.desk

ROOT = Path(__file__).parent.parent
FORBIDDEN = ("textual", "httpx", "sqlalchemy", "risk_tui.feed", "risk_tui.storage")


def _contract(name: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"] == name)


def test_core_imports_nothing_forbidden() -> None:
    """Importing every core module loads no textual, httpx or sqlalchemy (at run time)."""
    modules = sorted(
        f"risk_tui.core.{path.stem}"
        for path in Path(risk_tui.core.__file__).parent.glob("*.py")
        if path.stem != "__init__"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} "
        f"or any(m.startswith(f + '.') or m == f for f in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_terminal_contract_names_every_desk_module_but_the_api() -> None:
    """A desk module added later is forbidden to the terminal too: the list is complete."""
    desk = {
        f"risk_tui.desk.{path.stem}"
        for path in Path(risk_tui.desk.__file__).parent.glob("*.py")
        if path.stem not in ("__init__", "api")
    }
    modules = _contract("The terminal uses the Desk API only")["forbidden_modules"]
    assert isinstance(modules, list)
    forbidden = {str(module) for module in modules}
    assert desk <= forbidden, sorted(desk - forbidden)
    assert "risk_tui.desk.api" not in forbidden
