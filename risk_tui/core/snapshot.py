"""The body of a snapshot (快照): the complete account state at one lifecycle moment.

JSON-ready (money, prices, ratios and fx as decimal strings, unrounded so the evidence
is exactly what the engine computed), built from the same AccountMargin the screen and
the call amount come from. A call that counts cash movements (`core.deposits`) has them
in every snapshot taken since, with their net: the END snapshot of a call met by deposit
shows the deposits that met it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from risk_tui.core.deposits import ReceivedMovement, movements_payload
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def snapshot_payload(
    result: AccountMargin,
    call: MarginCall | None,
    *,
    feed_as_of: datetime | None,
    feed_cursor: str | None,
    movements: Sequence[ReceivedMovement] = (),
) -> dict[str, Any]:
    payload = {
        "account_id": result.account_id,
        "kind": str(result.kind),
        "currency": result.currency,
        "cash": {ccy: str(balance) for ccy, balance in sorted(result.cash.items())},
        "cash_base": str(result.cash_base),
        "positions": [
            {
                "symbol": p.symbol,
                "quantity": str(p.quantity),
                "price": str(p.price),
                "currency": p.currency,
                "fx": str(p.fx),
                "market_value": str(p.market_value),
                "im_ratio": str(p.ratios.im),
                "mm_ratio": str(p.ratios.mm),
                "fm_ratio": str(p.ratios.fm),
                "lot_size": str(p.lot_size),
                "suspended_or_delisted": p.illiquid,
            }
            for p in result.positions
        ],
        "long_mv": str(result.long_mv),
        "short_mv": str(result.short_mv),
        "equity": str(result.equity),
        "im": str(result.im),
        "mm": str(result.mm),
        "fm": str(result.fm),
        "liquid_net_assets": str(result.liquid_net_assets),
        "net_asset_ratio": _d(result.net_asset_ratio),
        "risk_level": str(result.risk_level),
        "call_amount": str(result.call_amount),
        "call_id": call.call_id if call else None,
        "call_state": str(call.state) if call else None,
        "trigger_call_amount": str(call.trigger_call_amount) if call else None,
        "deadline": _t(call.deadline) if call else None,
        "feed_as_of": _t(feed_as_of),
        "feed_cursor": feed_cursor,
    }
    if movements:
        payload.update(movements_payload(movements))
    return payload
