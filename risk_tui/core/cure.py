"""What a liquidation does to an account, and the least-value liquidation that cures it.

**After the trades** (`post_trade`): the reference itself (`margin.compute_account`) on
the account's book with the trades applied — a sale at the last price (or at the limit
of a limit order) removes the quantity and credits the proceeds in the instrument's
currency; a buy to cover adds it back and debits the cost; margin is recomputed with the
same ratios, fx rates and call formula. The call amount after is the one the lifecycle
computes for the open call (`lifecycle.evaluate` ends a call when it is ≤ 0): under
`mm_buffer` MM + buffer × gross MV − equity, under `im` IM − equity, rounded up to the
minor unit. A selection "meets the call" only when that amount is 0.

**The cure** (`propose_cure`): whole board lots, never more than held (less what
working orders already trade), suspended and delisted holdings left alone, that bring
the recomputed call amount to ≤ 0 trading the least market value in the account's base
currency. Longs are sold and shorts bought back: at the last price neither moves equity,
and each lowers the call by its value × (MM ratio + buffer) — × IM ratio under `im` —
with the position's own ratios (a short's short ratios), so covering a short cures the
call exactly as a sale does; a short is never sold. The search (`core.cure_search`) is
exact for up to `EXACT_LIMIT` holdings — no other choice of lots trades less, by more
than a hundredth of the currency's minor unit (a difference no figure can show) —
greedy beyond, or when the exact search runs out of steps, and says which. When trading
everything cannot cure, the proposal trades everything and says how much is still due.

**The broker's published minimum** (`published_minimum`): the seed's rule, "sell at
least call ÷ IM ratio of stock i". It is a floor the broker publishes, shown under its
own name; it is never presented as a cure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum

from risk_tui.core.cure_search import LotItem, least_cost
from risk_tui.core.margin import (
    AccountMargin,
    CallFormula,
    CallPolicy,
    MissingData,
    PositionMargin,
    compute_account,
    fx_rate,
    raw_call_amount,
)
from risk_tui.core.model import Book, Side
from risk_tui.core.money import ONE, ZERO, context, format_money, quantum
from risk_tui.core.text import sanitize

EXACT_LIMIT = 15  # tradable holdings up to which the cure is searched exactly

# The search's own figures (a lot's value and what it takes off the call): more digits
# than the reference's context, so that the products it compares are exact.
_SEARCH_CONTEXT_PRECISION = 120


class CureMethod(StrEnum):
    EXACT = "exact"  # branch and bound over lots: the least value, proven (see the module doc)
    GREEDY = "greedy"  # greedy fill by cure per dollar, improved locally: not proven least


METHOD_WORDS: dict[CureMethod, str] = {
    CureMethod.EXACT: "exact search",
    CureMethod.GREEDY: "greedy search, not proven least",
}


class TradeError(ValueError):
    """A trade line that cannot apply to the account (no such holding, wrong side, more
    than held, not a positive quantity)."""


@dataclass(frozen=True, slots=True)
class TradeLine:
    """One trade to compute: sell (reduce a long) or buy (cover a short)."""

    symbol: str
    side: Side
    quantity: Decimal  # > 0
    limit_price: Decimal | None = None  # a limit order trades at its limit; else the last price


@dataclass(frozen=True, slots=True)
class TradeEffect:
    """One line of a trade, valued, with what it does to the call on its own."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal  # what it trades at: the limit, else the last price
    currency: str  # the instrument's
    value: Decimal  # quantity × price × fx, in the account's base currency
    relief: Decimal  # how much this line alone lowers the (unrounded) call amount
    cures_alone: bool  # this line alone brings the recomputed call amount to 0


@dataclass(frozen=True, slots=True)
class PostTrade:
    """The account before and after a set of trades, both the reference's figures."""

    account_id: str
    currency: str
    before: AccountMargin
    after: AccountMargin
    lines: tuple[TradeEffect, ...]

    @property
    def value(self) -> Decimal:
        """The market value traded, in the base currency."""
        with localcontext(context()):
            return sum((line.value for line in self.lines), ZERO)

    @property
    def meets_call(self) -> bool:
        """The recomputed call amount after is 0: the lifecycle would end the call."""
        return self.after.incomplete is None and self.after.call_amount <= 0

    @property
    def left_to_collect(self) -> Decimal:
        return self.after.call_amount


@dataclass(frozen=True, slots=True)
class PublishedMinimum:
    """The broker's published minimum for one holding: sell at least call ÷ IM ratio."""

    symbol: str
    value: Decimal  # base currency, unrounded


