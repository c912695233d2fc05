"""FEED.md wire models: exact decimals, unknown fields ignored, bad records rejected alone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from risk_tui.core.model import AccountKind, CashMovement, Market, MovementKind
from risk_tui.feed.models import FeedError, parse_payload
from risk_tui.sim.app import SimState


def envelope(**lists: Any) -> dict[str, Any]:
    return {"cursor": "000000000000042", "as_of": "2026-11-23T10:15:02+08:00", **lists}


def test_feed_md_example_parses_exactly() -> None:
    parsed = parse_payload(
        envelope(
            instruments=[
                {
                    "symbol": "B.SG",
                    "name": "Stock B",
                    "market": "SG",
                    "currency": "SGD",
                    "lot_size": "100",
                    "im_ratio": "0.50",
                    "mm_ratio": "0.45",
                    "fm_ratio": "0.40",
                    "short_im_ratio": None,
                    "short_mm_ratio": None,
                    "short_fm_ratio": None,
                    "intraday_im_ratio": "0.25",
                    "intraday_mm_ratio": "0.20",
                    "intraday_fm_ratio": "0.15",
                    "suspended": False,
                    "delisted": False,
                }
            ],
            quotes=[{"symbol": "B.SG", "price": "19.50", "ts": "2026-11-23T10:15:01+08:00"}],
            fx=[{"from": "HKD", "to": "SGD", "rate": "0.1723"}],
            accounts=[
                {
                    "account_id": "A1001",
                    "client_name": "Tan Mei Ling",
                    "kind": "margin",
                    "base_currency": "SGD",
                    "market": "SG",
                    "contact": {"email": "…", "phone": "…"},
                }
            ],
            cash=[{"account_id": "A1001", "currency": "SGD", "balance": "-15000.00"}],
            positions=[
                {"account_id": "A1001", "symbol": "B.SG", "quantity": "1000", "avg_cost": "25.00"}
            ],
            borrow=[
                {
                    "symbol": "TSLA.US",
                    "available": "50000",
                    "recall_quantity": "2000",
                    "recall_due": "2026-11-25",
                    "rate": "0.035",
                }
            ],
        )
    )
    assert parsed.rejected == []
    changes = parsed.changes
    assert changes.cursor == "000000000000042"
    assert changes.instruments[0].intraday_im_ratio == Decimal("0.25")
    assert changes.instruments[0].short_im_ratio is None
    assert changes.quotes[0].price == Decimal("19.50")
    assert str(changes.quotes[0].price) == "19.50"  # the string, not a float's digits
    assert changes.fx[0].from_ccy == "HKD"
    assert changes.fx[0].rate == Decimal("0.1723")
    assert changes.accounts[0].kind is AccountKind.MARGIN
    assert changes.accounts[0].market is Market.SG
    assert changes.cash[0].balance == Decimal("-15000.00")
    recall_due = changes.borrow[0].recall_due
    assert recall_due is not None
    assert recall_due.isoformat() == "2026-11-25"


def test_unknown_fields_are_ignored() -> None:
    parsed = parse_payload(
        envelope(
            quotes=[{"symbol": "B.SG", "price": "19.50", "venue": "SGX", "bid": "19.4"}],
            news=[{"headline": "x"}],
            extra="y",
        )
    )
    assert parsed.rejected == []
    assert parsed.changes.quotes[0].symbol == "B.SG"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"symbol": "X", "price": 19.5}, "price: must be a decimal string"),
        ({"symbol": "X", "price": "NaN"}, "price:"),
        ({"symbol": "X", "price": "-1"}, "price:"),
        ({"symbol": "X"}, "price: Field required"),
        ({"price": "1.00"}, "symbol: Field required"),
        ("not an object", "record"),
    ],
)
def test_bad_record_rejected_alone_with_reason(record: Any, reason: str) -> None:
    parsed = parse_payload(envelope(quotes=[{"symbol": "OK", "price": "1.00"}, record]))
    assert [q.symbol for q in parsed.changes.quotes] == ["OK"]
    assert len(parsed.rejected) == 1
    rejection = parsed.rejected[0]
    assert rejection.kind == "quotes"
    assert rejection.index == 1
    assert reason in rejection.reason


def test_rejections_carry_the_record_key() -> None:
    parsed = parse_payload(
        envelope(
            positions=[{"account_id": "A1", "symbol": "B.SG", "quantity": "ten"}],
            fx=[{"from": "HKD", "to": "SGD", "rate": "0"}],
            instruments=[
                {
                    "symbol": "Z",
                    "market": "SG",
                    "currency": "SGD",
                    "lot_size": "100",
                    "im_ratio": "0.2",
                    "mm_ratio": "0.3",
                    "fm_ratio": "0.1",
                }
            ],
            accounts=[
                {"account_id": "A2", "kind": "hedge", "base_currency": "SGD", "market": "SG"}
            ],
        )
    )
    keys = {(r.kind, r.key) for r in parsed.rejected}
    assert keys == {
        ("positions", "A1/B.SG"),
        ("fx", "HKD/SGD"),
        ("instruments", "Z"),
        ("accounts", "A2"),
    }
    assert any("fm_ratio ≤ mm_ratio ≤ im_ratio" in r.reason for r in parsed.rejected)


DEPOSIT = {
    "movement_id": "M1",
    "account_id": "A1001",
    "currency": "SGD",
    "amount": "1015.00",
    "kind": "deposit",
    "ts": "2026-11-23T10:20:00+08:00",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 1015}, "amount: must be a decimal string"),
        ({"amount": "-5.00"}, "amount:"),
        ({"amount": "0"}, "amount:"),
        ({"kind": "transfer"}, "kind:"),
        ({"currency": "sgd"}, "currency:"),
        ({"ts": "2026-11-23T10:20:00"}, "ts:"),
    ],
)
def test_cash_movements_parse_exactly_and_a_bad_one_is_rejected_alone(
    change: dict[str, Any], reason: str
) -> None:
    bad = {**DEPOSIT, "movement_id": "M2", **change}
    parsed = parse_payload(envelope(cash_movements=[DEPOSIT, bad]))
    [movement] = parsed.changes.cash_movements
    assert movement == CashMovement(
        "M1",
        "A1001",
        "SGD",
        Decimal("1015.00"),
        MovementKind.DEPOSIT,
        datetime(2026, 11, 23, 2, 20, tzinfo=UTC),
    )
    assert movement.signed_amount == Decimal("1015.00")
    assert parsed.changes.record_count == 1
    [rejection] = parsed.rejected
    assert (rejection.kind, rejection.index, rejection.key) == ("cash_movements", 1, "A1001/M2")
    assert reason in rejection.reason


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"as_of": "2026-11-23T10:15:02+08:00"},
        {"cursor": "1", "as_of": "yesterday"},
        {"cursor": "1", "as_of": "2026-11-23T10:15:02"},
    ],
)
def test_unusable_envelope_is_a_feed_error(payload: Any) -> None:
    with pytest.raises(FeedError):
        parse_payload(payload)


def test_a_list_that_is_not_a_list_is_rejected_not_fatal() -> None:
    parsed = parse_payload(
        envelope(quotes={"symbol": "X"}, fx=[{"from": "USD", "to": "SGD", "rate": "1.345"}])
    )
    assert parsed.rejected[0].reason == "not a list"
    assert parsed.changes.fx[0].rate == Decimal("1.345")


def test_simulator_snapshot_parses_cleanly() -> None:
    parsed = parse_payload(SimState().snapshot())
    assert parsed.rejected == []
    assert any(a.account_id == "A1001" for a in parsed.changes.accounts)


def test_a_record_in_a_currency_iso_4217_does_not_list_is_rejected_alone() -> None:
    """Issue 13 point 8: an unknown currency was rounded to two decimals; now it is an error,
    and the record carrying it is refused alone, counted, with the reason."""
    instrument = {
        "market": "SG",
        "lot_size": "100",
        "im_ratio": "0.5",
        "mm_ratio": "0.4",
        "fm_ratio": "0.3",
    }
    parsed = parse_payload(
        envelope(
            instruments=[
                {**instrument, "symbol": "OK.SG", "currency": "SGD"},
                {**instrument, "symbol": "BAD.SG", "currency": "ABC"},
            ],
            accounts=[
                {"account_id": "G1", "base_currency": "XAU", "market": "SG", "kind": "margin"},
                {"account_id": "A1", "base_currency": "OMR", "market": "SG", "kind": "margin"},
            ],
            cash=[{"account_id": "A1", "currency": "CNH", "balance": "1.00"}],
            fx=[{"from": "IQD", "to": "SGD", "rate": "0.001"}],
        )
    )
    assert [i.symbol for i in parsed.changes.instruments] == ["OK.SG"]
    assert [a.account_id for a in parsed.changes.accounts] == ["A1"]
    assert [f.from_ccy for f in parsed.changes.fx] == ["IQD"]
    assert parsed.changes.cash == []
    reasons = {(r.kind, r.key): r.reason for r in parsed.rejected}
    assert reasons == {
        ("instruments", "BAD.SG"): "currency: not an ISO 4217 currency: 'ABC'",
        ("accounts", "G1"): (
            "base_currency: an ISO 4217 code with no minor unit: not money: 'XAU'"
        ),
        ("cash", "A1/CNH"): "currency: not an ISO 4217 currency: 'CNH'",
    }


# --- FEED.md's optional `language` on an account (our extension: docs/feed-extensions.md) ---

ACCOUNT = {
    "account_id": "H2001",
    "client_name": "陳大文",
    "kind": "margin",
    "base_currency": "HKD",
    "market": "HK",
}


def test_an_accounts_language_is_kept_as_the_feed_sent_it() -> None:
    parsed = parse_payload(envelope(accounts=[{**ACCOUNT, "language": " zh-HK "}]))
    assert parsed.rejected == []
    assert parsed.changes.accounts[0].language == "zh-HK"


def test_no_language_is_none_as_before() -> None:
    parsed = parse_payload(envelope(accounts=[ACCOUNT, {**ACCOUNT, "language": None}]))
    assert parsed.rejected == []
    assert [a.language for a in parsed.changes.accounts] == [None, None]


@pytest.mark.parametrize("tag", ["fr", "", 5, ["zh"], {"x": 1}, "x" * 500, "\x1b[2J"])
def test_an_unusable_language_rejects_nothing(tag: Any) -> None:
    """Whatever the field holds, the account (its figures, its call) is applied: the
    message falls back to the market's default and says so (tests/core/test_messages)."""
    parsed = parse_payload(envelope(accounts=[{**ACCOUNT, "language": tag}]))
    assert parsed.rejected == []
    (account,) = parsed.changes.accounts
    assert account.account_id == "H2001"
    assert account.language is None or len(account.language) <= 35


def test_the_cached_book_keeps_the_language() -> None:
    from risk_tui.core.model import Book
    from risk_tui.feed.models import book_to_payload

    parsed = parse_payload(envelope(accounts=[{**ACCOUNT, "language": "zh-Hant"}, ACCOUNT]))
    book = Book()
    for account in parsed.changes.accounts:
        book.accounts[account.account_id + ("" if account.language else "-none")] = account
    again = parse_payload(envelope(**{"accounts": book_to_payload(book)["accounts"]}))
    assert sorted(str(a.language) for a in again.changes.accounts) == ["None", "zh-Hant"]
    assert "language" not in book_to_payload(book)["accounts"][1]  # absent stays absent
