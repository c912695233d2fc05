"""`?`: every key of the terminal once, by the screen it works on, in people's words.

Keys as people write them (`?`, `/`, `esc`, `ctrl+k`, `K`), what each does in words
(`keymap.label_of`), and the id that remaps it in the config's `[keys]` table — as the
config has remapped it. Textual's own keys (focus next, copy) are not the desk's and are
not listed. The list scrolls; it fits 80 columns by wrapping the words, never the keys.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from risk_tui.screens.keymap import (
    HELP_SECTIONS,
    human_key,
    label_of,
    section_of,
    terminal_bindings,
)

PALETTE = ("ctrl+p", "Command palette: commands by name", "")


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100%; max-width: 110; height: 100%;
                                  border: round $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,q,question_mark",
            "dismiss",
            "Close",
            tooltip="Close this help",
            id="help.close",
        ),
    ]

    def __init__(self, app: App[Any], keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self._source = app
        self._keymap = keymap or {}

    def rows(self) -> dict[str, list[tuple[str, str, str]]]:
        """(key, what it does, id) of every binding, by section, the sections in order."""
        sections: dict[str, list[tuple[str, str, str]]] = {title: [] for title, _ in HELP_SECTIONS}
        sections[HELP_SECTIONS[0][0]].append(PALETTE)
        for binding in terminal_bindings(type(self._source)):
            binding_id = binding.id or ""
            keys = human_key(self._keymap.get(binding_id, binding.key))
            sections.setdefault(section_of(binding_id), []).append(
                (keys, label_of(binding), binding_id)
            )
        return {title: rows for title, rows in sections.items() if rows}

    def compose(self) -> ComposeResult:
        sections = self.rows()
        every = [row for rows in sections.values() for row in rows]
        key_width = max(len(key) for key, _, _ in every)
        id_width = max(len(binding_id) for _, _, binding_id in every)
        parts: list[RenderableType] = [
            Text(
                "Every key of the desk, by screen. The footer shows the ones that fit; "
                "ctrl+p finds any command by name. Remap a key by its id in the [keys] "
                "table of the config.",
                style="italic",
            )
        ]
        for title, rows in sections.items():
            table = Table(box=None, expand=True, show_header=False, padding=(0, 1, 0, 0))
            table.add_column(width=key_width, no_wrap=True, style="bold")
            table.add_column(ratio=1)
            table.add_column(width=id_width, no_wrap=True, style="dim")
            for key, label, binding_id in rows:
                table.add_row(Text(key), Text(label), Text(binding_id))
            parts += [Text(""), Text(title, style="bold underline"), table]
        with VerticalScroll():
            yield Static(Group(*parts))
