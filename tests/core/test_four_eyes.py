"""Four-eyes rules: notional, the bound details document, and who may decide."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from risk_tui.core.actions import AutoCondition, AutoLiquidationPlan, PlanLine
from risk_tui.core.four_eyes import (
    ApprovalKind,
    ApprovalState,
    KillSwitch,
    check_approval,
    check_kill_switch,
    check_rejection,
    deadline_of,
    deadline_request,
    details_hash,
    liquidation_request,
    order_of,
    plan_of,
    plan_request,
)
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.model import Book, Instrument, Market, Quote, Side
from risk_tui.core.notional import Notional, order_notional, plan_needs_approval, plan_notional
from risk_tui.core.roles import Actor, Role
from tests.factories import SUPERVISOR, TRADER, make_call, sell_order

NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)
SGT = timezone(timedelta(hours=8))


def instrument(symbol: str, currency: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        name=symbol,
        market=Market.US if currency == "USD" else Market.SG,
        currency=currency,
        lot_size=Decimal(100),
        im_ratio=Decimal("0.5"),
        mm_ratio=Decimal("0.45"),
        fm_ratio=Decimal("0.4"),
    )


def book() -> Book:
    book = Book()
    book.instruments["B.SG"] = instrument("B.SG", "SGD")
    book.instruments["TSLA.US"] = instrument("TSLA.US", "USD")
    book.quotes["B.SG"] = Quote("B.SG", Decimal("19.50"))
    book.quotes["TSLA.US"] = Quote("TSLA.US", Decimal("180.10"))
    book.fx[("SGD", "USD")] = Decimal("0.75")  # only the inverse pair is given
    return book


def call() -> MarginCall:
    """The seed account's call, due on Wednesday 15:00 in Singapore."""
    return make_call(
        "A1001",
        call_id="MC1",
        client_name="Tan Mei Ling",
        triggered_at=NOW,
        deadline=datetime(2026, 11, 25, 7, tzinfo=UTC),
    )


# --- notional -------------------------------------------------------------------------------


def test_market_order_notional_is_quantity_times_last_price_exactly() -> None:
    notional = order_notional(sell_order("200"), book(), "SGD")
    assert notional == Notional(Decimal("3900.00"), "SGD")
    assert not notional.exceeds(Decimal("3900"))  # above, not at
    assert notional.exceeds(Decimal("3899.99"))


def test_limit_order_notional_uses_the_limit_price() -> None:
    limit = sell_order("200", order_type="limit", limit_price=Decimal("25"))
    assert order_notional(limit, book(), "SGD").amount == Decimal("5000")


def test_notional_converts_into_the_reporting_currency_with_the_books_fx() -> None:
    # 10 × 180.10 USD at SGD→USD 0.75, inverted: 1801 / 0.75 = 2401.333…
    cover = sell_order("10", symbol="TSLA.US", side=Side.BUY)
    amount = order_notional(cover, book(), "SGD").amount
    assert amount is not None
    assert amount.quantize(Decimal("0.000001")) == Decimal("2401.333333")
    assert order_notional(cover, book(), "USD").amount == Decimal("1801.00")


def test_a_notional_that_cannot_be_computed_needs_approval() -> None:
    missing = order_notional(sell_order(symbol="NOPE.SG"), book(), "SGD")
    assert missing.amount is None
    assert "no instrument NOPE.SG" in (missing.problem or "")
    assert missing.exceeds(Decimal("1000000000"))
    no_fx = order_notional(sell_order(symbol="TSLA.US"), book(), "HKD")
    assert no_fx.amount is None
    assert "fx" in (no_fx.problem or "")


def plan(**changes: Any) -> AutoLiquidationPlan:
    base = AutoLiquidationPlan(
        plan_id="RT-A-1",
        call_id="MC1",
        account_id="A1001",
        execute_at=datetime(2026, 11, 23, 15, tzinfo=SGT),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(
            PlanLine("B.SG", Side.SELL, Decimal("200")),
            PlanLine("TSLA.US", Side.BUY, Decimal("10")),
        ),
        operator="jdoe",
    )
    return replace(base, **changes)


def test_a_plan_needs_approval_above_the_threshold_or_when_it_moves_the_deadline() -> None:
    notional = plan_notional(plan(), book(), "USD")
    assert notional.amount == Decimal("3900.00") * Decimal("0.75") + Decimal("1801.00")
    assert not plan_needs_approval(plan(), notional, Decimal("100000"))
    assert plan_needs_approval(plan(), notional, Decimal("1000"))
    moving = plan(moved_deadline=datetime(2026, 11, 27, 15, tzinfo=SGT), deadline_reason="x")
    assert plan_needs_approval(moving, notional, Decimal("100000"))


# --- the binding ----------------------------------------------------------------------------


