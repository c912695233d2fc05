"""An independent brute force of the cure: every combination of whole board lots.

Written from SPEC.md, sharing nothing with `core.cure` but the reference
(`margin.compute_account`): each combination's trades are applied here, by hand, to a
copy of the book (a sale removes the quantity and credits quantity × last price in the
instrument's currency; a buy to cover adds it back and debits the cost), and the
account is recomputed. The least market value among the combinations whose recomputed
call amount is 0 is the cure; none: trading every lot cannot cure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from itertools import product

from risk_tui.core.margin import CallPolicy, compute_account, fx_rate
from risk_tui.core.model import Book
from risk_tui.core.money import ZERO, context


@dataclass(frozen=True)
class Brute:
    """The least value that cures (None: nothing cures), and the call amount left after
    trading every lot."""

    least_value: Decimal | None
    left_after_everything: Decimal
    combinations: int


def _copy(book: Book, account_id: str) -> Book:
    return Book(
        instruments=dict(book.instruments),
        quotes=dict(book.quotes),
        fx=dict(book.fx),
        accounts={account_id: book.accounts[account_id]},
        cash={account_id: dict(book.cash.get(account_id, {}))},
        positions={account_id: dict(book.positions.get(account_id, {}))},
    )


def brute_force(book: Book, account_id: str, policy: CallPolicy) -> Brute:
    base = book.accounts[account_id].base_currency
    holdings = [
        p
        for p in book.positions.get(account_id, {}).values()
        if not (book.instruments[p.symbol].suspended or book.instruments[p.symbol].delisted)
    ]
    choices = []
    for p in holdings:
        lot = book.instruments[p.symbol].lot_size or Decimal(1)
        whole = int(abs(p.quantity) // lot)
        choices.append([k * lot for k in range(whole + 1)])
    least: Decimal | None = None
    left = ZERO
    count = 0
    with localcontext(context()):
        for quantities in product(*choices):
            count += 1
            trial = _copy(book, account_id)
            value = ZERO
            for p, quantity in zip(holdings, quantities, strict=True):
                if not quantity:
                    continue
                instrument = book.instruments[p.symbol]
                price = book.quotes[p.symbol].price
                sign = 1 if p.quantity > 0 else -1  # sell a long, buy back a short
                trial.set_position(replace(p, quantity=p.quantity - sign * quantity))
                cash = trial.cash[account_id]
                cash[instrument.currency] = cash.get(instrument.currency, ZERO) + (
                    sign * quantity * price
                )
                value += quantity * price * fx_rate(book, instrument.currency, base)
            after = compute_account(trial, account_id, policy)
            if after.call_amount <= 0 and (least is None or value < least):
                least = value
            left = after.call_amount  # the last combination trades every lot
    return Brute(least, left, count)
