"""The whole book's margin in columns: crash-day scale, and exactly the reference's answers.

`margin.compute_account` (Decimal, one account at a time) is the reference. This module
holds the same book as NumPy columns and decides every account's risk level and call
amount with integer arithmetic, vectorised, giving the reference's answer for every
account: the columns decide what they can prove and hand the few accounts they cannot
to the reference itself.

Layout
------
- positions (one row each, sorted by group): symbol, |quantity| as an integer at the
  book's quantity scale, long or not, and which of the symbol's ratio triples applies
  (long, short, intraday: `ratios_for` resolved once per symbol);
- groups, one per (account, currency) the account has cash or holdings in, plus always
  its base currency: cash and the exact sums Σ long q·p, Σ short |q|·p, Σ |q|·p·ratio for
  IM/MM/FM and the suspended/delisted long value, all integers in that currency, and the
  group's five figures converted into the account's base currency;
- accounts: the totals of their groups' converted figures, base currency, call policy;
- symbols: the price at the book's price scale, and which positions hold them (CSR).

A poll moves the group sums by Σ |q|·Δp·(ratio) over the positions of the symbols that
moved, re-converts only the groups that moved and moves the accounts' totals by the
differences (integer `add.at`: exact), then decides only the accounts holding them.

The exactness scheme
--------------------
Scales: each input kind is read as an integer at a fixed number of decimal places chosen
from the book when it is built: what the bulk of the values need (one in 10,000 may need
more and fall off scale), at least the feed's own precision (quantities 0, prices 3,
ratios and call buffers 2, cash 2, fx 4) and at most 2, 5, 4, 4, 7. `s` = quantity +
price + ratio places is the scale of every group value; `σ = max(s + fx places, 9)` is
the scale of every base-currency figure (9 at the feed's precision). A value that needs
more places than its scale, or does not fit, is "off scale": the accounts it reaches
are decided by the reference.

int64 arithmetic is exact modulo 2**64, so a sum of exact products is exact whenever its
true value fits. A float64 upper bound of every magnitude, kept beside the integers,
checks that with a factor-of-two margin before a figure is used: a group sum that may
not fit sends its account to the reference; account totals that may not fit int64 are
added up again as Python ints from the (fitting) group sums and decided the same way.

Conversion into the account's base currency, per group, mirroring `fx_rate`:
- same currency or a direct pair `D / 10**K`: value × D × 10**(σ−s−K) — exact;
- inverse pair (only `(base, ccy)` is quoted, rate `R / 10**K`): ⌊value × 10**(σ−s+K) / R⌋,
  by exact long division. The true converted value lies in [floor, floor + 1).

Without an inverse group an account's equity, IM, MM, FM and raw call amount are exact,
and the reference computes the same numbers exactly too (every intermediate stays far
below the 40 digits of `money.context()`: accounts whose magnitude could reach them go
to the reference), so risk level (`classify`) and call amount (rounded up to the minor
unit) are equal by construction.

With n inverse groups the figures do not terminate: 1/7.8050 has no finite decimal
expansion, and the reference carries it, and every product and sum after it, at 40
significant digits. Neither side then holds "the exact figure". The reference's figures
are within (3 × terms + 10) × magnitude × 5e-40 of the true rational ones, checked to be
below 0.1 unit of 10**-σ; each columnar figure is within [0, n) units below the true
one; so the reference's value of each compared quantity (equity − IM, equity − MM,
equity − FM, raw call amount) lies strictly within 2n + 1 units of the columns'
integer. When no decision boundary (0 for a comparison; for the call amount any
multiple of the minor unit ≥ 0) lies within 2n units of that integer, the reference must
decide as the columns do; when one does, the account goes to the reference. At the
feed's scales that window is 2n × 1e-9 of the currency: only true ties reach it, e.g.
a foreign holding at 100 % ratios with no cash in that currency (equity − IM gets
exactly 0 from it). On such a tie the reference's own rounding decides, and may ask a
minor unit more than the true rational amount (`tests/core/test_columnar.py` pins
one: 100.01 for an exact 100.00); equal means the reference's answer, so it decides.

Hence:
- risk level, call amount and incompleteness equal the reference's for every account,
  with no tolerance, always;
- equity, IM, MM, FM (and cash, long/short/gross MV, illiquid MV through `figures`) are
  exactly the reference's for accounts without inverse fx; with inverse fx, `figures`
  computes them from the exact group sums at the reference's own 40 significant digits,
  so they agree to the reference's precision (a few units of the 40th digit), not digit
  for digit: the honest meaning of "equal" once a rate does not terminate. The int64
  columns `equity`/`im`/`mm`/`fm` hold the exact figures (floors, with inverse fx) at
  10**-σ where `in_columns` is set.

What routes an account to the reference (`by_reference`, counted in `stats`): off-scale
inputs, a group sum beyond int64, a magnitude near the reference's 40 digits, a near-tie
as above, an instrument record changed since the build, and accounts named in
`recompute(accounts=…)`: cash, position and account records are not re-read into the
columns (`from_book` again brings those accounts back to the fast path). The reference
reads the Book, which stays the source of truth: the columns re-read quotes and fx from
it.

Incomplete accounts (an instrument, a quote or an fx rate missing) are decided by the
columns from per-account counts; `materialize` gives the reference's reason.
"""

from __future__ import annotations

import decimal
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import numpy as np
import numpy.typing as npt

from risk_tui.core.margin import (
    AccountMargin,
    CallFormula,
    CallPolicy,
    MarginFigures,
    RiskLevel,
    compute_account,
    ratios_for,
)
from risk_tui.core.model import Account, AccountKind, Book, Instrument, Market
from risk_tui.core.money import ZERO, context, minor_units

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# Level codes, ordered as `classify` orders them; index into LEVELS.
SAFE, WATCH, MARGIN_CALL, FORCE_CALL, INCOMPLETE = 0, 1, 2, 3, 4
LEVELS: tuple[RiskLevel, ...] = (
    RiskLevel.SAFE,
    RiskLevel.WATCH,
    RiskLevel.MARGIN_CALL,
    RiskLevel.FORCE_CALL,
    RiskLevel.INCOMPLETE,
)
_LEVEL_CODE = {level: code for code, level in enumerate(LEVELS)}

# Decimal places per input kind: (floor, cap). The floors are the feed's own precision,
# so a later quote or rate at the feed's precision never falls off scale; the caps keep
# s + fx places ≤ 18, so 10**σ fits int64.
QUANTITY_PLACES = (0, 2)
PRICE_PLACES = (3, 5)
RATIO_PLACES = (2, 4)
CASH_PLACES = (2, 4)
FX_PLACES = (4, 7)
MIN_BASE_PLACES = 9  # σ ≥ minor units (≤ 3) + 6: room below the minor unit for near-ties
# A ratio or buffer beyond the feed's own bound (FEED ratios are 0…10) sends its holders
# to the reference, so one absurd instrument cannot loosen every account's bounds.
MAX_RATIO = 10
OUTLIERS = 10_000  # one value in this many may fall off scale rather than widen it