@dataclass(frozen=True, slots=True)
class CureProposal:
    """The least-value cure of one account, and the account after it.

    Not in call (no open call and equity ≥ MM): nothing to propose, nothing due.
    """

    account_id: str
    currency: str
    in_call: bool
    method: CureMethod
    before: AccountMargin
    after: AccountMargin  # after the working orders (`pending`) and the lines
    lines: tuple[TradeEffect, ...]
    pending: tuple[TradeLine, ...]  # working orders, counted as traded
    published_minimum: tuple[PublishedMinimum, ...]
    singles: tuple[TradeLine, ...]  # per tradable holding: the fewest whole lots that
    # cure on their own (all its lots when they cannot)

    @property
    def call_amount(self) -> Decimal:
        """What is due now, as the lifecycle computes it (0 when not in call)."""
        return self.before.call_amount if self.in_call else ZERO

    @property
    def left_to_collect(self) -> Decimal:
        """What is still due after the proposal (0 when it meets the call)."""
        return self.after.call_amount if self.in_call else ZERO

    @property
    def meets_call(self) -> bool:
        return self.left_to_collect <= 0

    @property
    def value(self) -> Decimal:
        """The market value the proposal trades, in the base currency."""
        with localcontext(context()):
            return sum((line.value for line in self.lines), ZERO)

    def quantity(self, symbol: str) -> Decimal | None:
        """The proposed quantity of a holding; None when the proposal leaves it."""
        return next((line.quantity for line in self.lines if line.symbol == symbol), None)

    def single(self, symbol: str) -> Decimal | None:
        return next((line.quantity for line in self.singles if line.symbol == symbol), None)


# --- after the trades ---------------------------------------------------------------------


def account_book(book: Book, account_id: str) -> Book:
    """The account alone: its records and the instruments, quotes and fx rates it reads.
    A copy: trades applied to it leave the desk's book as it is."""
    holdings = dict(book.positions.get(account_id, {}))
    return Book(
        instruments={s: book.instruments[s] for s in holdings if s in book.instruments},
        quotes={s: book.quotes[s] for s in holdings if s in book.quotes},
        fx=dict(book.fx),
        accounts={account_id: book.accounts[account_id]},
        cash={account_id: dict(book.cash.get(account_id, {}))},
        positions={account_id: holdings},
        as_of=book.as_of,
        cursor=book.cursor,
    )


def apply_trades(book: Book, account_id: str, lines: Iterable[TradeLine]) -> None:
    """Apply the lines to an account's book (a copy: see `account_book`), in order."""
    holdings = book.positions.setdefault(account_id, {})
    cash = book.cash.setdefault(account_id, {})
    with localcontext(context()):
        for line in lines:
            position = holdings.get(line.symbol)
            held = ZERO if position is None else position.quantity
            if line.quantity <= 0:
                raise TradeError(f"{line.symbol}: the quantity must be more than zero")
            if line.side is Side.SELL and held <= 0:
                raise TradeError(f"{line.symbol}: no long position to sell")
            if line.side is Side.BUY and held >= 0:
                raise TradeError(f"{line.symbol}: no short position to cover")
            if line.quantity > abs(held):
                raise TradeError(
                    f"{line.symbol}: {line.quantity} is more than the {abs(held)} held"
                )
            price = _trade_price(book, line)
            instrument = book.instruments.get(line.symbol)
            if instrument is None:
                raise MissingData(f"unknown instrument {line.symbol}")
            signed = -line.quantity if line.side is Side.SELL else line.quantity
            assert position is not None  # held ≠ 0
            book.set_position(replace(position, quantity=held + signed))
            ccy = instrument.currency
            cash[ccy] = cash.get(ccy, ZERO) - signed * price


def _trade_price(book: Book, line: TradeLine) -> Decimal:
    if line.limit_price is not None:
        return line.limit_price
    quote = book.quotes.get(line.symbol)
    if quote is None:
        raise MissingData(f"no price for {line.symbol}")
    return quote.price


def _raw_call(result: AccountMargin, policy: CallPolicy) -> Decimal:
    return raw_call_amount(
        policy, equity=result.equity, im=result.im, mm=result.mm, gross_mv=result.gross_mv
    )


def _after(
    book: Book, account_id: str, policy: CallPolicy, lines: Iterable[TradeLine]
) -> AccountMargin:
    traded = account_book(book, account_id)
    apply_trades(traded, account_id, lines)
    return compute_account(traded, account_id, policy)


