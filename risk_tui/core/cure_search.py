"""The least-cost choice of whole lots that covers a need: branch and bound, or greedy.

Pure integer arithmetic, so that every comparison is exact. Item i offers up to
`count` lots, each costing `cost` and bringing `gain`; the search chooses lots
`0 ≤ k_i ≤ count_i` with `Σ gain_i·k_i ≥ need` and the least `Σ cost_i·k_i`
(`core.cure` states a cure this way: cost is a lot's market value, gain how much
selling it lowers the call amount).

- **Exact**: depth-first branch and bound over the items, most gain per cost first,
  each item's lots from the most useful down. A branch is cut when the linear
  relaxation of what is left (whole items by gain per cost, then a fraction) — rounded
  up to the costs' common divisor — cannot beat the best choice found. Fewer lots of an
  item only raise that bound (the items after it gain less per cost), so the first cut
  ends the item's loop. A budget of steps keeps a pathological account (many holdings with
  the same ratios and lot values that never add up exactly) from stalling the desk:
  past it the best choice found is returned, not proven least.
- **Greedy**: whole lots by gain per cost without overshooting, topped up by the
  cheapest single item, then improved locally (drop lots no longer needed; swap one
  lot of an item for the fewest lots of another when that costs less) until nothing
  improves. Also the exact search's first incumbent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import gcd

# Steps (lots tried) of the exact search before it settles for the best found: about a
# quarter of a second of Python.
STEP_LIMIT = 250_000
IMPROVE_ROUNDS = 200  # local-improvement rounds of the greedy fill


@dataclass(frozen=True, slots=True)
class LotItem:
    """One holding as the search sees it: lots available, a lot's cost and its gain."""

    cost: int  # > 0
    gain: int  # > 0
    count: int  # > 0


@dataclass(frozen=True, slots=True)
class Choice:
    """Lots per item (in the order given), what they cost and gain, and what is known."""

    lots: tuple[int, ...]
    cost: int
    gain: int
    feasible: bool  # the gain reaches the need (else: every lot, and still short)
    proven: bool  # the least cost, proven by a complete search


class _OutOfSteps(Exception):
    pass


def least_cost(
    items: Sequence[LotItem],
    need: int,
    *,
    exact: bool,
    tolerance: int = 0,
    step_limit: int = STEP_LIMIT,
) -> Choice:
    """The least-cost lots covering `need`: exact (branch and bound) or greedy.

    Exact means no choice costs less by more than `tolerance` (0: none costs less).
    When even every lot falls short, every lot is chosen (`feasible` False).
    """
    count = len(items)
    if need <= 0:
        return Choice((0,) * count, 0, 0, feasible=True, proven=True)
    everything = tuple(item.count for item in items)
    if _gain(items, everything) < need:
        return _choice(items, everything, need, proven=True)
    order = sorted(
        range(count), key=lambda i: (-Fraction(items[i].gain, items[i].cost), -items[i].cost)
    )
    ranked = [items[i] for i in order]
    lots = _greedy(ranked, need)
    proven = False
    if exact:
        search = _Search(ranked, need, lots, tolerance, step_limit)
        proven = search.run()
        lots = search.best
    chosen = [0] * count
    for rank, index in enumerate(order):
        chosen[index] = lots[rank]
    return _choice(items, tuple(chosen), need, proven=proven)


def _gain(items: Sequence[LotItem], lots: Sequence[int]) -> int:
    return sum(item.gain * k for item, k in zip(items, lots, strict=True))


def _cost(items: Sequence[LotItem], lots: Sequence[int]) -> int:
    return sum(item.cost * k for item, k in zip(items, lots, strict=True))


def _choice(items: Sequence[LotItem], lots: tuple[int, ...], need: int, *, proven: bool) -> Choice:
    gain = _gain(items, lots)
    return Choice(lots, _cost(items, lots), gain, feasible=gain >= need, proven=proven)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --- greedy -------------------------------------------------------------------------------


