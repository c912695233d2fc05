"""The rows of a call's tables — liquidation orders, messages, auto-liquidation plans,
lifecycle snapshots — and the cure words of a holding, as the details screen and the
history details show them. Times are on the call's market clock; outside text only
through the sanitising helper.

The `*_columns` are the details screen's `LiveTable` columns: each says which matter
most (`priority`, 1 first), so at 80 columns the key figures show whole and `w` (the
wide layout) shows the rest; figures are `whole`, never cut.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from rich.text import Text

from risk_tui.core.lifecycle import SnapshotScenario
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import Market
from risk_tui.core.money import format_money
from risk_tui.core.records import (
    AutoLiquidationState,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
    StoredSnapshot,
)
from risk_tui.widgets.dialogs.formatting import (
    RISK_LABEL,
    format_quantity,
    local_time,
)
from risk_tui.widgets.render import data_text
from risk_tui.widgets.table_model import Column

# The moment a snapshot was taken, in words (the call's states' vocabulary: "force call").
SCENARIO_WORDS: dict[SnapshotScenario, str] = {
    SnapshotScenario.TRIGGER: "trigger",
    SnapshotScenario.FORCE_CALL: "force call",
    SnapshotScenario.NOTIFICATION: "notification",
    SnapshotScenario.DAILY: "daily",
    SnapshotScenario.END: "end",
}


def position_columns(currency: str) -> tuple[Column, ...]:
    """The holdings and their cure: symbol, quantity, value and cure first."""
    return (
        Column("symbol", "Symbol", max_width=14, priority=1, frozen=True),
        Column("qty", "Qty", align="right", priority=2, whole=True),
        Column("price", "Price", align="right", priority=5, whole=True),
        Column("ccy", "Ccy", max_width=4, priority=9),
        Column("fx", "FX", align="right", priority=10, whole=True),
        Column("mv", f"MV {currency}", align="right", priority=3, whole=True),
        Column("im", "IM%", align="right", priority=6, whole=True),
        Column("mm", "MM%", align="right", priority=7, whole=True),
        Column("fm", "FM%", align="right", priority=8, whole=True),
        Column("cure", "Cure", priority=4, whole=True),
    )


def order_columns(market: Market) -> tuple[Column, ...]:
    """`order_labels` as columns: when, which way, what, how many and the status first."""
    labels = order_labels(market)
    return (
        Column("created", labels[0], priority=1, frozen=True, whole=True),
        Column("side", labels[1], max_width=5, priority=2),
        Column("symbol", labels[2], max_width=14, priority=1),
        Column("qty", labels[3], align="right", priority=2, whole=True),
        Column("filled", labels[4], align="right", priority=3, whole=True),
        Column("status", labels[5], max_width=30, priority=4),
        Column("by", labels[6], max_width=12, priority=6),
        Column("key", labels[7], max_width=30, priority=7),
    )


def plan_columns(market: Market) -> tuple[Column, ...]:
    """`plan_labels` as columns: when it runs, its state and its lines first."""
    labels = plan_labels(market)
    return (
        Column("runs_at", labels[0], priority=1, frozen=True, whole=True),
        Column("condition", labels[1], max_width=16, priority=4),
        Column("lines", labels[2], max_width=40, priority=3),
        Column("by", labels[3], max_width=12, priority=5),
        Column("state", labels[4], max_width=10, priority=2),
    )


def message_columns(market: Market) -> tuple[Column, ...]:
    """`message_labels` as columns: when, how, what and whether delivered first."""
    labels = message_labels(market)
    return (
        Column("sent", labels[0], priority=1, frozen=True, whole=True),
        Column("channel", labels[1], max_width=8, priority=2),
        Column("subject", labels[2], max_width=30, priority=4),
        Column("by", labels[3], max_width=12, priority=5),
        Column("delivery", labels[4], max_width=12, priority=3),
    )


def timeline_columns(market: Market, currency: str) -> tuple[Column, ...]:
    """`timeline_labels` as columns: when, what moment, the level and the call first."""
    labels = timeline_labels(market, currency)
    return (
        Column("time", labels[0], priority=1, frozen=True, whole=True),
        Column("scenario", labels[1], max_width=12, priority=2),
        Column("equity", labels[2], align="right", priority=4, whole=True),
        Column("call", labels[3], align="right", priority=3, whole=True),
        Column("level", labels[4], max_width=10, priority=2),
    )


def cure_words(quantity: Decimal | None, lot: Decimal, illiquid: bool) -> str:
    """`1 lot = 100` of this holding in the desk's least-value cure; why not, otherwise."""
    if illiquid:
        return "suspended/delisted"
    if quantity is None:
        return "—"
    lot = lot if lot > 0 else Decimal(1)
    lots = format_quantity(quantity / lot)
    return f"{lots} lot{'s' if quantity != lot else ''} = {format_quantity(quantity)}"


