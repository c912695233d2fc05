"""The terminal's key catalogue: every key binding by id (what `[keys]` may remap, checked
before the screen draws), the screen each belongs to, and how a key is written for people.

Why gathered from the classes rather than listed: a second list would drift from the
bindings it names. Every module of `risk_tui.screens` and `risk_tui.widgets` is imported
(some load only when their screen first opens) and every screen and widget class of the
terminal is read; the app passes its own class in, since this layer sits below it.

A binding's `description` is its short footer label; its `tooltip`, when it has one, is
the label in words for the `?` help and the command palette (`label_of`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from functools import cache

from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import format_key

import risk_tui.screens
import risk_tui.widgets

# The `?` help's sections, in order: the screen (or kind of screen) a binding works on,
# named by its id's first part. An id whose first part is not here gets a section of its own.
HELP_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Everywhere: tabs and the desk", ("app", "tab")),
    ("Every list", ("table",)),
    ("Real-time warnings, Intraday margin, Exceptions", ("call", "sort")),
    ("Details of a call", ("details",)),
    ("Short positions", ("shorts",)),
    ("History", ("history", "history_details")),
    ("Liquidation orders", ("orders",)),
    ("Approvals", ("approvals",)),
    ("Dialogs", ("dialog",)),
    ("This help", ("help",)),
)


_SPELLED = {"enter": "enter"}  # Textual writes ⏎, which a newcomer may not read as enter


@cache  # the classes do not change once loaded (the command palette asks at every key)
def terminal_bindings(*roots: type[DOMNode]) -> tuple[Binding, ...]:
    """Every binding with an id declared on `roots` and on every screen and widget class of
    the terminal (not Textual's own, which carry no id), once each, in declaration order."""
    for package in (risk_tui.screens, risk_tui.widgets):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    found: dict[str, Binding] = {}
    for node in (*roots, *_subclasses(DOMNode)):
        if not node.__module__.startswith("risk_tui."):
            continue
        for binding in vars(node).get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id and binding.id not in found:
                found[binding.id] = binding
    return tuple(found.values())


def binding_ids(*roots: type[DOMNode]) -> frozenset[str]:
    """The ids of the bindings declared on `roots` and on every screen and widget class of
    the terminal (not Textual's own, which carry no id)."""
    return frozenset(binding.id for binding in terminal_bindings(*roots) if binding.id)


def section_of(binding_id: str) -> str:
    """The `?` help's section of a binding, by its id."""
    prefix = binding_id.split(".", 1)[0]
    for title, prefixes in HELP_SECTIONS:
        if prefix in prefixes:
            return title
    return prefix.replace("_", " ").capitalize()


def human_key(keys: str) -> str:
    """A key (or a comma-separated list of keys) as people write it: `?`, `/`, `esc`,
    `ctrl+k`, `K` (shift+k), `enter` — never Textual's names ("question_mark", "slash")."""

    def one(key: str) -> str:
        *modifiers, name = key.strip().split("+")
        return "+".join([*modifiers, _SPELLED.get(name) or format_key(name)])

    return ", ".join(one(key) for key in keys.split(","))


def label_of(binding: Binding) -> str:
    """What a key does, in words (the footer's short label when there is no longer one)."""
    return binding.tooltip or binding.description or binding.action


def _subclasses(cls: type[DOMNode]) -> Iterator[type[DOMNode]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


__all__ = [
    "HELP_SECTIONS",
    "binding_ids",
    "human_key",
    "label_of",
    "section_of",
    "terminal_bindings",
]