def _greedy(ranked: Sequence[LotItem], need: int) -> list[int]:
    """Two greedy fills (no overshoot then the cheapest top-up; or overshoot at the first
    item that can finish), each improved locally; the cheaper. `ranked`: most gain per
    cost first; the need is known to be reachable."""
    under = [0] * len(ranked)
    rest = need
    for t, item in enumerate(ranked):
        take = min(item.count, rest // item.gain)
        under[t] = take
        rest -= take * item.gain
    if rest > 0:
        # Every item not taken whole left less than one of its lots to cover: one item
        # with lots to spare can always finish.
        top_ups = [
            (extra * item.cost, t, extra)
            for t, item in enumerate(ranked)
            if (extra := _ceil_div(rest, item.gain)) <= item.count - under[t]
        ]
        _, t, extra = min(top_ups)
        under[t] += extra
    over = [0] * len(ranked)
    rest = need
    for t, item in enumerate(ranked):
        if rest <= 0:
            break
        take = min(item.count, _ceil_div(rest, item.gain))
        over[t] = take
        rest -= take * item.gain
    candidates = (_improve(ranked, need, under), _improve(ranked, need, over))
    return min(candidates, key=lambda lots: _cost(ranked, lots))


def _improve(items: Sequence[LotItem], need: int, lots: list[int]) -> list[int]:
    """Drop lots no longer needed, and swap one lot for cheaper lots of another item,
    until neither lowers the cost (or the rounds run out)."""
    lots = list(lots)
    by_cost = sorted(range(len(items)), key=lambda t: -items[t].cost)
    for _ in range(IMPROVE_ROUNDS):
        surplus = _gain(items, lots) - need
        for t in by_cost:  # the dearest lots first: each one dropped saves the most
            drop = min(lots[t], surplus // items[t].gain)
            if drop:
                lots[t] -= drop
                surplus -= drop * items[t].gain
        best: tuple[int, int, int, int] | None = None  # (saving < 0, out, in, lots in)
        for a, out in enumerate(items):
            if not lots[a]:
                continue
            deficit = out.gain - surplus  # > 0: the drops above took what they could
            for b, into in enumerate(items):
                if b == a or lots[b] >= into.count:
                    continue
                extra = _ceil_div(deficit, into.gain)
                delta = extra * into.cost - out.cost
                if (
                    extra <= into.count - lots[b]
                    and delta < 0
                    and (best is None or delta < best[0])
                ):
                    best = (delta, a, b, extra)
        if best is None:
            break
        _, a, b, extra = best
        lots[a] -= 1
        lots[b] += extra
    return lots


# --- branch and bound ---------------------------------------------------------------------


class _Search:
    """Depth-first branch and bound over `ranked` (most gain per cost first)."""

    def __init__(
        self,
        ranked: Sequence[LotItem],
        need: int,
        incumbent: list[int],
        tolerance: int,
        step_limit: int,
    ) -> None:
        self.items = ranked
        self.need = need
        self.tolerance = tolerance
        self.step_limit = step_limit
        self.steps = 0
        self.best = list(incumbent)
        self.best_cost = _cost(ranked, incumbent)
        self.lots = [0] * len(ranked)
        # Prefix sums of whole items' gains and costs (the relaxation), and the greatest
        # common divisor of the costs from each item on (what is left costs a multiple).
        self.gains = [0]
        self.costs = [0]
        for item in ranked:
            self.gains.append(self.gains[-1] + item.gain * item.count)
            self.costs.append(self.costs[-1] + item.cost * item.count)
        self.divisor = [0] * (len(ranked) + 1)
        for t in range(len(ranked) - 1, -1, -1):
            self.divisor[t] = gcd(self.divisor[t + 1], ranked[t].cost)

    def run(self) -> bool:
        """Search; whether it completed (the best found is then the least)."""
        try:
            self._visit(0, self.need, 0)
        except _OutOfSteps:
            return False
        return True

    def _relaxed(self, first: int, need: int) -> tuple[int, int, LotItem]:
        """The relaxation of covering `need` with items from `first` on: the cost of the
        whole items taken, what is left to cover, and the item covering it in part."""
        gains = self.gains
        end = bisect_left(gains, gains[first] + need, lo=first + 1)
        critical = end - 1  # items first … critical-1 whole; `critical` in part
        whole_cost = self.costs[critical] - self.costs[first]
        left = need - (gains[critical] - gains[first])
        return whole_cost, left, self.items[critical]

    def _visit(self, index: int, need: int, spent: int) -> None:
        item = self.items[index]
        after = index + 1
        last = after == len(self.items)
        most = min(item.count, _ceil_div(need, item.gain))
        for k in range(most, -1, -1):
            self.steps += 1
            if self.steps > self.step_limit:
                raise _OutOfSteps
            rest = need - k * item.gain
            cost = spent + k * item.cost
            if rest <= 0:
                if cost < self.best_cost:
                    self.lots[index] = k
                    self.best = list(self.lots)
                    self.best_cost = cost
                continue
            if last or self.gains[-1] - self.gains[after] < rest:
                break  # fewer lots here leave even more for items that cannot cover it
            # What the rest must cost less than, to beat the best by more than the tolerance.
            room = self.best_cost - self.tolerance - cost
            whole, left, part = self._relaxed(after, rest)
            if (whole - room) * part.gain + left * part.cost >= 0:
                break  # the relaxation reaches the best already; fewer lots only raise it
            bound = whole + _ceil_div(left * part.cost, part.gain)
            divisor = self.divisor[after]
            if _ceil_div(bound, divisor) * divisor >= room:
                continue
            self.lots[index] = k
            self._visit(after, rest, cost)
        self.lots[index] = 0


__all__ = ["STEP_LIMIT", "Choice", "LotItem", "least_cost"]