def _payload_money(payload: dict[str, Any], key: str, currency: str) -> Text:
    """A figure from a stored snapshot, right-aligned; shown as data when not a decimal."""
    raw = payload.get(key)
    if raw is None:
        return Text("—", justify="right")
    try:
        return Text(format_money(Decimal(str(raw)), currency), justify="right")
    except (InvalidOperation, ValueError):
        return data_text(str(raw))


def order_labels(market: Market) -> tuple[str, ...]:
    zone = market.value
    return (f"Created ({zone})", "Side", "Symbol", "Qty", "Filled", "Status", "By", "Order key")


def order_cells(order: StoredOrder, market: Market) -> tuple[Text, ...]:
    """One liquidation order as a details row (`order_labels`)."""
    status = data_text(order.status or order.send_state.value)
    if order.reject_reason:
        status.append(": ")
        status.append_text(data_text(order.reject_reason))
    return (
        Text(local_time(order.created_at, market)),
        Text(order.side.value),
        data_text(order.symbol),
        Text(format_quantity(order.quantity), justify="right"),
        Text(format_quantity(order.filled_quantity), justify="right"),
        status,
        data_text(order.operator),
        data_text(order.client_order_id),
    )


def message_labels(market: Market) -> tuple[str, ...]:
    return (f"Sent ({market.value})", "Channel", "Subject", "By", "Delivery")


def message_cells(message: StoredMessage, market: Market) -> tuple[Text, ...]:
    """One message about the call (`message_labels`): the broker's word once it answered."""
    delivery = message.status or message.send_state.value
    return (
        Text(local_time(message.created_at, market)),
        Text(message.channel),
        data_text(message.subject or "—"),
        data_text(message.operator),
        data_text(delivery),
    )


def plan_labels(market: Market) -> tuple[str, ...]:
    return (f"Runs at ({market.value})", "Condition", "Lines", "By", "State")


def plan_cells(plan: StoredAutoLiquidation, market: Market) -> tuple[Text, ...]:
    """One auto-liquidation plan of the call (`plan_labels`)."""
    lines = "; ".join(
        f"{line.side.value} {format_quantity(line.quantity)} {line.symbol}" for line in plan.lines
    )
    scheduled = plan.state is AutoLiquidationState.SCHEDULED
    state = Text(plan.state.value, style="bold" if scheduled else "")
    return (
        Text(local_time(plan.execute_at, market)),
        Text(plan.condition.value),
        data_text(lines),
        data_text(plan.operator),
        state,
    )


def timeline_labels(market: Market, currency: str) -> tuple[str, ...]:
    ccy = currency  # each time says its market (`core.clock`): the heading need not
    return ("Time", "Scenario", f"Equity {ccy}", f"Call {ccy}", "Level")


def timeline_cells(snap: StoredSnapshot, market: Market, currency: str) -> tuple[Text, ...]:
    """One snapshot on the lifecycle timeline (`timeline_labels`)."""
    payload = snap.payload if isinstance(snap.payload, dict) else {}
    ccy = str(payload.get("currency") or currency)
    level_raw = str(payload.get("risk_level") or "")
    try:
        level = Text(RISK_LABEL[RiskLevel(level_raw)])
    except ValueError:
        level = data_text(level_raw or "—")
    return (
        Text(local_time(snap.taken_at, market)),
        Text(SCENARIO_WORDS.get(snap.scenario, snap.scenario.value)),
        _payload_money(payload, "equity", ccy),
        _payload_money(payload, "call_amount", ccy),
        level,
    )
