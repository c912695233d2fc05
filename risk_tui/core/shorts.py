"""Short positions (融券持倉概覽): the per-stock overview and the recall shortfall's allocation.

The firm borrows from its prime broker the stock its clients are short. When the lender
recalls, the firm's shortfall in a stock is `max(0, total client short − available)`
(FEED.md) and that many shares must be bought back from clients. A stock with no borrow
record has no known lending position: its shortfall is unknown (None), never taken as 0.

The shortfall is allocated across the clients short the stock by the broker's rule
(`[shorts] allocation`), as a suggested buy-to-cover per client, each rounded UP to whole
board lots and never beyond the client's short:

- `largest_deficit` (default): the largest margin deficit first (MM − equity, converted
  into the desk's reporting currency so accounts of different currencies compare), then
  the largest position. A client whose deficit cannot be known (incomplete figures, no fx
  into the reporting currency) ranks after every known one.
- `largest_position`: the largest short first.
- `pro_rata`: each client a share of the shortfall in proportion to its short.

Both ordered rules take from each client in turn all it is short (whole lots of what is
still missing, for the last one) until the shortfall is met, so the suggestions add up to
at least the shortfall whenever the clients' shorts can cover it.

Everything here reads the Book's short index (`Book.shorts`), never every position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from enum import StrEnum

from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin, MissingData, RiskLevel, fx_rate
from risk_tui.core.model import AccountKind, Book, Borrow, Instrument
from risk_tui.core.money import ONE, ZERO, context


class AllocationRule(StrEnum):
    """How a recall shortfall is shared out across the clients short the stock."""

    LARGEST_DEFICIT = "largest_deficit"  # largest margin deficit first, then largest position
    LARGEST_POSITION = "largest_position"  # largest short first
    PRO_RATA = "pro_rata"  # in proportion to each client's short


RULE_WORDS: dict[AllocationRule, str] = {
    AllocationRule.LARGEST_DEFICIT: "largest margin deficit first, then largest position",
    AllocationRule.LARGEST_POSITION: "largest short position first",
    AllocationRule.PRO_RATA: "pro rata to each client's short",
}


@dataclass(frozen=True, slots=True)
class ShortLine:
    """One shorted stock: the clients' total short against the firm's borrow."""

    symbol: str
    instrument: Instrument | None  # None: the feed never described the stock
    short_quantity: Decimal  # total client short, positive
    clients: int
    borrow: Borrow | None  # None: no borrow record → shortfall unknown
    price: Decimal | None
    fx_to_reporting: Decimal | None  # instrument currency → reporting; None: unknown

    @property
    def shortfall(self) -> Decimal | None:
        """Shares the firm must buy back; None when there is no borrow record."""
        if self.borrow is None:
            return None
        return max(ZERO, self.short_quantity - self.borrow.available)

    @property
    def lot_size(self) -> Decimal:
        lot = self.instrument.lot_size if self.instrument is not None else ONE
        return lot if lot > 0 else ONE

    @property
    def currency(self) -> str | None:
        return self.instrument.currency if self.instrument is not None else None

    @property
    def shortfall_value(self) -> Decimal | None:
        """The shortfall at the last price, in the desk's reporting currency; None: unknown."""
        shortfall = self.shortfall
        if shortfall is None or self.price is None or self.fx_to_reporting is None:
            return None
        with localcontext(context()):
            return shortfall * self.price * self.fx_to_reporting


@dataclass(frozen=True, slots=True)
class ShortsSummary:
    """The tab's headline: how many stocks, how many in trouble, what the shortfall is worth."""

    currency: str
    symbols: int
    with_shortfall: int
    without_borrow: int  # shortfall unknown
    recalled: int  # stocks with a recall outstanding
    shortfall_value: Decimal  # known values only, in `currency`
    unvalued: tuple[str, ...]  # stocks with a shortfall whose value is unknown (price/fx)


