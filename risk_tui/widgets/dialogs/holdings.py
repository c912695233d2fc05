"""The holdings picker of the liquidation dialogs: what to sell or cover, how much, and
the account after it.

One row per holding: long → sell, short → buy to cover. The picker opens on the desk's
least-value cure (`DeskApi.cure`, whole board lots): its holdings ticked with their
quantities; every other tradable holding is offered unticked with the fewest whole lots
that would cure on their own. Suspended and delisted holdings are listed but cannot be
chosen. As the operator edits, the desk computes the account after the selection
(`DeskApi.after_trades`): equity, MM, risk level and the call amount recomputed as the
lifecycle would; "Meets the call" only when that amount is 0, else what it leaves to
collect. Each row's note says what its line alone does to the call. The terminal holds
no margin formula: every figure here is the desk's. The broker's published minimum
(call ÷ IM ratio) is shown under its own name, a floor and never a cure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Static

from risk_tui.core.actions import SendState
from risk_tui.core.cure import (
    METHOD_WORDS,
    CureProposal,
    PostTrade,
    TradeEffect,
    TradeLine,
    published_minimum_line,
)
from risk_tui.core.margin import AccountMargin, PositionMargin
from risk_tui.core.model import Side
from risk_tui.core.money import ZERO, context, format_money
from risk_tui.core.records import StoredOrder
from risk_tui.desk.api import TradeFigures
from risk_tui.widgets.dialogs.base import MarkCheckbox
from risk_tui.widgets.dialogs.formatting import (
    format_price,
    format_quantity,
    parse_quantity,
    risk_words,
)
from risk_tui.widgets.render import data_text
from risk_tui.widgets.whole import WholeCell

# Broker statuses after which an order no longer holds any quantity.
_DONE_STATUSES = frozenset({"filled", "cancelled", "rejected"})
# Broker statuses of an order the broker still works.
_WORKED_STATUSES = frozenset({"working", "partially_filled"})

PUBLISHED_SHOWN = 3  # holdings named on the published-minimum line


@dataclass(frozen=True, slots=True)
class Holding:
    """One position as the picker offers it."""

    position: PositionMargin
    proposed: Decimal | None  # in the desk's cure: preselected with this quantity
    single: Decimal | None  # the fewest whole lots curing on their own (or all lots)
    working: Decimal  # quantity still open in working orders on the same side

    @property
    def symbol(self) -> str:
        return self.position.symbol

    @property
    def side(self) -> Side:
        return Side.SELL if self.position.quantity > 0 else Side.BUY

    @property
    def held(self) -> Decimal:
        return abs(self.position.quantity)

    @property
    def available(self) -> Decimal:
        """What may still be ordered: held, less what working orders will already trade."""
        return max(ZERO, self.held - self.working)

    @property
    def lot(self) -> Decimal:
        return self.position.lot_size if self.position.lot_size > 0 else Decimal(1)

    @property
    def tradable(self) -> bool:
        return not self.position.illiquid

    @property
    def prefill(self) -> Decimal | None:
        quantity = self.proposed if self.proposed is not None else self.single
        return quantity if quantity is not None and quantity > 0 else None

    def line(self, quantity: Decimal) -> TradeLine:
        return TradeLine(self.symbol, self.side, quantity)


def open_quantity(order: StoredOrder) -> Decimal:
    """What a working order may still trade; 0 once it is done or was refused."""
    if order.send_state is SendState.FAILED or (order.status or "") in _DONE_STATUSES:
        return ZERO
    return max(ZERO, order.quantity - order.filled_quantity)


def worked(orders: Sequence[StoredOrder]) -> list[StoredOrder]:
    """The orders the broker still works: what a dialog and the details count as pending."""
    return [order for order in orders if order.status in _WORKED_STATUSES]


def pending_lines(margin: AccountMargin, working: Sequence[StoredOrder]) -> tuple[TradeLine, ...]:
    """The account's working orders as trades still to come (at their limit, if any),
    never more than is held: what the after-figures count as already traded."""
    left = {p.symbol: (p.quantity, abs(p.quantity)) for p in margin.positions}
    lines: list[TradeLine] = []
    for order in working:
        held = left.get(order.symbol)
        quantity = open_quantity(order)
        if order.account_id != margin.account_id or held is None or quantity <= 0:
            continue
        signed, room = held
        if (order.side is Side.SELL) != (signed > 0) or room <= 0:
            continue
        quantity = min(quantity, room)
        left[order.symbol] = (signed, room - quantity)
        limit = order.limit_price if order.order_type == "limit" else None
        lines.append(TradeLine(order.symbol, order.side, quantity, limit))
    return tuple(lines)


def holdings_for(
    margin: AccountMargin,
    proposal: CureProposal | None,
    working: Sequence[StoredOrder] = (),
) -> tuple[Holding, ...]:
    rows: list[Holding] = []
    for position in margin.positions:
        side = Side.SELL if position.quantity > 0 else Side.BUY
        pending = sum(
            (
                open_quantity(order)
                for order in working
                if order.account_id == margin.account_id
                and order.symbol == position.symbol
                and order.side is side
            ),
            ZERO,
        )
        proposed = single = None
        if proposal is not None and not position.illiquid:
            proposed = proposal.quantity(position.symbol)
            single = proposal.single(position.symbol)
        rows.append(Holding(position, proposed, single, pending))
    return tuple(rows)


NOTHING_SELECTED = "select at least one holding (space ticks the box)"


def quantity_problems(holding: Holding, raw: str) -> tuple[Decimal | None, list[str]]:
    """The quantity typed for `holding`, and every reason it cannot be ordered."""
    symbol = holding.symbol
    quantity = parse_quantity(raw)
    if quantity is None:
        return None, [f"{symbol}: enter a whole number of shares"]
    if quantity <= 0:
        return quantity, [f"{symbol}: the quantity must be more than zero"]
    if quantity != quantity.to_integral_value():
        return quantity, [f"{symbol}: {quantity} is not a whole number of shares"]
    held_word = "held" if holding.side is Side.SELL else "short"
    if quantity > holding.available:
        if holding.working:
            return quantity, [
                f"{symbol}: {format_quantity(quantity)} plus the "
                f"{format_quantity(holding.working)} in working orders is more than the "
                f"{format_quantity(holding.held)} {held_word}"
            ]
        return quantity, [
            f"{symbol}: {format_quantity(quantity)} is more than the "
            f"{format_quantity(holding.held)} {held_word}"
        ]
    if quantity % holding.lot != 0 and quantity != holding.available:
        return quantity, [
            f"{symbol}: {format_quantity(quantity)} is not whole board lots of "
            f"{format_quantity(holding.lot)}; order whole lots or all "
            f"{format_quantity(holding.available)}"
        ]
    return quantity, []


def ask_after(
    figures: TradeFigures, account_id: str, lines: Sequence[TradeLine]
) -> PostTrade | None:
    """The desk's figures after `lines`; None when it has none (or refuses a line)."""
    try:
        return figures.after_trades(account_id, lines)
    except ValueError:  # core.cure.TradeError: the entries changed under the figures
        return None


