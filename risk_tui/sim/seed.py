"""The simulated book, as FEED.md records: the seed example plus a small mixed desk.

The seed example (`004_…txt`, SPEC.md "Worked example") is always account A1001:
cash −15,000 SGD, 5,000 of stock A, 1,000 shares of B at 19.50 → call 1,015.00 under
`mm_buffer`, 1,750.00 under `im`.
"""

from __future__ import annotations

from typing import Any

SEED_ACCOUNT = "A1001"


def _instrument(
    symbol: str,
    name: str,
    market: str,
    currency: str,
    lot: str,
    im: str,
    mm: str,
    fm: str,
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "symbol": symbol,
        "name": name,
        "market": market,
        "currency": currency,
        "lot_size": lot,
        "im_ratio": im,
        "mm_ratio": mm,
        "fm_ratio": fm,
        "short_im_ratio": None,
        "short_mm_ratio": None,
        "short_fm_ratio": None,
        "intraday_im_ratio": None,
        "intraday_mm_ratio": None,
        "intraday_fm_ratio": None,
        "suspended": False,
        "delisted": False,
    }
    record.update(extra)
    return record


def seed_book() -> dict[str, list[dict[str, Any]]]:
    """A small desk every test and the demo can reason about by hand."""
    instruments = [
        _instrument("A.SG", "Stock A", "SG", "SGD", "100", "0.30", "0.25", "0.20"),
        _instrument(
            "B.SG",
            "Stock B",
            "SG",
            "SGD",
            "100",
            "0.50",
            "0.45",
            "0.40",
            intraday_im_ratio="0.25",
            intraday_mm_ratio="0.20",
            intraday_fm_ratio="0.15",
        ),
        _instrument("0700.HK", "Tencent", "HK", "HKD", "100", "0.40", "0.35", "0.30"),
        _instrument(
            "TSLA.US",
            "Tesla",
            "US",
            "USD",
            "1",
            "0.50",
            "0.30",
            "0.25",
            short_im_ratio="1.50",
            short_mm_ratio="1.30",
            short_fm_ratio="1.20",
        ),
        _instrument("NOQ.SG", "Unquoted Co", "SG", "SGD", "100", "0.50", "0.45", "0.40"),
        _instrument(
            "HALT.HK", "Suspended Co", "HK", "HKD", "1000", "1.00", "1.00", "1.00", suspended=True
        ),
    ]
    quotes = [
        {"symbol": "A.SG", "price": "5.00"},
        {"symbol": "B.SG", "price": "19.50"},
        {"symbol": "0700.HK", "price": "380.00"},
        {"symbol": "TSLA.US", "price": "250.00"},
        {"symbol": "HALT.HK", "price": "2.00"},
    ]
    fx = [
        {"from": "HKD", "to": "SGD", "rate": "0.1723"},
        {"from": "USD", "to": "SGD", "rate": "1.3450"},
        {"from": "USD", "to": "HKD", "rate": "7.8050"},
    ]
    accounts = [
        {
            "account_id": SEED_ACCOUNT,
            "client_name": "Tan Mei Ling",
            "kind": "margin",
            "base_currency": "SGD",
            "market": "SG",
            "contact": {"email": "meiling.tan@example.com", "phone": "+65 8000 1001"},
        },
        {
            "account_id": "H2001",
            "client_name": "陳大文",
            "kind": "margin",
            "base_currency": "HKD",
            "market": "HK",
            "contact": {"email": "chan.taiman@example.com", "phone": "+852 5000 2001"},
            "language": "zh-Hant",  # FEED.md's optional field: written to in Traditional
        },
        {
            "account_id": "U3001",
            "client_name": "Jordan Ellis",
            "kind": "margin",
            "base_currency": "USD",
            "market": "US",
            "contact": {"email": "j.ellis@example.com", "phone": "+1 212 555 3001"},
        },
        {
            "account_id": "D4001",
            "client_name": "Lim Wei Jie",
            "kind": "intraday",
            "base_currency": "SGD",
            "market": "SG",
            "contact": {"email": "weijie.lim@example.com", "phone": "+65 8000 4001"},
            "language": "zh-Hans",  # and in Simplified
        },
        {
            "account_id": "S5001",
            "client_name": "Safe Holdings Pte Ltd",
            "kind": "margin",
            "base_currency": "SGD",
            "market": "SG",
            "contact": {},
        },
        {
            "account_id": "C6001",
            "client_name": "Cash Only",
            "kind": "cash",
            "base_currency": "SGD",
            "market": "SG",
            "contact": {},
        },
        {
            "account_id": "I7001",
            "client_name": "No Quote Trading",
            "kind": "margin",
            "base_currency": "SGD",
            "market": "SG",
            "contact": {},
        },
    ]
    cash = [
        {"account_id": SEED_ACCOUNT, "currency": "SGD", "balance": "-15000.00"},
        # HK, formula im: 1,000 Tencent (380,000 HKD) and 10,000 suspended HALT (20,000
        # HKD, 100 % ratios) on −250,000 HKD: equity 150,000 < MM 153,000 → margin call
        # for 22,000 (back to IM 172,000); net asset ratio 130,000 ÷ 380,000.
        {"account_id": "H2001", "currency": "HKD", "balance": "-250000.00"},
        # US short: −40 TSLA (10,000 USD, short MM 130 %) with 22,500 USD cash and a
        # 50,000 HKD balance converted at 1/7.8050: in force call.
        {"account_id": "U3001", "currency": "USD", "balance": "22500.00"},
        {"account_id": "U3001", "currency": "HKD", "balance": "-50000.00"},
        {"account_id": "D4001", "currency": "SGD", "balance": "-16500.00"},
        {"account_id": "S5001", "currency": "SGD", "balance": "50000.00"},
        {"account_id": "C6001", "currency": "SGD", "balance": "1000.00"},
        {"account_id": "I7001", "currency": "SGD", "balance": "-100.00"},
    ]
    positions = [
        {"account_id": SEED_ACCOUNT, "symbol": "A.SG", "quantity": "1000", "avg_cost": "5.00"},
        {"account_id": SEED_ACCOUNT, "symbol": "B.SG", "quantity": "1000", "avg_cost": "25.00"},
        {"account_id": "H2001", "symbol": "0700.HK", "quantity": "1000", "avg_cost": "420.00"},
        {"account_id": "H2001", "symbol": "HALT.HK", "quantity": "10000", "avg_cost": "3.00"},
        {"account_id": "U3001", "symbol": "TSLA.US", "quantity": "-40", "avg_cost": "200.00"},
        {"account_id": "D4001", "symbol": "B.SG", "quantity": "1000", "avg_cost": "21.00"},
        {"account_id": "S5001", "symbol": "A.SG", "quantity": "2000", "avg_cost": "4.00"},
        # NOQ.SG has no quote: I7001's figures cannot be computed → incomplete, not safe.
        {"account_id": "I7001", "symbol": "NOQ.SG", "quantity": "500", "avg_cost": "1.00"},
    ]
    borrow = [
        {
            "symbol": "TSLA.US",
            "available": "50000",
            "recall_quantity": "2000",
            "recall_due": "2026-11-25",
            "rate": "0.035",
        },
    ]
    return {
        "instruments": instruments,
        "quotes": quotes,
        "fx": fx,
        "accounts": accounts,
        "cash": cash,
        "positions": positions,
        "borrow": borrow,
    }
