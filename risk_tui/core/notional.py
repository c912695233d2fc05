"""What a liquidation is worth, for the four-eyes threshold: exact, in the desk's
reporting currency.

Notional = quantity × price × fx(instrument currency → reporting currency), where the
price is the order's limit price, or for a market order (and a plan's lines, which are
market orders) the last price in the book. A notional that cannot be computed (no
instrument, quote or fx rate) needs approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from risk_tui.core.actions import AutoLiquidationPlan, OrderIntent
from risk_tui.core.margin import MissingData, fx_rate
from risk_tui.core.model import Book
from risk_tui.core.money import context


@dataclass(frozen=True, slots=True)
class Notional:
    """What a liquidation is worth in `currency`; `amount` None when it cannot be computed."""

    amount: Decimal | None
    currency: str
    problem: str | None = None

    def exceeds(self, threshold: Decimal) -> bool:
        """Above the threshold, or unknown: both need a second person."""
        return self.amount is None or self.amount > threshold

    def wire(self) -> dict[str, str | None]:
        return {
            "amount": None if self.amount is None else str(self.amount),
            "currency": self.currency,
            "problem": self.problem,
        }


def _line_value(
    book: Book, symbol: str, quantity: Decimal, price: Decimal | None, currency: str
) -> Decimal:
    instrument = book.instruments.get(symbol)
    if instrument is None:
        raise MissingData(f"no instrument {symbol}")
    if price is None:
        quote = book.quotes.get(symbol)
        if quote is None:
            raise MissingData(f"no last price of {symbol}")
        price = quote.price
    rate = fx_rate(book, instrument.currency, currency)
    with localcontext(context()):
        return quantity * price * rate


def order_notional(intent: OrderIntent, book: Book, currency: str) -> Notional:
    """Quantity × (limit price, else the last price) × fx into `currency`."""
    price = intent.limit_price if intent.order_type == "limit" else None
    try:
        amount = _line_value(book, intent.symbol, intent.quantity, price, currency)
    except MissingData as missing:
        return Notional(None, currency, f"notional unknown: {missing}")
    return Notional(amount, currency)


def plan_notional(plan: AutoLiquidationPlan, book: Book, currency: str) -> Notional:
    """The sum over the plan's lines (market orders: the last price of each)."""
    total = Decimal(0)
    try:
        for line in plan.lines:
            with localcontext(context()):
                total += _line_value(book, line.symbol, line.quantity, None, currency)
    except MissingData as missing:
        return Notional(None, currency, f"notional unknown: {missing}")
    return Notional(total, currency)


def plan_needs_approval(plan: AutoLiquidationPlan, notional: Notional, threshold: Decimal) -> bool:
    return plan.moved_deadline is not None or notional.exceeds(threshold)


__all__ = ["Notional", "order_notional", "plan_needs_approval", "plan_notional"]
