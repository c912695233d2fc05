"""`?`: every key of the screen underneath, with its binding id (remappable in [keys])."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, app: App[Any], keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self._source = app
        self._keymap = keymap or {}

    def compose(self) -> ComposeResult:
        table = Table(
            title=Text("Keys — remap any of them by id in the [keys] table of the config"),
            expand=True,
        )
        table.add_column("Key")
        table.add_column("What it does")
        table.add_column("Binding id")
        seen: set[str] = set()
        screen = self._source.screen_stack[0]
        sources = (
            [self._source, screen, *screen.focused.ancestors_with_self]
            if (screen.focused)
            else [self._source, screen]
        )
        for node in sources:
            for binding in getattr(node, "BINDINGS", []):
                if not isinstance(binding, Binding) or binding.id in seen:
                    continue
                seen.add(binding.id or binding.key)
                keys = self._keymap.get(binding.id or "", binding.key)
                table.add_row(
                    Text(keys), Text(binding.description or binding.action), Text(binding.id or "")
                )
        table.add_row(Text("ctrl+p"), Text("Command palette"), Text(""))
        with VerticalScroll():
            yield Static(table)