@dataclass(frozen=True, slots=True)
class ShortHolder:
    """One client short the stock, with what the allocation rule reads."""

    account_id: str
    short_quantity: Decimal  # positive
    client_name: str | None = None  # None: positions for an account the feed never described
    kind: AccountKind | None = None
    currency: str | None = None  # the account's base currency
    margin: AccountMargin | None = None
    call: MarginCall | None = None  # the open margin call, if any
    deficit: Decimal | None = None  # max(0, MM − equity), base currency; None: unknown
    deficit_reporting: Decimal | None = None  # the same in the reporting currency
    unknown: str | None = None  # why the deficit is unknown

    @property
    def risk_level(self) -> RiskLevel | None:
        return self.margin.risk_level if self.margin is not None else None


@dataclass(frozen=True, slots=True)
class Allocation:
    holder: ShortHolder
    suggested: Decimal  # buy to cover: whole lots (or the whole short), 0 for none


@dataclass(frozen=True, slots=True)
class ShortDetail:
    """One stock's clients in the rule's order, each with its suggested buy-to-cover."""

    line: ShortLine
    rule: AllocationRule
    reporting_currency: str
    allocations: tuple[Allocation, ...]

    @property
    def suggested_total(self) -> Decimal:
        return sum((a.suggested for a in self.allocations), ZERO)

    @property
    def covered(self) -> bool | None:
        """Whether the suggestions meet the shortfall; None when the shortfall is unknown."""
        shortfall = self.line.shortfall
        return None if shortfall is None else self.suggested_total >= shortfall


# --- the overview ------------------------------------------------------------------------


def short_line(book: Book, symbol: str, reporting_currency: str) -> ShortLine | None:
    """The overview row of one stock; None when no client is short it."""
    holders = book.shorts.get(symbol)
    if not holders:
        return None
    instrument = book.instruments.get(symbol)
    quote = book.quotes.get(symbol)
    rate: Decimal | None = None
    if instrument is not None:
        try:
            rate = fx_rate(book, instrument.currency, reporting_currency)
        except MissingData:
            rate = None
    return ShortLine(
        symbol=symbol,
        instrument=instrument,
        short_quantity=book.short_totals[symbol],
        clients=len(holders),
        borrow=book.borrow.get(symbol),
        price=quote.price if quote is not None else None,
        fx_to_reporting=rate,
    )


def short_overview(book: Book, reporting_currency: str) -> tuple[ShortLine, ...]:
    """Every shorted stock, by symbol. Costs one step per shorted stock, not per position."""
    lines = (short_line(book, symbol, reporting_currency) for symbol in sorted(book.shorts))
    return tuple(line for line in lines if line is not None)


def summarize(lines: Iterable[ShortLine], reporting_currency: str) -> ShortsSummary:
    symbols = with_shortfall = without_borrow = recalled = 0
    value = ZERO
    unvalued: list[str] = []
    with localcontext(context()):
        for line in lines:
            symbols += 1
            if line.borrow is None:
                without_borrow += 1
                continue
            if line.borrow.recall_quantity > 0:
                recalled += 1
            shortfall = line.shortfall
            if shortfall is None or shortfall <= 0:
                continue
            with_shortfall += 1
            worth = line.shortfall_value
            if worth is None:
                unvalued.append(line.symbol)
            else:
                value += worth
    return ShortsSummary(
        reporting_currency,
        symbols,
        with_shortfall,
        without_borrow,
        recalled,
        value,
        tuple(unvalued),
    )


# --- the clients of one stock and the allocation -----------------------------------------


def margin_deficit(margin: AccountMargin | None) -> Decimal | None:
    """How far equity is below maintenance margin (0 when not below); None when unknown."""
    if margin is None or margin.incomplete is not None:
        return None
    with localcontext(context()):
        return max(ZERO, margin.mm - margin.equity)


