"""The call lifecycle: opens below MM, escalates below FM, ends only on fresh complete data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

import pytest

from risk_tui.core.calendar import EMPTY_OVERRIDES, CalendarNotCovered, TradingCalendars
from risk_tui.core.lifecycle import (
    CallState,
    EndReason,
    MarginCall,
    SnapshotScenario,
    Transition,
    close_by_operator,
    daily_snapshot_due,
    evaluate,
    move_deadline,
    record_notification,
)
from risk_tui.core.margin import AccountMargin, CallFormula, CallPolicy, compute_account
from risk_tui.core.model import Market, Position, Quote
from tests.core.test_margin import seed_book

POLICY = CallPolicy(CallFormula.MM_BUFFER, D("0.02"))
NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)  # Monday 10:15 in Singapore
CALENDARS = TradingCalendars({m: EMPTY_OVERRIDES for m in Market}, today=date(2026, 11, 22))


def deadline_for(market: Market, at: datetime) -> datetime:
    return CALENDARS.deadline(market, at, 3, time(15, 0))


def margin(price_b: str = "19.50") -> AccountMargin:
    book = seed_book()
    book.quotes["B"] = Quote("B", D(price_b))
    return compute_account(book, "A1001", POLICY)


def step(
    call: MarginCall | None,
    result: AccountMargin | None,
    *,
    fresh: bool = True,
    now: datetime = NOW,
    liquidated_since_trigger: bool = False,
    deposits: D | None = None,
) -> Transition | None:
    return evaluate(
        call,
        result,
        fresh=fresh,
        now=now,
        market=Market.SG,
        client_name="Tan Mei Ling",
        deadline_for=deadline_for,
        liquidated_since_trigger=liquidated_since_trigger,
        deposits=deposits,
    )


def opened() -> MarginCall:
    transition = step(None, margin())
    assert transition is not None
    return transition.call


def test_opens_below_mm_with_trigger_snapshot_and_deadline() -> None:
    transition = step(None, margin())
    assert transition is not None
    assert transition.opened
    call = transition.call
    assert call.state is CallState.TRIGGERED
    assert call.trigger_call_amount == D("1015.00") == call.call_amount
    assert transition.snapshots == (SnapshotScenario.TRIGGER,)
    # Monday 23 Nov is T; T+2 is Wednesday 25 Nov, 15:00 Singapore.
    assert call.deadline is not None
    assert call.deadline.isoformat() == "2026-11-25T15:00:00+08:00"


def test_no_call_at_or_above_mm() -> None:
    # equity = 1,000p − 10,000 and MM = 1,250 + 450p cross at p = 20.4545…
    assert step(None, margin("20.45")) is not None  # equity 10,450 < MM 10,452.50
    assert step(None, margin("20.46")) is None  # equity 10,460 ≥ MM 10,457
    # Above MM but within the buffer (call amount > 0): no new call either.
    assert margin("20.46").call_amount > 0


def test_opens_directly_in_force_call_with_both_snapshots() -> None:
    transition = step(None, margin("16.00"))  # equity 6,000 < FM 7,400
    assert transition is not None
    assert transition.call.state is CallState.FORCE_CALL
    assert transition.snapshots == (SnapshotScenario.TRIGGER, SnapshotScenario.FORCE_CALL)


def test_escalates_below_fm_once() -> None:
    call = opened()
    transition = step(call, margin("16.00"))
    assert transition is not None
    assert transition.call.state is CallState.FORCE_CALL
    assert transition.snapshots == (SnapshotScenario.FORCE_CALL,)
    assert step(transition.call, margin("16.00")) is None  # nothing new


def test_current_amount_tracks_while_trigger_amount_stays() -> None:
    call = opened()
    transition = step(call, margin("19.00"))
    assert transition is not None
    assert transition.snapshots == ()
    assert transition.call.call_amount > call.call_amount
    assert transition.call.trigger_call_amount == D("1015.00")


def test_ends_met_when_recomputed_amount_is_zero() -> None:
    call = opened()
    # Above MM but inside the buffer: still open (hysteresis), with a smaller amount.
    inside = step(call, margin("20.50"))
    assert inside is not None
    assert inside.call.is_open
    transition = step(call, margin("22.00"))
    assert transition is not None
    assert transition.ended
    assert transition.call.end_reason is EndReason.MET
    assert transition.snapshots == (SnapshotScenario.END,)


def test_ends_liquidated_when_desk_orders_filled() -> None:
    call = opened()
    book = seed_book()
    book.set_position(Position("A1001", "B", D("0")))
    book.cash["A1001"]["SGD"] = D("4500")
    transition = step(call, compute_account(book, "A1001", POLICY), liquidated_since_trigger=True)
    assert transition is not None
    assert transition.call.end_reason is EndReason.LIQUIDATED


def test_ends_met_by_deposit_when_net_deposits_reach_the_amount_at_trigger() -> None:
    call = opened()  # 1,015.00 called at trigger
    fallen = margin("18.00")  # prices fell meanwhile: the recomputed amount grew
    short = step(call, fallen, deposits=D("1014.99"))
    assert short is not None
    assert short.call.is_open
    assert step(call, fallen, deposits=None) == short  # none counted: as before
    transition = step(call, fallen, deposits=D("1015.00"), liquidated_since_trigger=True)
    assert transition is not None
    assert transition.ended
    assert transition.call.end_reason is EndReason.MET_BY_DEPOSIT
    assert transition.call.call_amount > call.trigger_call_amount  # ended all the same
    assert transition.snapshots == (SnapshotScenario.END,)
    assert step(call, fallen, deposits=D("5000"), fresh=False) is None  # never on stale data


@pytest.mark.parametrize("case", ["stale", "vanished", "incomplete"])
def test_never_ends_or_opens_on_stale_missing_or_partial_data(case: str) -> None:
    call = opened()
    recovered = margin("30.00")
    if case == "stale":
        assert step(call, recovered, fresh=False) is None
        assert step(None, margin(), fresh=False) is None
    elif case == "vanished":
        assert step(call, None) is None
    else:
        book = seed_book()
        del book.quotes["B"]
        partial = compute_account(book, "A1001", POLICY)
        assert step(call, partial) is None
        assert step(None, partial) is None


def test_notification_moves_triggered_to_notified_and_records_amount() -> None:
    call = opened()
    transition = record_notification(call, NOW + timedelta(minutes=5))
    assert transition.call.state is CallState.NOTIFIED
    assert transition.call.notified_call_amount == D("1015.00")
    assert transition.snapshots == (SnapshotScenario.NOTIFICATION,)
    forced = replace(call, state=CallState.FORCE_CALL)
    assert record_notification(forced, NOW).call.state is CallState.FORCE_CALL


def test_operator_close_needs_a_reason() -> None:
    call = opened()
    with pytest.raises(ValueError, match="reason"):
        close_by_operator(call, NOW, "  ")
    transition = close_by_operator(call, NOW, "client paid at the counter")
    assert transition.call.end_reason is EndReason.CLOSED
    assert transition.call.end_note == "client paid at the counter"
    with pytest.raises(ValueError, match="has already ended"):
        close_by_operator(transition.call, NOW, "again")


def test_move_deadline_with_reason_and_zone() -> None:
    call = opened()
    later = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    moved = move_deadline(call, later, "client travelling, approved by RO")
    assert moved.deadline == later
    assert moved.deadline_reason
    with pytest.raises(ValueError, match="must carry its time zone"):
        move_deadline(call, later.replace(tzinfo=None), "x")
    with pytest.raises(ValueError, match="needs a reason"):
        move_deadline(call, later, "")


def test_long_outstanding_after_configured_days() -> None:
    call = opened()
    assert not call.long_outstanding(NOW + timedelta(days=90), 90)
    assert call.long_outstanding(NOW + timedelta(days=90, seconds=1), 90)
    ended = close_by_operator(call, NOW, "x").call
    assert not ended.long_outstanding(NOW + timedelta(days=365), 90)


def test_daily_snapshot_once_a_day_not_on_trigger_day() -> None:
    call = opened()
    today = NOW.date()
    assert not daily_snapshot_due(call, None, today)
    assert daily_snapshot_due(call, None, today + timedelta(days=1))
    assert not daily_snapshot_due(call, today + timedelta(days=1), today + timedelta(days=1))


def test_calendar_gap_opens_call_without_deadline_and_says_why() -> None:
    def no_calendar(market: Market, at: datetime) -> datetime:
        raise CalendarNotCovered(market, at.date())

    transition = evaluate(
        None,
        margin(),
        fresh=True,
        now=NOW,
        market=Market.SG,
        client_name="x",
        deadline_for=no_calendar,
    )
    assert transition is not None
    assert transition.opened
    assert transition.call.deadline is None
    assert "SG calendar does not cover 2026-11-23" in (transition.call.deadline_error or "")
