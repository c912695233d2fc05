"""The command palette's desk commands (ctrl+p): every key of the screen underneath, by name.

One rule with the keys and the footer: a command is a binding of the screen the palette
opened over, offered exactly when Textual's `active_bindings` holds it enabled (each
node's `check_action`: the role, the tab, the row), and run by `run_action` on that node,
which asks `check_action` again. So "liquidate" is offered on the lists of calls to a
trader and nowhere else, "export history" on the History tab, "go to approvals" where the
tab keys work. Elsewhere a search still finds them, greyed, saying where they belong.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from functools import partial
from typing import Any

from rich.text import Text
from textual.binding import ActiveBinding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from risk_tui.screens.keymap import human_key, label_of, section_of, terminal_bindings
from risk_tui.widgets.desk_footer import ranked

NOT_HERE = "not available here"
# The screens whose commands the palette also shows where they do not run (greyed): the
# tabs' and the desk's, not the dialogs' or the details' own.
ELSEWHERE = frozenset({"app", "tab", "call", "sort", "history", "orders", "approvals", "shorts"})


class DeskCommands(Provider):
    """The desk's actions and tabs by name, where their keys would work."""

    def _commands(self) -> Iterator[tuple[str, str, ActiveBinding]]:
        """(name, help, binding) of each enabled key of the screen, the footer's first."""
        keys: dict[str, list[str]] = {}
        actives: dict[str, ActiveBinding] = {}
        for key, active in self.screen.active_bindings.items():
            binding_id = active.binding.id
            if not active.enabled or not binding_id:  # Textual's own keys carry no id
                continue
            keys.setdefault(binding_id, []).append(key)
            actives.setdefault(binding_id, active)
        for active in ranked(list(actives.values())):
            binding_id = active.binding.id or ""
            yield label_of(active.binding), f"key {human_key(','.join(keys[binding_id]))}", active

    def _run(self, active: ActiveBinding) -> partial[Coroutine[Any, Any, bool]]:
        return partial(self.app.run_action, active.binding.action, active.node)

    async def discover(self) -> Hits:
        for name, help_text, active in self._commands():
            yield DiscoveryHit(name, self._run(active), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        names: set[str] = set()
        for name, help_text, active in self._commands():
            names.add(name)
            if (score := matcher.match(name)) > 0:
                yield Hit(
                    score, matcher.highlight(name), self._run(active), text=name, help=help_text
                )
        # The desk's other commands are found too, greyed, below: chosen, they say why
        # they do not run here (another tab, another role) instead of acting.
        for binding in terminal_bindings(type(self.app)):
            name, binding_id = label_of(binding), binding.id or ""
            if name in names or binding_id.endswith(".back"):
                continue
            if binding_id.split(".", 1)[0] not in ELSEWHERE:
                continue
            names.add(name)
            if (score := matcher.match(name)) > 0:
                where = section_of(binding_id)
                display = Text(name, style="dim")
                yield Hit(
                    score / 2,  # below every command that runs here
                    display,
                    partial(self._not_here, name, where),
                    text=name,
                    help=f"{NOT_HERE} · {where}",
                )

    def _not_here(self, name: str, where: str) -> None:
        self.app.notify(
            f"{name}: {NOT_HERE} (its place: {where}; ? lists every key)", severity="warning"
        )


__all__ = ["DeskCommands"]
