"""FEED.md's order and message endpoints on the simulator, over HTTP (in-process ASGI)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from risk_tui.core.calendar import (
    MARKET_TZ,
    TradingCalendars,
    default_overrides_path,
    load_overrides,
)
from risk_tui.core.margin import CallPolicy, compute_account
from risk_tui.core.model import Market
from risk_tui.sim.app import SimState
from risk_tui.sim.orders import exchange_hours
from risk_tui.sim.scenarios import FaultsScenario
from risk_tui.sim.state import FaultRates
from tests.clocks import Clock
from tests.sim.helpers import client_for, desk_book, fixed_clock, order


@pytest.fixture
def state() -> SimState:
    return SimState(clock=fixed_clock, tick_interval=None)


async def test_same_client_order_id_twice_is_one_order(state: SimState) -> None:
    async with client_for(state) as client:
        first = await client.post("/v1/orders", json=order())
        again = await client.post("/v1/orders", json=order(quantity="500"))  # same id
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["status"] == "working"
    assert first.json()["quantity"] == "300"
    assert len(state.orders) == 1
    assert state.order_posts["RT-O-1"] == 2


async def test_a_market_order_fills_on_the_next_tick_as_position_and_cash(state: SimState) -> None:
    async with client_for(state) as client:
        cursor = (await client.get("/v1/snapshot")).json()["cursor"]
        order_id = (await client.post("/v1/orders", json=order())).json()["order_id"]
        assert (await client.get("/v1/changes", params={"cursor": cursor})).json().keys() == {
            "cursor",
            "as_of",
        }  # nothing before the tick
        state.tick()
        changes = (await client.get("/v1/changes", params={"cursor": cursor})).json()
        filled = (await client.get("/v1/orders", params={"status": "filled"})).json()["orders"]
    assert changes["positions"] == [
        {"account_id": "A1001", "symbol": "B.SG", "quantity": "700", "avg_cost": "25.00"}
    ]
    # −15,000 + 300 × 19.50, in SGD, the instrument's currency.
    assert changes["cash"] == [{"account_id": "A1001", "currency": "SGD", "balance": "-9150.00"}]
    assert [o["order_id"] for o in filled] == [order_id]
    assert (filled[0]["filled_quantity"], filled[0]["avg_price"]) == ("300", "19.50")
    # The desk sees the cure: the call shrinks from 1,015.00.
    after = compute_account(desk_book(state), "A1001", CallPolicy())
    assert after.call_amount < Decimal("1015.00")


async def test_selling_the_whole_holding_removes_the_position(state: SimState) -> None:
    async with client_for(state) as client:
        await client.post("/v1/orders", json=order(quantity="1000"))
        state.tick()
        changes = (await client.get("/v1/changes", params={"cursor": "0"})).json()
    assert changes["positions"][0]["quantity"] == "0"
    assert "B.SG" not in desk_book(state).positions["A1001"]


async def test_covering_a_short_buys_and_pays_in_the_instrument_currency(state: SimState) -> None:
    body = order(account_id="U3001", symbol="TSLA.US", side="buy", quantity="40")
    async with client_for(state) as client:
        assert (await client.post("/v1/orders", json=body)).status_code == 201
        state.tick()
        changes = (await client.get("/v1/changes", params={"cursor": "0"})).json()
    assert changes["positions"][0]["quantity"] == "0"
    assert changes["cash"] == [
        {"account_id": "U3001", "currency": "USD", "balance": "12500.00"}  # 22,500 − 40 × 250
    ]


async def test_a_big_order_fills_partially_across_ticks() -> None:
    state = SimState(clock=fixed_clock, tick_interval=None, lots_per_tick=3)  # 300 a tick
    async with client_for(state) as client:
        order_id = (await client.post("/v1/orders", json=order(quantity="1000"))).json()["order_id"]
        seen = []
        for _ in range(5):
            state.tick()
            current = (await client.get("/v1/orders")).json()["orders"][0]
            seen.append((current["status"], current["filled_quantity"]))
    assert seen == [
        ("partially_filled", "300"),
        ("partially_filled", "600"),
        ("partially_filled", "900"),
        ("filled", "1000"),
        ("filled", "1000"),
    ]
    assert [f["quantity"] for f in state.orders[order_id].to_json()["fills"]] == [
        "300",
        "300",
        "300",
        "100",
    ]


async def test_a_limit_order_waits_for_the_price_to_cross(state: SimState) -> None:
    async with client_for(state) as client:
        body = order(order_type="limit", limit_price="21.00")
        order_id = (await client.post("/v1/orders", json=body)).json()["order_id"]
        state.tick()
        assert state.orders[order_id].status == "working"
        state.publish({"quotes": [{"symbol": "B.SG", "price": "21.40"}]})
        state.tick()
        done = (await client.get("/v1/orders", params={"account_id": "A1001"})).json()
    assert done["orders"][0]["status"] == "filled"
    assert done["orders"][0]["avg_price"] == "21.40"  # at the market, which is better


async def test_cancel_semantics(state: SimState) -> None:
    async with client_for(state) as client:
        resting = order(client_order_id="L", order_type="limit", limit_price="99.00")
        resting_id = (await client.post("/v1/orders", json=resting)).json()["order_id"]
        market_id = (
            await client.post("/v1/orders", json=order(client_order_id="M", symbol="A.SG"))
        ).json()["order_id"]
        state.tick()
        cancelled = await client.post(f"/v1/orders/{resting_id}/cancel")
        again = await client.post(f"/v1/orders/{resting_id}/cancel")
        filled = await client.post(f"/v1/orders/{market_id}/cancel")
        unknown = await client.post("/v1/orders/NOPE/cancel")
        working = (await client.get("/v1/orders", params={"status": "working"})).json()
        state.tick()
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    assert (filled.status_code, filled.json()["status"]) == (200, "filled")
    assert unknown.status_code == 404
    assert working["orders"] == []
    assert state.orders[resting_id].fills == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"account_id": "NOBODY"}, "unknown account"),
        ({"symbol": "ZZZ.SG"}, "unknown symbol"),
        ({"quantity": 300}, "decimal string"),
        ({"quantity": "three hundred"}, "decimal string"),
        ({"quantity": "0"}, "positive whole number"),
        ({"quantity": "-300"}, "positive whole number"),
        ({"quantity": "10.5"}, "positive whole number"),
        ({"quantity": "NaN"}, "finite"),
        ({"side": "short"}, "side must be"),
        ({"quantity": "1100"}, "is long 1000"),
        ({"side": "buy"}, "is short 0"),
        ({"order_type": "stop"}, "order_type"),
        ({"order_type": "limit"}, "limit_price"),
        ({"order_type": "limit", "limit_price": "0"}, "limit_price must be positive"),
        ({"limit_price": "19.00"}, "market order takes no limit_price"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"client_order_id": None}, "client_order_id"),
        ({"operator": 7}, "operator must be"),
    ],
)
async def test_invalid_orders_get_422_and_are_not_recorded(
    state: SimState, fields: dict[str, Any], message: str
) -> None:
    async with client_for(state) as client:
        answer = await client.post("/v1/orders", json=order(**fields))
    assert answer.status_code == 422
    assert message in answer.json()["error"]
    assert state.orders == {}


async def test_a_body_that_is_not_json_is_422(state: SimState) -> None:
    async with client_for(state) as client:
        answer = await client.post("/v1/orders", content=b"{not json")
        message = await client.post("/v1/messages", content=b"[]")
    assert answer.status_code == 422
    assert message.status_code == 422


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"account_id": "H2001", "symbol": "HALT.HK", "quantity": "1000"},
            "HALT.HK is suspended",
        ),
        ({"quantity": "150"}, "odd lot"),
    ],
)
async def test_the_broker_rejects_what_it_cannot_trade(
    state: SimState, fields: dict[str, Any], reason: str
) -> None:
    async with client_for(state) as client:
        answer = await client.post("/v1/orders", json=order(**fields))
        again = await client.post("/v1/orders", json=order(**fields))
    assert answer.status_code == 201
    assert again.status_code == 200
    assert answer.json()["status"] == "rejected"
    assert reason in answer.json()["reject_reason"]
    state.tick()
    assert state.orders[answer.json()["order_id"]].fills == []


async def test_an_odd_lot_that_closes_the_holding_is_accepted() -> None:
    state = SimState(clock=fixed_clock, tick_interval=None)
    state.publish({"positions": [{"account_id": "A1001", "symbol": "A.SG", "quantity": "1050"}]})
    async with client_for(state) as client:
        answer = await client.post("/v1/orders", json=order(symbol="A.SG", quantity="1050"))
    assert answer.json()["status"] == "working"


async def test_orders_may_not_oversell_net_of_working_ones(state: SimState) -> None:
    async with client_for(state) as client:
        first = await client.post("/v1/orders", json=order(client_order_id="a", quantity="700"))
        second = await client.post("/v1/orders", json=order(client_order_id="b", quantity="400"))
    assert first.json()["status"] == "working"
    assert second.json()["status"] == "rejected"
    assert "already working" in second.json()["reject_reason"]


async def test_order_listing_filters(state: SimState) -> None:
    async with client_for(state) as client:
        await client.post("/v1/orders", json=order(client_order_id="a"))
        await client.post(
            "/v1/orders", json=order(client_order_id="b", account_id="S5001", symbol="A.SG")
        )
        everyone = (await client.get("/v1/orders")).json()["orders"]
        one = (await client.get("/v1/orders", params={"account_id": "S5001"})).json()["orders"]
        none = (await client.get("/v1/orders", params={"status": "filled"})).json()["orders"]
        bad = await client.get("/v1/orders", params={"status": "done"})
    assert [o["client_order_id"] for o in everyone] == ["a", "b"]
    assert [o["client_order_id"] for o in one] == ["b"]
    assert none == []
    assert bad.status_code == 422


def message(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": "RT-M-1",
        "account_id": "A1001",
        "channel": "app",
        "subject": "Margin call",
        "body": "Please deposit SGD 1,015.00 by 25 Nov 2026 15:00.",
        "reference": "call-1",
        "operator": "jdoe",
    }
    body.update(fields)
    return body


async def test_messages_are_idempotent_queued_then_sent(state: SimState) -> None:
    async with client_for(state) as client:
        first = await client.post("/v1/messages", json=message())
        again = await client.post("/v1/messages", json=message(body="different"))
        state.tick()
        later = await client.post("/v1/messages", json=message())
        recorded = (await client.get("/sim/messages")).json()
    assert (first.status_code, again.status_code, later.status_code) == (201, 200, 200)
    assert first.json()["status"] == "queued"
    assert again.json()["status"] == "queued"
    assert later.json()["status"] == "sent"
    assert len(recorded["messages"]) == 1
    assert recorded["posts"] == {"RT-M-1": 3}
    assert state.message_posts["RT-M-1"] == 3


async def test_a_message_to_a_client_without_that_contact_fails(state: SimState) -> None:
    async with client_for(state) as client:
        await client.post(
            "/v1/messages", json=message(message_id="e", account_id="S5001", channel="email")
        )
        await client.post(
            "/v1/messages", json=message(message_id="a", account_id="S5001", channel="app")
        )
        state.tick()
    assert state.messages["e"].status == "failed"
    assert "no email" in str(state.messages["e"].failure_reason)
    assert state.messages["a"].status == "sent"


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"channel": "fax"}, "channel"),
        ({"account_id": "NOBODY"}, "unknown account"),
        ({"body": ""}, "body"),
        ({"message_id": ""}, "message_id"),
    ],
)
async def test_invalid_messages_get_422(state: SimState, fields: dict[str, Any], text: str) -> None:
    async with client_for(state) as client:
        answer = await client.post("/v1/messages", json=message(**fields))
    assert answer.status_code == 422
    assert text in answer.json()["error"]
    assert state.messages == {}


async def test_a_lost_answer_is_safe_to_retry() -> None:
    """The faults scenario answers some POSTs 5xx: half before doing anything, half after
    creating the order. Retrying with the same key never makes a second order."""
    state = SimState(
        clock=fixed_clock,
        tick_interval=None,
        scenario=FaultsScenario(FaultRates(error=1.0, malformed=0.0, invalidate=0.0)),
    )
    outcomes = []
    async with client_for(state) as client:
        for n in range(8):
            key = f"RT-O-{n}"
            failed = await client.post(
                "/v1/orders", json=order(client_order_id=key, quantity="100")
            )
            assert failed.status_code >= 500
            state.scenario.faults = FaultRates(error=0.0, slow=0.0)
            retry = await client.post("/v1/orders", json=order(client_order_id=key, quantity="100"))
            state.scenario.faults = FaultRates(error=1.0)
            outcomes.append(retry.status_code)
            assert state.order_posts[key] == 2
            assert sum(1 for o in state.orders.values() if o.client_order_id == key) == 1
    assert set(outcomes) == {200, 201}  # both kinds of failure happened
    assert state.fault_counts["lost"] + state.fault_counts["refused"] == 8


async def test_every_endpoint_wants_the_token() -> None:
    state = SimState(token="s3cret", clock=fixed_clock, tick_interval=None)
    calls = [
        ("GET", "/v1/snapshot"),
        ("GET", "/v1/changes?cursor=0"),
        ("GET", "/v1/orders"),
        ("POST", "/v1/orders"),
        ("POST", "/v1/orders/SO00000001/cancel"),
        ("POST", "/v1/messages"),
        ("GET", "/sim/status"),
        ("GET", "/sim/orders"),
        ("GET", "/sim/messages"),
        ("POST", "/sim/tick"),
    ]
    async with client_for(state) as anonymous:
        for method, path in calls:
            answer = await anonymous.request(method, path, json=order())
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"] == "Bearer"
        wrong = await anonymous.get("/v1/snapshot", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert state.orders == {}
    assert state.ticks == 0
    async with client_for(state, token="s3cret") as client:
        assert (await client.get("/v1/snapshot")).status_code == 200
        assert (await client.post("/v1/orders", json=order())).status_code == 201
        assert (await client.post("/sim/tick")).json() == {"tick": 1, "cursor": "000000000000001"}


# --- market hours (issue 14 point 5): a broker fills only in the market's session --------


@pytest.fixture(scope="module")
def exchange() -> TradingCalendars:
    return TradingCalendars(load_overrides(default_overrides_path()))


def in_market(market: Market, day: int, hour: int, minute: int) -> Clock:
    """December 2026 on `market`'s own clock (the 7th a Monday, the 25th Christmas)."""
    return Clock(datetime(2026, 12, day, hour, minute, tzinfo=MARKET_TZ[market]))