# Reference exactness: an account whose magnitude (in units of 10**-σ) times its number
# of terms stays below this has every intermediate of `compute_account` within 40 digits
# (exact without inverse fx; within far less than one unit with it).
REFERENCE_DIGITS_BOUND = 1e37

# Every magnitude the int64 path relies on stays below this (int64 holds 2**63): the
# factor of two absorbs the float64 rounding of the bounds themselves.
LIMIT = float(2**62)
_INT_LIMIT = 2**62
_INT64_MAX = 2**63 - 1
# Rows of the group and account sums: equity, IM, MM, FM, call buffer (what decides),
# then long MV, short MV, illiquid long MV (what a warning row shows besides).
SUMS = 8
_SHOWN_SUMS = np.array(
    [0, 1, 2, 3, 5, 6, 7], dtype=np.int64
)  # what `MarginFigures.scaled` reads, in its order

# Symbol states.
_OK, _MISSING, _OFF = 0, 1, 2
# fx pair kinds.
_DIRECT, _INVERSE, _NO_RATE, _OFF_RATE = 0, 1, 2, 3

# Scaling is exact or it fails: no rounding ever happens silently.
_EXACT = decimal.Context(
    prec=200,
    traps=[decimal.Inexact, decimal.Rounded, decimal.InvalidOperation, decimal.Overflow],
)


def _places(value: Decimal) -> int:
    """Decimal places needed to write `value` exactly (a large number when it cannot be)."""
    if not value.is_finite():
        return 1_000
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent >= 0:
        return 0
    try:
        normal = value.normalize(_EXACT).as_tuple().exponent
    except decimal.DecimalException:
        return 1_000
    assert isinstance(normal, int)
    return max(0, -normal)


def _choose(values: Iterable[Decimal], bounds: tuple[int, int]) -> int:
    """The places the bulk of the values need, within bounds: at most 1 in 10,000 values
    may need more (they go off scale), so one odd value cannot shrink every account's
    int64 headroom."""
    needed: dict[int, int] = {}
    count = 0
    for value in values:
        places = _places(value)
        needed[places] = needed.get(places, 0) + 1
        count += 1
    return _bulk(needed, count, bounds)


def _scaled(value: Decimal, places: int) -> int | None:
    """value × 10**places as an int when that is exact and |result| ≤ 2**62, else None."""
    try:
        shifted = value.scaleb(places, _EXACT)
        whole = int(shifted)
    except (decimal.DecimalException, ValueError, OverflowError):
        return None
    if whole != shifted or abs(whole) > _INT_LIMIT:
        return None
    return whole


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    """The same value (the reference's results depend on nothing else): nothing to
    recompute. A NaN is never the same."""
    if a is None or b is None:
        return a is b
    return a.is_finite() and b.is_finite() and a == b


def _ranges(starts: I64, counts: I64) -> I64:
    """Concatenated arange(start, start + count) for each pair."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(offsets - starts, counts)


def _classify(
    totals: npt.NDArray[Any], formula_im: Bools, width: npt.NDArray[Any], unit: npt.NDArray[Any]
) -> tuple[I8, npt.NDArray[Any], Bools]:
    """Level codes, call amounts in minor units, and which accounts are too near a
    boundary to tell, from the five base-currency totals (int64, or Python ints in an
    object array) of accounts whose figures are each within `width` / 2 units below
    the true ones (0: exact).

    The reference's own figures lie within one unit of the true ones (module doc), so
    when no boundary lies within `width` of a compared quantity the reference compares
    as these integers do; `width` 0 compares the exact figures themselves.
    """
    equity, im, mm, fm, buffer = totals[0], totals[1], totals[2], totals[3], totals[4]
    d_im, d_mm, d_fm = equity - im, equity - mm, equity - fm
    raw = np.where(formula_im, im - equity, mm + buffer - equity)
    near = (np.abs(d_im) <= width) | (np.abs(d_mm) <= width) | (np.abs(d_fm) <= width)
    # A multiple of the minor unit within [raw − width, raw + width] that is ≥ 0 (0
    # decides whether anything is due; below it the amount is 0 whatever the digits).
    near |= (raw + width) // unit >= np.maximum(-((width - raw) // unit), 0)
    ambiguous = np.asarray((width > 0) & near, dtype=np.bool_)
    level = np.where(
        d_im >= 0,
        SAFE,
        np.where(d_mm >= 0, WATCH, np.where(d_fm >= 0, MARGIN_CALL, FORCE_CALL)),
    ).astype(np.int8)
    amount = np.where(raw > 0, -((-raw) // unit), 0)
    return level, amount, ambiguous


_RATIO_TRIPLES = (
    (AccountKind.MARGIN, False),  # long
    (AccountKind.MARGIN, True),  # short
    (AccountKind.INTRADAY, False),  # intraday (long or short alike)
)


def _places_of(denominator: int) -> int:
    """Decimal places of n / denominator, a reduced fraction of a finite Decimal (its
    denominator is 2**a × 5**b: a, b places)."""
    twos = (denominator & -denominator).bit_length() - 1
    rest, fives = denominator >> twos, 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    return max(twos, fives)


def _exact_many(values: list[Decimal], bounds: tuple[int, int]) -> tuple[int, list[int | None]]:
    """The places for these values (as `_choose`) and each one × 10**places as an int,
    or None when it needs more places, does not fit, or is not finite."""
    fractions: list[tuple[int, int] | None] = []
    for value in values:
        try:
            fractions.append(value.as_integer_ratio())
        except (ValueError, OverflowError):  # NaN, infinity
            fractions.append(None)
    denominators = Counter(f[1] for f in fractions if f is not None)
    places_of = {d: _places_of(d) for d in denominators}
    needed: dict[int, int] = {1_000: len(values) - denominators.total()}
    for d, count in denominators.items():
        needed[places_of[d]] = needed.get(places_of[d], 0) + count
    places = _bulk(needed, len(values), bounds)
    factor = {d: 10 ** (places - p) * (10**p // d) for d, p in places_of.items() if p <= places}
    scaled = [f[0] * factor[f[1]] if f is not None and f[1] in factor else None for f in fractions]
    return places, [v if v is None or -_INT_LIMIT <= v <= _INT_LIMIT else None for v in scaled]


def _bulk(needed: dict[int, int], count: int, bounds: tuple[int, int]) -> int:
    """Fewest places, within bounds, leaving at most count // OUTLIERS values needing more."""
    floor, cap = bounds
    allowed = count // OUTLIERS
    for places in range(floor, cap + 1):
        if sum(n for p, n in needed.items() if p > places) <= allowed:
            return places
    return cap


