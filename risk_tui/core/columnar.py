"""The whole book's margin in columns: crash-day scale, and exactly the reference's answers.

`margin.compute_account` (Decimal, one account at a time) is the reference. This module
holds the same book as NumPy columns and decides every account's risk level and call
amount with integer arithmetic, vectorised, giving the reference's answer for every
account: the columns decide what they can prove and hand the few accounts they cannot
to the reference itself.

Four modules, each importing only those before it:
- `columnar_scales`: the exactness scheme: integer scales and their bounds, level
  codes, and the decision (level, call amount, near-tie) from integer totals;
- `columnar_build.BookColumns`: the arrays, built once from a `Book` (the layout);
- `columnar_poll.PolledColumns(BookColumns)`: how a poll re-reads the book, moves the
  arrays and decides the accounts that moved (`recompute`, `recompute_all`);
- this module, `ColumnarBook(PolledColumns)`: `from_book`, and what the columns
  answer (level, call amount, figures, warning rows, stats). Other modules import
  the columns' names from here.
One class split by subclassing, each layer adding methods over the arrays the one
below declared: every method stays as it was, on `self`, and the arrays are declared
once, in `BookColumns.__init__`, where mypy and a reader find them. A builder function
and a holder class would put `columns.` before some 280 attribute reads and make no
layer shorter.

What follows from the exactness scheme (`columnar_scales`):
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
(`columnar_scales`), an instrument record changed since the build, and accounts named in
`recompute(accounts=…)`: cash, position and account records are not re-read into the
columns (`from_book` again brings those accounts back to the fast path). The reference
reads the Book, which stays the source of truth: the columns re-read quotes and fx from
it.

Incomplete accounts (an instrument, a quote or an fx rate missing) are decided by the
columns from per-account counts; `materialize` gives the reference's reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np

from risk_tui.core.columnar_poll import PolledColumns, Recomputed
from risk_tui.core.columnar_scales import (
    FORCE_CALL,
    I64,
    INCOMPLETE,
    LEVELS,
    MARGIN_CALL,
    SAFE,
    WATCH,
    Scales,
)
from risk_tui.core.margin import (
    AccountMargin,
    CallPolicy,
    MarginFigures,
    RiskLevel,
    compute_account,
)
from risk_tui.core.model import Book, Market
from risk_tui.core.money import ZERO, context, minor_units

__all__ = [
    "FORCE_CALL",
    "INCOMPLETE",
    "LEVELS",
    "MARGIN_CALL",
    "SAFE",
    "WATCH",
    "AccountFigures",
    "ColumnarBook",
    "Recomputed",
    "Scales",
    "Stats",
]

# Rows of the sums (`SUMS`, `columnar_build`) a warning row shows.
_SHOWN_SUMS = np.array(
    [0, 1, 2, 3, 5, 6, 7], dtype=np.int64
)  # what `MarginFigures.scaled` reads, in its order


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


class ColumnarBook(PolledColumns):
    """The book in columns: build with `from_book`; see the module doc."""

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