def _effect(
    book: Book, account_id: str, policy: CallPolicy, before: AccountMargin, line: TradeLine
) -> TradeEffect:
    alone = _after(book, account_id, policy, (line,))
    instrument = book.instruments[line.symbol]
    price = _trade_price(book, line)
    with localcontext(context()):
        value = line.quantity * price * fx_rate(book, instrument.currency, before.currency)
        relief = (
            _raw_call(before, policy) - _raw_call(alone, policy)
            if alone.incomplete is None
            else ZERO
        )
    return TradeEffect(
        symbol=line.symbol,
        side=line.side,
        quantity=line.quantity,
        price=price,
        currency=instrument.currency,
        value=value,
        relief=relief,
        cures_alone=alone.incomplete is None and alone.call_amount <= 0,
    )


def post_trade(
    book: Book, account_id: str, policy: CallPolicy, lines: Sequence[TradeLine]
) -> PostTrade:
    """The account before and after `lines` (see the module doc); each line's effect on
    its own. Raises `TradeError` for a line that cannot apply."""
    account = account_book(book, account_id)
    before = compute_account(account, account_id, policy)
    after = _after(account, account_id, policy, lines)
    effects = tuple(_effect(account, account_id, policy, before, line) for line in lines)
    return PostTrade(account_id, before.currency, before, after, effects)


# --- the broker's published minimum ---------------------------------------------------------


def published_minimum(result: AccountMargin) -> tuple[PublishedMinimum, ...]:
    """Per tradable holding, the seed's floor: sell at least call ÷ IM ratio (base
    currency). A floor the broker publishes, not a cure: see `propose_cure`."""
    if result.incomplete is not None or result.call_amount <= 0:
        return ()
    with localcontext(context()):
        return tuple(
            PublishedMinimum(p.symbol, result.call_amount / p.ratios.im)
            for p in result.positions
            if not p.illiquid and p.ratios.im > 0
        )


PUBLISHED_MINIMUM_LABEL = "Broker's published minimum (call ÷ IM ratio), not a cure"


def published_minimum_entries(proposal: CureProposal) -> list[str]:
    """`["B.SG 2,030.00", "A.SG 3,383.33"]`: the published minimum per holding, smallest
    first, symbols sanitised for a terminal."""
    floors = sorted(proposal.published_minimum, key=lambda floor: floor.value)
    return [
        f"{sanitize(floor.symbol)} {format_money(floor.value, proposal.currency)}"
        for floor in floors
    ]


def published_minimum_items(proposal: CureProposal, shown: int | None = None) -> str:
    """`B.SG 2,030.00 · A.SG 3,383.33`: the first `shown` entries (all when None), `…`
    for the rest; empty when there is none."""
    entries = published_minimum_entries(proposal)
    more = " · …" if shown is not None and len(entries) > shown else ""
    return " · ".join(entries[:shown]) + more


def published_minimum_line(proposal: CureProposal, shown: int | None = None) -> str:
    """`Broker's published minimum (call ÷ IM ratio), not a cure: B.SG 2,030.00 · …`;
    empty when there is none."""
    items = published_minimum_items(proposal, shown)
    return f"{PUBLISHED_MINIMUM_LABEL}: {items}" if items else ""


# --- the cure -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidate:
    position: PositionMargin
    lot: Decimal
    lots: int  # whole lots available
    lot_value: Decimal  # base currency
    relief: Decimal  # what one lot takes off the call amount


def _candidates(result: AccountMargin, policy: CallPolicy) -> list[_Candidate]:
    """The holdings that can trade whole lots and lower the call by doing so."""
    found: list[_Candidate] = []
    with localcontext(context()) as ctx:
        ctx.prec = _SEARCH_CONTEXT_PRECISION
        for p in result.positions:
            if p.illiquid or p.price <= 0 or p.fx <= 0:
                continue
            lot = p.lot_size if p.lot_size > 0 else ONE
            lots = int((abs(p.quantity) / lot).to_integral_value(rounding=ROUND_FLOOR))
            if lots <= 0:
                continue
            ratio = (
                p.ratios.im if policy.formula is CallFormula.IM else p.ratios.mm + policy.buffer_pct
            )
            lot_value = lot * p.price * p.fx
            relief = lot_value * ratio
            if relief > 0:
                found.append(_Candidate(p, lot, lots, lot_value, relief))
    return found


def _as_int(value: Decimal, exponent: int) -> int:
    """`value` in units of 10**exponent, exactly (exponent ≤ value's own)."""
    sign, digits, own = value.as_tuple()
    assert isinstance(own, int)
    number = int("".join(map(str, digits)) + "0" * (own - exponent))
    return -number if sign else number