class _Layout:
    """Accounts walked once: groups (account, currency), positions, cash balances."""

    def __init__(self) -> None:
        self.account_groups = array("q", [0])  # group offsets per account
        self.group_account = array("q")
        self.group_currency = array("q")
        self.position_group = array("q")
        self.position_symbol = array("q")
        self.quantities: list[Decimal] = []
        self.balance_group = array("q")
        self.balances: list[Decimal] = []

    @classmethod
    def of(
        cls,
        book: Book,
        accounts: list[Account],
        symbol_rows: dict[str, int],
        symbol_currency: list[int],
        ccy_index: dict[str, int],
    ) -> _Layout:
        layout = cls()
        for row, account in enumerate(accounts):
            base = ccy_index[account.base_currency]
            cash = book.cash.get(account.account_id, {})
            holdings = book.positions.get(account.account_id, {})
            held = [symbol_rows[p.symbol] for p in holdings.values()]
            # The holding's currency; an unknown instrument's holding sits in the base
            # group (its account is incomplete whatever it adds).
            in_ccy = [c if (c := symbol_currency[s]) >= 0 else base for s in held]
            order = sorted({base, *in_ccy, *(ccy_index[c] for c in cash)})
            first = len(layout.group_account)
            group_of = {c: first + k for k, c in enumerate(order)}
            layout.group_account.extend([row] * len(order))
            layout.group_currency.extend(order)
            layout.account_groups.append(first + len(order))
            layout.position_group.extend([group_of[c] for c in in_ccy])
            layout.position_symbol.extend(held)
            layout.quantities.extend(p.quantity for p in holdings.values())
            layout.balance_group.extend([group_of[ccy_index[c]] for c in cash])
            layout.balances.extend(cash.values())
        return layout


@dataclass(frozen=True, slots=True)
class Scales:
    """Decimal places of each integer column; `local` = s, `base` = σ (see module doc)."""

    quantity: int
    price: int
    ratio: int
    cash: int
    fx: int

    @property
    def notional(self) -> int:
        """Places of Σ q·p."""
        return self.quantity + self.price

    @property
    def local(self) -> int:
        return self.quantity + self.price + self.ratio

    @property
    def base(self) -> int:
        return max(self.local + self.fx, MIN_BASE_PLACES)


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """One account's figures as the columnar path has them (see the module doc on exact)."""

    account_id: str
    currency: str
    cash_base: Decimal
    long_mv: Decimal
    short_mv: Decimal
    gross_mv: Decimal
    equity: Decimal
    im: Decimal
    mm: Decimal
    fm: Decimal
    illiquid_mv: Decimal
    liquid_net_assets: Decimal
    net_asset_ratio: Decimal | None
    risk_level: RiskLevel
    call_amount: Decimal
    exact: bool  # digit for digit the reference's (no inverse fx, not by reference)
    by_reference: bool  # decided by `compute_account`


@dataclass(frozen=True, slots=True)
class Stats:
    accounts: int
    groups: int
    positions: int
    symbols: int
    by_reference: int  # accounts currently decided by the reference
    incomplete: int
    inverse_fx_accounts: int
    array_bytes: int  # the NumPy columns


