"""The footer: the keys that matter on this screen, most important first, as many as fit
whole, and always `? help` at the right end (where `?` works).

Textual's footer lists every shown key in the order of the binding chain and lets the
last ones run off the right edge, cut mid-word ("a Auto-l"). This one ranks the shown
keys (`KEY_ORDER`, by binding id), keeps those that fit the width whole, and docks the
help key right; the keys left out are all in the `?` help and the command palette.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

HELP_ACTION = "help"  # the app's `?`: always last, docked right

# The shown keys by importance (binding ids), most important first. A screen shows a
# subset: the call keys on the lists of calls, each pane's own keys on its tab, the
# dialog or details keys there. A shown key not listed comes after these.
KEY_ORDER: tuple[str, ...] = (
    # dialogs: answer, then leave
    "dialog.confirm",
    "dialog.review",
    "approvals.open.approve",
    "approvals.open.reject",
    "dialog.cancel",
    # a call's details, a short stock's clients, an ended call
    "details.liquidate",
    "details.auto_liquidate",
    "details.message",
    "details.remark",
    "details.cancel_plan",
    "shorts.cover",
    "shorts.message",
    "history_details.compare_end",
    "details.back",
    "shorts.back",
    "history_details.back",
    # the lists of calls: act on the call under the cursor
    "call.liquidate",
    "call.auto_liquidate",
    "call.message",
    "call.remark",
    # each other tab's own keys
    "orders.cancel",
    "orders.older",
    "approvals.approve",
    "approvals.reject",
    "approvals.decided",
    "history.export",
    "shorts.order",
    # every list
    "table.select",
    "app.back",  # offered only while a filter is on
    "app.filter",
    "call.claim",
    "call.exception",
    "call.close",
    "call.deadline",
    "table.mark",
    "app.kill_switch",
    "app.quit",
    "help.close",
)
_RANK = {binding_id: rank for rank, binding_id in enumerate(KEY_ORDER)}


class DeskFooter(Footer):
    """The desk's footer (compact): ranked keys that fit whole, then `? help`."""

    DEFAULT_CSS = """
    DeskFooter FooterKey.-help { dock: right; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        # The command palette is found through `?` and is listed there: its footer key
        # would take the room of a desk key.
        super().__init__(id=id, compact=True, show_command_palette=False)
        self._width = 0

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._width = width = self.size.width or self.app.size.width
        shown = [active for active in self.screen.active_bindings.values() if active.binding.show]
        helps = [active for active in shown if active.binding.action == HELP_ACTION]
        keys = ranked([active for active in shown if active not in helps])
        room = width - 1  # the footer's own right edge
        if helps:
            room -= self._width_of(helps[0].binding)
        for active in keys:
            needed = self._width_of(active.binding)
            if needed > room:
                break  # the rest are in `?` and the palette, in this order
            room -= needed
            yield self._key(active)
        if helps:
            yield self._key(helps[0], classes="-help")

    def _key(self, active: ActiveBinding, classes: str = "") -> FooterKey:
        binding = active.binding
        return FooterKey(
            binding.key,
            self.app.get_key_display(binding),
            binding.description,
            binding.action,
            disabled=not active.enabled,
            tooltip=active.tooltip or binding.description,
            classes=classes,
        ).data_bind(compact=Footer.compact)

    def _width_of(self, binding: Binding) -> int:
        """Cells a compact footer key takes: key, space, label, and its right margin."""
        label = binding.description
        return (
            cell_len(self.app.get_key_display(binding)) + (1 + cell_len(label) if label else 0) + 1
        )

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width and self._bindings_ready:
            self.call_after_refresh(self.recompose)


def ranked(keys: list[ActiveBinding]) -> list[ActiveBinding]:
    """`keys` most important first (`KEY_ORDER`); the unranked after, in Textual's order."""
    unranked = len(KEY_ORDER)
    return sorted(keys, key=lambda active: _RANK.get(active.binding.id or "", unranked))


__all__ = ["HELP_ACTION", "KEY_ORDER", "DeskFooter", "ranked"]