def after_text(after: PostTrade | None, *, pending: bool = False) -> Text:
    """`After: equity SGD 9,500.00 · MM SGD 9,022.50 · watch (equity below IM)`."""
    label = "After this and the working orders" if pending else "After"
    if after is None or after.after.incomplete is not None:
        return Text(f"{label}: — (the desk has no figures for this selection)")
    figures, ccy = after.after, after.currency
    return Text(
        f"{label}: equity {format_money(figures.equity, ccy, code=True)} · MM "
        f"{format_money(figures.mm, ccy, code=True)} · {risk_words(figures.risk_level)}"
    )


def verdict_text(after: PostTrade | None, *, in_call: bool, value: Decimal | None) -> Text:
    """`Meets the call: call amount after 0.00` or `Leaves SGD 70.00 to collect`, and the
    estimated value traded."""
    if after is None or after.after.incomplete is not None:
        verdict = "No figures after this selection"
    else:
        ccy = after.currency
        if not in_call:
            verdict = "Not in call: nothing to collect"
        elif after.meets_call:
            verdict = f"Meets the call: call amount after {format_money(ZERO, ccy)}"
        else:
            verdict = f"Leaves {format_money(after.left_to_collect, ccy, code=True)} to collect"
    if value is None:
        return Text(f"{verdict}.")
    currency = after.currency if after is not None else ""
    return Text(f"{verdict} · est. {format_money(value, currency, code=True)} at last prices")


