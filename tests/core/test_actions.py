"""Pre-send checks of orders and messages, the keys, and the send-state moves."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from risk_tui.core.actions import (
    MessageIntent,
    OrderIntent,
    SendState,
    can_move,
    check_cancel,
    check_message,
    check_order,
    new_client_order_id,
    new_message_id,
    override_used,
)
from risk_tui.core.model import Side
from risk_tui.core.roles import Actor, Role
from tests.factories import TRADER, sell_order


def sell(quantity: str = "300", **changes: Any) -> OrderIntent:
    return sell_order(quantity, **changes)


def check(
    intent: OrderIntent,
    *,
    position: str | None = "1000",
    call_open: bool = True,
    data_fresh: bool = True,
    actor: Actor = TRADER,
    override_reason: str | None = None,
) -> list[str]:
    return check_order(
        intent,
        position_quantity=None if position is None else Decimal(position),
        call_open=call_open,
        data_fresh=data_fresh,
        actor=actor,
        override_reason=override_reason,
    )


def message(**changes: Any) -> MessageIntent:
    intent = MessageIntent(
        message_id="RT-M-1",
        account_id="A1001",
        channel="app",
        subject="Margin call",
        body="Please deposit 1,015.00 SGD by 25 Nov 15:00.",
        reference="MC1",
        operator="jdoe",
    )
    return replace(intent, **changes)


def test_a_sound_order_passes() -> None:
    assert check(sell("300")) == []
    assert check(sell("1000")) == []  # the whole position


def test_quantity_must_be_positive() -> None:
    assert any("more than zero" in p for p in check(sell("0")))
    assert any("more than zero" in p for p in check(sell("-5")))
    assert any("more than zero" in p for p in check(sell("NaN")))


def test_sell_larger_than_the_long_is_refused() -> None:
    (problem,) = check(sell("1001"), position="1000")
    assert "more than the 1000 held" in problem


def test_sell_with_no_long_is_refused() -> None:
    assert any("no long" in p for p in check(sell("100"), position=None))
    assert any("no long" in p for p in check(sell("100"), position="0"))
    assert any("no long" in p for p in check(sell("100"), position="-500"))  # it is a short


def test_buy_covers_at_most_the_short() -> None:
    cover = sell("500", side=Side.BUY, reason="recall", reference=None)
    assert check(cover, position="-500") == []
    (problem,) = check(replace(cover, quantity=Decimal("501")), position="-500")
    assert "more than the 500 short" in problem
    assert any("no short" in p for p in check(cover, position="500"))
    assert any("no short" in p for p in check(cover, position=None))


def test_not_in_call_needs_an_override_with_a_reason() -> None:
    (problem,) = check(sell(), call_open=False)
    assert "not in margin call" in problem
    assert check(sell(), call_open=False, override_reason="   ") == [problem]
    assert check(sell(), call_open=False, override_reason="client asked by phone") == []
    supervisor = Actor("jdoe", Role.SUPERVISOR)
    assert check(sell(), call_open=False, actor=supervisor, override_reason="ok by CRO") == []


def test_only_traders_and_supervisors_may_override() -> None:
    operator = Actor("jdoe", Role.OPERATOR)
    problems = check(sell(), call_open=False, actor=operator, override_reason="please")
    assert any("may not override" in p for p in problems)
    assert any("may not place liquidation orders" in p for p in problems)


def test_override_used_only_outside_a_call() -> None:
    assert override_used(False, "reason")
    assert not override_used(True, "reason")  # in call: nothing is overridden
    assert not override_used(False, None)
    assert not override_used(False, " ")


def test_stale_data_is_refused_even_with_an_override() -> None:
    (problem,) = check(sell(), data_fresh=False)
    assert "stale" in problem
    problems = check(
        sell(),
        data_fresh=False,
        call_open=False,
        actor=Actor("jdoe", Role.SUPERVISOR),
        override_reason="urgent",
    )
    assert problems == [problem]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_may_not_liquidate(role: Role) -> None:
    (problem,) = check(sell(), actor=Actor("jdoe", role))
    assert f"jdoe ({role})" in problem


def test_the_order_must_name_the_actor() -> None:
    (problem,) = check(sell(operator="someone_else"))
    assert "someone_else" in problem


def test_limit_orders_need_a_positive_price_and_market_orders_none() -> None:
    assert check(sell(order_type="limit", limit_price=Decimal("19.40"))) == []
    assert any("needs a limit price" in p for p in check(sell(order_type="limit")))
    zero = sell(order_type="limit", limit_price=Decimal("0"))
    assert any("limit price must be more than zero" in p for p in check(zero))
    priced_market = sell(limit_price=Decimal("19.40"))
    assert any("market order takes no limit price" in p for p in check(priced_market))
    odd = sell(order_type="stop")  # as a loose caller might
    assert any("unknown order type" in p for p in check(odd))


def test_every_problem_is_reported_at_once() -> None:
    problems = check(sell("2000"), data_fresh=False, call_open=False, actor=Actor("v", Role.VIEWER))
    assert len(problems) >= 4


def test_messages() -> None:
    assert check_message(message(), TRADER) == []
    assert check_message(message(), Actor("jdoe", Role.OPERATOR)) == []
    (problem,) = check_message(message(), Actor("jdoe", Role.VIEWER))
    assert "may not send messages" in problem
    assert any("body is empty" in p for p in check_message(message(body="  \n"), TRADER))
    fax = message(channel="fax")
    assert any("unknown channel" in p for p in check_message(fax, TRADER))
    for channel in ("app", "email", "sms", "voice"):
        assert check_message(message(channel=channel), TRADER) == []


def test_cancel_is_for_trading_roles() -> None:
    assert check_cancel(TRADER) == []
    assert check_cancel(Actor("s", Role.SUPERVISOR)) == []
    assert check_cancel(Actor("o", Role.OPERATOR))
    assert check_cancel(Actor("v", Role.VIEWER))


def test_keys_are_unique_and_prefixed() -> None:
    orders = {new_client_order_id() for _ in range(1000)}
    messages = {new_message_id() for _ in range(1000)}
    assert len(orders) == len(messages) == 1000
    assert all(key.startswith("RT-O-") for key in orders)
    assert all(key.startswith("RT-M-") for key in messages)


def test_wire_bodies_carry_decimal_strings() -> None:
    body = sell("300", order_type="limit", limit_price=Decimal("19.40")).wire()
    assert body["quantity"] == "300"
    assert body["limit_price"] == "19.40"
    assert body["side"] == "sell"
    assert sell().wire()["limit_price"] is None


def test_send_state_moves() -> None:
    pending, doubt, ack, failed = (
        SendState.PENDING,
        SendState.IN_DOUBT,
        SendState.ACKNOWLEDGED,
        SendState.FAILED,
    )
    assert all(can_move(pending, state) for state in SendState)
    assert can_move(doubt, ack)
    assert can_move(doubt, failed)
    assert can_move(doubt, doubt)
    assert not can_move(doubt, pending)
    # The broker's acknowledgement is final: a late timeout cannot put it back in doubt.
    assert [s for s in SendState if can_move(ack, s)] == [ack]
    # A status query that finds a withdrawn order is the truth about it.
    assert can_move(failed, ack)
    assert not can_move(failed, doubt)
    assert pending.needs_send
    assert doubt.needs_send
    assert not ack.needs_send
    assert not failed.needs_send
