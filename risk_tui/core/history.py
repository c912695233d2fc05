"""What an ended call's snapshots say: trigger against end, figure by figure, and how it ended.

Pure reading of stored snapshot payloads (`risk_tui.core.snapshot`): money is parsed
from their decimal strings, never recomputed. A figure that is missing or unreadable
stays None (shown as `—`), never zero.

"Cash in" (the History tab's "amount collected") is derived from the snapshots: the rise
in the account's cash, in its base currency at each snapshot's own fx rates, from the
trigger snapshot to the end snapshot (`cash_base` end − trigger). It counts deposits and
sale proceeds alike; when positions were sold between the two, part or all of it is
proceeds, and `how` says so. The deposits themselves are recorded: a call's snapshots
list the cash movements it counted toward met by deposit (`core.deposits`), with their
net (`deposits` below).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from risk_tui.core.deposits import movement_lines
from risk_tui.core.lifecycle import EndReason, MarginCall
from risk_tui.core.money import ZERO, context

Payload = Mapping[str, Any]

CASH_IN_MEANING = (
    "Cash in = rise in cash (base currency) from the trigger snapshot to the end snapshot: "
    "deposits plus sale proceeds; the deposits the call counted are listed below"
)

# The account-level figures compared side by side, in the order a risk officer reads them.
FIGURES: tuple[tuple[str, str], ...] = (
    ("cash_base", "Cash in base"),
    ("long_mv", "Long MV"),
    ("short_mv", "Short MV (abs)"),
    ("equity", "Equity"),
    ("im", "IM"),
    ("mm", "MM"),
    ("fm", "FM"),
    ("liquid_net_assets", "Liquid net assets"),
    ("call_amount", "Call amount"),
)


def payload_decimal(payload: Payload | None, key: str) -> Decimal | None:
    """A decimal figure of a snapshot payload; None when absent or not a finite decimal."""
    if payload is None:
        return None
    return _decimal(payload.get(key))


def _decimal(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool | float):
        return None  # a float in a payload is not an exact amount: not shown as one
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def difference(before: Decimal | None, after: Decimal | None) -> Decimal | None:
    if before is None or after is None:
        return None
    with localcontext(context()):
        return after - before


@dataclass(frozen=True, slots=True)
class FigureChange:
    """One figure at two snapshots (base currency unless `currency` says otherwise)."""

    key: str
    label: str
    before: Decimal | None
    after: Decimal | None
    currency: str | None = None  # set for a cash balance held in its own currency

    @property
    def change(self) -> Decimal | None:
        return difference(self.before, self.after)


def figure_changes(before: Payload | None, after: Payload | None) -> list[FigureChange]:
    """Cash per currency (as held), then `FIGURES`, before → after."""
    cash_before, cash_after = _cash(before), _cash(after)
    # A currency not held at one snapshot was a zero balance there, if that snapshot
    # recorded cash at all.
    none_before = ZERO if _records_cash(before) else None
    none_after = ZERO if _records_cash(after) else None
    cash = [
        FigureChange(
            f"cash:{currency}",
            f"Cash {currency}",
            cash_before.get(currency, none_before),
            cash_after.get(currency, none_after),
            currency,
        )
        for currency in sorted(set(cash_before) | set(cash_after))
    ]
    figures = [
        FigureChange(key, label, payload_decimal(before, key), payload_decimal(after, key))
        for key, label in FIGURES
    ]
    return cash + figures


def _records_cash(payload: Payload | None) -> bool:
    return payload is not None and isinstance(payload.get("cash"), Mapping)


def _cash(payload: Payload | None) -> dict[str, Decimal]:
    raw = payload.get("cash") if payload is not None else None
    if not isinstance(raw, Mapping):
        return {}
    cash: dict[str, Decimal] = {}
    for currency, balance in raw.items():
        value = _decimal(balance)
        if value is not None:
            cash[str(currency)] = value
    return cash


@dataclass(frozen=True, slots=True)
class Holding:
    """One position as a snapshot recorded it."""

    symbol: str
    quantity: Decimal
    price: Decimal | None
    currency: str
    fx: Decimal | None
    market_value: Decimal | None


def holdings(payload: Payload | None) -> dict[str, Holding]:
    """The positions of a snapshot by symbol (unreadable entries are left out)."""
    raw = payload.get("positions") if payload is not None else None
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return {}
    found: dict[str, Holding] = {}
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        quantity = _decimal(entry.get("quantity"))
        if quantity is None or not entry.get("symbol"):
            continue
        symbol = str(entry["symbol"])
        found[symbol] = Holding(
            symbol,
            quantity,
            _decimal(entry.get("price")),
            str(entry.get("currency") or ""),
            _decimal(entry.get("fx")),
            _decimal(entry.get("market_value")),
        )
    return found


@dataclass(frozen=True, slots=True)
class PositionChange:
    """One symbol at two snapshots; None where the symbol was not held."""

    symbol: str
    before: Holding | None
    after: Holding | None

    @property
    def quantity_change(self) -> Decimal:
        before = self.before.quantity if self.before else ZERO
        after = self.after.quantity if self.after else ZERO
        with localcontext(context()):
            return after - before

    @property
    def value_change(self) -> Decimal | None:
        before = self.before.market_value if self.before else ZERO
        after = self.after.market_value if self.after else ZERO
        return difference(before, after)


def position_changes(before: Payload | None, after: Payload | None) -> list[PositionChange]:
    """Every symbol held at either snapshot, in symbol order."""
    held_before = holdings(before)
    held_after = holdings(after)
    return [
        PositionChange(symbol, held_before.get(symbol), held_after.get(symbol))
        for symbol in sorted(set(held_before) | set(held_after))
    ]


def _reduced(change: PositionChange) -> bool:
    """Less exposure than at trigger: a long sold down or a short covered."""
    before = change.before.quantity if change.before else ZERO
    after = change.after.quantity if change.after else ZERO
    if before == 0:
        return False
    if before > 0:
        return after < before
    return after > before


def _price_effect(change: PositionChange) -> Decimal | None:
    """What price and fx moves alone did to the quantity held throughout (base currency)."""
    before, after = change.before, change.after
    if before is None or after is None or before.quantity * after.quantity <= 0:
        return ZERO
    if None in (before.price, before.fx, after.price, after.fx):
        return None
    kept = min(abs(before.quantity), abs(after.quantity))
    sign = 1 if before.quantity > 0 else -1
    assert before.price is not None
    assert before.fx is not None
    assert after.price is not None
    assert after.fx is not None
    with localcontext(context()):
        return sign * kept * (after.price * after.fx - before.price * before.fx)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How an ended call was met, read from its trigger and end snapshots."""

    cash_in: Decimal | None  # see the module docstring: deposits plus sale proceeds
    deposits: Decimal | None  # net deposits the call counted (end snapshot), if any
    equity_change: Decimal | None
    price_effect: Decimal | None  # price/fx moves on the quantity held throughout
    reduced: bool  # positions sold (longs) or covered (shorts) since the trigger
    how: str  # in words, e.g. "prices up", "cash in", "liquidation + prices up"