def proposal_text(proposal: CureProposal | None) -> Text:
    """What was preselected and how it was found, or why nothing cures."""
    if proposal is None:
        return Text("No cure proposed: the desk has no figures for this account.")
    ccy = proposal.currency
    if not proposal.in_call:
        return Text("Not in call: no cure to propose.")
    if not proposal.meets_call:
        short = format_money(proposal.left_to_collect, ccy, code=True)
        return Text(
            f"Selling everything cannot cure: {short} short (every whole lot preselected).",
            style="bold",
        )
    if not proposal.lines and proposal.pending:
        return Text("The working orders meet the call once filled: nothing more to sell.")
    if not proposal.lines:
        return Text("Nothing to sell: the recomputed call amount is already 0.")
    return Text(
        f"Preselected: least-value cure in whole lots, "
        f"{format_money(proposal.value, ccy, code=True)} ({METHOD_WORDS[proposal.method]})."
    )


def published_text(proposal: CureProposal | None) -> Text:
    """The broker's published minimum, named as such (`core.cure.published_minimum_line`)."""
    if proposal is None:
        return Text()
    return Text(published_minimum_line(proposal, PUBLISHED_SHOWN))


def _cell(text: str | Text, classes: str) -> Static:
    return Static(text if isinstance(text, Text) else Text(text), classes=f"cell {classes}")


