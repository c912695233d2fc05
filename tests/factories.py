"""The desk's people and records as tests build them: operators, margin calls, orders,
snapshots and audit entries, and the desk's trade figures on a test's own book. One
place, so that a new field of `MarginCall` or `OrderIntent` is filled in once.

Only the core's types: a core test may import this as freely as a storage or UI test.
A test that needs another name or figure passes it (`make_call("A1001", call_id=…)`,
`sell_order("300", reference=None)`) or, for an operator the app's settings must map
(`trader1`), keeps its own with a comment saying why.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from risk_tui.core.actions import OrderIntent
from risk_tui.core.cure import CureProposal, PostTrade, TradeLine, post_trade, propose_cure
from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    MarginCall,
    SnapshotRecord,
    SnapshotScenario,
)
from risk_tui.core.margin import CallPolicy, RiskLevel, compute_account
from risk_tui.core.model import AccountKind, Book, Market, Side
from risk_tui.core.roles import Actor, Role

T0 = datetime(2026, 3, 2, 1, 30, 15, 123456, tzinfo=UTC)  # microseconds: storage keeps them

# --- the desk's operators ----------------------------------------------------------------

TRADER = Actor("jdoe", Role.TRADER)
BOB = Actor("bob", Role.TRADER)  # a second trader: four-eyes needs someone else
SUPERVISOR = Actor("sue", Role.SUPERVISOR)
OPERATOR = Actor("amy", Role.OPERATOR)
VIEWER = Actor("vic", Role.VIEWER)


# --- records ---------------------------------------------------------------------------------


def make_call(account_id: str = "A1", **changes: Any) -> MarginCall:
    """A margin call just triggered on an SG margin account (SPEC's 1,015.00 example);
    its id is new on every call unless `call_id=` is given."""
    call = MarginCall(
        call_id=f"MC20260302-{account_id}-{uuid.uuid4().hex[:8]}",
        account_id=account_id,
        client_name="陳大文 (Chan Tai Man)",
        kind=AccountKind.MARGIN,
        market=Market.SG,
        currency="SGD",
        state=CallState.TRIGGERED,
        risk_level=RiskLevel.MARGIN_CALL,
        triggered_at=T0,
        trigger_call_amount=Decimal("1015.00"),
        call_amount=Decimal("1015.00"),
        deadline=T0 + timedelta(days=2, hours=6),
    )
    return replace(call, **changes)


def sell_order(quantity: str = "200", **changes: Any) -> OrderIntent:
    """A trader's market order selling B.SG on A1001's call (`reference`), as the
    liquidate dialog builds it; `changes` replace any field."""
    intent = OrderIntent(
        client_order_id="RT-O-1",
        account_id="A1001",
        symbol="B.SG",
        side=Side.SELL,
        quantity=Decimal(quantity),
        order_type="market",
        limit_price=None,
        reason="margin_call",
        reference="MC1",
        operator=TRADER.name,
    )
    return replace(intent, **changes)


def account_state(account_id: str = "A1", positions: int = 3) -> dict[str, Any]:
    """A snapshot payload shaped like the real thing: money as decimal strings."""
    return {
        "account_id": account_id,
        "cash": {"SGD": "-15000.00"},
        "positions": [
            {
                "symbol": f"S{i:04d}.SI",
                "quantity": "1000",
                "price": "19.50",
                "fx": "1",
                "im_ratio": "0.5",
                "mm_ratio": "0.45",
                "fm_ratio": "0.3",
                "market_value": "19500.00",
            }
            for i in range(positions)
        ],
        "equity": "9500.00",
        "im": "11250.00",
        "mm": "10025.00",
        "fm": "7350.00",
        "call_amount": "1015.00",
        "risk_level": "margin_call",
        "note": "跌至 19,500 — 追保",
    }


def snapshot_of(
    call: MarginCall,
    scenario: SnapshotScenario = SnapshotScenario.TRIGGER,
    taken_at: datetime = T0,
    payload: dict[str, Any] | None = None,
) -> SnapshotRecord:
    return SnapshotRecord(
        call_id=call.call_id,
        account_id=call.account_id,
        scenario=scenario,
        taken_at=taken_at,
        feed_as_of=taken_at - timedelta(seconds=1),
        feed_cursor="c-000042",
        payload=payload if payload is not None else account_state(call.account_id),
    )


def audit_of(call: MarginCall, action: str = "call_opened", at: datetime = T0) -> AuditEntry:
    return AuditEntry(
        at=at,
        operator="engine",
        action=action,
        call_id=call.call_id,
        account_id=call.account_id,
        details={"call_amount": str(call.call_amount)},
    )


def naive(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall time without a zone, as a careless caller would pass one: for the tests that
    the desk refuses it."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC).replace(tzinfo=None)


# --- the desk's trade figures on a test's own book --------------------------------------------


class BookFigures:
    """`DeskApi.after_trades` and `DeskApi.cure` on a test's book, by the same core
    functions the desk serves them with (`core.cure`), for dialogs built without a desk.
    Every monitored account is taken as having an open call, as a dialog's account does."""

    def __init__(self, book: Book, policy: CallPolicy | None = None) -> None:
        self.book = book
        self.policy = policy or CallPolicy()

    def _complete(self, account_id: str) -> bool:
        if account_id not in self.book.accounts:
            return False
        return compute_account(self.book, account_id, self.policy).incomplete is None

    def after_trades(self, account_id: str, lines: Sequence[TradeLine]) -> PostTrade | None:
        if not self._complete(account_id):
            return None
        return post_trade(self.book, account_id, self.policy, lines)

    def cure(self, account_id: str, pending: Sequence[TradeLine] = ()) -> CureProposal | None:
        if not self._complete(account_id):
            return None
        return propose_cure(self.book, account_id, self.policy, open_call=True, pending=pending)