@pytest.mark.parametrize(
    ("market", "day", "hour", "minute", "fills"),
    [
        (Market.SG, 7, 8, 59, False),  # before the open
        (Market.SG, 7, 9, 0, True),  # in session
        (Market.SG, 7, 17, 0, False),  # at the close
        (Market.SG, 5, 11, 0, False),  # a Saturday
        (Market.SG, 25, 11, 0, False),  # Christmas
        (Market.US, 7, 1, 16, False),  # the 01:16 in New York
        (Market.US, 7, 10, 0, True),
    ],
)
async def test_an_order_fills_only_in_its_market_session(
    exchange: TradingCalendars, market: Market, day: int, hour: int, minute: int, fills: bool
) -> None:
    clock = in_market(market, day, hour, minute)
    state = SimState(clock=clock, tick_interval=None, market_hours=exchange_hours(exchange))
    body = (
        order()
        if market is Market.SG
        else order(account_id="U3001", symbol="TSLA.US", side="buy", quantity="40")
    )
    async with client_for(state) as client:
        posted = (await client.post("/v1/orders", json=body)).json()
        state.tick()
        after = (await client.get("/v1/orders", params={"account_id": body["account_id"]})).json()
    assert posted["status"] == "working"  # accepted at any hour, as FEED.md says
    assert after["orders"][0]["status"] == ("filled" if fills else "working")