def call_outcome(call: MarginCall, trigger: Payload | None, end: Payload | None) -> CallOutcome:
    cash_in = difference(payload_decimal(trigger, "cash_base"), payload_decimal(end, "cash_base"))
    equity_change = difference(payload_decimal(trigger, "equity"), payload_decimal(end, "equity"))
    changes = position_changes(trigger, end) if trigger is not None and end is not None else []
    reduced = any(_reduced(change) for change in changes)
    effects = [_price_effect(change) for change in changes]
    price_effect: Decimal | None = None
    if changes and None not in effects:
        with localcontext(context()):
            price_effect = sum((e for e in effects if e is not None), ZERO)
    deposits = payload_decimal(end, "net_deposits") if movement_lines(end) else None
    return CallOutcome(
        cash_in,
        deposits,
        equity_change,
        price_effect,
        reduced,
        _how(call, trigger, end, cash_in, price_effect, reduced),
    )


def _how(
    call: MarginCall,
    trigger: Payload | None,
    end: Payload | None,
    cash_in: Decimal | None,
    price_effect: Decimal | None,
    reduced: bool,
) -> str:
    if call.end_reason is EndReason.CLOSED:
        return "closed by operator"
    if call.end_reason is EndReason.MET_BY_DEPOSIT:  # whatever prices did meanwhile
        return "met by deposit + sold" if reduced else "met by deposit"
    if trigger is None or end is None:
        return "snapshot missing"
    parts: list[str] = []
    if reduced:
        parts.append("liquidation" if call.end_reason is EndReason.LIQUIDATED else "sold")
    elif cash_in is not None and cash_in > 0:
        parts.append("cash in")
    if price_effect is not None and price_effect > 0:
        parts.append("prices up")
    if not parts:
        mm_change = difference(payload_decimal(trigger, "mm"), payload_decimal(end, "mm"))
        parts.append("lower margin" if mm_change is not None and mm_change < 0 else "see details")
    return " + ".join(parts)


__all__ = [
    "CASH_IN_MEANING",
    "FIGURES",
    "CallOutcome",
    "FigureChange",
    "Holding",
    "PositionChange",
    "call_outcome",
    "difference",
    "figure_changes",
    "holdings",
    "payload_decimal",
    "position_changes",
]
