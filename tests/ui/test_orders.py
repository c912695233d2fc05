"""The Liquidation orders tab: the window it reads, its rows, and cancelling a working order.

App tests run the real simulator (cancel POSTs are counted there, per broker order id);
the snapshots run it in a thread with a stopped clock and deterministic call ids.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import httpx
import pytest
from sqlalchemy import insert
from textual.pilot import Pilot
from textual.widgets import Input

from risk_tui.app import RiskApp
from risk_tui.cli.commands import serve_simulator
from risk_tui.cli.compose import desk_api
from risk_tui.config import FeedSettings, Settings, load_settings
from risk_tui.core import lifecycle
from risk_tui.core.actions import SendState
from risk_tui.core.model import Market, Side
from risk_tui.core.records import OrderOutcome, StoredOrder
from risk_tui.core.roles import Role
from risk_tui.screens.order_words import (
    CancelOrderDialog,
    average_price,
    cancel_refusal,
    order_cells,
    order_facts,
)
from risk_tui.screens.orders import SCAN_INTERVAL, OrdersPane
from risk_tui.sim.app import SimState
from risk_tui.sim.scenarios import build_state
from risk_tui.storage import Store, create_engine, upgrade
from risk_tui.storage.orders import pending_order
from risk_tui.storage.rows import ORDER_ROWS
from risk_tui.storage.tables import orders
from risk_tui.widgets.dialogs import LiquidateDialog
from risk_tui.widgets.dialogs.base import MarkCheckbox
from risk_tui.widgets.live_table import LiveTable
from tests.clocks import Monotonic
from tests.factories import sell_order
from tests.threaded_sim import serve_in_thread
from tests.ui.conftest import CALENDARS, NOW
from tests.ui.helpers import TRADER1, desk_of
from tests.ui.test_dialogs import type_into
from tests.waiting import until

HOSTILE = "\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\ \x1b[2J [b]bold[/b] \u202e"


# --- helpers ---------------------------------------------------------------------------


def settings_for(url: str, tmp_path: Path, **update: Any) -> Settings:
    defaults = load_settings(None, env={}, discover=False)
    return defaults.model_copy(
        update={
            "feed": FeedSettings(url=url, poll_interval=0.2, stale_after=10.0, timeout=5.0),
            "db": defaults.db.model_copy(
                update={"url": f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"}
            ),
            "operators": {"trader1": Role.TRADER, "viewer1": Role.VIEWER},
            **update,
        }
    )


@asynccontextmanager
async def running(
    state: SimState,
    tmp_path: Path,
    operator: str = "trader1",
    size: tuple[int, int] = (160, 50),
    **update: Any,
) -> AsyncIterator[tuple[RiskApp, Pilot[int]]]:
    """The terminal of `operator` on the simulator `state` (served on loopback), running."""
    async with serve_simulator(state) as url:
        settings = settings_for(url, tmp_path, **update)
        app = RiskApp(
            settings,
            operator,
            lambda actor: desk_api(settings, CALENDARS, actor),
            calendars=CALENDARS,
        )
        async with app.run_test(size=size) as pilot:
            yield app, pilot


async def desk_ready(app: RiskApp) -> None:
    """A1001 in call on live figures: an order may be placed on it."""
    await until(
        lambda: (
            app.desk is not None
            and "A1001" in desk_of(app).engine.open_calls
            and desk_of(app).trading.data_fresh("A1001")
        )
    )


async def place(
    app: RiskApp,
    symbol: str,
    quantity: str,
    *,
    key: str,
    limit: str | None = None,
) -> StoredOrder:
    """A liquidation order on A1001's open call, as the trader places it."""
    desk = desk_of(app)
    assert desk is not None
    intent = sell_order(
        quantity,
        client_order_id=key,
        symbol=symbol,
        order_type="market" if limit is None else "limit",
        limit_price=None if limit is None else D(limit),
        reference=desk.engine.open_calls["A1001"].call_id,
        operator=TRADER1.name,
    )
    outcome = await desk.intents.submit_order(intent, TRADER1)
    assert isinstance(outcome, OrderOutcome), "sent, not waiting for approval"
    return outcome.order


def pane_of(app: RiskApp) -> OrdersPane:
    return app.query_one("#orders-pane", OrdersPane)