def test_the_details_document_binds_every_field_and_reads_back_exactly() -> None:
    intent = sell_order("200", order_type="limit", limit_price=Decimal("19.40"))
    notional = order_notional(intent, book(), "SGD")
    request = liquidation_request(intent, None, notional, TRADER, NOW)
    assert request.kind is ApprovalKind.LIQUIDATION
    assert request.state is ApprovalState.PENDING
    assert request.details_hash == details_hash(request.details)
    assert request.details["requested_by"] == "jdoe"
    assert request.details["requested_role"] == "trader"
    assert order_of(request) == (intent, None)
    assert request.requester == TRADER
    edits: list[tuple[str, Any]] = [
        ("quantity", Decimal("201")),
        ("limit_price", Decimal("19.41")),
        ("symbol", "A.SG"),
        ("side", Side.BUY),
        ("reference", "MC2"),
    ]
    for field, value in edits:
        edited = liquidation_request(replace(intent, **{field: value}), None, notional, TRADER, NOW)
        assert edited.details_hash != request.details_hash, field


def test_a_plan_request_reads_back_the_same_plan() -> None:
    moving = plan(moved_deadline=datetime(2026, 11, 27, 15, tzinfo=SGT), deadline_reason="typhoon")
    request = plan_request(
        moving,
        plan_notional(moving, book(), "SGD"),
        TRADER,
        NOW,
        old_deadline=call().deadline,
    )
    assert plan_of(request) == moving


def test_a_deadline_request_names_the_old_and_new_deadline() -> None:
    new = datetime(2026, 11, 27, 15, tzinfo=SGT)
    request = deadline_request(call(), new, "client in hospital", TRADER, NOW)
    assert deadline_of(request) == (new, "client in hospital")
    assert request.details["old_deadline"] == "2026-11-25T07:00:00+00:00"


# --- who may decide -------------------------------------------------------------------------


def test_nobody_approves_their_own_request_whatever_the_spelling() -> None:
    request = deadline_request(call(), datetime(2026, 11, 27, 7, tzinfo=UTC), "why", TRADER, NOW)
    seen = request.details_hash
    assert check_approval(request, SUPERVISOR, seen) == []
    for me in (TRADER, Actor("JDoe ", Role.SUPERVISOR)):
        (problem,) = check_approval(request, me, seen)
        assert "nobody approves their own request" in problem


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_only_a_trader_or_supervisor_may_approve(role: Role) -> None:
    request = deadline_request(call(), datetime(2026, 11, 27, 7, tzinfo=UTC), "why", TRADER, NOW)
    (problem,) = check_approval(request, Actor("amy", role), request.details_hash)
    assert "may not approve" in problem


def test_an_approval_must_name_the_hash_of_the_current_pending_details() -> None:
    request = deadline_request(call(), datetime(2026, 11, 27, 7, tzinfo=UTC), "why", TRADER, NOW)
    (stale,) = check_approval(request, SUPERVISOR, "0" * 64)
    assert "not those of request" in stale
    voided = replace(request, state=ApprovalState.VOIDED, decided_by="jdoe")
    (gone,) = check_approval(voided, SUPERVISOR, request.details_hash)
    assert "already voided by jdoe" in gone
    tampered = replace(request, details={**request.details, "reason": "other"})
    problems = check_approval(tampered, SUPERVISOR, request.details_hash)
    assert any("do not match their hash" in p for p in problems)


def test_a_rejection_needs_a_reason_and_the_requester_may_withdraw() -> None:
    request = deadline_request(call(), datetime(2026, 11, 27, 7, tzinfo=UTC), "why", TRADER, NOW)
    seen = request.details_hash
    assert check_rejection(request, SUPERVISOR, seen, "no") == []
    assert check_rejection(request, TRADER, seen, "withdrawn") == []
    assert check_rejection(request, SUPERVISOR, seen, "  ") == ["rejecting needs a reason"]
    (problem,) = check_rejection(request, Actor("vic", Role.VIEWER), seen, "no")
    assert "may not reject" in problem


def test_only_a_supervisor_engages_or_releases_the_kill_switch_with_a_reason() -> None:
    released = KillSwitch(engaged=False)
    engaged = KillSwitch(True, "sue", NOW, "runaway algo")
    assert check_kill_switch(SUPERVISOR, released, engage=True, reason="runaway algo") == []
    assert check_kill_switch(SUPERVISOR, engaged, engage=False, reason="all clear") == []
    problems = check_kill_switch(TRADER, released, engage=True, reason=" ")
    assert len(problems) == 2
    assert "supervisors only" in problems[0]
    assert check_kill_switch(SUPERVISOR, engaged, engage=True, reason="x") == [
        "the kill switch is already engaged (by sue)"
    ]
    assert check_kill_switch(SUPERVISOR, released, engage=False, reason="x") == [
        "the kill switch is not engaged"
    ]
    assert engaged.describe() == (
        "KILL SWITCH engaged by sue at 2026-11-23 02:15 UTC: liquidations blocked"
    )
