"""The columnar book's exactness scheme: integer scales, their bounds, deciding from them.

`columnar_build` reads every value at these scales, `columnar_poll` converts and decides
by this scheme, and `columnar` states what follows from it for the figures it gives.

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
to the reference), so risk level (`margin.classify`) and call amount (rounded up to the
minor unit) are equal by construction.

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
"""

from __future__ import annotations

import decimal
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from risk_tui.core.margin import RiskLevel

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# Level codes, ordered as `margin.classify` orders them; index into LEVELS.
SAFE, WATCH, MARGIN_CALL, FORCE_CALL, INCOMPLETE = 0, 1, 2, 3, 4
LEVELS: tuple[RiskLevel, ...] = (
    RiskLevel.SAFE,
    RiskLevel.WATCH,
    RiskLevel.MARGIN_CALL,
    RiskLevel.FORCE_CALL,
    RiskLevel.INCOMPLETE,
)
LEVEL_CODE = {level: code for code, level in enumerate(LEVELS)}

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
INT_LIMIT = 2**62

# Scaling is exact or it fails: no rounding ever happens silently.
EXACT = decimal.Context(
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
        normal = value.normalize(EXACT).as_tuple().exponent
    except decimal.DecimalException:
        return 1_000
    assert isinstance(normal, int)
    return max(0, -normal)


def choose_places(values: Iterable[Decimal], bounds: tuple[int, int]) -> int:
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


def scaled_int(value: Decimal, places: int) -> int | None:
    """value × 10**places as an int when that is exact and |result| ≤ 2**62, else None."""
    try:
        shifted = value.scaleb(places, EXACT)
        whole = int(shifted)
    except (decimal.DecimalException, ValueError, OverflowError):
        return None
    if whole != shifted or abs(whole) > INT_LIMIT:
        return None
    return whole


def _places_of(denominator: int) -> int:
    """Decimal places of n / denominator, a reduced fraction of a finite Decimal (its
    denominator is 2**a × 5**b: a, b places)."""
    twos = (denominator & -denominator).bit_length() - 1
    rest, fives = denominator >> twos, 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    return max(twos, fives)


def exact_many(values: list[Decimal], bounds: tuple[int, int]) -> tuple[int, list[int | None]]:
    """The places for these values (as `choose_places`) and each one × 10**places as an int,
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
    return places, [v if v is None or -INT_LIMIT <= v <= INT_LIMIT else None for v in scaled]


def _bulk(needed: dict[int, int], count: int, bounds: tuple[int, int]) -> int:
    """Fewest places, within bounds, leaving at most count // OUTLIERS values needing more."""
    floor, cap = bounds
    allowed = count // OUTLIERS
    for places in range(floor, cap + 1):
        if sum(n for p, n in needed.items() if p > places) <= allowed:
            return places
    return cap


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


def classify_totals(
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