def _exponent(values: Iterable[Decimal]) -> int:
    exponents = [value.as_tuple().exponent for value in values]
    return min(e for e in exponents if isinstance(e, int))


def _line(candidate: _Candidate, lots: int) -> TradeLine:
    side = Side.SELL if candidate.position.quantity > 0 else Side.BUY
    return TradeLine(candidate.position.symbol, side, lots * candidate.lot)


def propose_cure(
    book: Book,
    account_id: str,
    policy: CallPolicy,
    *,
    open_call: bool,
    pending: Sequence[TradeLine] = (),
    exact_limit: int = EXACT_LIMIT,
) -> CureProposal:
    """The least-value cure of the account (see the module doc), with `pending` (working
    orders) counted as traded first. `open_call`: the desk holds an open call on it —
    then the target is the recomputed call amount ≤ 0 whatever the equity. Raises
    `MissingData` when the account's figures are incomplete."""
    account = account_book(book, account_id)
    before = compute_account(account, account_id, policy)
    if before.incomplete is not None:
        raise MissingData(before.incomplete)
    in_call = open_call or before.in_call
    if not in_call:
        return CureProposal(
            account_id, before.currency, False, CureMethod.EXACT, before, before, (), (), (), ()
        )
    apply_trades(account, account_id, pending)
    base = compute_account(account, account_id, policy)
    if base.incomplete is not None:
        raise MissingData(base.incomplete)
    candidates = _candidates(base, policy)
    need = _raw_call(base, policy)
    exact = len(candidates) <= exact_limit
    lines: tuple[TradeLine, ...] = ()
    proven = True
    for _ in range(3):
        lines, proven, feasible = _search(candidates, need, base.currency, exact=exact)
        after = _after(account, account_id, policy, lines)
        if not feasible or after.incomplete is not None or after.call_amount <= 0:
            break
        # The search and the reference round in different places: when the reference
        # still finds a hair due where the search found none, ask for that much more.
        need += _raw_call(after, policy)
    method = CureMethod.EXACT if proven else CureMethod.GREEDY
    effects = tuple(_effect(account, account_id, policy, base, line) for line in lines)
    singles = tuple(_single(candidate, need) for candidate in candidates)
    return CureProposal(
        account_id=account_id,
        currency=before.currency,
        in_call=True,
        method=method,
        before=before,
        after=after,
        lines=effects,
        pending=tuple(pending),
        published_minimum=published_minimum(before),
        singles=singles,
    )


def _search(
    candidates: Sequence[_Candidate], need: Decimal, currency: str, *, exact: bool
) -> tuple[tuple[TradeLine, ...], bool, bool]:
    """The least-value lots covering `need` (base currency): the lines, whether they are
    proven least, and whether they cover it (else they are every lot)."""
    if need <= 0:
        return (), True, True
    if not candidates:
        return (), True, False
    values = [c.lot_value for c in candidates]
    reliefs = [c.relief for c in candidates]
    tolerance = quantum(currency).scaleb(-2)
    exponent = _exponent([need, tolerance, *values, *reliefs])
    items = [
        LotItem(_as_int(c.lot_value, exponent), _as_int(c.relief, exponent), c.lots)
        for c in candidates
    ]
    choice = least_cost(
        items, _as_int(need, exponent), exact=exact, tolerance=_as_int(tolerance, exponent)
    )
    lines = tuple(
        _line(candidate, lots)
        for candidate, lots in zip(candidates, choice.lots, strict=True)
        if lots
    )
    return lines, choice.proven, choice.feasible


def _single(candidate: _Candidate, need: Decimal) -> TradeLine:
    """The fewest whole lots of one holding that cure on their own (else all its lots)."""
    with localcontext(context()) as ctx:
        ctx.prec = _SEARCH_CONTEXT_PRECISION
        lots = (need / candidate.relief).to_integral_value(rounding=ROUND_CEILING)
    return _line(candidate, max(1, min(candidate.lots, int(lots))))


__all__ = [
    "EXACT_LIMIT",
    "METHOD_WORDS",
    "PUBLISHED_MINIMUM_LABEL",
    "CureMethod",
    "CureProposal",
    "PostTrade",
    "PublishedMinimum",
    "TradeEffect",
    "TradeError",
    "TradeLine",
    "account_book",
    "apply_trades",
    "post_trade",
    "propose_cure",
    "published_minimum",
    "published_minimum_entries",
    "published_minimum_items",
    "published_minimum_line",
]
