"""How a poll moves the columnar book: re-read quotes and fx, move the sums, decide who moved.

A poll moves the group sums by Σ |q|·Δp·(ratio) over the positions of the symbols that
moved, re-converts only the groups that moved and moves the accounts' totals by the
differences (integer `add.at`: exact), then decides only the accounts holding them.

Each group is converted into its account's base currency and each account decided as
the exactness scheme of `columnar_scales` says; what it cannot decide goes to the
reference, `compute_account`, which reads the Book.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np
import numpy.typing as npt

from risk_tui.core.columnar_build import (
    DIRECT,
    INVERSE,
    MISSING,
    NO_RATE,
    OFF,
    OFF_RATE,
    SUMS,
    BookColumns,
)
from risk_tui.core.columnar_scales import (
    EXACT,
    F64,
    I8,
    I32,
    I64,
    INCOMPLETE,
    INT_LIMIT,
    LEVEL_CODE,
    LEVELS,
    LIMIT,
    REFERENCE_DIGITS_BOUND,
    Bools,
    classify_totals,
    scaled_int,
)
from risk_tui.core.margin import AccountMargin, RiskLevel, compute_account
from risk_tui.core.money import context, minor_units

_INT64_MAX = 2**63 - 1


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


class PolledColumns(BookColumns):
    """`BookColumns` that re-read quotes and fx from the book and decide what moved."""

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
                states[k] = MISSING
                continue
            price = scaled_int(quote.price, places)
            if price is None or price < 0 or self._s_ratio_off[row]:
                states[k] = OFF
                continue
            prices[k] = price
        return prices, states, requoted, changed

    def _load_fx(self) -> I64:
        """Re-read every pair the groups use; the accounts whose conversion changed."""
        places = self.scales.fx
        local, base_places = self.scales.local, self.scales.base
        guard = base_places - local - places
        kinds = np.full(len(self._pairs), NO_RATE, dtype=np.int8)
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
                kinds[k], mults[k] = DIRECT, 10 ** (places + guard)
                rate = Decimal(1)
            elif direct is not None:
                sources.append((1, direct))
                rate = direct
                scaled = scaled_int(direct, places)
                if scaled is None or scaled < 0 or scaled * 10**guard > INT_LIMIT:
                    kinds[k] = OFF_RATE
                else:
                    kinds[k], mults[k] = DIRECT, scaled * 10**guard
            elif inverse is not None and inverse != 0:
                sources.append((2, inverse))
                with localcontext(context()):
                    rate = Decimal(1) / inverse
                scaled = scaled_int(inverse, places)
                if scaled is None or scaled <= 0 or scaled * 10 >= 2**63:
                    kinds[k] = OFF_RATE
                else:
                    kinds[k], divs[k] = INVERSE, scaled
            else:
                sources.append((3, inverse))
            rates.append(rate)
            if kinds[k] == DIRECT:
                factors[k] = float(mults[k])
            elif kinds[k] == INVERSE:
                factors[k] = 10.0 ** (2 * places + guard) / float(divs[k])
        inverse_divs = divs[kinds == INVERSE]
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
            self._g_acct, weights=group_kind == NO_RATE, minlength=count
        ).astype(np.int64)
        self._a_grp_off = np.bincount(
            self._g_acct, weights=group_kind == OFF_RATE, minlength=count
        ).astype(np.int64)
        self._a_inverse = np.bincount(
            self._g_acct, weights=group_kind == INVERSE, minlength=count
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
            for column, state in ((self._a_pos_missing, MISSING), (self._a_pos_off, OFF)):
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
        inverse = np.flatnonzero(self._pair_kind[pair] == INVERSE)
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
        level, amount, ambiguous = classify_totals(totals, formula_im, width, unit)

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
            big_level, big_amount, big_ambiguous = classify_totals(
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
            self.level_codes[row] = LEVEL_CODE[result.risk_level]
            minor = int(result.call_amount.scaleb(minor_units(result.currency), EXACT))
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
                if self._pair_kind[pair] == DIRECT:
                    mult = int(self._pair_mult[pair])
                    sums = [t + v * mult for t, v in zip(sums, values, strict=True)]
                elif self._pair_kind[pair] == INVERSE:
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
            holder, weights=pos_state == MISSING, minlength=count
        ).astype(np.int64)
        self._a_pos_off = np.bincount(holder, weights=pos_state == OFF, minlength=count).astype(
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


@dataclass(frozen=True, slots=True)
class Recomputed:
    """The accounts one recompute decided (rows into `columns`, ascending)."""

    columns: PolledColumns
    rows: I64
    outside: tuple[str, ...]  # in the book, not in the columns: use the reference

    @property
    def account_ids(self) -> list[str]:
        ids = self.columns.account_ids
        return [ids[row] for row in self.rows.tolist()]

    def levels(self) -> dict[str, RiskLevel]:
        ids, codes = self.columns.account_ids, self.columns.level_codes
        return {ids[row]: LEVELS[int(codes[row])] for row in self.rows.tolist()}