def short_holders(
    book: Book,
    results: Mapping[str, AccountMargin],
    open_calls: Mapping[str, MarginCall],
    symbol: str,
    reporting_currency: str,
) -> list[ShortHolder]:
    """The clients short `symbol`, with their figures, deficit and open call (unordered)."""
    holders: list[ShortHolder] = []
    for account_id, quantity in book.shorts.get(symbol, {}).items():
        account = book.accounts.get(account_id)
        margin = results.get(account_id)
        deficit = margin_deficit(margin)
        in_reporting: Decimal | None = None
        unknown: str | None = None
        if account is None:
            unknown = "the feed has not described this account"
        elif margin is None:
            unknown = "no margin figures for this account"
        elif deficit is None:
            unknown = f"figures incomplete: {margin.incomplete}"
        else:
            try:
                rate = fx_rate(book, margin.currency, reporting_currency)
            except MissingData:
                unknown = f"no fx rate {margin.currency}→{reporting_currency}"
            else:
                with localcontext(context()):
                    in_reporting = deficit * rate
        holders.append(
            ShortHolder(
                account_id=account_id,
                short_quantity=quantity,
                client_name=account.client_name if account is not None else None,
                kind=account.kind if account is not None else None,
                currency=account.base_currency if account is not None else None,
                margin=margin,
                call=open_calls.get(account_id),
                deficit=deficit,
                deficit_reporting=in_reporting,
                unknown=unknown,
            )
        )
    return holders


def allocation_order(holders: Iterable[ShortHolder], rule: AllocationRule) -> list[ShortHolder]:
    """The clients in the order the rule serves them (pro rata: largest short first)."""
    if rule is AllocationRule.LARGEST_DEFICIT:

        def by_deficit(h: ShortHolder) -> tuple[int, Decimal, Decimal, str]:
            known = h.deficit_reporting is not None
            deficit = h.deficit_reporting or ZERO
            return (0 if known else 1, -deficit, -h.short_quantity, h.account_id)

        return sorted(holders, key=by_deficit)
    return sorted(holders, key=lambda h: (-h.short_quantity, h.account_id))


def whole_lots_up(quantity: Decimal, lot: Decimal) -> Decimal:
    """`quantity` rounded up to whole board lots."""
    lot = lot if lot > 0 else ONE
    with localcontext(context()):
        return (quantity / lot).to_integral_value(rounding=ROUND_CEILING) * lot


def allocate(
    holders: Sequence[ShortHolder],
    shortfall: Decimal | None,
    lot: Decimal,
    rule: AllocationRule,
) -> tuple[Allocation, ...]:
    """Each client's suggested buy-to-cover, in the rule's order.

    Unknown or no shortfall: every suggestion is 0. Each suggestion is whole lots, or the
    client's whole short when that is less (an odd lot is only ever a close-out).
    """
    ordered = allocation_order(holders, rule)
    if shortfall is None or shortfall <= 0:
        return tuple(Allocation(h, ZERO) for h in ordered)
    if rule is AllocationRule.PRO_RATA:
        total = sum((h.short_quantity for h in ordered), ZERO)
        with localcontext(context()):
            return tuple(
                Allocation(
                    h,
                    min(h.short_quantity, whole_lots_up(shortfall * h.short_quantity / total, lot)),
                )
                for h in ordered
            )
    allocations: list[Allocation] = []
    remaining = shortfall
    for holder in ordered:
        take = ZERO
        if remaining > 0:
            take = min(holder.short_quantity, whole_lots_up(remaining, lot))
            remaining -= take
        allocations.append(Allocation(holder, take))
    return tuple(allocations)


def short_detail(
    book: Book,
    results: Mapping[str, AccountMargin],
    open_calls: Mapping[str, MarginCall],
    symbol: str,
    rule: AllocationRule,
    reporting_currency: str,
) -> ShortDetail | None:
    """One stock's clients and their suggested buy-to-cover; None when nobody is short it."""
    line = short_line(book, symbol, reporting_currency)
    if line is None:
        return None
    holders = short_holders(book, results, open_calls, symbol, reporting_currency)
    allocations = allocate(holders, line.shortfall, line.lot_size, rule)
    return ShortDetail(line, rule, reporting_currency, allocations)


__all__ = [
    "RULE_WORDS",
    "Allocation",
    "AllocationRule",
    "ShortDetail",
    "ShortHolder",
    "ShortLine",
    "ShortsSummary",
    "allocate",
    "allocation_order",
    "margin_deficit",
    "short_detail",
    "short_holders",
    "short_line",
    "short_overview",
    "summarize",
]
