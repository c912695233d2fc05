"""Details of one margin call: fund summary, positions with the desk's least-value cure,
orders, messages, auto-liquidation plans, timeline, remarks — live, under the feed's
banner.

Pure UI: it shows what the app hands it and says what the operator wants next —
`"liquidate"`, `"auto_liquidate"`, `"message"`, `"remark"`, `"cancel_plan:<plan id>"`.
Given `act` (the app's dialogs), it stays open and runs `act(choice)`: the dialog opens
over the details, and closing it lands back on them. Without `act` it answers the choice
with `dismiss` (the caller opens the dialog); None is back. The app refreshes it with every view
(`update_call`, `update_margin`, `call_ended`), every second (`tick`: elapsed time and
time left) and every few seconds from the database (`update_records`).

The cure under the positions is the desk's (`DeskApi.cure`), asked again whenever the
figures or the orders change, with the call's working orders counted as traded — the
same proposal the liquidate dialog opens on.

Its tables are `LiveTable`s whose columns say which matter most (`details_rows`): at 80
columns each shows the key figures whole and no half column; `w` switches them all to
the wide layout. Live refreshes hand them only what changed (`LiveTable.apply_diff`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from risk_tui.core.cure import METHOD_WORDS, CureProposal
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.money import format_money, format_ratio
from risk_tui.core.records import (
    AutoLiquidationState,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
    StoredRemark,
    StoredSnapshot,
)
from risk_tui.desk.api import TradeFigures
from risk_tui.screens.details_rows import (
    cure_words,
    message_cells,
    message_columns,
    order_cells,
    order_columns,
    order_labels,
    plan_cells,
    plan_columns,
    position_columns,
    timeline_cells,
    timeline_columns,
    timeline_labels,
)
from risk_tui.screens.details_summary import CallSummary
from risk_tui.widgets.desk_footer import DeskFooter
from risk_tui.widgets.dialogs.formatting import (
    aware,
    format_fx,
    format_price,
    format_quantity,
)
from risk_tui.widgets.dialogs.holdings import (
    pending_lines,
    proposal_text,
    published_text,
    worked,
)
from risk_tui.widgets.dialogs.remark import remark_history
from risk_tui.widgets.feed_banner import FeedBanner
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import LiveTable, RowData
from risk_tui.widgets.pairs import PAIR_BREAKPOINTS
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    from risk_tui.desk.api import DeskApi

LIVE_INTERVAL = 1.0  # seconds between catching up with the desk's latest view
RECORDS_INTERVAL = 3.0  # seconds between reads of the call's orders, messages and plans
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class DetailsScreen(Screen[str | None]):
    """One call in full. Keys: l liquidate, a auto-liquidate, m message, r remark, esc back.

    Below 100 columns its summary is one column of label/value pairs (`PAIR_BREAKPOINTS`)."""

    HORIZONTAL_BREAKPOINTS = PAIR_BREAKPOINTS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Back to the list", id="details.back"),
        Binding(
            "l",
            "open('liquidate')",
            "Liquidate",
            tooltip="Liquidate: choose the orders",
            id="details.liquidate",
        ),
        Binding(
            "a",
            "open('auto_liquidate')",
            "Auto-liq",
            tooltip="Auto-liquidate: schedule it",
            id="details.auto_liquidate",
        ),
        Binding(
            "m", "open('message')", "Message", tooltip="Message the client", id="details.message"
        ),
        Binding("r", "open('remark')", "Remark", tooltip="Remark on the call", id="details.remark"),
        Binding(
            "x",
            "cancel_plan",
            "Cancel plan",
            tooltip="Cancel the auto-liquidation plan",
            id="details.cancel_plan",
        ),
        Binding(
            "w",
            "toggle_wide",
            "Wide",
            tooltip="Wide tables: every column, scrolled sideways",
            id="details.wide",
        ),
    ]

    DEFAULT_CSS = """
    DetailsScreen #details-title {
        dock: top;
        height: auto;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    DetailsScreen #details-body {
        height: 1fr;
        padding: 0 1;
    }
    DetailsScreen .section-title {
        margin-top: 1;
        text-style: bold underline;
    }
    DetailsScreen LiveTable {
        height: auto;
        max-height: 12;
    }
    DetailsScreen #remarks { height: auto; }
    DetailsScreen #cure { height: auto; }
    """

    def __init__(
        self,
        call: MarginCall,
        margin: AccountMargin | None,
        snapshots: Sequence[StoredSnapshot],
        remarks: Sequence[StoredRemark],
        orders: Sequence[StoredOrder],
        now: datetime,
        can_trade: bool,
        can_message: bool,
        *,
        can_remark: bool = True,
        messages: Sequence[StoredMessage] = (),
        plans: Sequence[StoredAutoLiquidation] = (),
        figures: TradeFigures | None = None,
        act: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        super().__init__()
        self.act = act  # the app's dialogs, opened over the details
        self.call = call
        self.margin = margin
        self.figures = figures  # the desk, asked for the account's cure
        self.snapshots = tuple(snapshots)
        self.remarks = tuple(remarks)
        self.orders = tuple(orders)
        self.messages = tuple(messages)
        self.plans = tuple(plans)
        self.cure = self._ask_cure()
        self.now = aware(now)
        self.can_trade = can_trade
        self.can_message = can_message
        self.can_remark = can_remark
        self.ended = False  # the call left the open list while shown
        self._since_records = 0.0  # seconds since the orders, messages and plans were read

    # --- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="details-title")
        yield FeedBanner(id="details-banner")
        with VerticalScroll(id="details-body"):
            yield Static(Text(f"Fund summary ({self.call.currency})"), classes="section-title")
            yield CallSummary(id="summary")
            yield Static(Text("Positions"), classes="section-title")
            yield LiveTable(
                position_columns(self.call.currency),
                noun="positions",
                default_order=_by_record,
                id="positions",
            )
            yield Static(id="cure")
            yield Static(Text("Liquidation orders"), classes="section-title")
            market = self.call.market
            yield LiveTable(
                order_columns(market), noun="orders", default_order=_by_record, id="orders"
            )
            yield Static(Text("Auto-liquidation plans (x cancels)"), classes="section-title")
            yield LiveTable(
                plan_columns(market), noun="plans", default_order=_by_record, id="plans"
            )
            yield Static(Text("Messages to the client"), classes="section-title")
            yield LiveTable(
                message_columns(market), noun="messages", default_order=_by_record, id="messages"
            )
            yield Static(Text("Lifecycle timeline (snapshots)"), classes="section-title")
            yield LiveTable(
                timeline_columns(market, self.call.currency),
                noun="snapshots",
                default_order=_by_record,
                id="timeline",
            )
            yield Static(Text("Remarks (newest first)"), classes="section-title")
            yield Static(id="remarks")
        yield DeskFooter()

    def on_mount(self) -> None:
        self._render_all()
        self.query_one("#details-body", VerticalScroll).focus()

    @property
    def host(self) -> DeskHost:
        return cast("DeskHost", self.app)

    def follow_desk(self) -> None:
        """Keep up with the desk of the hosting app (`DeskHost`) while shown."""
        self.set_interval(LIVE_INTERVAL, self.refresh_live)

    def refresh_live(self) -> None:
        """Catch up with the desk: the call and its figures as the latest view has them,
        the clock, and now and then the call's orders, messages and plans as stored."""
        host = self.host
        view, desk = host.view, host.desk
        if view is not None and not self.ended:
            row = next((r for r in view.warnings if r.call.call_id == self.call.call_id), None)
            if row is None:
                self.call_ended()
            else:
                if row.call is not self.call:
                    self.update_call(row.call)
                margin = None if desk is None else desk.account(self.call.account_id)
                if margin is not self.margin:
                    self.update_margin(margin)
        self.tick(host.now())
        self._since_records += LIVE_INTERVAL
        if desk is not None and self._since_records >= RECORDS_INTERVAL:
            self._since_records = 0.0
            self._read_records(desk)

    @work(exclusive=True, group="details-records", exit_on_error=False)
    async def _read_records(self, desk: DeskApi) -> None:
        details = await desk.call_details(self.call.call_id)
        self.update_records(details.orders, details.messages, details.plans)

    def _table(self, table_id: str) -> LiveTable:
        return self.query_one(f"#{table_id}", LiveTable)

    def _show(self, table_id: str, rows: Mapping[str, RowData]) -> None:
        """Show exactly `rows` in the table: a full load the first time, after that only
        the rows that changed, came or went are repainted (`LiveTable.apply_diff`)."""
        table = self._table(table_id)
        if table.total_row_count == 0:
            if rows:
                table.set_rows(rows)
            return
        gone = [key for key in table.visible_keys() if key not in rows]
        table.apply_diff(rows, gone)

    # --- live updates ----------------------------------------------------------------

    def update_margin(self, margin: AccountMargin | None, now: datetime | None = None) -> None:
        """New figures from the engine: the cure is asked again; summary and positions
        are redrawn."""
        self.margin = margin
        self.cure = self._ask_cure()
        if now is not None:
            self.now = aware(now)
        if self.is_mounted:
            self._render_summary()
            self._render_positions()

    def update_call(self, call: MarginCall) -> None:
        """The call changed (amount, state, deadline, remark)."""
        self.call = call
        if self.is_mounted:
            self.query_one("#details-title", Static).update(self._title())
            self._render_summary()
            self._render_positions()

    def update_orders(self, orders: Sequence[StoredOrder]) -> None:
        self.orders = tuple(orders)
        self.cure = self._ask_cure()  # the working orders count as traded
        if self.is_mounted:
            self._render_positions()
            self._render_orders()

    def update_records(
        self,
        orders: Sequence[StoredOrder],
        messages: Sequence[StoredMessage],
        plans: Sequence[StoredAutoLiquidation],
    ) -> None:
        """The call's orders, messages and plans as stored now (redrawn only if changed)."""
        if tuple(orders) != self.orders:
            self.update_orders(orders)
        if tuple(messages) != self.messages:
            self.messages = tuple(messages)
            if self.is_mounted:
                self._render_messages()
        if tuple(plans) != self.plans:
            self.plans = tuple(plans)
            if self.is_mounted:
                self._render_plans()

    def call_ended(self) -> None:
        """The call is no longer open: the figures shown are the last ones, said so."""
        if not self.ended:
            self.ended = True
            if self.is_mounted:
                self.query_one("#details-title", Static).update(self._title())
                self._render_summary()

    def tick(self, now: datetime) -> None:
        """Time moved on: elapsed time and time left."""
        self.now = aware(now)
        if self.is_mounted:
            self._render_summary()

    def _ask_cure(self) -> CureProposal | None:
        """The desk's least-value cure on the figures now, the call's working orders
        counted as traded; None without a desk or figures."""
        margin, figures = self.margin, self.figures
        if figures is None or margin is None or margin.incomplete is not None:
            return None
        return figures.cure(margin.account_id, pending_lines(margin, worked(self.orders)))

    def update_history(
        self, snapshots: Sequence[StoredSnapshot], remarks: Sequence[StoredRemark]
    ) -> None:
        self.snapshots = tuple(snapshots)
        self.remarks = tuple(remarks)
        if self.is_mounted:
            self._render_timeline()
            self.query_one("#remarks", Static).update(remark_history(self.remarks, self.call))

    # --- rendering -------------------------------------------------------------------

    def _title(self) -> Text:
        call = self.call
        text = Text("Margin call details · ")
        text.append_text(data_text(call.account_id))
        text.append(" · ")
        text.append_text(data_text(call.client_name))
        text.append(f" · {call.kind.value} · {call.market.value} · {call.currency}")
        if self.ended:
            text.append(" · NO LONGER OPEN: figures as last shown", style="bold reverse")
        return text

    def _render_all(self) -> None:
        self._render_summary()
        self._render_positions()
        self._render_orders()
        self._render_plans()
        self._render_messages()
        self._render_timeline()
        self.query_one("#remarks", Static).update(remark_history(self.remarks, self.call))

    def _render_summary(self) -> None:
        self.query_one("#summary", CallSummary).show(self.call, self.margin, self.now)

    def _render_positions(self) -> None:
        self.query_one("#cure", Static).update(self._cure_text())
        margin = self.margin
        rows: dict[str, RowData] = {}
        cure = self.cure
        ccy = margin.currency if margin is not None else self.call.currency
        for n, p in enumerate(() if margin is None else margin.positions):
            rows[p.symbol] = _row(
                n,
                data_text(p.symbol),
                Text(format_quantity(p.quantity), justify="right"),
                Text(format_price(p.price), justify="right"),
                data_text(p.currency),
                Text(format_fx(p.fx), justify="right"),
                Text(format_money(p.market_value, ccy), justify="right"),
                Text(format_ratio(p.ratios.im, 0), justify="right"),
                Text(format_ratio(p.ratios.mm, 0), justify="right"),
                Text(format_ratio(p.ratios.fm, 0), justify="right"),
                Text(
                    cure_words(
                        cure.quantity(p.symbol) if cure is not None else None,
                        p.lot_size,
                        p.illiquid,
                    )
                ),
            )
        self._show("positions", rows)

    def _cure_text(self) -> Text:
        """The desk's least-value cure under the positions, and the published floor."""
        margin, cure = self.margin, self.cure
        if margin is None or margin.incomplete is not None:
            return Text()
        if cure is None or not cure.in_call or not cure.meets_call or not cure.lines:
            text = proposal_text(cure)
        else:
            ccy = cure.currency
            after = cure.after
            text = Text(
                f"Least-value cure in whole lots ({METHOD_WORDS[cure.method]}): "
                f"{format_money(cure.value, ccy, code=True)} → call amount after "
                f"{format_money(after.call_amount, ccy)} (equity {format_money(after.equity, ccy)}"
                f", MM {format_money(after.mm, ccy)})"
                + (", counting the working orders as filled." if cure.pending else ".")
            )
        published = published_text(cure)
        if published.plain:
            text.append("\n")
            text.append_text(published)
        return text

    def _render_orders(self) -> None:
        market = self.call.market
        self._show(
            "orders",
            {
                o.client_order_id: _row(_when(o.created_at), *order_cells(o, market))
                for o in self.orders
            },
        )

    def _render_plans(self) -> None:
        market = self.call.market
        self._show(
            "plans",
            {p.plan_id: _row(n, *plan_cells(p, market)) for n, p in enumerate(self.plans)},
        )

    def _render_messages(self) -> None:
        market = self.call.market
        self._show(
            "messages",
            {
                m.message_id: _row(_when(m.created_at), *message_cells(m, market))
                for m in self.messages
            },
        )

    def _render_timeline(self) -> None:
        market, ccy = self.call.market, self.call.currency
        self._show(
            "timeline",
            {
                str(s.seq): _row(s.seq, *timeline_cells(s, market, ccy))
                for s in sorted(self.snapshots, key=lambda s: s.seq)
            },
        )

    # --- keys ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open" and parameters:
            allowed = {
                "liquidate": self.can_trade,
                "auto_liquidate": self.can_trade,
                "message": self.can_message,
                "remark": self.can_remark,
            }
            return allowed.get(str(parameters[0]), False)
        if action == "cancel_plan":
            return self.can_trade and any(
                p.state is AutoLiquidationState.SCHEDULED for p in self.plans
            )
        return True

    def scheduled_plan(self) -> StoredAutoLiquidation | None:
        """The scheduled plan to cancel: the one under the plans' cursor, or the only one."""
        scheduled = [p for p in self.plans if p.state is AutoLiquidationState.SCHEDULED]
        if len(scheduled) == 1:
            return scheduled[0]
        key = self._table("plans").cursor_key
        chosen = next((p for p in scheduled if p.plan_id == key), None)
        return chosen

    def action_cancel_plan(self) -> None:
        plan = self.scheduled_plan()
        if plan is None:
            self.notify("move the cursor to the scheduled plan to cancel", severity="warning")
            return
        self.choose(f"cancel_plan:{plan.plan_id}")

    def action_open(self, what: str) -> None:
        if self.check_action("open", (what,)):
            self.choose(what)

    def choose(self, what: str) -> None:
        """What the operator wants next: done over the details when the app gave `act`
        (the details catch up with the desk afterwards), else the screen's answer."""
        act = self.act
        if act is None:
            self.dismiss(what)
            return

        async def run() -> None:
            await act(what)
            self.refresh_after_action()

        self.run_worker(run(), group="details-action", exclusive=True, exit_on_error=False)

    def refresh_after_action(self) -> None:
        """Back from a dialog: the call's orders, messages and plans read again at once."""
        desk = self.host.desk
        if desk is not None and self.is_mounted:
            self._since_records = 0.0
            self._read_records(desk)

    def action_toggle_wide(self) -> None:
        """Every table of the details between the fitting and the wide layout."""
        wide = not self._table("positions").wide
        for table in self.query(LiveTable):
            table.wide = wide

    def action_back(self) -> None:
        self.dismiss(None)


def _row(order: int, *cells: Text) -> RowData:
    """A details row: its cells, compared by the table (`version=None`), and its place
    (`order`: a row's place must not depend on the rows beside it, since a row whose
    cells are unchanged keeps its stored record)."""
    return RowData(cells, None, order)


def _when(at: datetime) -> int:
    """A row's place by its time (microseconds since the epoch): earliest first, and a
    row keeps its place when others come, whatever order the store lists them in."""
    return (aware(at) - _EPOCH) // _MICROSECOND


def _by_record(order: int) -> int:
    """The rows' order, as the details list them (the record is the row's place)."""
    return order


__all__ = [
    "DetailsScreen",
    "cure_words",
    "order_cells",
    "order_labels",
    "timeline_cells",
    "timeline_labels",
]
