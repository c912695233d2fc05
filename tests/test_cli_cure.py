"""`risk-tui cure ACCOUNT`: one poll, then the least-value cure — checked, as the desk's
checks do, against an independent brute force over board lots on the seed desk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from decimal import Decimal as D
from pathlib import Path

import pytest

from risk_tui.cli.cure import render_table
from risk_tui.config import load_settings
from risk_tui.core.cure import propose_cure, published_minimum_entries
from risk_tui.core.margin import CallFormula, CallPolicy
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    CashBalance,
    Instrument,
    Market,
    Position,
    Quote,
)
from risk_tui.core.money import money_str
from risk_tui.sim.app import SimState
from tests.brute_cure import brute_force
from tests.sim.helpers import desk_book
from tests.test_cli import run
from tests.threaded_sim import serve_in_thread

FIELDS = {
    "account_id",
    "currency",
    "in_call",
    "call_amount",
    "lines",
    "value_sold",
    "after",
    "meets_call",
    "method",
}


@pytest.fixture(scope="module")
def feed_url() -> Iterator[str]:
    """The seed simulator (static: no ticker), in a thread of its own."""
    yield from serve_in_thread(SimState(tick_interval=None))


def cure(feed_url: str, tmp_path: Path, account: str, *fmt: str) -> tuple[int, str, str]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    result = run("cure", account, *fmt, "--feed-url", feed_url, "--db", db)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("account", ["A1001", "D4001", "H2001", "U3001"])
def test_cure_json_agrees_with_a_brute_force_over_board_lots(
    feed_url: str, tmp_path: Path, account: str
) -> None:
    code, out, err = cure(feed_url, tmp_path, account, "--format", "json")
    assert code == 0, err
    proposal = json.loads(out)
    assert set(proposal) >= FIELDS
    assert set(proposal["after"]) == {"equity", "im", "mm", "call_amount", "risk_level"}
    book = desk_book(SimState(tick_interval=None))
    market = book.accounts[account].market
    policy = load_settings(None, env={}, discover=False).margin_call.rule_for(market).policy
    brute = brute_force(book, account, policy)
    ccy = proposal["currency"]
    assert brute.least_value is not None  # every seed call can be cured by selling
    assert proposal["in_call"] is True
    assert proposal["meets_call"] is True
    assert proposal["method"] == "exact"
    assert proposal["after"]["call_amount"] == money_str(Decimal(0), ccy)
    assert proposal["value_sold"] == money_str(brute.least_value, ccy)
    for line in proposal["lines"]:
        held = book.positions[account][line["symbol"]].quantity
        lot = book.instruments[line["symbol"]].lot_size
        assert Decimal(line["quantity"]) % lot == 0
        assert Decimal(line["quantity"]) <= abs(held)
        assert line["side"] == ("sell" if held > 0 else "buy")


def test_cure_a1001_is_a_lot_of_each_and_the_table_fits_80_columns(
    feed_url: str, tmp_path: Path
) -> None:
    code, out, err = cure(feed_url, tmp_path, "A1001", "--format", "json")
    assert code == 0, err
    proposal = json.loads(out)
    assert proposal["call_amount"] == "1015.00"
    assert [
        (x["symbol"], x["side"], x["quantity"], x["price"], x["value"]) for x in proposal["lines"]
    ] == [
        ("A.SG", "sell", "100", "5.00", "500.00"),
        ("B.SG", "sell", "100", "19.50", "1950.00"),
    ]
    assert proposal["value_sold"] == "2450.00"
    assert proposal["after"] == {
        "equity": "9500.00",
        "im": "10125.00",
        "mm": "9022.50",
        "call_amount": "0.00",
        "risk_level": "watch",
    }
    code, table, err = cure(feed_url, tmp_path, "A1001")
    assert code == 0, err
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "Meets the call: call amount after SGD 0.00." in table
    assert "MM 9,022.50 · WATCH" in table  # the level in the screen's word, not "watch"
    assert "Broker's published minimum (call ÷ IM ratio), not a cure:" in table


def test_cure_of_an_account_not_in_call_proposes_nothing(feed_url: str, tmp_path: Path) -> None:
    code, out, err = cure(feed_url, tmp_path, "S5001", "--format", "json")
    assert code == 0, err
    proposal = json.loads(out)
    assert (proposal["in_call"], proposal["lines"], proposal["meets_call"]) == (False, [], True)
    assert proposal["call_amount"] == "0.00"
    code, table, _ = cure(feed_url, tmp_path, "S5001")
    assert code == 0
    assert "not in call" in table


@pytest.mark.parametrize(
    ("account", "code", "words"),
    [
        ("ZZ9999", 2, "cure: no account ZZ9999 in the feed"),
        ("C6001", 2, "cure: C6001 is a cash account: never in margin call"),
        ("I7001", 3, "cure: I7001: its figures cannot be computed (no price for NOQ.SG)"),
    ],
)
def test_cure_refusals_are_one_line_with_the_reports_exit_codes(
    feed_url: str, tmp_path: Path, account: str, code: int, words: str
) -> None:
    got, out, err = cure(feed_url, tmp_path, account)
    assert (got, out) == (code, "")
    assert err == f"risk-tui: {words}\n"


def test_cure_with_an_unusable_feed_or_database(feed_url: str, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    down = run(
        "cure", "A1001", "--feed-url", "http://127.0.0.1:9", "--db", db,
        env={"RISK_TUI_FEED__STALE_AFTER": "1"},
    )  # fmt: skip
    assert down.returncode == 3
    assert down.stderr.count("\n") == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = run(
        "cure", "A1001", "--feed-url", feed_url, "--db", f"sqlite+aiosqlite:///{blocker}/x.db"
    )
    assert bad.returncode == 4, bad.stderr
    assert bad.stderr.startswith("risk-tui: database")


def test_the_published_minimum_of_many_holdings_is_packed_whole_into_80_columns() -> None:
    book = Book()
    book.accounts["P1"] = Account("P1", "P", AccountKind.MARGIN, "HKD", Market.HK)
    for i in range(9):
        symbol = f"{1000 + i}.HK"
        book.instruments[symbol] = Instrument(
            symbol, symbol, Market.HK, "HKD", D(100), D("0.5"), D("0.45"), D("0.4")
        )
        book.quotes[symbol] = Quote(symbol, D("123.45") + i)
        book.set_position(Position("P1", symbol, D(1000)))
    book.set_cash(CashBalance("P1", "HKD", D("-700000")))
    proposal = propose_cure(book, "P1", CallPolicy(CallFormula.IM), open_call=True)
    entries = published_minimum_entries(proposal)
    assert len(entries) == 9
    table = render_table(proposal, "P")
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80
    packed = lines[lines.index("Broker's published minimum (call ÷ IM ratio), not a cure:") + 1 :]
    assert len(packed) > 1  # more than one line of them, each entry whole on one
    assert [e for line in packed for e in line.strip().split(" · ")] == entries