def table_of(app: RiskApp) -> LiveTable:
    return app.query_one("#orders-pane-table", LiveTable)


def row_text(app: RiskApp, key: str) -> str:
    row = table_of(app).get_row(key)
    return " ".join(cell.plain for cell in row.cells) if row else ""


def notes(app: RiskApp) -> list[str]:
    return [str(notification.message) for notification in app._notifications]


def cancel_posts(state: SimState) -> int:
    return sum(state.cancel_posts.values())


async def audit_actions(app: RiskApp, call_id: str) -> list[tuple[str, str]]:
    assert app.desk is not None
    entries = await desk_of(app).store.history.audit_for(call_id)
    return [(entry.action, entry.operator) for entry in entries]


def stored(key: str, **changes: Any) -> StoredOrder:
    base = StoredOrder(
        client_order_id=key,
        call_id="MC20261123-A1001-00000001",
        account_id="A1001",
        symbol="B.SG",
        side=Side.SELL,
        quantity=D(200),
        order_type="market",
        limit_price=None,
        reason="margin_call",
        operator="trader1",
        created_at=NOW,
        send_state=SendState.ACKNOWLEDGED,
        order_id="SO00000001",
        status="working",
        filled_quantity=D(0),
        avg_price=None,
        reject_reason=None,
        updated_at=NOW,
        account_state={},
    )
    return replace(base, **changes)


# --- words and refusals ------------------------------------------------------------------


def test_only_an_acknowledged_working_order_may_be_cancelled() -> None:
    assert cancel_refusal(stored("k")) is None
    assert cancel_refusal(stored("k", status="partially_filled", filled_quantity=D(100))) is None
    filled = cancel_refusal(stored("k", status="filled", filled_quantity=D(200)))
    assert filled is not None
    assert "already filled (200 of 200 filled)" in filled
    assert "\n" not in filled
    for state, words in (
        (SendState.PENDING, "is pending"),
        (SendState.IN_DOUBT, "is in doubt"),
        (SendState.FAILED, "never reached the broker"),
    ):
        refusal = cancel_refusal(stored("k", send_state=state, status=None, order_id=None))
        assert refusal is not None
        assert words in refusal
    assert cancel_refusal(None) is not None


def test_rows_and_confirmation_show_outside_text_as_inert_data() -> None:
    order = stored("k", symbol=HOSTILE, operator=HOSTILE, reject_reason=HOSTILE)
    cells = order_cells(order, Market.SG, HOSTILE).cells
    facts = order_facts(order, client_name=HOSTILE, market=Market.SG)
    for text in (*cells, facts):
        assert not any(raw in text.plain for raw in ("\x1b", "\u202e"))
        assert not text.spans or all("link" not in str(span.style) for span in text.spans)
    assert "[b]bold[/b]" in cells[1].plain  # shown literally, never parsed as markup


def test_average_price_keeps_the_brokers_precision() -> None:
    assert average_price(None) == "—"
    assert average_price(D("19.500000")) == "19.50"
    assert average_price(D("1234")) == "1,234.00"
    assert average_price(D("19.123456")) == "19.123456"


# --- the window it reads ------------------------------------------------------------------