async def test_a_working_order_fills_once_the_market_opens(exchange: TradingCalendars) -> None:
    clock = in_market(Market.SG, 7, 8, 55)
    state = SimState(clock=clock, tick_interval=None, market_hours=exchange_hours(exchange))
    async with client_for(state) as client:
        await client.post("/v1/orders", json=order())
        state.tick()
        assert (await client.get("/v1/orders", params={"status": "working"})).json()["orders"]
        clock.advance(minutes=5)  # 09:00 in Singapore: the open
        state.tick()
        filled = (await client.get("/v1/orders", params={"status": "filled"})).json()["orders"]
    assert len(filled) == 1


async def test_without_market_hours_it_is_a_24_hour_test_market() -> None:
    state = SimState(clock=in_market(Market.SG, 5, 3, 0), tick_interval=None)  # Sat 03:00
    async with client_for(state) as client:
        await client.post("/v1/orders", json=order())
        state.tick()
        filled = (await client.get("/v1/orders", params={"status": "filled"})).json()["orders"]
    assert len(filled) == 1
    assert exchange_hours(TradingCalendars({}))("XX", datetime(2026, 12, 7, tzinfo=UTC)) is False


def test_demo_and_sim_fill_in_market_hours_unless_always_open() -> None:
    """The demo and `risk-tui sim` fill orders in each market's session, as a broker
    does; `--always-open` makes the 24-hour test market, and each says which it is."""
    from risk_tui.cli import build_parser
    from risk_tui.cli.commands import _market_words, sim_market_hours

    parser = build_parser()
    assert parser.parse_args(["demo"]).always_open is False
    assert parser.parse_args(["demo", "--always-open"]).always_open is True
    assert parser.parse_args(["sim", "--always-open"]).always_open is True
    assert sim_market_hours(always_open=True) is None
    hours = sim_market_hours(always_open=False)
    assert hours is not None
    assert hours("US", datetime(2026, 12, 7, 6, 16, tzinfo=UTC)) is False  # 01:16 in NY
    assert hours("HK", datetime(2026, 12, 7, 6, 16, tzinfo=UTC)) is True  # 14:16 in HK
    assert "24-hour test market" in _market_words(SimState(tick_interval=None))
    trading = SimState(tick_interval=None, market_hours=hours)
    assert "only in each market's trading session" in _market_words(trading)
