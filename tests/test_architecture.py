"""The core stays headless and pure: importing it loads no textual, httpx or sqlalchemy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import risk_tui.core

FORBIDDEN = ("textual", "httpx", "sqlalchemy", "risk_tui.feed", "risk_tui.storage")


def test_core_imports_nothing_forbidden() -> None:
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


def test_import_linter_contract_passes() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
