"""Every key binding id of the terminal: what `[keys]` may remap, checked before the screen draws.

Why gathered from the classes rather than listed: a second list would drift from the
bindings it names. Every module of `risk_tui.screens` and `risk_tui.widgets` is imported
(some load only when their screen first opens) and every screen and widget class of the
terminal is read; the app passes its own class in, since this layer sits below it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

from textual.binding import Binding
from textual.dom import DOMNode

import risk_tui.screens
import risk_tui.widgets


def binding_ids(*roots: type[DOMNode]) -> frozenset[str]:
    """The ids of the bindings declared on `roots` and on every screen and widget class of
    the terminal (not Textual's own, which carry no id)."""
    for package in (risk_tui.screens, risk_tui.widgets):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    ids: set[str] = set()
    for node in (*roots, *_subclasses(DOMNode)):
        if not node.__module__.startswith("risk_tui."):
            continue
        for binding in vars(node).get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return frozenset(ids)


def _subclasses(cls: type[DOMNode]) -> Iterator[type[DOMNode]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


__all__ = ["binding_ids"]