def _rows(count: int, *, status: str = "filled", start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for n in range(start, start + count):
        intent = stored(f"RT-O-{n:06d}").intent()
        row = ORDER_ROWS.to_row(
            pending_order(intent, {"big": "x" * 2000}, NOW + timedelta(seconds=n))
        )
        row.update(
            call_id=None,
            send_state=SendState.ACKNOWLEDGED.value,
            status=status,
            order_id=f"SO{n:08d}",
            filled_quantity=D(200) if status == "filled" else D(0),
        )
        rows.append(row)
    return rows


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A Store on SQLite and on PostgreSQL (tests/conftest.py's `db_url`)."""
    await upgrade(db_url)
    engine = await create_engine(db_url)
    try:
        yield Store(engine)
    finally:
        await engine.dispose()


async def test_the_window_is_the_newest_orders_and_every_unfinished_one(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(orders), _rows(1, status="working"))  # the oldest
        await conn.execute(insert(orders), _rows(450, start=1))
        pending = _rows(1, start=451)[0] | {"send_state": "pending", "status": None}
        await conn.execute(insert(orders), [pending | {"created_at": NOW - timedelta(days=9)}])
    window = await store.orders.order_window(100)
    keys = [stamp.client_order_id for stamp in window]
    assert len(keys) == 102
    assert keys[:100] == [f"RT-O-{n:06d}" for n in range(450, 350, -1)]  # newest first
    assert keys[100:] == ["RT-O-000000", "RT-O-000451"]  # old but unfinished
    # Without the scan: the newest, and of the keys named those still unfinished.
    known = await store.orders.order_window(100, also=["RT-O-000000", "RT-O-000001"], scan=False)
    assert [stamp.client_order_id for stamp in known] == [*keys[:100], "RT-O-000000"]
    fetched = await store.orders.orders_by_key(["RT-O-000000", "RT-O-000451", "nobody"])
    assert {order.client_order_id for order in fetched} == {"RT-O-000000", "RT-O-000451"}


# --- the tab in the app, on the real simulator --------------------------------------------


async def test_orders_show_unfinished_first_and_the_window_grows_with_o(tmp_path: Path) -> None:
    async with running(SimState(tick_interval=None), tmp_path) as (app, pilot):
        await desk_ready(app)
        assert app.desk is not None
        store = desk_of(app).store
        assert isinstance(store, Store)
        async with store.engine.begin() as conn:
            await conn.execute(insert(orders), _rows(1, status="working"))
            await conn.execute(insert(orders), _rows(250, start=1))
        await pilot.press("6")
        table = table_of(app)
        await until(lambda: table.row_count == 201)  # the newest 200 + the working one
        assert table.key_at(0) == "RT-O-000000"  # unfinished first, however old
        assert table.key_at(1) == "RT-O-000250"  # then newest first
        assert "WORKING" in row_text(app, "RT-O-000000")
        assert "1 working" in str(app.query_one(".orders-summary").render())
        await pilot.press("o")  # older orders
        await until(lambda: table.row_count == 251)


async def test_the_tab_reads_at_most_once_a_second_and_fetches_only_what_moved(
    tmp_path: Path,
) -> None:
    async with running(SimState(tick_interval=None), tmp_path, size=(120, 40)) as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")
        await pilot.press("6")
        pane = pane_of(app)
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        # The tab's clock, moved by hand from here, on from the real one: a read is due.
        clock = Monotonic(time.monotonic() + pane.read_interval)
        pane.monotonic = clock
        with patch.object(pane, "refresh_from", wraps=pane.refresh_from) as looks:

            async def looked_at(times: int) -> None:
                """The tab asked to refresh `times` more times (at each poll, each tick)."""
                looked = looks.call_count
                await until(lambda: looks.call_count >= looked + times, what="looks at the tab")

            async def a_second_passes() -> None:
                """The clock moves a second on: one read, however often the tab is looked
                at until the clock moves again."""
                reads = pane.reads
                clock.advance(pane.read_interval)
                await until(lambda: pane.reads > reads, what="a read once the second passed")
                await looked_at(2)
                assert pane.reads == reads + 1

            await a_second_passes()
            reads, fetched, renders = pane.reads, pane.rows_fetched, table_of(app).row_renders
            scans = pane.scans
            await looked_at(3)  # the clock stands: no read
            assert pane.reads == reads
            await a_second_passes()
            assert pane.scans - scans <= 1  # the whole table: once in 10 seconds at most

            assert pane.rows_fetched == fetched  # nothing moved: no row read again
            assert table_of(app).row_renders == renders  # and nothing repainted
            clock.advance(SCAN_INTERVAL)  # ten seconds on: the next read scans
            await until(lambda: pane.scans > scans, what="a scan of the whole table")


async def test_cancelling_a_working_order_sends_exactly_one_cancel_and_is_audited(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        await desk_ready(app)
        order = await place(app, "B.SG", "200", key="RT-O-1")
        assert order.status == "working"
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        assert table_of(app).cursor_key == "RT-O-1"
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, CancelOrderDialog))
        facts = str(app.screen.query_one(".order-facts").render())
        for shown in ("A1001", "Tan Mei Ling", "SELL 200", "B.SG", "0 of 200", "MC"):
            assert shown in facts
        assert cancel_posts(state) == 0  # nothing goes before the confirmation
        await pilot.press("ctrl+s")
        await until(lambda: "cancelled" in row_text(app, "RT-O-1"))
        assert state.cancel_posts == {"SO00000001": 1}
        assert any(line.startswith("cancelled sell 200 B.SG for A1001") for line in notes(app))
        actions = await audit_actions(app, order.call_id or "")
        assert ("order_cancel_requested", "trader1") in actions


async def test_a_double_press_and_a_double_confirm_still_send_one_cancel(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        await pilot.press("c", "c")
        await until(lambda: isinstance(app.screen, CancelOrderDialog))
        await pilot.press("ctrl+s", "ctrl+s")
        await until(lambda: "cancelled" in row_text(app, "RT-O-1"))
        await pilot.press("c")  # once more, now that it is cancelled: refused
        await pilot.pause(0.3)
        assert app.screen is app.screen_stack[0]
        assert any("is already cancelled" in line for line in notes(app))
    assert state.cancel_posts == {"SO00000001": 1}


async def test_a_filled_order_cannot_be_cancelled(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")
        state.tick()  # the market order fills
        await pilot.press("6")
        await until(lambda: "filled" in row_text(app, "RT-O-1"), seconds=10)
        await pilot.press("c")
        await pilot.pause(0.3)
        assert app.screen is app.screen_stack[0]  # no confirmation offered
        refusal = [line for line in notes(app) if line.startswith("cancel refused")]
        assert refusal == [
            "cancel refused: sell 200 B.SG for A1001 (broker SO00000001) is already "
            "filled (200 of 200 filled): nothing left to cancel"
        ]
        # The fill met the call: enter tells the order in one line (no details).
        await until(lambda: "A1001" not in desk_of(app).engine.open_calls)
        await pilot.press("enter")
        await until(lambda: any(line.endswith("(ended)") for line in notes(app)))
        assert app.screen is app.screen_stack[0]
    assert cancel_posts(state) == 0


async def test_an_order_filled_while_the_dialog_was_open_is_not_cancelled(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, CancelOrderDialog))
        state.tick()
        assert app.desk is not None
        await desk_of(app).trading.refresh_orders()  # the desk learns of the fill
        await pilot.press("ctrl+s")
        await until(lambda: any("already filled" in line for line in notes(app)))
    assert cancel_posts(state) == 0


async def test_a_viewer_has_no_cancel_key_at_all(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="viewer1") as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")  # by the trader, elsewhere
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        assert pane_of(app).check_action("cancel_order", ()) is False
        shown = {active.binding.action for active in app.screen.active_bindings.values()}
        assert "cancel_order" not in shown
        assert "older" in shown
        await pilot.press("c")
        await pilot.pause(0.3)
        assert app.screen is app.screen_stack[0]
    assert cancel_posts(state) == 0


async def test_the_cancel_key_is_remapped_by_its_binding_id(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, keys={"orders.cancel": "x"}) as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        await pilot.press("c")  # no longer bound
        await pilot.pause(0.3)
        assert app.screen is app.screen_stack[0]
        await pilot.press("x")
        await until(lambda: isinstance(app.screen, CancelOrderDialog))
        await pilot.press("escape")  # keeps the order
        await until(lambda: app.screen is app.screen_stack[0])
        await pilot.pause(0.3)
        assert "WORKING" in row_text(app, "RT-O-1")
    assert cancel_posts(state) == 0


async def test_selloff_liquidation_from_the_warnings_tab_shows_its_status_then_fills(
    tmp_path: Path,
) -> None:
    # One board lot per tick, so the 200 shares fill in two steps.
    state = build_state("selloff", accounts=200, tick_interval=None, lots_per_tick=1)
    async with running(state, tmp_path) as (app, pilot):
        await desk_ready(app)
        for _ in range(5):
            state.tick()  # the fall begins
        warnings = app.query_one("#warnings-pane-table", LiveTable)
        await until(lambda: warnings.move_cursor("A1001"))
        await pilot.press("l")
        await until(lambda: isinstance(app.screen, LiquidateDialog))
        dialog = app.screen
        assert isinstance(dialog, LiquidateDialog)
        # The dialog opens on the desk's cure; this test follows one order of 200 B.SG.
        b = next(i for i, holding in enumerate(dialog.holdings) if holding.symbol == "B.SG")
        for check in dialog.query(MarkCheckbox):
            check.value = check.id == f"pick-{b}"
        await type_into(pilot, dialog.query_one(f"#qty-{b}", Input), "200")
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(lambda: sum(state.order_posts.values()) == 1)
        (key,) = state.order_posts
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, key))
        assert row_text(app, key).startswith("A1001 B.SG sell 200 0 WORKING —")
        assert "trader1" in row_text(app, key)
        call_id = desk_of(app).engine.open_calls["A1001"].call_id
        assert call_id in row_text(app, key)
        state.tick()
        await until(lambda: "PART FILLED" in row_text(app, key), seconds=10)
        assert "sell 200 100 PART FILLED 19.50" in row_text(app, key)
        state.tick()
        await until(lambda: " filled " in row_text(app, key), seconds=10)
        assert "sell 200 200 filled 19.50" in row_text(app, key)


