"""One poll through the engine: book → margin → lifecycle → batch → view."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal as D
from decimal import localcontext
from typing import Any

from risk_tui.config import load_settings
from risk_tui.core.calendar import TradingCalendars, default_overrides_path, load_overrides
from risk_tui.core.lifecycle import CallState, EndReason
from risk_tui.core.margin import RiskLevel
from risk_tui.core.money import context, round_money
from risk_tui.desk.engine import Engine, PollOutcome
from risk_tui.feed.models import parse_payload
from risk_tui.sim.seed import seed_book
from tests.recording import RecordingCalls

NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


def payload(**overrides: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"cursor": "000000000000001", "as_of": "2026-11-23T10:15:02+08:00"}
    body.update(copy.deepcopy(seed_book()))
    body.update(overrides)
    return body


def changes(cursor: str, **lists: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cursor": cursor, "as_of": "2026-11-23T10:15:05+08:00", **lists}


async def engine_with(calls: RecordingCalls) -> Engine:
    calendars = TradingCalendars(load_overrides(default_overrides_path()), today=date(2026, 11, 22))
    engine = Engine(
        load_settings(None, env={}, discover=False), calls, calendars, clock=lambda: NOW
    )
    await engine.start()
    return engine


async def apply(engine: Engine, body: dict[str, Any], *, full: bool = False) -> PollOutcome:
    parsed = parse_payload(body)
    return await engine.apply(parsed.changes, full=full, rejected=parsed.rejected)


async def test_seed_desk_opens_the_expected_calls(calls: RecordingCalls) -> None:
    engine = await engine_with(calls)
    outcome = await apply(engine, payload(), full=True)
    view = outcome.view
    by_account = {row.account_id: row for row in view.warnings}
    assert set(by_account) == {"A1001", "H2001", "U3001", "D4001"}
    assert by_account["A1001"].call.call_amount == D("1015.00")
    assert by_account["H2001"].call.call_amount == D("22000.00")  # HK calls back to IM
    assert by_account["U3001"].call.state is CallState.FORCE_CALL
    assert by_account["D4001"].intraday
    assert by_account["D4001"].call.call_amount == D("1290.00")
    assert [row.account_id for row in view.incomplete] == ["I7001"]
    assert "no price for NOQ.SG" in view.incomplete[0].reason
    # One transaction for the whole poll, a trigger snapshot per call (+ force call).
    assert len(calls.batches) == 1
    scenarios = sorted((s.account_id, str(s.scenario)) for s in calls.batches[0].snapshots)
    assert ("U3001", "force_call") in scenarios
    assert len(scenarios) == 5
    # Totals in SGD, from the same call amounts.
    with localcontext(context()):
        expected = (
            D("1015.00")
            + D("22000.00") * D("0.1723")
            + D("1290.00")
            + by_account["U3001"].call.call_amount * D("1.3450")
        )
    assert view.totals.call_amount == expected
    assert round_money(view.totals.call_amount, "SGD") == round_money(expected, "SGD")
    assert view.totals.count == 4
    assert not view.stale


async def test_price_recovery_ends_call_with_end_snapshot(calls: RecordingCalls) -> None:
    engine = await engine_with(calls)
    await apply(engine, payload(), full=True)
    outcome = await apply(engine, changes("2", quotes=[{"symbol": "B.SG", "price": "22.00"}]))
    ended = [t.call for t in outcome.transitions if not t.call.is_open]
    # D4001 (intraday, 1,000 B) recovers too: equity 5,500 ≥ MM 4,400 + 2 % × 22,000.
    assert [c.account_id for c in ended] == ["A1001", "D4001"]
    assert {c.end_reason for c in ended} == {EndReason.MET}
    assert [s.scenario for s in calls.batches[-1].snapshots] == ["end", "end"]
    assert "A1001" not in {row.account_id for row in outcome.view.warnings}
    # Only holders of B.SG were recomputed.
    assert outcome.recomputed == 2  # A1001 and D4001


async def test_rejected_record_makes_account_partial_and_call_survives(
    calls: RecordingCalls,
) -> None:
    engine = await engine_with(calls)
    await apply(engine, payload(), full=True)
    body = changes(
        "2",
        quotes=[{"symbol": "B.SG", "price": "22.00"}],
        cash=[{"account_id": "A1001", "currency": "SGD", "balance": 1e9}],  # a JSON number
    )
    outcome = await apply(engine, body)
    rows = {row.account_id: row for row in outcome.view.warnings}
    assert "A1001" in rows
    assert rows["A1001"].call.is_open
    assert rows["A1001"].margin is not None
    assert rows["A1001"].margin.risk_level is RiskLevel.INCOMPLETE
    assert outcome.view.rejected_records == 1
    # A valid record for the same key clears it, and the call can end on fresh data.
    outcome = await apply(
        engine,
        changes("3", cash=[{"account_id": "A1001", "currency": "SGD", "balance": "-15000.00"}]),
    )
    assert "A1001" not in {row.account_id for row in outcome.view.warnings}
    assert outcome.view.rejected_records == 0


async def test_account_missing_from_snapshot_keeps_its_call(calls: RecordingCalls) -> None:
    engine = await engine_with(calls)
    await apply(engine, payload(), full=True)
    without = payload(
        accounts=[a for a in seed_book()["accounts"] if a["account_id"] != "A1001"],
        cash=[c for c in seed_book()["cash"] if c["account_id"] != "A1001"],
        positions=[p for p in seed_book()["positions"] if p["account_id"] != "A1001"],
    )
    outcome = await apply(engine, without, full=True)
    rows = {row.account_id: row for row in outcome.view.warnings}
    assert rows["A1001"].call.is_open
    assert rows["A1001"].margin is None


async def test_restart_resumes_open_calls_without_duplicates(calls: RecordingCalls) -> None:
    engine = await engine_with(calls)
    await apply(engine, payload(), full=True)
    restarted = await engine_with(calls)
    outcome = await apply(restarted, payload(), full=True)
    assert not any(t.opened for t in outcome.transitions)
    assert await calls.count() == 4


async def test_stale_view_keeps_last_figures(calls: RecordingCalls) -> None:
    engine = await engine_with(calls)
    live = (await apply(engine, payload(), full=True)).view
    stale = engine.mark_stale()
    assert stale.stale
    assert stale.warnings == live.warnings
