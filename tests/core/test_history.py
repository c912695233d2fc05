"""Reading an ended call's snapshots: trigger vs end figure by figure, cash in, how it was met."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

from risk_tui.core.deposits import ReceivedMovement, movement_lines
from risk_tui.core.history import (
    call_outcome,
    figure_changes,
    payload_decimal,
    position_changes,
)
from risk_tui.core.lifecycle import CallState, EndReason, MarginCall
from risk_tui.core.margin import CallPolicy, compute_account
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    CashBalance,
    CashMovement,
    Market,
    MovementKind,
    Position,
    Quote,
)
from risk_tui.core.snapshot import snapshot_payload
from tests.core.test_margin import seed_book
from tests.factories import make_call

T = datetime(2026, 3, 10, 1, 5, tzinfo=UTC)
CALL = make_call(
    "A1001",
    call_id="MC20260310-A1001-0001",
    client_name="Tan Mei Ling",
    triggered_at=T,
    deadline=None,
)


def payload_of(book: Book) -> dict[str, Any]:
    margin = compute_account(book, "A1001", CallPolicy())
    return snapshot_payload(margin, CALL, feed_as_of=T, feed_cursor="c1")


def ended(reason: EndReason, note: str | None = None) -> MarginCall:
    return replace(CALL, state=CallState.ENDED, ended_at=T, end_reason=reason, end_note=note)


def trigger_payload() -> dict[str, Any]:
    return payload_of(seed_book())  # SPEC's example: equity 9,500, call 1,015


def test_a_price_recovery_is_prices_up_with_no_cash_in() -> None:
    book = seed_book()
    book.quotes["B"] = Quote("B", D("25.00"))
    outcome = call_outcome(ended(EndReason.MET), trigger_payload(), payload_of(book))
    assert outcome.how == "prices up"
    assert outcome.cash_in == 0
    assert outcome.equity_change == D("5500.00")  # B: 1,000 × (25.00 − 19.50)
    assert outcome.price_effect == D("5500.00")
    assert not outcome.reduced


def test_a_deposit_is_cash_in_of_exactly_the_rise_in_cash() -> None:
    book = seed_book()
    book.set_cash(CashBalance("A1001", "SGD", D("-13985.00")))  # 1,015 paid in
    outcome = call_outcome(ended(EndReason.MET), trigger_payload(), payload_of(book))
    assert outcome.how == "cash in"
    assert outcome.cash_in == D("1015.00")
    assert outcome.equity_change == D("1015.00")
    assert outcome.price_effect == 0


def test_met_by_deposit_says_so_and_reads_the_counted_deposits() -> None:
    book = seed_book()
    book.set_cash(CashBalance("A1001", "SGD", D("-13985.00")))
    book.quotes["B"] = Quote("B", D("19.00"))  # prices fell meanwhile
    margin = compute_account(book, "A1001", CallPolicy())
    movement = ReceivedMovement.of(
        CashMovement("DEP-1", "A1001", "SGD", D("1015.00"), MovementKind.DEPOSIT, T),
        received_at=T,
        feed_cursor="c2",
        call_id=CALL.call_id,
        base_currency="SGD",
        fx=D(1),
    )
    end = snapshot_payload(margin, CALL, feed_as_of=T, feed_cursor="c2", movements=[movement])
    outcome = call_outcome(ended(EndReason.MET_BY_DEPOSIT), trigger_payload(), end)
    assert outcome.how == "met by deposit"
    assert outcome.deposits == D("1015.00")
    assert outcome.cash_in == D("1015.00")
    assert [(m.movement_id, m.base_amount) for m in movement_lines(end)] == [
        ("DEP-1", D("1015.00"))
    ]
    assert call_outcome(ended(EndReason.MET), trigger_payload(), payload_of(book)).deposits is None


def test_liquidation_counts_the_proceeds_as_cash_in_and_says_so() -> None:
    book = seed_book()
    book.set_position(Position("A1001", "B", D("800")))
    book.set_cash(CashBalance("A1001", "SGD", D("-11100.00")))  # 200 × 19.50 sold
    outcome = call_outcome(ended(EndReason.LIQUIDATED), trigger_payload(), payload_of(book))
    assert outcome.reduced
    assert outcome.cash_in == D("3900.00")
    assert outcome.how == "liquidation"
    client_sold = call_outcome(ended(EndReason.MET), trigger_payload(), payload_of(book))
    assert client_sold.how == "sold"


def test_sale_and_recovery_together_and_a_short_covered() -> None:
    book = seed_book()
    book.set_position(Position("A1001", "B", D("800")))
    book.quotes["B"] = Quote("B", D("20.00"))
    outcome = call_outcome(ended(EndReason.LIQUIDATED), trigger_payload(), payload_of(book))
    assert outcome.how == "liquidation + prices up"
    assert outcome.price_effect == D("400.00")  # the 800 kept × 0.50

    short = {"positions": [{"symbol": "T", "quantity": "-100", "price": "10", "fx": "1"}]}
    covered = {"positions": [{"symbol": "T", "quantity": "-40", "price": "12", "fx": "1"}]}
    outcome = call_outcome(ended(EndReason.LIQUIDATED), short, covered)
    assert outcome.reduced
    assert outcome.price_effect == D("-80")  # a short loses when the price rises: −40 × 2


def test_closed_by_operator_and_missing_snapshots_are_said_plainly() -> None:
    closed = call_outcome(ended(EndReason.CLOSED, "debt written off"), trigger_payload(), None)
    assert closed.how == "closed by operator"
    assert closed.cash_in is None
    assert closed.equity_change is None
    missing = call_outcome(ended(EndReason.MET), None, trigger_payload())
    assert missing.how == "snapshot missing"
    assert missing.cash_in is None


def test_lower_margin_when_nothing_else_moved() -> None:
    before = {"cash_base": "100", "mm": "500", "positions": []}
    after = {"cash_base": "100", "mm": "400", "positions": []}
    assert call_outcome(ended(EndReason.MET), before, after).how == "lower margin"
    assert call_outcome(ended(EndReason.MET), before, before).how == "see details"


def test_figure_changes_side_by_side_with_cash_per_currency() -> None:
    book = seed_book()
    book.quotes["B"] = Quote("B", D("25.00"))
    book.accounts["A1001"] = Account("A1001", "x", AccountKind.MARGIN, "SGD", Market.SG)
    book.set_cash(CashBalance("A1001", "HKD", D("1000")))
    book.fx[("HKD", "SGD")] = D("0.1723")
    rows = {row.key: row for row in figure_changes(trigger_payload(), payload_of(book))}
    assert rows["cash:HKD"].before == 0
    assert rows["cash:HKD"].after == D("1000")
    assert rows["cash:HKD"].currency == "HKD"
    assert rows["cash:SGD"].change == 0
    assert rows["equity"].before == D("9500.00")
    assert rows["equity"].after == D("15172.30")  # + 1,000 HKD × 0.1723 and B at 25
    assert rows["call_amount"].before == D("1015.00")
    assert rows["call_amount"].after == 0
    assert rows["cash_base"].change == D("172.3000")
    assert [row.key for row in figure_changes(None, None)][:2] == ["cash_base", "long_mv"]
    assert all(row.before is None and row.change is None for row in figure_changes(None, None))


def test_position_changes_list_every_symbol_held_at_either_snapshot() -> None:
    book = seed_book()
    book.set_position(Position("A1001", "A", D("0")))
    changes = {c.symbol: c for c in position_changes(trigger_payload(), payload_of(book))}
    assert changes["A"].after is None
    assert changes["A"].quantity_change == D("-1000")
    assert changes["A"].value_change == D("-5000.00")
    assert changes["B"].quantity_change == 0


def test_unreadable_figures_are_unknown_never_zero() -> None:
    positions = [{"symbol": "X", "quantity": "x"}, "junk", {"quantity": "5"}]
    payload = {"equity": "?", "im": 12.5, "mm": None, "fm": "NaN", "cash": "oops"}
    payload["positions"] = positions
    for key in ("equity", "im", "mm", "fm", "absent"):
        assert payload_decimal(payload, key) is None
    assert position_changes(payload, payload) == []
    assert [row for row in figure_changes(payload, payload) if row.key.startswith("cash:")] == []