async def test_enter_on_an_order_of_an_open_call_opens_its_details(tmp_path: Path) -> None:
    from risk_tui.screens.details import DetailsScreen

    async with running(SimState(tick_interval=None), tmp_path) as (app, pilot):
        await desk_ready(app)
        await place(app, "B.SG", "200", key="RT-O-1")
        await pilot.press("6")
        await until(lambda: "WORKING" in row_text(app, "RT-O-1"))
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, DetailsScreen))


async def test_the_simulator_counts_cancel_posts_per_order_id() -> None:
    state = SimState(tick_interval=None)
    async with serve_simulator(state) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/v1/orders/SO99999999/cancel", json={})).status_code == 404
        status = (await client.get("/sim/orders")).json()
    assert state.cancel_posts == {"SO99999999": 1}
    assert status["cancel_posts"] == {"SO99999999": 1}


# --- snapshots ------------------------------------------------------------------------------


@pytest.fixture
def sim_state() -> SimState:
    return SimState(tick_interval=None)


@pytest.fixture
def seed_feed(sim_state: SimState) -> Iterator[str]:
    """Overrides conftest's: the same seed desk, with its state at hand to tick."""
    yield from serve_in_thread(sim_state)


@pytest.fixture
def fixed_call_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Call ids end in a counter instead of random hex: the Call column is stable."""
    counter = iter(range(1, 1_000_000))
    fake = SimpleNamespace(uuid4=lambda: uuid.UUID(int=next(counter) << 96))
    monkeypatch.setattr(lifecycle, "uuid", fake)


SIZES = [(80, 24), (160, 50)]


async def _with_orders(pilot: Any, url: str) -> None:
    """Three orders of A1001: one filled, one working (limit above the market), one
    rejected (an odd lot); then tab 6, once the fill has reached the desk."""
    app = pilot.app
    await desk_ready(app)
    # A1001, D4001, H2001, U3001 and I7001 (incomplete: no price for NOQ.SG)
    await until(lambda: app.query_one("#warnings-pane-table", LiveTable).row_count == 5)
    await place(app, "B.SG", "200", key="RT-O-snap-1")
    await place(app, "A.SG", "100", key="RT-O-snap-2", limit="6.00")
    await place(app, "A.SG", "50", key="RT-O-snap-3")
    async with httpx.AsyncClient(base_url=url) as client:
        await client.post("/sim/tick")
    await pilot.press("6")
    pane = pane_of(app)
    await until(lambda: (o := pane.order("RT-O-snap-1")) is not None and o.status == "filled")
    await until(lambda: table_of(app).row_count == 3)
    await pilot.pause()


@pytest.mark.usefixtures("fixed_call_ids")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_orders_tab(
    snap_compare: Any,
    fixed_app: Callable[..., RiskApp],
    seed_feed: str,
    size: tuple[int, int],
) -> None:
    async def run_before(pilot: Any) -> None:
        await _with_orders(pilot, seed_feed)

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)


@pytest.mark.usefixtures("fixed_call_ids")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_cancel_confirmation(
    snap_compare: Any,
    fixed_app: Callable[..., RiskApp],
    seed_feed: str,
    size: tuple[int, int],
) -> None:
    async def run_before(pilot: Any) -> None:
        await _with_orders(pilot, seed_feed)
        assert table_of(pilot.app).cursor_key == "RT-O-snap-2"  # the working one, on top
        await pilot.press("c")
        await until(lambda: isinstance(pilot.app.screen, CancelOrderDialog))
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)
