"""The holdings picker of the liquidation dialogs: what to sell or cover, and how much.

One row per holding: long → sell, short → buy to cover. Quantities are prefilled from
`cure_plan` (the whole board lots whose sale alone cures the call); suspended and
delisted holdings are listed but cannot be chosen. Preselected is the one holding whose
sale alone cures the call with the smallest sale by the seed's rule (call ÷ IM ratio:
the riskiest collateral goes first); the others stay unselected with their own cure
quantity shown, so choosing another is one key press. As the operator edits, a line
says how much of the call the selection covers (`covered_amount`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Static

from risk_tui.core.actions import SendState
from risk_tui.core.margin import AccountMargin, CureLine, PositionMargin, covered_amount, cure_plan
from risk_tui.core.model import Side
from risk_tui.core.money import ZERO, format_money, format_ratio
from risk_tui.core.records import StoredOrder
from risk_tui.widgets.dialogs.base import MarkCheckbox
from risk_tui.widgets.dialogs.formatting import format_price, format_quantity, parse_quantity
from risk_tui.widgets.render import data_text

# Broker statuses after which an order no longer holds any quantity.
_DONE_STATUSES = frozenset({"filled", "cancelled", "rejected"})


@dataclass(frozen=True, slots=True)
class Holding:
    """One position as the picker offers it."""

    position: PositionMargin
    cure: CureLine | None  # None: suspended/delisted, or nothing to cure
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
        return self.cure.quantity if self.cure is not None and self.cure.quantity > 0 else None

    def value_of(self, quantity: Decimal) -> Decimal:
        """Estimated value in the account currency at the last price (market orders vary)."""
        return quantity * self.position.price * self.position.fx


def open_quantity(order: StoredOrder) -> Decimal:
    """What a working order may still trade; 0 once it is done or was refused."""
    if order.send_state is SendState.FAILED or (order.status or "") in _DONE_STATUSES:
        return ZERO
    return max(ZERO, order.quantity - order.filled_quantity)


def holdings_for(margin: AccountMargin, working: Sequence[StoredOrder] = ()) -> tuple[Holding, ...]:
    cures = {line.symbol: line for line in cure_plan(margin)}
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
        rows.append(Holding(position, cures.get(position.symbol), pending))
    return tuple(rows)


def default_choice(holdings: Sequence[Holding]) -> str | None:
    """The holding preselected: its sale alone cures the call, with the smallest sale needed.

    The smallest `value_needed` (call ÷ IM ratio) is the highest IM ratio: the riskiest
    collateral. Ties go to the one listed first. None when no single holding suffices.
    """
    best: Holding | None = None
    for holding in holdings:
        cure = holding.cure
        if cure is None or not cure.sufficient or not holding.tradable:
            continue
        if best is None or (best.cure is not None and cure.value_needed < best.cure.value_needed):
            best = holding
    return best.symbol if best is not None else None


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


def _cell(text: str | Text, classes: str) -> Static:
    return Static(text if isinstance(text, Text) else Text(text), classes=f"cell {classes}")


class HoldingsEditor(Vertical):
    """Rows of holdings with a checkbox and a quantity each, and the live "covers" line."""

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
    HoldingsEditor .pick { width: 14; }
    HoldingsEditor .side { width: 5; }
    HoldingsEditor .held { width: 8; text-align: right; }
    HoldingsEditor .lot { width: 6; text-align: right; }
    HoldingsEditor .price { width: 8; text-align: right; }
    HoldingsEditor .qty { width: 10; }
    HoldingsEditor .value { width: 12; text-align: right; }
    HoldingsEditor .note { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    HoldingsEditor MarkCheckbox {
        width: 14;
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
        width: 10;
        height: 1;
        margin-right: 1;
    }
    HoldingsEditor .covers {
        margin-top: 1;
        height: auto;
    }
    """

    def __init__(
        self,
        margin: AccountMargin,
        holdings: Sequence[Holding],
        preselect: str | None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.margin = margin
        self.holdings = tuple(holdings)
        self.preselect = preselect
        self._checks: dict[int, MarkCheckbox] = {}
        self._inputs: dict[int, Input] = {}
        self._values: dict[int, Static] = {}

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
            yield _cell("Note", "note")
        if self.margin.incomplete is not None:
            note = Text("No figures to choose from: ")
            note.append_text(data_text(self.margin.incomplete))
            yield Static(note)
        elif not self.holdings:
            yield Static(Text("The account holds no positions: nothing to liquidate."))
        for index, holding in enumerate(self.holdings):
            with Horizontal(classes="holding-row"):
                yield from self._row(index, holding)
        yield Static(classes="covers", id="covers")
        yield Static(classes="covers-value", id="covers-value")

    def _row(self, index: int, holding: Holding) -> ComposeResult:
        side = "sell" if holding.side is Side.SELL else "buy"
        symbol = data_text(holding.symbol)
        if holding.tradable:
            check = MarkCheckbox(
                symbol,
                value=holding.symbol == self.preselect,
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
        yield _cell(format_quantity(holding.held), "held")
        yield _cell(format_quantity(holding.lot), "lot")
        yield _cell(format_price(holding.position.price), "price")
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
        value = _cell("", "value")
        self._values[index] = value
        yield value
        yield _cell(self._note(holding), "note")

    @staticmethod
    def _note(holding: Holding) -> str:
        if not holding.tradable:
            return "suspended/delisted: cannot trade"
        notes: list[str] = []
        if holding.working:
            notes.append(f"{format_quantity(holding.working)} working")
        if holding.cure is not None:
            notes.append("cures alone" if holding.cure.sufficient else "too small")
        return ", ".join(notes)

    def on_mount(self) -> None:
        self.refresh_figures()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _edited(self) -> None:
        self.refresh_figures()

    def first_control(self) -> MarkCheckbox | None:
        return next(iter(self._checks.values()), None)

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
            problems.append("select at least one holding (space ticks the box)")
        return chosen, problems

    def covered(self) -> tuple[Decimal, Decimal]:
        """(covered amount, estimated value) of what is ticked with a positive quantity."""
        quantities: dict[str, Decimal] = {}
        value = ZERO
        for _, holding, selected, raw in self.typed():
            quantity = parse_quantity(raw)
            if not selected or quantity is None or quantity <= 0:
                continue
            quantity = min(quantity, holding.held)
            quantities[holding.symbol] = quantities.get(holding.symbol, ZERO) + quantity
            value += holding.value_of(quantity)
        return covered_amount(self.margin, quantities), value

    def refresh_figures(self) -> None:
        ccy = self.margin.currency
        for index, holding, _, raw in self.typed():
            quantity = parse_quantity(raw)
            shown = (
                format_money(holding.value_of(quantity), ccy)
                if quantity is not None and quantity > 0
                else "—"
            )
            self._values[index].update(Text(shown))
        self.query_one("#covers", Static).update(self.covers_text())
        self.query_one("#covers-value", Static).update(self.verdict_text())

    def covers_text(self) -> Text:
        """`Covers SGD 1,950.00 of the call amount SGD 1,015.00 (192.12%).`"""
        ccy = self.margin.currency
        call = self.margin.call_amount
        covered, _ = self.covered()
        if call <= 0:
            return Text(
                f"Covers {format_money(covered, ccy, code=True)}; no call amount is "
                "outstanding now."
            )
        return Text(
            f"Covers {format_money(covered, ccy, code=True)} of the call amount "
            f"{format_money(call, ccy, code=True)} ({format_ratio(covered / call)})."
        )

    def verdict_text(self, *, with_value: bool = True) -> Text:
        """Whether the selection meets the call, in words, and its estimated value."""
        ccy = self.margin.currency
        call = self.margin.call_amount
        covered, value = self.covered()
        if call <= 0:
            verdict = "Nothing to cure"
        elif covered >= call:
            verdict = "Meets the call"
        else:
            verdict = f"Short of the call by {format_money(call - covered, ccy, code=True)}"
        if not with_value:
            return Text(f"{verdict}.")
        return Text(f"{verdict} · est. value {format_money(value, ccy, code=True)} at last prices")