class ColumnarBook:
    """The book in columns: build with `from_book`; see the module doc."""

    def __init__(self, book: Book, policies: CallPolicy | Mapping[Market, CallPolicy]) -> None:
        self.book = book
        self._policies = policies
        accounts = list(book.accounts.values())
        self.account_ids: list[str] = [a.account_id for a in accounts]
        self._rows: dict[str, int] = {aid: row for row, aid in enumerate(self.account_ids)}
        self._currency_of: list[str] = [a.base_currency for a in accounts]
        account_count = len(accounts)

        # Symbols: every instrument, then any held symbol the book has no instrument for.
        names = list(book.instruments)
        self._symbol_rows = {name: row for row, name in enumerate(names)}
        for account in accounts:
            for position in book.positions.get(account.account_id, {}).values():
                if position.symbol not in self._symbol_rows:
                    self._symbol_rows[position.symbol] = len(names)
                    names.append(position.symbol)
        self.symbols = names
        symbol_count = len(names)
        self._instruments: list[Instrument | None] = [book.instruments.get(n) for n in names]

        # Currencies: bases, cash and instruments.
        currencies = {a.base_currency for a in accounts}
        for account in accounts:
            currencies.update(book.cash.get(account.account_id, {}))
        currencies.update(i.currency for i in book.instruments.values())
        self.currencies = sorted(currencies)
        ccy_index = {c: i for i, c in enumerate(self.currencies)}
        self._s_ccy = np.array(
            [-1 if i is None else ccy_index[i.currency] for i in self._instruments], dtype=np.int64
        )

        # Accounts → groups → positions, with the raw values still Decimal.
        layout = _Layout.of(book, accounts, self._symbol_rows, self._s_ccy.tolist(), ccy_index)

        # Scales, from the data (module doc), then every value as an exact integer.
        policy_list = [self.policy_for(a.market) for a in accounts]
        ratio_values: list[Decimal] = list({p.buffer_pct for p in policy_list})
        for instrument in book.instruments.values():
            for kind, short in _RATIO_TRIPLES:
                r = ratios_for(instrument, kind, short)
                ratio_values += (r.im, r.mm, r.fm)
        quantity_places, quantities = _exact_many(layout.quantities, QUANTITY_PLACES)
        cash_places, balances = _exact_many(layout.balances, CASH_PLACES)
        self.scales = Scales(
            quantity=quantity_places,
            price=_choose(
                (q.price for s in names if (q := book.quotes.get(s)) is not None), PRICE_PLACES
            ),
            ratio=_choose(ratio_values, RATIO_PLACES),
            cash=cash_places,
            fx=_choose(book.fx.values(), FX_PLACES),
        )
        sc = self.scales
        layout.quantities.clear()  # the Decimals are done with
        layout.balances.clear()

        # Symbols' static columns: currency, illiquid, the three resolved ratio triples.
        self._s_illiquid = np.zeros(symbol_count, dtype=np.int64)
        self._s_ratio_off = np.zeros(symbol_count, dtype=np.bool_)
        ratio_table = np.zeros((3, symbol_count * 3), dtype=np.int64)  # im/mm/fm × (sym, triple)
        ratio_max = 0.0
        for row, known in enumerate(self._instruments):
            if known is None:
                continue
            self._s_illiquid[row] = int(known.suspended or known.delisted)
            for column, (kind, short) in enumerate(_RATIO_TRIPLES):
                r = ratios_for(known, kind, short)
                for which, value in enumerate((r.im, r.mm, r.fm)):
                    scaled = _scaled(value, sc.ratio)
                    if scaled is None or abs(value) > MAX_RATIO:
                        self._s_ratio_off[row] = True
                        continue
                    ratio_table[which, row * 3 + column] = scaled
                    ratio_max = max(ratio_max, abs(float(value)))
        self._r_im, self._r_mm, self._r_fm = ratio_table[0], ratio_table[1], ratio_table[2]
        self._ratio_max = ratio_max

        # Accounts' static columns: call policy, minor unit, what is off scale.
        self._a_formula_im = np.array(
            [p.formula is CallFormula.IM for p in policy_list], dtype=np.bool_
        )
        self._a_beta = np.zeros(account_count, dtype=np.int64)
        self._a_static_off = np.zeros(account_count, dtype=np.int64)
        self._a_forced = np.zeros(account_count, dtype=np.bool_)
        beta_max = 0.0
        for row, policy in enumerate(policy_list):
            beta = _scaled(policy.buffer_pct, sc.ratio)
            if beta is None or abs(policy.buffer_pct) > MAX_RATIO:
                self._a_static_off[row] += 1
            else:
                self._a_beta[row] = beta
                beta_max = max(beta_max, abs(float(policy.buffer_pct)))
        self._beta_max = beta_max
        minor = np.array([minor_units(c) for c in self._currency_of], dtype=np.int64)
        self._a_unit = (10 ** (sc.base - minor)).astype(np.int64)  # the minor unit at 10**-σ
        self._a_gstart = np.frombuffer(layout.account_groups, dtype=np.int64).copy()
        self._g_acct = np.frombuffer(layout.group_account, dtype=np.int64).astype(np.int32)
        self._g_ccy = np.frombuffer(layout.group_currency, dtype=np.int64).astype(np.int32)
        group_count = len(self._g_acct)

        # Cash: exact integers at the cash scale; off scale → the account.
        cash_groups = np.frombuffer(layout.balance_group, dtype=np.int64)
        self._g_cash = np.zeros(group_count, dtype=np.int64)
        good = np.array([v is not None for v in balances], dtype=np.bool_)
        self._g_cash[cash_groups[good]] = np.array(
            [v for v in balances if v is not None], dtype=np.int64
        )
        np.add.at(self._a_static_off, self._g_acct[cash_groups[~good]], 1)
        del balances

        # Positions: exact integers at the quantity scale; off scale → the account.
        grp = np.frombuffer(layout.position_group, dtype=np.int64)
        sym = np.frombuffer(layout.position_symbol, dtype=np.int64)
        good = np.array([v is not None for v in quantities], dtype=np.bool_)
        qty = np.zeros(len(grp), dtype=np.int64)
        qty[good] = np.array([v for v in quantities if v is not None], dtype=np.int64)
        np.add.at(self._a_static_off, self._g_acct[grp[~good]], 1)
        del quantities
        intraday = np.array([a.kind is AccountKind.INTRADAY for a in accounts], dtype=np.bool_)
        # Which ratio triple: 0 long, 1 short, 2 intraday (as `ratios_for` chooses).
        triple = np.where(intraday[self._g_acct[grp]], 2, np.where(qty < 0, 1, 0))
        # Positions in symbol order ("slots"): a price move reads the positions of one
        # symbol as one run, in sequence rather than scattered.
        by_symbol = np.argsort(sym, kind="stable")
        self._s_pstart = np.searchsorted(sym[by_symbol], np.arange(symbol_count + 1)).astype(
            np.int64
        )
        self._y_grp = grp[by_symbol].astype(np.int32)
        self._y_aq = np.abs(qty)[by_symbol]
        self._y_long = (qty > 0)[by_symbol]
        ridx = (sym * 3 + triple)[by_symbol]
        # Scaled ratios are at most MAX_RATIO × 10**4: int32 holds them.
        self._y_ratios = np.stack((self._r_im[ridx], self._r_mm[ridx], self._r_fm[ridx])).astype(
            np.int32
        )
        # Terms of each account's reference sums (positions, cash, groups): its error bound.
        per_group = np.bincount(grp, minlength=group_count) + 2
        self._a_terms = np.add.reduceat(per_group, self._a_gstart[:-1])
        del grp, sym, qty, triple, by_symbol, ridx, layout

        # Group sums (filled by _sum_positions) and per-symbol price state.
        self._g_long = np.zeros(group_count, dtype=np.int64)
        self._g_short = np.zeros(group_count, dtype=np.int64)
        self._g_im = np.zeros(group_count, dtype=np.int64)
        self._g_mm = np.zeros(group_count, dtype=np.int64)
        self._g_fm = np.zeros(group_count, dtype=np.int64)
        self._g_ill = np.zeros(group_count, dtype=np.int64)
        self._g_gross_f = np.zeros(group_count, dtype=np.float64)  # bound of Σ|q|·p
        self._s_price = np.zeros(symbol_count, dtype=np.int64)  # what the sums hold
        self._s_state = np.zeros(symbol_count, dtype=np.int8)
        # The quotes as last read: an off-scale price sums as 0 either way, yet its
        # holders (decided by the reference) must be recomputed when it changes.
        self._s_quote: list[Decimal | None] = [None] * symbol_count
        self._a_pos_missing = np.zeros(account_count, dtype=np.int64)
        self._a_pos_off = np.zeros(account_count, dtype=np.int64)

        # fx pairs used by the groups: (ccy, base).
        pair_keys = self._g_ccy.astype(np.int64) * len(self.currencies) + np.repeat(
            np.array([ccy_index[c] for c in self._currency_of], dtype=np.int64),
            np.diff(self._a_gstart),
        )
        unique_pairs, self._g_pair = np.unique(pair_keys, return_inverse=True)
        self._pairs: list[tuple[str, str]] = [
            (
                self.currencies[int(k) // len(self.currencies)],
                self.currencies[int(k) % len(self.currencies)],
            )
            for k in unique_pairs
        ]
        pair_count = len(self._pairs)
        self._pair_kind = np.full(pair_count, _NO_RATE, dtype=np.int8)
        self._pair_mult = np.zeros(pair_count, dtype=np.int64)
        self._pair_div = np.ones(pair_count, dtype=np.int64)
        self._pair_factor = np.zeros(pair_count, dtype=np.float64)
        self._pair_rate: list[Decimal | None] = [None] * pair_count
        # What each pair was read from, (how, book value): a change of an off-scale or
        # missing rate changes no column, yet its accounts must be recomputed.
        self._pair_source: list[tuple[int, Decimal | None]] = [(-1, None)] * pair_count
        self._div_chunk = 1
        self._a_grp_missing = np.zeros(account_count, dtype=np.int64)
        self._a_grp_off = np.zeros(account_count, dtype=np.int64)
        self._a_inverse = np.zeros(account_count, dtype=np.int64)

        # Each group's figures in its account's base currency at 10**-σ (equity, IM, MM,
        # FM, buffer × gross, and for display long MV, short MV and illiquid long MV;
        # floors for inverse pairs), with a float bound of their
        # magnitude, and the accounts' totals of both. Totals move by the changed groups'
        # differences: int64 sums are exact modulo 2**64, so a total is exact whenever
        # its true value fits, which the bound checks before it is used.
        self._g_conv = np.zeros((SUMS, group_count), dtype=np.int64)
        self._g_mag = np.zeros(group_count, dtype=np.float64)
        self._g_wide = np.zeros(group_count, dtype=np.int64)  # 1: a local sum may not fit
        self._a_sum = np.zeros((SUMS, account_count), dtype=np.int64)
        self._a_mag = np.zeros(account_count, dtype=np.float64)
        self._a_wide = np.zeros(account_count, dtype=np.int64)

        # Results.
        self.level_codes = np.full(account_count, INCOMPLETE, dtype=np.int8)
        self.call_minor = np.zeros(account_count, dtype=np.int64)  # call in minor units
        self.equity = np.zeros(account_count, dtype=np.int64)  # at 10**-σ (floor)
        self.im = np.zeros(account_count, dtype=np.int64)
        self.mm = np.zeros(account_count, dtype=np.int64)
        self.fm = np.zeros(account_count, dtype=np.int64)
        self.by_reference = np.zeros(account_count, dtype=np.bool_)
        # True where equity/im/mm/fm above hold the account's figures (decided by the
        # columns, complete, totals within int64).
        self.in_columns = np.zeros(account_count, dtype=np.bool_)
        self._reference: dict[int, AccountMargin] = {}
        self._a_holds: Bools | None = None  # holds a position (built on first `display`)
        self._minor_places: dict[str, int] = {}
        self._exact_calls: dict[int, int] = {}  # minor units, accounts beyond int64

    # -- building ---------------------------------------------------------------------

    @classmethod
    def from_book(
        cls, book: Book, policies: CallPolicy | Mapping[Market, CallPolicy]
    ) -> ColumnarBook:
        """Columns of every account in `book`, every figure computed (`recompute_all`).

        `policies`: one call policy for all, or one per market (what
        `config.rule_for(market).policy` gives). The book stays the source of truth:
        the columns re-read quotes and fx from it, and the reference runs on it.
        """
        columns = cls(book, policies)
        columns.recompute_all()
        return columns

    def policy_for(self, market: Market) -> CallPolicy:
        if isinstance(self._policies, CallPolicy):
            return self._policies
        return self._policies[market]

    # -- reading the book -------------------------------------------------------------

    def _read_symbols(self, rows: I64) -> tuple[I64, I8, Bools, list[int]]:
        """Current price (0 unless usable), state, whether the quote differs from the
        last read (recording it), and the rows whose instrument record changed."""
        prices = np.zeros(len(rows), dtype=np.int64)
        states = np.zeros(len(rows), dtype=np.int8)
        requoted = np.zeros(len(rows), dtype=np.bool_)
        changed: list[int] = []
        places = self.scales.price
        instruments, quotes = self.book.instruments, self.book.quotes
        for k, row in enumerate(rows.tolist()):
            name = self.symbols[row]
            instrument = instruments.get(name)
            if instrument != self._instruments[row]:
                changed.append(row)
            quote = quotes.get(name)
            raw = None if quote is None else quote.price
            if not _same(raw, self._s_quote[row]):
                requoted[k] = True
                self._s_quote[row] = raw
            if instrument is None or quote is None:
                states[k] = _MISSING
                continue
            price = _scaled(quote.price, places)
            if price is None or price < 0 or self._s_ratio_off[row]:
                states[k] = _OFF
                continue
            prices[k] = price
        return prices, states, requoted, changed

    def _load_fx(self) -> I64:
        """Re-read every pair the groups use; the accounts whose conversion changed."""
        places = self.scales.fx
        local, base_places = self.scales.local, self.scales.base
        guard = base_places - local - places
        kinds = np.full(len(self._pairs), _NO_RATE, dtype=np.int8)
        mults = np.zeros(len(self._pairs), dtype=np.int64)
        divs = np.ones(len(self._pairs), dtype=np.int64)
        factors = np.zeros(len(self._pairs), dtype=np.float64)
        rates: list[Decimal | None] = []
        sources: list[tuple[int, Decimal | None]] = []
        for k, (frm, to) in enumerate(self._pairs):
            rate: Decimal | None = None
            direct = self.book.fx.get((frm, to))
            inverse = self.book.fx.get((to, frm))
            if frm == to:
                sources.append((0, None))
                kinds[k], mults[k] = _DIRECT, 10 ** (places + guard)
                rate = Decimal(1)
            elif direct is not None:
                sources.append((1, direct))
                rate = direct
                scaled = _scaled(direct, places)
                if scaled is None or scaled < 0 or scaled * 10**guard > _INT_LIMIT:
                    kinds[k] = _OFF_RATE
                else:
                    kinds[k], mults[k] = _DIRECT, scaled * 10**guard
            elif inverse is not None and inverse != 0:
                sources.append((2, inverse))
                with localcontext(context()):
                    rate = Decimal(1) / inverse
                scaled = _scaled(inverse, places)
                if scaled is None or scaled <= 0 or scaled * 10 >= 2**63:
                    kinds[k] = _OFF_RATE
                else:
                    kinds[k], divs[k] = _INVERSE, scaled
            else:
                sources.append((3, inverse))
            rates.append(rate)
            if kinds[k] == _DIRECT:
                factors[k] = float(mults[k])
            elif kinds[k] == _INVERSE:
                factors[k] = 10.0 ** (2 * places + guard) / float(divs[k])
        inverse_divs = divs[kinds == _INVERSE]
        chunk = 18
        if inverse_divs.size:
            largest = int(inverse_divs.max())
            chunk = 1
            while chunk < 18 and largest * 10 ** (chunk + 1) < 2**63:
                chunk += 1
        moved = np.array(
            [
                new[0] != old[0] or not _same(new[1], old[1])
                for new, old in zip(sources, self._pair_source, strict=True)
            ],
            dtype=np.bool_,
        )
        self._pair_source = sources
        self._pair_kind, self._pair_mult, self._pair_div = kinds, mults, divs
        self._pair_factor, self._pair_rate, self._div_chunk = factors, rates, chunk
        group_kind = kinds[self._g_pair]
        count = len(self.account_ids)
        self._a_grp_missing = np.bincount(
            self._g_acct, weights=group_kind == _NO_RATE, minlength=count
        ).astype(np.int64)
        self._a_grp_off = np.bincount(
            self._g_acct, weights=group_kind == _OFF_RATE, minlength=count
        ).astype(np.int64)
        self._a_inverse = np.bincount(
            self._g_acct, weights=group_kind == _INVERSE, minlength=count
        ).astype(np.int64)
        groups = np.flatnonzero(moved[self._g_pair])
        self._refresh_groups(groups)
        touched = np.zeros(count, dtype=np.bool_)
        touched[self._g_acct[groups]] = True
        return np.flatnonzero(touched)

    # -- sums -------------------------------------------------------------------------

    def _sum_positions(self) -> None:
        """Every group sum from scratch, at the prices in `_s_price`."""
        price = np.repeat(self._s_price, np.diff(self._s_pstart))  # each slot's symbol's
        notional = self._y_aq * price
        long_n = np.where(self._y_long, notional, 0)
        illiquid = np.repeat(self._s_illiquid, np.diff(self._s_pstart))
        parts: tuple[tuple[I64 | F64, I64 | F64], ...] = (
            (self._g_long, long_n),
            (self._g_short, notional - long_n),
            (self._g_im, notional * self._y_ratios[0]),
            (self._g_mm, notional * self._y_ratios[1]),
            (self._g_fm, notional * self._y_ratios[2]),
            (self._g_ill, long_n * illiquid),
            (self._g_gross_f, self._y_aq.astype(np.float64) * price),
        )
        for target, values in parts:
            target[:] = 0
            np.add.at(target, self._y_grp, values)

    def _slots_of(self, symbol_rows: I64) -> I64:
        """The symbol-ordered slots of these symbols' positions, symbol by symbol."""
        starts = self._s_pstart[symbol_rows]
        return _ranges(starts, self._s_pstart[symbol_rows + 1] - starts)

    def apply_prices(self, symbols: Iterable[str]) -> I64:
        """Re-read these symbols' quotes (and instruments) from the book; move the sums.

        Returns the rows of the accounts whose figures moved, to pass to `_decide` (or
        use `recompute`, which does both). Unknown symbols are ignored: no account in
        the columns holds them.
        """
        wanted = {self._symbol_rows[s] for s in symbols if s in self._symbol_rows}
        if not wanted:
            return np.zeros(0, dtype=np.int64)
        rows = np.fromiter(sorted(wanted), dtype=np.int64, count=len(wanted))
        prices, states, requoted, instrument_changed = self._read_symbols(rows)
        old_prices, old_states = self._s_price[rows], self._s_state[rows]
        moved = requoted | (prices != old_prices) | (states != old_states)
        touched = np.zeros(len(self.account_ids), dtype=np.bool_)
        if moved.any():
            moved_rows = rows[moved]
            delta = (prices - old_prices)[moved]
            counts = self._s_pstart[moved_rows + 1] - self._s_pstart[moved_rows]
            slots = self._slots_of(moved_rows)
            self._s_price[moved_rows] = prices[moved]
            grp = self._y_grp[slots]
            illiquid = np.repeat(self._s_illiquid[moved_rows], counts)
            self._add_deltas(slots, grp, np.repeat(delta, counts), illiquid)
            groups = np.zeros(len(self._g_acct), dtype=np.bool_)
            groups[grp] = True
            self._refresh_groups(np.flatnonzero(groups))
            accounts = self._g_acct[grp]
            touched[accounts] = True
            # Missing / off-scale counts follow the symbols' state changes.
            for column, state in ((self._a_pos_missing, _MISSING), (self._a_pos_off, _OFF)):
                step = (states[moved] == state).astype(np.int64) - (
                    old_states[moved] == state
                ).astype(np.int64)
                if step.any():
                    np.add.at(column, accounts, np.repeat(step, counts))
            self._s_state[moved_rows] = states[moved]
        if instrument_changed:
            slots = self._slots_of(np.array(instrument_changed, dtype=np.int64))
            accounts = self._g_acct[self._y_grp[slots]]
            self._a_forced[accounts] = True
            touched[accounts] = True
        return np.flatnonzero(touched)

    def _add_deltas(self, slots: I64, grp: I32, dprice: I64, illiquid: I64) -> None:
        """Move the group sums by these positions' value change at Δprice (exact int64)."""
        aq = self._y_aq[slots]
        dn = aq * dprice
        dl = np.where(self._y_long[slots], dn, 0)
        ratios = self._y_ratios[:, slots]
        np.add.at(self._g_long, grp, dl)
        np.add.at(self._g_short, grp, dn - dl)
        np.add.at(self._g_im, grp, dn * ratios[0])
        np.add.at(self._g_mm, grp, dn * ratios[1])
        np.add.at(self._g_fm, grp, dn * ratios[2])
        held = np.flatnonzero(illiquid & (dl != 0))
        if held.size:  # suspended and delisted holdings are few
            np.add.at(self._g_ill, grp[held], dl[held])
        # The float bound moves by float deltas: each adds a rounding of at most 2**-53
        # of the group's value, negligible against the factor of two LIMIT leaves.
        np.add.at(self._g_gross_f, grp, aq.astype(np.float64) * dprice.astype(np.float64))

    # -- deciding ---------------------------------------------------------------------

    def _convert(self, groups: I64) -> tuple[I64, F64, I64]:
        """These groups' base-currency figures (`SUMS` of them), their magnitude bound, and 1 where
        a local sum may not fit int64 (then the figures are meaningless)."""
        sc = self.scales
        long_n, short_n = self._g_long[groups], self._g_short[groups]
        up = 10**sc.ratio
        values = np.empty((SUMS, len(groups)), dtype=np.int64)
        values[0] = self._g_cash[groups] * 10 ** (sc.local - sc.cash) + (long_n - short_n) * up
        values[1] = self._g_im[groups]
        values[2] = self._g_mm[groups]
        values[3] = self._g_fm[groups]
        values[4] = self._a_beta[self._g_acct[groups]] * (long_n + short_n)
        values[5] = long_n * up
        values[6] = short_n * up
        values[7] = self._g_ill[groups] * up
        # |equity| + |IM or MM or FM| + |buffer| ≤ local_mag: every figure and every
        # difference the decision takes is bounded by it (times the conversion factor).
        local_mag = np.abs(self._g_cash[groups].astype(np.float64)) * 10.0 ** (
            sc.local - sc.cash
        ) + np.maximum(self._g_gross_f[groups], 0.0) * float(up) * (
            1.0 + self._ratio_max + self._beta_max
        )
        pair = self._g_pair[groups]
        converted = values * self._pair_mult[pair]  # direct pairs (0 for the others)
        inverse = np.flatnonzero(self._pair_kind[pair] == _INVERSE)
        if inverse.size:
            converted[:, inverse] = self._inverse(values[:, inverse], self._pair_div[pair][inverse])
        magnitude = local_mag * self._pair_factor[pair] + 1.0
        return converted, magnitude, (local_mag >= LIMIT).astype(np.int64)

    def _refresh_groups(self, groups: I64) -> None:
        """Re-convert these groups (sorted, unique) and move their accounts' totals."""
        if groups.size == 0:
            return
        converted, magnitude, wide = self._convert(groups)
        accounts = self._g_acct[groups]
        for k in range(SUMS):
            np.add.at(self._a_sum[k], accounts, converted[k] - self._g_conv[k, groups])
        np.add.at(self._a_mag, accounts, magnitude - self._g_mag[groups])
        np.add.at(self._a_wide, accounts, wide - self._g_wide[groups])
        self._g_conv[:, groups] = converted
        self._g_mag[groups] = magnitude
        self._g_wide[groups] = wide

    def _refresh_all(self) -> None:
        groups = np.arange(len(self._g_acct), dtype=np.int64)
        self._g_conv, self._g_mag, self._g_wide = self._convert(groups)
        starts = self._a_gstart[:-1]  # every account has at least its base group
        self._a_sum = np.add.reduceat(self._g_conv, starts, axis=1)
        self._a_mag = np.add.reduceat(self._g_mag, starts)
        self._a_wide = np.add.reduceat(self._g_wide, starts)

    def _decide(self, rows: I64) -> None:
        """Risk level, call amount and figures of these account rows (sorted, unique)."""
        if rows.size == 0:
            return
        totals = self._a_sum[:, rows]
        width = 2 * self._a_inverse[rows]
        formula_im, unit = self._a_formula_im[rows], self._a_unit[rows]
        level, amount, ambiguous = _classify(totals, formula_im, width, unit)

        # Totals beyond int64 (the local sums still fit): the same decision on the same
        # figures added up as Python ints. Beyond what the reference itself computes
        # exactly, or a local sum that may not fit: the reference.
        missing = (self._a_pos_missing[rows] + self._a_grp_missing[rows]) > 0
        off = (self._a_pos_off[rows] + self._a_grp_off[rows] + self._a_static_off[rows]) > 0
        wide = self._a_wide[rows] > 0
        large = ~wide & (self._a_mag[rows] >= LIMIT)
        huge = self._a_mag[rows] * (self._a_terms[rows] + 10) >= REFERENCE_DIGITS_BOUND
        by_ints = large & ~huge & ~missing & ~off & ~self._a_forced[rows]
        exact_rows = rows[by_ints]
        if self._exact_calls:
            for row in rows.tolist():
                self._exact_calls.pop(row, None)
        if exact_rows.size:
            where = np.flatnonzero(by_ints)
            big_level, big_amount, big_ambiguous = _classify(
                self._exact_totals(exact_rows),
                formula_im[where],
                width[where].astype(object),
                unit[where].astype(object),
            )
            level[where] = big_level
            ambiguous[where] = big_ambiguous
            for k, row in enumerate(exact_rows.tolist()):
                self._exact_calls[row] = int(big_amount[k])
            amount[where] = np.minimum(big_amount, _INT64_MAX).astype(np.int64)

        reference = ~missing & (off | self._a_forced[rows] | wide | huge | ambiguous)
        level[missing] = INCOMPLETE
        amount[missing] = 0
        listed = ~(missing | reference | large)
        for k, column in enumerate((self.equity, self.im, self.mm, self.fm)):
            column[rows] = np.where(listed, totals[k], 0)
        self.in_columns[rows] = listed
        self.level_codes[rows] = level
        self.call_minor[rows] = amount
        self.by_reference[rows] = reference
        if self._reference:
            for row in rows[~reference].tolist():
                self._reference.pop(row, None)
        for row in rows[reference].tolist():
            result = self._compute(row)
            self._reference[row] = result
            self._exact_calls.pop(row, None)  # near a boundary: the reference decides
            self.level_codes[row] = _LEVEL_CODE[result.risk_level]
            minor = int(result.call_amount.scaleb(minor_units(result.currency), _EXACT))
            self.call_minor[row] = min(minor, _INT64_MAX)

    def _exact_totals(self, rows: I64) -> npt.NDArray[np.object_]:
        """The five base-currency totals of these accounts as Python ints: the same
        figures as the int64 columns (floors for inverse pairs), without their bound."""
        sc = self.scales
        cash_up, ratio_up = 10 ** (sc.local - sc.cash), 10**sc.ratio
        shift = 10 ** (sc.base - sc.local + sc.fx)
        totals = np.zeros((5, len(rows)), dtype=object)
        for k, row in enumerate(rows.tolist()):
            beta = int(self._a_beta[row])
            sums = [0, 0, 0, 0, 0]
            for g in range(int(self._a_gstart[row]), int(self._a_gstart[row + 1])):
                long_n, short_n = int(self._g_long[g]), int(self._g_short[g])
                values = (
                    int(self._g_cash[g]) * cash_up + (long_n - short_n) * ratio_up,
                    int(self._g_im[g]),
                    int(self._g_mm[g]),
                    int(self._g_fm[g]),
                    beta * (long_n + short_n),
                )
                pair = int(self._g_pair[g])
                if self._pair_kind[pair] == _DIRECT:
                    mult = int(self._pair_mult[pair])
                    sums = [t + v * mult for t, v in zip(sums, values, strict=True)]
                elif self._pair_kind[pair] == _INVERSE:
                    div = int(self._pair_div[pair])
                    sums = [t + v * shift // div for t, v in zip(sums, values, strict=True)]
            totals[:, k] = sums
        return totals

    def _inverse(self, values: I64, divisor: I64) -> I64:
        """⌊values × 10**e / divisor⌋ exactly, e = σ − s + fx places, by long division."""
        sc = self.scales
        left = sc.base - sc.local + sc.fx
        quotient = values // divisor
        remainder = values - quotient * divisor
        while left > 0:
            step = min(self._div_chunk, left)
            shifted = remainder * 10**step
            digits = shifted // divisor
            quotient = quotient * 10**step + digits
            remainder = shifted - digits * divisor
            left -= step
        return quotient

    def _compute(self, row: int) -> AccountMargin:
        account = self.book.accounts[self.account_ids[row]]
        return compute_account(self.book, account.account_id, self.policy_for(account.market))

    # -- the public surface -----------------------------------------------------------

    def recompute_all(self) -> Recomputed:
        """Re-read every quote and fx rate from the book, every sum from scratch, and
        decide every account."""
        rows = np.arange(len(self.symbols), dtype=np.int64)
        prices, states, _, changed = self._read_symbols(rows)
        self._s_price[:] = prices
        self._s_state[:] = states
        if changed:
            slots = self._slots_of(np.array(changed, dtype=np.int64))
            self._a_forced[self._g_acct[self._y_grp[slots]]] = True
        count = len(self.account_ids)
        holder = self._g_acct[self._y_grp]
        pos_state = np.repeat(states, np.diff(self._s_pstart))
        self._a_pos_missing = np.bincount(
            holder, weights=pos_state == _MISSING, minlength=count
        ).astype(np.int64)
        self._a_pos_off = np.bincount(holder, weights=pos_state == _OFF, minlength=count).astype(
            np.int64
        )
        self._load_fx()
        self._sum_positions()
        self._refresh_all()
        every = np.arange(count, dtype=np.int64)
        self._decide(every)
        return Recomputed(self, every, ())

    def recompute(
        self, symbols: Iterable[str] = (), *, fx: bool = False, accounts: Iterable[str] = ()
    ) -> Recomputed:
        """One poll: the quotes of `symbols` changed in the book, and/or its fx rates
        (`fx=True`), and/or these accounts' own records (cash, positions, the account):
        recompute exactly the accounts that can have moved.

        Accounts named in `accounts` are decided by the reference from now on (their
        records are not re-read into the columns; `from_book` again brings them back).
        Ids the columns do not hold (new accounts) come back in `outside`.
        """
        touched = np.zeros(len(self.account_ids), dtype=np.bool_)
        outside: list[str] = []
        for account_id in accounts:
            row = self._rows.get(account_id)
            if row is None:
                if account_id in self.book.accounts:
                    outside.append(account_id)
                continue
            self._a_forced[row] = True
            touched[row] = True
        if fx:
            touched[self._load_fx()] = True
        touched[self.apply_prices(symbols)] = True
        rows = np.flatnonzero(touched)
        self._decide(rows)
        return Recomputed(self, rows, tuple(outside))

    def row_of(self, account_id: str) -> int | None:
        return self._rows.get(account_id)

    def risk_level(self, account_id: str) -> RiskLevel:
        return LEVELS[int(self.level_codes[self._rows[account_id]])]

    def call_amount(self, account_id: str) -> Decimal:
        return self.call_amounts(np.array([self._rows[account_id]], dtype=np.int64))[0]

    def call_amounts(self, rows: I64) -> list[Decimal]:
        """`call_amount` of each of these rows, vectorised where it is an int64 column."""
        places = self._minor_places
        currencies = self._currency_of
        amounts = []
        for row, minor in zip(rows.tolist(), self.call_minor[rows].tolist(), strict=True):
            if row in self._reference:
                amounts.append(self._reference[row].call_amount)
                continue
            minor = self._exact_calls.get(row, minor)
            currency = currencies[row]
            place = places.get(currency)
            if place is None:
                place = places[currency] = minor_units(currency)
            amounts.append(Decimal(minor).scaleb(-place))
        return amounts

    def rows_in_call(self) -> I64:
        codes = self.level_codes
        return np.flatnonzero((codes == MARGIN_CALL) | (codes == FORCE_CALL))

    def materialize(self, account_id: str) -> AccountMargin:
        """The reference's full result (positions, cure inputs, reason when incomplete)."""
        row = self._rows.get(account_id)
        if row is not None and row in self._reference:
            return self._reference[row]
        account = self.book.accounts[account_id]
        return compute_account(self.book, account_id, self.policy_for(account.market))

    def figures(self, account_id: str) -> AccountFigures:
        """The account's figures from the exact group sums (see the module doc)."""
        row = self._rows[account_id]
        level = LEVELS[int(self.level_codes[row])]
        if self.by_reference[row] or level is RiskLevel.INCOMPLETE:
            # Incomplete: decided here, and the reference has the reason (and zeros).
            reference = self.materialize(account_id)
            return _from_reference(reference, by_reference=bool(self.by_reference[row]))
        sc = self.scales
        totals = dict.fromkeys(("cash", "long", "short", "im", "mm", "fm", "ill"), ZERO)
        with localcontext(context()):
            for group in range(int(self._a_gstart[row]), int(self._a_gstart[row + 1])):
                rate = self._pair_rate[int(self._g_pair[group])]
                assert rate is not None  # complete accounts have every rate
                parts = (
                    ("cash", self._g_cash, sc.cash),
                    ("long", self._g_long, sc.notional),
                    ("short", self._g_short, sc.notional),
                    ("im", self._g_im, sc.local),
                    ("mm", self._g_mm, sc.local),
                    ("fm", self._g_fm, sc.local),
                    ("ill", self._g_ill, sc.notional),
                )
                for name, column, places in parts:
                    local = Decimal(int(column[group])).scaleb(-places)
                    totals[name] += local * rate
            gross = totals["long"] + totals["short"]
            equity = totals["cash"] + totals["long"] - totals["short"]
            liquid = equity - totals["ill"]
            denominator = max(liquid, totals["long"] - totals["ill"] + totals["short"])
            ratio = liquid / denominator if denominator > 0 else None
        return AccountFigures(
            account_id=account_id,
            currency=self._currency_of[row],
            cash_base=totals["cash"],
            long_mv=totals["long"],
            short_mv=totals["short"],
            gross_mv=gross,
            equity=equity,
            im=totals["im"],
            mm=totals["mm"],
            fm=totals["fm"],
            illiquid_mv=totals["ill"],
            liquid_net_assets=liquid,
            net_asset_ratio=ratio,
            risk_level=level,
            call_amount=self.call_amount(account_id),
            exact=bool(self._a_inverse[row] == 0),
            by_reference=False,
        )

    def display(self, rows: I64) -> list[MarginFigures]:
        """What warning rows show of these accounts, vectorised from the columns.

        Without inverse fx these are the reference's figures digit for digit. Through
        an inverse rate they are the columns' floors at 10**-σ, within n units of
        10**-σ (n ≤ the account's inverse-rate currencies) below the true figures and
        the reference's 40-digit ones: shown to the minor unit, they differ from the
        reference's only when a figure lies within n × 10**-σ of a rounding boundary
        (a cent's half: one in 10**7 at σ = 9). Risk level and call amount are always
        the reference's. Accounts the columns do not hold show the reference's own
        result; incomplete accounts their level and no figures."""
        if self._a_holds is None:
            holder = self._g_acct[self._y_grp]
            held = np.bincount(holder, weights=self._y_aq > 0, minlength=len(self.account_ids))
            self._a_holds = held > 0
        rows = np.asarray(rows, dtype=np.int64)
        listed = self.in_columns[rows]
        sums = self._a_sum[np.ix_(_SHOWN_SUMS, rows[listed])].tolist()
        listed_at = np.flatnonzero(listed).tolist()
        shown: list[MarginFigures | None] = [None] * len(rows)
        places = self.scales.base
        codes = self.level_codes[rows].tolist()
        holds = self._a_holds[rows].tolist()
        amounts = self.call_amounts(rows[listed])
        scaled = MarginFigures.scaled
        for k, (at, raw) in enumerate(zip(listed_at, zip(*sums, strict=True), strict=True)):
            shown[at] = scaled(LEVELS[codes[at]], amounts[k], raw, places, bool(holds[at]))
        for at in np.flatnonzero(~listed).tolist():
            row = int(rows[at])
            if row in self._reference:
                shown[at] = MarginFigures.of(self._reference[row])
            elif codes[at] == INCOMPLETE:
                shown[at] = MarginFigures.of(self.materialize(self.account_ids[row]))
            else:
                figures = self.figures(self.account_ids[row])
                shown[at] = MarginFigures.copied(figures, bool(holds[at]))
        complete = [figures for figures in shown if figures is not None]
        assert len(complete) == len(shown)  # every branch above sets its row
        return complete

    def stats(self) -> Stats:
        arrays = [v for v in vars(self).values() if isinstance(v, np.ndarray)]
        return Stats(
            accounts=len(self.account_ids),
            groups=len(self._g_acct),
            positions=len(self._y_grp),
            symbols=len(self.symbols),
            by_reference=int(self.by_reference.sum()),
            incomplete=int((self.level_codes == INCOMPLETE).sum()),
            inverse_fx_accounts=int((self._a_inverse > 0).sum()),
            array_bytes=sum(a.nbytes for a in arrays),
        )


def _from_reference(result: AccountMargin, *, by_reference: bool) -> AccountFigures:
    return AccountFigures(
        account_id=result.account_id,
        currency=result.currency,
        cash_base=result.cash_base,
        long_mv=result.long_mv,
        short_mv=result.short_mv,
        gross_mv=result.gross_mv,
        equity=result.equity,
        im=result.im,
        mm=result.mm,
        fm=result.fm,
        illiquid_mv=result.illiquid_mv,
        liquid_net_assets=result.liquid_net_assets,
        net_asset_ratio=result.net_asset_ratio,
        risk_level=result.risk_level,
        call_amount=result.call_amount,
        exact=True,
        by_reference=by_reference,
    )


@dataclass(frozen=True, slots=True)
class Recomputed:
    """The accounts one recompute decided (rows into `columns`, ascending)."""

    columns: ColumnarBook
    rows: I64
    outside: tuple[str, ...]  # in the book, not in the columns: use the reference

    @property
    def account_ids(self) -> list[str]:
        ids = self.columns.account_ids
        return [ids[row] for row in self.rows.tolist()]

    def levels(self) -> dict[str, RiskLevel]:
        ids, codes = self.columns.account_ids, self.columns.level_codes
        return {ids[row]: LEVELS[int(codes[row])] for row in self.rows.tolist()}