class HoldingsEditor(Vertical):
    """Rows of holdings with a checkbox and a quantity each, and the account after them."""

    DEFAULT_CSS = """
    HoldingsEditor {
        height: auto;
    }
    HoldingsEditor .holding-row {
        height: 1;
        width: 100%;
    }
    HoldingsEditor .holding-header {
        text-style: bold underline;
    }
    HoldingsEditor .cell { height: 1; padding-right: 1; }
    HoldingsEditor .pick { width: 13; }
    HoldingsEditor .side { width: 5; }
    HoldingsEditor .held { width: 8; text-align: right; }
    HoldingsEditor .lot { width: 6; text-align: right; }
    HoldingsEditor .price { width: 8; text-align: right; }
    HoldingsEditor .qty { width: 9; }
    HoldingsEditor .value { width: 13; text-align: right; }
    HoldingsEditor .note { width: 1fr; }
    HoldingsEditor MarkCheckbox {
        width: 13;
        height: 1;
        border: none;
        padding: 0;
        background: transparent;
    }
    HoldingsEditor MarkCheckbox:focus {
        border: none;
    }
    HoldingsEditor MarkCheckbox:focus > .toggle--label {
        text-style: bold reverse;
    }
    HoldingsEditor Input.qty {
        width: 9;
        height: 1;
        margin-right: 1;
    }
    HoldingsEditor #after {
        margin-top: 1;
        height: auto;
    }
    HoldingsEditor .summary { height: auto; }
    """

    def __init__(
        self,
        margin: AccountMargin,
        holdings: Sequence[Holding],
        figures: TradeFigures,
        proposal: CureProposal | None,
        pending: Sequence[TradeLine] = (),
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.margin = margin
        self.holdings = tuple(holdings)
        self.figures = figures
        self.proposal = proposal
        self.pending = tuple(pending)
        self._checks: dict[int, MarkCheckbox] = {}
        self._inputs: dict[int, Input] = {}
        self._values: dict[int, WholeCell] = {}
        self._notes: dict[int, WholeCell] = {}
        self.after: PostTrade | None = None  # the account after the selection (and pending)
        self.effects: dict[int, TradeEffect] = {}  # each typed row's line on its own

    def compose(self) -> ComposeResult:
        ccy = self.margin.currency
        with Horizontal(classes="holding-row holding-header"):
            yield _cell("Holding", "pick")
            yield _cell("Side", "side")
            yield _cell("Held", "held")
            yield _cell("Lot", "lot")
            yield _cell("Price", "price")
            yield _cell("Quantity", "qty")
            yield _cell(f"Est. {ccy}", "value")
            yield _cell("On call", "note")
        if self.margin.incomplete is not None:
            note = Text("No figures to choose from: ")
            note.append_text(data_text(self.margin.incomplete))
            yield Static(note)
        elif not self.holdings:
            yield Static(Text("The account holds no positions: nothing to liquidate."))
        for index, holding in enumerate(self.holdings):
            with Horizontal(classes="holding-row"):
                yield from self._row(index, holding)
        yield Static(classes="summary", id="after")
        yield Static(classes="summary", id="verdict")
        if self.margin.incomplete is None:
            yield Static(proposal_text(self.proposal), classes="summary", id="proposal")
            yield Static(published_text(self.proposal), classes="summary", id="published")

    def _row(self, index: int, holding: Holding) -> ComposeResult:
        side = "sell" if holding.side is Side.SELL else "buy"
        symbol = data_text(holding.symbol)
        if holding.tradable:
            check = MarkCheckbox(
                symbol,
                value=holding.proposed is not None,
                id=f"pick-{index}",
                classes="pick",
            )
            self._checks[index] = check
            yield check
        else:
            label = Text("[-] ")
            label.append_text(symbol)
            yield _cell(label, "pick")
        yield _cell(side, "side")
        yield WholeCell(format_quantity(holding.held), classes="cell held")
        yield WholeCell(format_quantity(holding.lot), classes="cell lot")
        yield WholeCell(format_price(holding.position.price), classes="cell price")
        if holding.tradable:
            prefill = holding.prefill
            quantity = Input(
                "" if prefill is None else format_quantity(prefill),
                restrict=r"[0-9,]*",
                compact=True,
                select_on_focus=True,
                id=f"qty-{index}",
                classes="qty",
            )
            quantity.cursor_blink = False  # deterministic screens; the cursor still shows
            self._inputs[index] = quantity
            yield quantity
        else:
            yield _cell("—", "qty")
        value = WholeCell(classes="cell value")
        self._values[index] = value
        yield value
        untradable = ("suspended/delisted: cannot trade", "suspended/delisted", "no trade")
        note = WholeCell(*(() if holding.tradable else untradable), classes="cell note")
        self._notes[index] = note
        yield note

    def on_mount(self) -> None:
        self.refresh_figures()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _edited(self) -> None:
        self.refresh_figures()

    def first_control(self) -> MarkCheckbox | None:
        return next(iter(self._checks.values()), None)

    def control_for(self, problem: str) -> Widget | None:
        """Where to fix a problem of `selection`: the quantity of the holding it names
        (`A.SG: …`), or the first box when none is selected."""
        if problem == NOTHING_SELECTED:
            return self.first_control()
        named = problem.partition(":")[0]
        for index, holding in enumerate(self.holdings):
            if holding.symbol == named and index in self._inputs:
                return self._inputs[index]
        return None

    def typed(self) -> list[tuple[int, Holding, bool, str]]:
        """Every tradable row: index, holding, selected, quantity as typed."""
        return [
            (index, holding, self._checks[index].value, self._inputs[index].value)
            for index, holding in enumerate(self.holdings)
            if index in self._checks
        ]

    def selection(
        self, *, require_one: bool = True
    ) -> tuple[list[tuple[Holding, Decimal]], list[str]]:
        """The selected holdings with valid quantities, and every problem with the rest."""
        chosen: list[tuple[Holding, Decimal]] = []
        problems: list[str] = []
        for _, holding, selected, raw in self.typed():
            if not selected:
                continue
            quantity, issues = quantity_problems(holding, raw)
            problems.extend(issues)
            if not issues and quantity is not None:
                chosen.append((holding, quantity))
        if require_one and not chosen and not problems:
            problems.append(NOTHING_SELECTED)
        return chosen, problems

    # --- the desk's figures -----------------------------------------------------------

    def _priced(self) -> tuple[dict[int, TradeLine], dict[int, TradeLine]]:
        """The rows whose quantity can be valued, selected and not: a whole number of
        shares, more than 0; a selected one no more than is still available."""
        selected: dict[int, TradeLine] = {}
        others: dict[int, TradeLine] = {}
        for index, holding, ticked, raw in self.typed():
            quantity = parse_quantity(raw)
            if quantity is None or quantity <= 0 or quantity != quantity.to_integral_value():
                continue
            if ticked:
                quantity = min(quantity, holding.available)
                if quantity > 0:
                    selected[index] = holding.line(quantity)
            elif quantity <= holding.held:
                others[index] = holding.line(quantity)
        return selected, others

    def refresh_figures(self) -> None:
        """Ask the desk for the account after the selection, and each row's line alone."""
        account_id = self.margin.account_id
        selected, others = self._priced()
        self.effects = {}
        if self.margin.incomplete is None:
            self.after = ask_after(self.figures, account_id, [*self.pending, *selected.values()])
            if self.after is not None:
                mine = self.after.lines[len(self.pending) :]
                self.effects.update(zip(selected, mine, strict=True))
            alone = ask_after(self.figures, account_id, list(others.values())) if others else None
            if alone is not None:
                self.effects.update(zip(others, alone.lines, strict=True))
        ccy = self.margin.currency
        for index, holding, _, _ in self.typed():
            effect = self.effects.get(index)
            shown = format_money(effect.value, ccy) if effect is not None else "—"
            self._values[index].show(shown)
            self._notes[index].show(*self._note(holding, effect))
        self.query_one("#after", Static).update(after_text(self.after, pending=bool(self.pending)))
        self.query_one("#verdict", Static).update(self.verdict())

    def _note(self, holding: Holding, effect: TradeEffect | None) -> tuple[str, ...]:
        """The row's note and shorter forms of it, longest first (a narrow terminal
        shows the first that fits whole): what working orders hold, and what the line
        alone does to the call."""
        working = f"{format_quantity(holding.working)} working" if holding.working else ""
        in_call = self.proposal is not None and self.proposal.in_call
        if effect is None or not in_call:
            return (working,)
        if effect.cures_alone:
            effects: tuple[str, ...] = ("cures alone", "cures")
        else:  # what the line alone takes off the call amount
            relief = format_money(abs(effect.relief), self.margin.currency)
            effects = (f"{'−' if effect.relief >= 0 else '+'}{relief}",)
        if not working:
            return effects
        return (*(f"{working}, {words}" for words in effects), working)

    def selected_value(self) -> Decimal | None:
        """The estimated value of the selection at last prices, as the desk valued it."""
        chosen = [effect for index, effect in self.effects.items() if self._is_ticked(index)]
        if not chosen:
            return None
        with localcontext(context()):
            return sum((effect.value for effect in chosen), ZERO)

    def effect_for(self, symbol: str) -> TradeEffect | None:
        """The desk's valuation of the row's line on its own (None: not valued)."""
        for index, holding in enumerate(self.holdings):
            if holding.symbol == symbol and index in self.effects:
                return self.effects[index]
        return None

    def _is_ticked(self, index: int) -> bool:
        check = self._checks.get(index)
        return check is not None and check.value

    def verdict(self, *, with_value: bool = True) -> Text:
        value = self.selected_value() if with_value else None
        in_call = self.proposal is None or self.proposal.in_call
        return verdict_text(self.after, in_call=in_call, value=value)


__all__ = [
    "Holding",
    "HoldingsEditor",
    "after_text",
    "ask_after",
    "holdings_for",
    "open_quantity",
    "pending_lines",
    "proposal_text",
    "published_text",
    "quantity_problems",
    "verdict_text",
    "worked",
]
