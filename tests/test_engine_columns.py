"""The engine on its columns: a generated desk through a sell-off, against the reference.

Every poll, the open calls must be exactly the accounts `compute_account` puts in call
(with its amounts), the warning rows must show the reference's figures, and the calls
a poll only re-priced are written with the next flush, never lost.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from risk_tui.core.book import BookChanges
from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.core.margin import MarginFigures, compute_account, is_monitored
from risk_tui.core.model import Quote
from risk_tui.desk import decide
from risk_tui.desk.engine import Engine
from risk_tui.feed.models import parse_payload
from risk_tui.sim.scenarios import build_state
from tests.test_engine import NOW, MemoryStore, engine_with

ACCOUNTS = 3_000


def _snapshot() -> dict[str, Any]:
    state = build_state("selloff", accounts=ACCOUNTS, seed=5, tick_interval=None)
    lists = {
        name: [json.loads(data) for data in table.values()]
        for name, table in state.store.tables.items()
    }
    return {"cursor": "1", "as_of": NOW.isoformat(), **lists}


def assert_engine_is_the_reference(engine: Engine) -> None:
    book = engine.book
    expected: dict[str, Any] = {}
    for account_id, account in book.accounts.items():
        if not is_monitored(account):
            continue
        result = compute_account(book, account_id, engine.policies[account.market])
        if result.incomplete is not None:
            continue
        # In call: a call is open. Open: it stays so until nothing is due.
        if result.in_call or (account_id in engine.open_calls and result.call_amount > 0):
            expected[account_id] = result
    assert set(engine.open_calls) == set(expected)
    rows = {row.account_id: row for row in engine.view.warnings}
    unit = D(1).scaleb(-engine.columns.scales.base)
    for account_id, result in expected.items():
        call = engine.open_calls[account_id]
        assert call.call_amount == result.call_amount, account_id
        assert call.risk_level is result.risk_level, account_id
        shown, reference = rows[account_id].margin, MarginFigures.of(result)
        assert shown is not None
        assert shown.risk_level is reference.risk_level
        assert shown.call_amount == reference.call_amount
        for name in ("equity", "im", "mm", "fm"):
            # Digit for digit, or through an inverse fx rate a few units of 10**-σ below.
            below = getattr(reference, name) - getattr(shown, name)
            assert -unit < below < 4 * unit, (account_id, name, below)


async def test_a_generated_desk_through_a_selloff_is_the_reference() -> None:
    store = MemoryStore()
    engine = await engine_with(store)
    parsed = parse_payload(_snapshot())
    assert not parsed.rejected
    await engine.apply(parsed.changes, full=True)
    assert_engine_is_the_reference(engine)
    rng = np.random.default_rng(11)
    symbols = sorted(engine.book.quotes)
    opened = len(engine.open_calls)
    for poll in range(6):
        chosen = rng.choice(len(symbols), size=len(symbols) // 10, replace=False).tolist()
        quotes = []
        for index in chosen:
            quote = engine.book.quotes[symbols[index]]
            fall = D(int(rng.integers(880, 1010))) / 1000
            quotes.append(
                Quote(quote.symbol, max(D("0.010"), (quote.price * fall).quantize(D("0.001"))))
            )
        changes = BookChanges(cursor=str(2 + poll), as_of=NOW, quotes=quotes)
        await engine.apply(changes, full=False)
        assert_engine_is_the_reference(engine)
    assert len(engine.open_calls) > opened  # the sell-off opened calls on the way down
    # Once the unwritten re-pricings are flushed, the store holds every open call as the
    # engine does.
    await store.commit(LifecycleBatch(repriced=engine.unsaved_calls()))
    for call in engine.open_calls.values():
        assert store.calls[call.call_id] == call


async def test_repriced_calls_are_written_oldest_first_a_batch_per_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decide, "REPRICED_PER_POLL", 40)
    store = MemoryStore()
    engine = await engine_with(store)
    await engine.apply(parse_payload(_snapshot()).changes, full=True)
    quotes = [
        Quote(s, (q.price * D("0.6")).quantize(D("0.001"))) for s, q in engine.book.quotes.items()
    ]
    await engine.apply(BookChanges(cursor="2", as_of=NOW, quotes=quotes), full=False)
    assert len(engine.open_calls) > 100

    def behind() -> list[str]:
        return [
            c.call_id
            for c in engine.open_calls.values()
            if store.calls[c.call_id].call_amount != c.call_amount
        ]

    # A further fall re-prices them all: the poll writes the 40 re-priced longest ago.
    for cursor, factor in (("3", "0.99"), ("4", "0.98")):
        quotes = [
            Quote(s, (q.price * D(factor)).quantize(D("0.001")))
            for s, q in engine.book.quotes.items()
        ]
        outcome = await engine.apply(
            BookChanges(cursor=cursor, as_of=NOW, quotes=quotes), full=False
        )
        repriced = [t.call for t in outcome.transitions if not t.snapshots and t.call.is_open]
        assert len(repriced) > 40
        assert len(store.batches[-1].repriced) == 40
        assert all(store.calls[c.call_id] == c for c in store.batches[-1].repriced)
    assert len(behind()) > 40
    # Stopping writes every call still behind, as it is now.
    await store.commit(LifecycleBatch(repriced=engine.unsaved_calls()))
    assert behind() == []
    assert engine.unsaved_calls() == []
    for call in engine.open_calls.values():
        assert store.calls[call.call_id] == call
