"""Prices in thousandths on the exchanges' tick grids (HKEX, SGX, US), one or an array at a time."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MARKETS = ("HK", "SG", "US")

# HKEX's spread table and SGX's tick sizes, in thousandths (every tick is a multiple of
# 0.001): prices move in ticks the way real quotes do, and the desk sees 3-decimal
# prices for penny stocks.
HK_TICKS = (
    (250, 1),
    (500, 5),
    (10_000, 10),
    (20_000, 20),
    (100_000, 50),
    (200_000, 100),
    (500_000, 200),
    (1_000_000, 500),
    (2_000_000, 1000),
    (5_000_000, 2000),
)
SG_TICKS = ((200, 1), (1000, 5))
US_TICKS = ((1000, 1),)


def tick_milli(market: str, price_milli: float) -> int:
    """The price step at this price, in thousandths."""
    table, above = {"HK": (HK_TICKS, 5000), "SG": (SG_TICKS, 10), "US": (US_TICKS, 10)}[market]
    for ceiling, step in table:
        if price_milli < ceiling:
            return step
    return above


def round_to_tick(market: str, price: float) -> int:
    """A price in thousandths, on the market's tick grid, never below one tick."""
    milli = price * 1000.0
    step = tick_milli(market, milli)
    return max(step, round(milli / step) * step)


def milli_text(milli: int) -> str:
    """Thousandths as a decimal string: 19500 → "19.50", 123 → "0.123", -5 → "-0.005"."""
    sign = "-" if milli < 0 else ""
    whole, fraction = divmod(abs(milli), 1000)
    if fraction % 10 == 0:
        return f"{sign}{whole}.{fraction // 10:02d}"
    return f"{sign}{whole}.{fraction:03d}"


def ticks_milli(market: IntArray, price_milli: FloatArray) -> IntArray:
    """`tick_milli` over arrays."""
    steps = np.empty(len(market), dtype=np.int64)
    for index, name in enumerate(MARKETS):
        table, above = {"HK": (HK_TICKS, 5000), "SG": (SG_TICKS, 10), "US": (US_TICKS, 10)}[name]
        ceilings = np.array([c for c, _ in table], dtype=np.float64)
        values = np.array([s for _, s in table] + [above], dtype=np.int64)
        mask = market == index
        steps[mask] = values[np.searchsorted(ceilings, price_milli[mask], side="right")]
    return steps


def round_to_ticks(market: IntArray, price: FloatArray) -> IntArray:
    """`round_to_tick` over arrays."""
    milli = price * 1000.0
    step = ticks_milli(market, milli)
    rounded: IntArray = np.maximum(step, np.rint(milli / step).astype(np.int64) * step)
    return rounded
