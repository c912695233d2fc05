"""A seeded, realistic HK/SG/US margin desk of any size, as encoded FEED.md records.

`generate_book(accounts, seed)` always contains the seed desk (`seed.py`, account A1001
and its instruments, unchanged) plus `accounts` generated accounts on generated
symbols. Generated accounts never hold the seed symbols, so the seed desk's figures stay
the worked example whatever the scenario does to generated prices.

The heavy columns (about 2,000,000 positions at 200,000 accounts) are drawn with numpy
in a few vectorised passes and rendered straight to JSON bytes: no per-record dict ever
exists. numpy's seeded Generator makes the book a pure function of (accounts, seed) for
a given numpy version. Prices come on the exchanges' tick grids (`ticks.py`), names from
`names.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from risk_tui.sim.names import client_language, client_name, instrument_name
from risk_tui.sim.seed import seed_book
from risk_tui.sim.store import SimBook, encode
from risk_tui.sim.ticks import MARKETS, FloatArray, IntArray, milli_text, round_to_ticks

CURRENCIES = ("HKD", "SGD", "USD")  # index-aligned with MARKETS
MIN_SYMBOLS = 36
ACCOUNTS_PER_SYMBOL = 40  # 5,000 symbols at 200,000 accounts

# (im, mm, fm) tiers, best collateral first; the last is not marginable at all.
TIERS: tuple[tuple[str, str, str], ...] = (
    ("0.25", "0.20", "0.15"),
    ("0.30", "0.25", "0.20"),
    ("0.40", "0.35", "0.30"),
    ("0.50", "0.45", "0.40"),
    ("0.70", "0.65", "0.60"),
    ("1.00", "1.00", "1.00"),
)
INTRADAY_TIERS: tuple[tuple[str, str, str], ...] = (
    ("0.15", "0.12", "0.10"),
    ("0.15", "0.12", "0.10"),
    ("0.20", "0.18", "0.15"),
    ("0.25", "0.20", "0.15"),
)
SHORT_TIERS: tuple[tuple[str, str, str], ...] = (
    ("1.50", "1.30", "1.20"),
    ("1.30", "1.20", "1.10"),
)
# Leverage (`_Desk._cash`): the share of accounts that start below MM, and the share
# geared to just above it, each with equity as a multiple of MM; the rest hold equity as
# a share of their gross market value. Calibrated so that the `selloff` scenario's bottom
# (a −15…−25 % day) puts about a tenth of the accounts in call, mostly the geared ones:
# 19,919 of 200,000 at seed 0 (issue 6's crash day; 18,690 at seed 1, whose drops are
# shallower), 8.6–10.8 % from 2,000 to 50,000 accounts over seeds 0–3; the start of the
# day has about 1 % in call.
BELOW_MM_SHARE = 0.009
BELOW_MM_CUSHION = (0.72, 0.985)
GEARED_SHARE = 0.096
GEARED_CUSHION = (1.03, 1.5)
HEALTHY_EQUITY = (0.45, 1.10)
HK_LOTS = (100, 200, 250, 300, 400, 500, 1000, 2000)
HK_LOT_WEIGHTS = (0.25, 0.10, 0.05, 0.05, 0.10, 0.25, 0.15, 0.05)

# ".50", ".123": the fraction part of a thousandths price, precomputed because two
# million positions each need one.
_FRACTION = [f".{f // 10:02d}" if f % 10 == 0 else f".{f:03d}" for f in range(1000)]


def cents_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


_PHONE_PREFIX = {"HK": "+852 ", "SG": "+65 ", "US": "+1 "}


@dataclass(frozen=True, slots=True)
class Symbols:
    """The generated instruments as columns (index = symbol number)."""

    names: list[str]
    market: IntArray  # index into MARKETS / CURRENCIES
    price_milli: IntArray
    lot: IntArray
    tier: IntArray
    shortable: npt.NDArray[np.bool_]
    short_tier: IntArray  # -1: no short ratios (same as long)
    intraday: npt.NDArray[np.bool_]
    suspended: npt.NDArray[np.bool_]
    delisted: npt.NDArray[np.bool_]
    weight: FloatArray  # popularity within the market


def generate_book(accounts: int, seed: int, *, as_of: datetime | None = None) -> SimBook:
    """The seed desk plus `accounts` generated accounts; identical for identical arguments.

    `as_of` stamps the generated quotes' `ts` (the seed desk's quotes have none).
    """
    if accounts < 0:
        raise ValueError("accounts must be ≥ 0")
    book = SimBook.from_records(seed_book())
    if accounts == 0:
        return book
    rng = np.random.default_rng([seed % 2**64, accounts])  # numpy wants unsigned words
    fx = _fx_matrix(book)
    symbols = _symbols(rng, max(MIN_SYMBOLS, round(accounts / ACCOUNTS_PER_SYMBOL)), book)
    ts = as_of.isoformat() if as_of is not None else None
    _put_instruments(book, symbols, ts)
    _Desk(rng, accounts, symbols, fx).put(book)
    return book


def _fx_matrix(book: SimBook) -> FloatArray:
    """Float rates between the three currencies, taken from the book's fx records the
    way the desk takes them (direct pair, else the inverse), so calibration agrees."""
    direct = {(r["from"], r["to"]): float(r["rate"]) for r in book.records("fx")}
    matrix = np.ones((3, 3))
    for i, a in enumerate(CURRENCIES):
        for j, b in enumerate(CURRENCIES):
            if a == b:
                continue
            if (a, b) in direct:
                matrix[i, j] = direct[(a, b)]
            elif (b, a) in direct:
                matrix[i, j] = 1.0 / direct[(b, a)]
            else:
                raise ValueError(f"the seed fx has no rate for {a}/{b}")
    return matrix


def _codes(rng: np.random.Generator, market: str, count: int, taken: set[str]) -> list[str]:
    if market == "HK":
        pool = [f"{n:04d}" for n in range(1, max(10_000, 3 * count))]
    elif market == "SG":
        alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        letters = alnum[:26]
        pool = [f"{a}{d}{c}" for a in letters for d in "0123456789" for c in alnum]
    else:
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        pool = [a + b + c for a in letters for b in letters for c in letters]
        if count > len(pool) // 2:
            pool += [
                a + b + c + d for a in letters for b in letters for c in letters for d in "AEIOU"
            ]
    pool = [code for code in pool if f"{code}.{market}" not in taken]
    chosen = rng.choice(len(pool), size=count, replace=False)
    return [f"{pool[i]}.{market}" for i in sorted(chosen.tolist())]


def _symbols(rng: np.random.Generator, count: int, book: SimBook) -> Symbols:
    taken = {key[0] for key in book.tables["instruments"]}
    per_market = [round(count * 0.40), round(count * 0.25)]
    per_market.append(count - sum(per_market))
    names: list[str] = []
    market_parts: list[IntArray] = []
    for index, market_name in enumerate(MARKETS):
        names += _codes(rng, market_name, per_market[index], taken)
        market_parts.append(np.full(per_market[index], index, dtype=np.int64))
    market = np.concatenate(market_parts)

    # Prices: log-normal around a typical level per market, on the tick grid.
    centre = np.array([12.0, 1.5, 60.0])[market]
    spread = np.array([1.3, 1.0, 1.0])[market]
    low = np.array([0.05, 0.02, 1.0])[market]
    high = np.array([700.0, 60.0, 1500.0])[market]
    raw = np.clip(np.exp(rng.normal(np.log(centre), spread)), low, high)
    price_milli = round_to_ticks(market, raw)

    lot = np.where(market == 1, 100, 1).astype(np.int64)
    hk = market == 0
    lot[hk] = rng.choice(np.array(HK_LOTS), size=int(hk.sum()), p=np.array(HK_LOT_WEIGHTS))

    # Popularity: Zipf-like within each market, on a random ranking; the popular names are
    # the better collateral.
    weight = np.zeros(count)
    percentile = np.zeros(count)
    for index in range(3):
        members = np.flatnonzero(market == index)
        rank = rng.permutation(len(members))
        weight[members] = 1.0 / (rank + 3.0)
        percentile[members] = rank / max(1, len(members))
    tier = np.clip(np.floor(percentile * 5 + rng.normal(0, 0.7, count)), 0, 5).astype(np.int64)

    short_share = np.array([0.35, 0.10, 0.60])[market]
    shortable = (tier <= 3) & (rng.random(count) < short_share)
    short_tier = np.where(shortable & (rng.random(count) < 0.5), rng.integers(0, 2, count), -1)
    intraday = (tier <= 3) & (market != 2) & (rng.random(count) < 0.40)

    # A few suspended and delisted names, among the less popular; delisted ones are not
    # marginable any more.
    tail = np.argsort(-percentile, kind="stable")[: max(4, count // 5)]
    picks = rng.choice(tail, size=max(2, math.ceil(count * 0.008)), replace=False)
    suspended = np.zeros(count, dtype=bool)
    delisted = np.zeros(count, dtype=bool)
    split = max(1, len(picks) * 3 // 4)
    suspended[picks[:split]] = True
    delisted[picks[split:]] = True
    tier[delisted] = len(TIERS) - 1
    shortable &= ~(suspended | delisted)
    short_tier[~shortable] = -1
    intraday &= ~delisted
    return Symbols(
        names=names,
        market=market,
        price_milli=price_milli,
        lot=lot,
        tier=tier,
        shortable=shortable,
        short_tier=short_tier,
        intraday=intraday,
        suspended=suspended,
        delisted=delisted,
        weight=weight,
    )


def _put_instruments(book: SimBook, symbols: Symbols, ts: str | None) -> None:
    # The name is a deterministic function of the symbol so it needs no random draws.
    for i, symbol in enumerate(symbols.names):
        market = MARKETS[int(symbols.market[i])]
        name = instrument_name(symbol, market)
        im, mm, fm = TIERS[int(symbols.tier[i])]
        short: tuple[str | None, ...] = (None, None, None)
        if symbols.short_tier[i] >= 0:
            short = SHORT_TIERS[int(symbols.short_tier[i])]
        intraday: tuple[str | None, ...] = (None, None, None)
        if symbols.intraday[i]:
            intraday = INTRADAY_TIERS[int(symbols.tier[i])]
        record: dict[str, Any] = {
            "symbol": symbol,
            "name": name,
            "market": market,
            "currency": CURRENCIES[int(symbols.market[i])],
            "lot_size": str(int(symbols.lot[i])),
            "im_ratio": im,
            "mm_ratio": mm,
            "fm_ratio": fm,
            "short_im_ratio": short[0],
            "short_mm_ratio": short[1],
            "short_fm_ratio": short[2],
            "intraday_im_ratio": intraday[0],
            "intraday_mm_ratio": intraday[1],
            "intraday_fm_ratio": intraday[2],
            "suspended": bool(symbols.suspended[i]),
            "delisted": bool(symbols.delisted[i]),
        }
        book.put("instruments", record)
        quote: dict[str, Any] = {"symbol": symbol, "price": milli_text(int(symbols.price_milli[i]))}
        if ts is not None:
            quote["ts"] = ts
        book.put("quotes", quote)


class _Desk:
    """Accounts, positions, cash and borrow, drawn as columns, then rendered."""

    def __init__(
        self, rng: np.random.Generator, count: int, symbols: Symbols, fx: FloatArray
    ) -> None:
        self.rng = rng
        self.count = count
        self.symbols = symbols
        self.fx = fx
        self.market = rng.choice(3, size=count, p=[0.45, 0.25, 0.30])
        # Base currency: the market's, except for a few clients who keep another.
        other = (self.market + rng.integers(1, 3, count)) % 3
        self.base = np.where(rng.random(count) < 0.92, self.market, other)
        kind_draw = rng.random(count)
        self.kind = np.where(
            kind_draw < 0.05, 1, np.where(kind_draw < 0.08, 2, 0)
        )  # margin, intraday, cash
        self.ids = [f"{MARKETS[m]}{i + 1:07d}" for i, m in enumerate(self.market.tolist())]

    def put(self, book: SimBook) -> None:
        acct, sym, qty = self._positions()
        cost = self._avg_cost(sym)
        self._put_accounts(book)
        cash = self._cash(acct, sym, qty)
        self._put_cash(book, cash)
        self._put_positions(book, acct, sym, qty, cost)
        self._put_borrow(book, sym, qty)

    def _positions(self) -> tuple[IntArray, IntArray, IntArray]:
        rng, s = self.rng, self.symbols
        monitored = self.kind != 2
        counts = np.where(
            monitored, 1 + rng.poisson(9.6, self.count), 1 + rng.poisson(4, self.count)
        )
        # A handful of margin accounts hold nothing but a debit: the desk's "exceptions".
        counts[monitored & (rng.random(self.count) < 0.0015)] = 0
        acct = np.repeat(np.arange(self.count), counts)
        slots = len(acct)
        home = self.market[acct]
        abroad = rng.random(slots) < np.where(self.kind[acct] == 1, 0.0, 0.2)
        slot_market = np.where(abroad, (home + rng.integers(1, 3, slots)) % 3, home)
        sym = np.zeros(slots, dtype=np.int64)
        for index in range(3):
            members = np.flatnonzero(s.market == index)
            cdf = np.cumsum(s.weight[members])
            cdf /= cdf[-1]
            mask = slot_market == index
            draws = np.searchsorted(cdf, rng.random(int(mask.sum())), side="right")
            sym[mask] = members[np.minimum(draws, len(members) - 1)]
        # One position per (account, symbol): np.unique sorts by account, then symbol.
        _, first = np.unique(acct * len(s.names) + sym, return_index=True)
        acct, sym = acct[first], sym[first]

        size_usd = np.clip(np.exp(rng.normal(np.log(40_000), 1.1, self.count)), 2_000, 5_000_000)
        share = rng.lognormal(0.0, 0.8, len(acct))
        share /= np.bincount(acct, weights=share, minlength=self.count)[acct]
        local = size_usd[acct] * share * self.fx[2, s.market[sym]]
        lot_value = s.price_milli[sym] / 1000.0 * s.lot[sym]
        lots = np.maximum(1, np.rint(local / lot_value)).astype(np.int64)
        qty = lots * s.lot[sym]
        # Some HK holdings carry an odd lot (from rights issues, scrip dividends).
        odd = (s.market[sym] == 0) & (rng.random(len(acct)) < 0.03)
        qty[odd] += rng.integers(1, 100, int(odd.sum()))
        # Shorts: margin accounts only, in lendable names, smaller than a typical long.
        short = (self.kind[acct] == 0) & s.shortable[sym] & (rng.random(len(acct)) < 0.12)
        qty[short] = -np.maximum(
            s.lot[sym][short], (qty[short] // 2) // s.lot[sym][short] * s.lot[sym][short]
        )
        return acct, sym, qty

    def _avg_cost(self, sym: IntArray) -> IntArray:
        s = self.symbols
        drift = np.exp(self.rng.normal(0.03, 0.2, len(sym)))
        return round_to_ticks(s.market[sym], s.price_milli[sym] / 1000.0 * drift)

    def _cash(self, acct: IntArray, sym: IntArray, qty: IntArray) -> list[list[tuple[int, int]]]:
        """Per account, [(currency index, cents)], calibrated on margin figures.

        About 1 % of monitored accounts start below MM (equity = k × MM, k 0.72–0.985;
        a few of those below FM too) and about 10 % just above it (k 1.03–1.5: the ones
        a sell-off pushes into call first; a −20 % day calls most of them). The rest
        hold equity of 45–110 % of their market value (and at least 1.3 × MM): most are
        financed, few are geared enough to fall into call unless the market falls
        harder still. Cash is then whatever makes that equity, which for most margin
        clients is a debit. (The constants above hold these figures.)
        """
        rng, s = self.rng, self.symbols
        rate = self.fx[s.market[sym], self.base[acct]]
        mv = qty * (s.price_milli[sym] / 1000.0) * rate  # signed, base currency
        ratio = self._mm_ratio(acct, sym, qty)
        mm = np.bincount(acct, weights=np.abs(mv) * ratio, minlength=self.count)
        gross = np.bincount(acct, weights=np.abs(mv), minlength=self.count)
        net_mv = np.bincount(acct, weights=mv, minlength=self.count)  # long − |short|
        draw = rng.random(self.count)
        equity_share = rng.uniform(*HEALTHY_EQUITY, self.count)
        healthy = np.maximum(1.3 * mm, equity_share * gross)
        below, geared = BELOW_MM_SHARE, BELOW_MM_SHARE + GEARED_SHARE
        equity = np.where(
            draw < below,
            rng.uniform(*BELOW_MM_CUSHION, self.count) * mm,
            np.where(draw < geared, rng.uniform(*GEARED_CUSHION, self.count) * mm, healthy),
        )
        total = equity - net_mv
        held = np.bincount(acct, minlength=self.count) > 0
        debit_only = (self.kind != 2) & ~held
        total[debit_only] = -rng.uniform(50, 20_000, int(debit_only.sum()))
        cash_kind = self.kind == 2
        total[cash_kind] = (
            rng.lognormal(np.log(5_000), 1.0, int(cash_kind.sum()))
            * self.fx[2, self.base[cash_kind]]
        )

        # Some clients with foreign holdings are financed in that currency as well.
        foreign = s.market[sym] != self.base[acct]
        first_foreign = np.full(self.count, -1)
        order = np.flatnonzero(foreign)[::-1]  # reversed, so the first one wins below
        first_foreign[acct[order]] = s.market[sym[order]]
        second = (first_foreign >= 0) & (rng.random(self.count) < 0.4) & (self.kind != 2)
        in_first = foreign & (s.market[sym] == first_foreign[acct])  # local currency MV
        local_mv = qty * (s.price_milli[sym] / 1000.0)
        foreign_mv = np.bincount(acct[in_first], weights=local_mv[in_first], minlength=self.count)
        result: list[list[tuple[int, int]]] = []
        for a in range(self.count):
            base = int(self.base[a])
            if second[a]:
                ccy = int(first_foreign[a])
                foreign_cents = round(-0.6 * foreign_mv[a] * 100)
                base_cents = round((total[a] - foreign_cents / 100 * self.fx[ccy, base]) * 100)
                result.append([(base, base_cents), (ccy, foreign_cents)])
            else:
                result.append([(base, round(total[a] * 100))])
        return result

    def _mm_ratio(self, acct: IntArray, sym: IntArray, qty: IntArray) -> FloatArray:
        s = self.symbols
        long_mm = np.array([float(TIERS[t][1]) for t in s.tier.tolist()])
        short_mm = np.array(
            [float(SHORT_TIERS[t][1]) if t >= 0 else 0.0 for t in s.short_tier.tolist()]
        )
        short_mm = np.where(s.short_tier >= 0, short_mm, long_mm)
        day_mm = np.array([float(INTRADAY_TIERS[t][1]) if t < 4 else 1.0 for t in s.tier.tolist()])
        day_mm = np.where(s.intraday, day_mm, long_mm)
        ratio = np.where(qty < 0, short_mm[sym], long_mm[sym])
        return np.where(self.kind[acct] == 1, day_mm[sym], ratio)

    def _put_accounts(self, book: SimBook) -> None:
        table = book.tables["accounts"]
        kinds = ("margin", "intraday", "cash")
        name_draw = self.rng.integers(0, 1 << 30, self.count).tolist()
        no_contact = (self.rng.random(self.count) < 0.02).tolist()
        phone = self.rng.integers(10_000_000, 99_999_999, self.count).tolist()
        for a, account_id in enumerate(self.ids):
            market = MARKETS[int(self.market[a])]
            name = client_name(market, name_draw[a])
            tag = client_language(market, name_draw[a])
            language = f',"language":"{tag}"' if tag is not None else ""
            if no_contact[a]:
                contact = "{}"
            else:
                digits = phone[a]
                number = f"{digits // 10_000} {digits % 10_000:04d}"
                if market == "US":
                    number = f"{200 + digits % 700} 555 {digits % 10_000:04d}"
                contact = (
                    f'{{"email":"{account_id.lower()}@clients.example.com",'
                    f'"phone":"{_PHONE_PREFIX[market]}{number}"}}'
                )
            table[(account_id,)] = (
                f'{{"account_id":"{account_id}","client_name":"{name}",'
                f'"kind":"{kinds[int(self.kind[a])]}","base_currency":"{CURRENCIES[int(self.base[a])]}",'
                f'"market":"{market}","contact":{contact}{language}}}'
            ).encode()

    def _put_cash(self, book: SimBook, cash: list[list[tuple[int, int]]]) -> None:
        table = book.tables["cash"]
        for account_id, balances in zip(self.ids, cash, strict=True):
            for ccy, cents in balances:
                currency = CURRENCIES[ccy]
                table[(account_id, currency)] = (
                    f'{{"account_id":"{account_id}","currency":"{currency}",'
                    f'"balance":"{cents_text(cents)}"}}'
                ).encode()

    def _put_positions(
        self, book: SimBook, acct: IntArray, sym: IntArray, qty: IntArray, cost: IntArray
    ) -> None:
        table = book.tables["positions"]
        ids, names, fraction = self.ids, self.symbols.names, _FRACTION
        whole, part = np.divmod(cost, 1000)  # avg costs are positive
        # In slices: five columns of two million Python ints at once would be a few
        # hundred megabytes that exist only to be formatted.
        for start in range(0, len(acct), 1 << 16):
            window = slice(start, start + (1 << 16))
            columns = (acct[window], sym[window], qty[window], whole[window], part[window])
            for a, s, q, w, f in zip(*(c.tolist() for c in columns), strict=True):
                account_id, symbol = ids[a], names[s]
                table[(account_id, symbol)] = (
                    f'{{"account_id":"{account_id}","symbol":"{symbol}","quantity":"{q}",'
                    f'"avg_cost":"{w}{fraction[f]}"}}'
                ).encode()

    def _put_borrow(self, book: SimBook, sym: IntArray, qty: IntArray) -> None:
        """The prime broker lends comfortably more than clients are short, for now."""
        s, rng = self.symbols, self.rng
        short_total = np.bincount(sym[qty < 0], weights=-qty[qty < 0], minlength=len(s.names))
        lendable = np.flatnonzero(s.shortable)
        headroom = rng.uniform(1.3, 3.0, len(lendable))
        rate_bp = rng.integers(50, 1200, len(lendable))
        idle = rng.integers(20, 500, len(lendable))
        for i, index in enumerate(lendable.tolist()):
            lot = int(s.lot[index])
            total = short_total[index]
            available = math.ceil(total * headroom[i] / lot) * lot if total else int(idle[i]) * lot
            record = {
                "symbol": s.names[index],
                "available": str(available),
                "recall_quantity": "0",
                "recall_due": None,
                "rate": f"{rate_bp[i] / 10_000:.4f}",
            }
            book.tables["borrow"][(s.names[index],)] = encode(record)
