"""The columnar book's arrays, built once from a `Book`: the layout every poll then moves.

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

The arrays are the attributes `BookColumns.__init__` fills, every value an exact integer
at the scales of `columnar_scales` (or off scale, and its accounts left to the
reference). Nothing is decided here: every level is INCOMPLETE until `columnar_poll`
recomputes; `columnar` reads the results.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from risk_tui.core.columnar_scales import (
    CASH_PLACES,
    FX_PLACES,
    INCOMPLETE,
    MAX_RATIO,
    PRICE_PLACES,
    QUANTITY_PLACES,
    RATIO_PLACES,
    Bools,
    Scales,
    choose_places,
    exact_many,
    scaled_int,
)
from risk_tui.core.margin import AccountMargin, CallFormula, CallPolicy, ratios_for
from risk_tui.core.model import Account, AccountKind, Book, Instrument, Market
from risk_tui.core.money import minor_units

# Rows of the group and account sums: equity, IM, MM, FM, call buffer (what decides),
# then long MV, short MV, illiquid long MV (what a warning row shows besides).
SUMS = 8

# Symbol states.
OK, MISSING, OFF = 0, 1, 2
# fx pair kinds.
DIRECT, INVERSE, NO_RATE, OFF_RATE = 0, 1, 2, 3

_RATIO_TRIPLES = (
    (AccountKind.MARGIN, False),  # long
    (AccountKind.MARGIN, True),  # short
    (AccountKind.INTRADAY, False),  # intraday (long or short alike)
)


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


class BookColumns:
    """The book's arrays as built (module doc); `columnar_poll.PolledColumns` moves them."""

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

        # Scales, from the data (`columnar_scales`), then every value as an exact integer.
        policy_list = [self.policy_for(a.market) for a in accounts]
        ratio_values: list[Decimal] = list({p.buffer_pct for p in policy_list})
        for instrument in book.instruments.values():
            for kind, short in _RATIO_TRIPLES:
                r = ratios_for(instrument, kind, short)
                ratio_values += (r.im, r.mm, r.fm)
        quantity_places, quantities = exact_many(layout.quantities, QUANTITY_PLACES)
        cash_places, balances = exact_many(layout.balances, CASH_PLACES)
        self.scales = Scales(
            quantity=quantity_places,
            price=choose_places(
                (q.price for s in names if (q := book.quotes.get(s)) is not None), PRICE_PLACES
            ),
            ratio=choose_places(ratio_values, RATIO_PLACES),
            cash=cash_places,
            fx=choose_places(book.fx.values(), FX_PLACES),
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
                    scaled = scaled_int(value, sc.ratio)
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
            beta = scaled_int(policy.buffer_pct, sc.ratio)
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
        self._pair_kind = np.full(pair_count, NO_RATE, dtype=np.int8)
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

    def policy_for(self, market: Market) -> CallPolicy:
        if isinstance(self._policies, CallPolicy):
            return self._policies
        return self._policies[market]
