"""An ended call in full (History tab, enter): outcome, trigger vs end, every snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from risk_tui.core.clock import market_time
from risk_tui.core.deposits import MovementLine, movement_lines
from risk_tui.core.history import (
    CASH_IN_MEANING,
    FigureChange,
    PositionChange,
    call_outcome,
    figure_changes,
    payload_decimal,
    position_changes,
)
from risk_tui.core.lifecycle import MarginCall, SnapshotScenario
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import Market
from risk_tui.core.money import format_money, format_ratio
from risk_tui.core.records import StoredOrder, StoredRemark, StoredSnapshot
from risk_tui.screens.details_rows import (
    order_cells,
    order_labels,
    timeline_cells,
    timeline_labels,
)
from risk_tui.screens.warnings import RISK_STYLE
from risk_tui.widgets.desk_footer import DeskFooter
from risk_tui.widgets.dialogs.formatting import (
    END_WORDS,
    RISK_LABEL,
    aware,
    format_elapsed,
    format_fx,
    format_price,
    format_quantity,
    market_stamp,
    signed_money,
)
from risk_tui.widgets.dialogs.remark import remark_history
from risk_tui.widgets.pairs import PAIR_BREAKPOINTS, Figure, Pair, PairGroup, PairGroups, Words
from risk_tui.widgets.render import data_text


def _change_text(change: Decimal | None, currency: str) -> Text:
    text = signed_money(change, currency)
    return Text(text, justify="right", style="bold" if change else "")


def _level_text(payload: dict[str, Any] | None) -> Text:
    raw = str((payload or {}).get("risk_level") or "")
    try:
        level = RiskLevel(raw)
    except ValueError:
        return data_text(raw or "—", style="")
    return Text(RISK_LABEL[level], justify="right", style=RISK_STYLE.get(level, ""))


def _feed_time(snap: StoredSnapshot | None, market: Market) -> str:
    if snap is None or snap.feed_as_of is None:
        return "—"
    return market_time(snap.feed_as_of, market, now=snap.feed_as_of, seconds=True)


# What each snapshot is called in the comparison's headings.
SIDE_NAMES = {
    SnapshotScenario.TRIGGER: "trigger",
    SnapshotScenario.FORCE_CALL: "force call",
    SnapshotScenario.NOTIFICATION: "notice",
    SnapshotScenario.DAILY: "daily",
    SnapshotScenario.END: "end",
}


class HistoryDetailsScreen(Screen[None]):
    """An ended call in full: outcome, trigger vs end side by side, every snapshot.

    Enter on a timeline row compares the trigger with that snapshot instead of the end
    one; `e` goes back to comparing with the end. Escape returns to the History tab.
    Risk levels here use the warnings tab's labels (short, so the figures fit 80 columns).
    """

    HORIZONTAL_BREAKPOINTS = PAIR_BREAKPOINTS  # the outcome in one column below 100

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Back to History", id="history_details.back"),
        Binding(
            "e",
            "compare_end",
            "Compare with end",
            tooltip="Compare the trigger with the end",
            id="history_details.compare_end",
        ),
    ]

    DEFAULT_CSS = """
    HistoryDetailsScreen #history-details-title {
        dock: top;
        height: auto;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    HistoryDetailsScreen #history-details-body { height: 1fr; padding: 0 1; }
    HistoryDetailsScreen .section-title { margin-top: 1; text-style: bold underline; }
    HistoryDetailsScreen .legend { height: auto; color: $text-muted; }
    HistoryDetailsScreen DataTable { height: auto; max-height: 16; }
    HistoryDetailsScreen #remarks { height: auto; }
    HistoryDetailsScreen #movements { height: auto; }
    """

    def __init__(
        self,
        call: MarginCall,
        snapshots: Sequence[StoredSnapshot],
        remarks: Sequence[StoredRemark] = (),
        orders: Sequence[StoredOrder] = (),
    ) -> None:
        super().__init__()
        self.call = call
        self.snapshots = tuple(sorted(snapshots, key=lambda s: s.seq))
        self.remarks = tuple(remarks)
        self.orders = tuple(orders)
        self.trigger = next(
            (s for s in self.snapshots if s.scenario is SnapshotScenario.TRIGGER), None
        )
        self.end = next(
            (s for s in reversed(self.snapshots) if s.scenario is SnapshotScenario.END), None
        )
        self.compared: StoredSnapshot | None = self.end  # the right-hand side

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="history-details-title")
        with VerticalScroll(id="history-details-body"):
            yield Static(Text("Outcome"), classes="section-title")
            yield from self.compose_outcome()
            yield Static(
                Text(
                    f"{CASH_IN_MEANING}. Price effect = price and fx moves on the quantity "
                    "held from trigger to end."
                ),
                classes="legend",
            )
            yield Static(id="compare-title", classes="section-title")
            yield DataTable(id="compare", cursor_type="row", show_row_labels=False)
            yield Static(id="positions-title", classes="section-title")
            yield DataTable(id="positions", cursor_type="row", show_row_labels=False)
            yield Static(
                Text("Lifecycle timeline: every snapshot (enter compares it with the trigger)"),
                classes="section-title",
            )
            yield DataTable(id="timeline", cursor_type="row", show_row_labels=False)
            yield Static(Text("Liquidation orders"), classes="section-title")
            yield DataTable(id="orders", cursor_type="row", show_row_labels=False)
            yield Static(
                Text("Deposits and withdrawals counted toward met by deposit"),
                classes="section-title",
            )
            yield Static(self.movements_table(), id="movements")
            yield Static(Text("Remarks (newest first)"), classes="section-title")
            yield Static(remark_history(self.remarks, self.call), id="remarks")
        yield DeskFooter()

    def on_mount(self) -> None:
        market, ccy = self.call.market, self.call.currency
        timeline = self._table("timeline")
        timeline.add_columns(*timeline_labels(market, ccy))
        for snap in self.snapshots:
            timeline.add_row(*timeline_cells(snap, market, ccy), key=str(snap.seq))
        orders = self._table("orders")
        orders.add_columns(*order_labels(market))
        for order in sorted(self.orders, key=lambda o: o.created_at):
            orders.add_row(*order_cells(order, market))
        self._render_comparison()
        self.query_one("#history-details-body", VerticalScroll).focus()

    def _table(self, table_id: str) -> DataTable[Any]:
        return self.query_one(f"#{table_id}", DataTable)

    def _title(self) -> Text:
        call = self.call
        text = Text("Ended margin call · ")
        text.append_text(data_text(call.account_id))
        text.append(" · ")
        text.append_text(data_text(call.client_name))
        text.append(f" · {call.kind.value} · {call.market.value} · {call.currency} · ")
        text.append_text(data_text(call.call_id))
        return text

    # --- outcome -----------------------------------------------------------------------

    @staticmethod
    def _payload(snap: StoredSnapshot | None) -> dict[str, Any] | None:
        return snap.payload if snap is not None and isinstance(snap.payload, dict) else None

    def outcome_figures(self) -> dict[str, str]:
        """Each figure of the outcome as the desk formats it, by label."""
        call, ccy = self.call, self.call.currency
        outcome = call_outcome(call, self._payload(self.trigger), self._payload(self.end))
        end_amount = payload_decimal(self._payload(self.end), "call_amount")
        return {
            "Call at trigger": format_money(call.trigger_call_amount, ccy, code=True),
            "at notice": format_money(call.notified_call_amount, ccy, code=True),
            "Call at end": format_money(end_amount, ccy, code=True),
            "Cash in": signed_money(outcome.cash_in, ccy),
            "Equity change": signed_money(outcome.equity_change, ccy),
            "Price effect": signed_money(outcome.price_effect, ccy),
            "Net deposits": signed_money(outcome.deposits, ccy),
        }

    def compose_outcome(self) -> ComposeResult:
        """The outcome as label/value pairs: how the call went, then its figures; one
        column below 100 columns (`PAIR_BREAKPOINTS`)."""
        call = self.call
        outcome = call_outcome(call, self._payload(self.trigger), self._payload(self.end))
        took = (
            format_elapsed(aware(call.ended_at) - aware(call.triggered_at))
            if call.ended_at is not None
            else "—"
        )
        reason = END_WORDS[call.end_reason] if call.end_reason is not None else "—"
        note = data_text(call.end_note) if call.end_note else Text("—")
        with PairGroups(id="outcome"):
            with PairGroup(id="outcome-call"):
                yield Pair("Triggered", Figure(market_stamp(call.triggered_at, call)))
                yield Pair("Ended", Figure(market_stamp(call.ended_at, call)))
                yield Pair("Took", Figure(took))
                yield Pair("End reason", Words(Text(reason)))
                yield Pair("How it was met", Words(Text(outcome.how)))
                yield Pair("Closing note", Words(note))
            with PairGroup(id="outcome-figures"):
                for label, figure in self.outcome_figures().items():
                    yield Pair(label, Figure(figure))

    # --- the cash movements the call counted -------------------------------------------

    def counted_movements(self) -> list[MovementLine]:
        """What the latest snapshot recording them lists (the end one, for a call met
        by deposit)."""
        for snap in reversed(self.snapshots):
            lines = movement_lines(self._payload(snap))
            if lines:
                return lines
        return []

    def movements_table(self) -> Table | Text:
        lines = self.counted_movements()
        if not lines:
            return Text(
                "None: no deposit or withdrawal was received while the call was open.",
                style="dim",
            )
        call, ccy = self.call, self.call.currency
        grid = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        # The figures are shown whole: at 80 columns the time and the movement's id wrap
        # (fold) instead, so the table narrows there and never truncates a number.
        grid.add_column("Received", min_width=10)  # wraps at its spaces: date, time, market
        grid.add_column("Kind", no_wrap=True)
        for label in ("Amount", "FX", f"In {ccy}"):
            grid.add_column(label, justify="right", no_wrap=True)
        grid.add_column("Movement", overflow="fold")
        for line in lines:
            amount = data_text(line.currency)
            amount.append(f" {format_money(line.amount, line.currency)}")
            grid.add_row(
                market_stamp(_instant(line.received_at), call),
                data_text(line.kind),
                amount,
                "—" if line.fx is None else format_fx(line.fx),
                signed_money(line.base_amount, ccy),
                data_text(line.movement_id),
            )
        outcome = call_outcome(call, self._payload(self.trigger), self._payload(self.end))
        grid.add_row("", Text("net", style="bold"), "", "", signed_money(outcome.deposits, ccy), "")
        return grid

    # --- trigger vs the compared snapshot ------------------------------------------------

    def _side(self, snap: StoredSnapshot | None) -> str:
        """`trigger 2026-11-20 10:05 SG`: which snapshot, when (market time); `none` if
        missing."""
        if snap is None:
            return "none"
        name = SIDE_NAMES.get(snap.scenario, snap.scenario.value)
        return f"{name} {market_time(snap.taken_at, self.call.market, full=True)}"

    def _render_comparison(self) -> None:
        ccy, market = self.call.currency, self.call.market
        before, after = self._payload(self.trigger), self._payload(self.compared)
        right = SIDE_NAMES.get(self.compared.scenario, "?") if self.compared else "end"
        self.query_one("#compare-title", Static).update(
            Text(
                f"Account figures in {ccy}: {self._side(self.trigger)} vs "
                f"{self._side(self.compared)}"
            )
        )
        compare = self._table("compare")
        compare.clear(columns=True)
        compare.add_columns("Figure", "At trigger", f"At {right}", "Change")
        for change in figure_changes(before, after):
            compare.add_row(*self._figure_cells(change, ccy))
        compare.add_row(
            Text("Net asset ratio"),
            Text(format_ratio(payload_decimal(before, "net_asset_ratio")), justify="right"),
            Text(format_ratio(payload_decimal(after, "net_asset_ratio")), justify="right"),
            Text(""),
        )
        compare.add_row(Text("Risk level"), _level_text(before), _level_text(after), Text(""))
        compare.add_row(
            Text("Feed as of"),
            Text(_feed_time(self.trigger, market), justify="right"),
            Text(_feed_time(self.compared, market), justify="right"),
            Text(""),
        )
        self.query_one("#positions-title", Static).update(
            Text(f"Positions: trigger vs {right} (MV in {ccy})")
        )
        positions = self._table("positions")
        positions.clear(columns=True)
        positions.add_columns(
            "Symbol", "Qty trigger", f"Qty {right}", "Qty chg", "MV chg",
            "Px trigger", f"Px {right}", "FX", "MV trigger", f"MV {right}",
        )  # fmt: skip
        for moved in position_changes(before, after):
            positions.add_row(*self._position_cells(moved, ccy))

    @staticmethod
    def _figure_cells(change: FigureChange, base: str) -> tuple[Text, ...]:
        ccy = change.currency or base
        return (
            Text(change.label),
            Text(format_money(change.before, ccy), justify="right"),
            Text(format_money(change.after, ccy), justify="right"),
            _change_text(change.change, ccy),
        )

    @staticmethod
    def _position_cells(change: PositionChange, base: str) -> tuple[Text, ...]:
        before, after = change.before, change.after

        def quantity(value: Decimal | None) -> Text:
            return Text("—" if value is None else format_quantity(value), justify="right")

        def price(value: Decimal | None) -> Text:
            return Text("—" if value is None else format_price(value), justify="right")

        latest = after if after is not None else before
        fx = latest.fx if latest is not None else None
        qty_change = change.quantity_change
        return (
            data_text(change.symbol),
            quantity(before.quantity if before else None),
            quantity(after.quantity if after else None),
            Text(
                ("+" if qty_change > 0 else "") + format_quantity(qty_change),
                justify="right",
                style="bold" if qty_change else "",
            ),
            _change_text(change.value_change, base),
            price(before.price if before else None),
            price(after.price if after else None),
            Text("—" if fx is None else format_fx(fx), justify="right"),
            Text(format_money(before.market_value if before else None, base), justify="right"),
            Text(format_money(after.market_value if after else None, base), justify="right"),
        )

    @on(DataTable.RowSelected, "#timeline")
    def _compare_snapshot(self, event: DataTable.RowSelected) -> None:
        event.stop()
        seq = event.row_key.value
        chosen = next((s for s in self.snapshots if str(s.seq) == seq), None)
        if chosen is not None and chosen is not self.compared:
            self.compared = chosen
            self._render_comparison()

    def action_compare_end(self) -> None:
        if self.compared is not self.end:
            self.compared = self.end
            self._render_comparison()

    def action_back(self) -> None:
        self.dismiss(None)


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


__all__ = ["SIDE_NAMES", "HistoryDetailsScreen"]
