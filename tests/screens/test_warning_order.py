"""How the warnings tabs order their rows (issue 13, point 3): money by its value in the
reporting currency, largest first on the first press, the default order by urgency, and
the header naming the sort when its column is off screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from risk_tui.core.lifecycle import CallState
from risk_tui.core.margin import MarginFigures, RiskLevel
from risk_tui.core.model import AccountKind, Market
from risk_tui.core.view import IncompleteRow, WarningRow, in_reporting
from risk_tui.screens import warning_order as order
from risk_tui.screens.warnings import COLUMNS, incomplete_cells, row_cells
from risk_tui.widgets.table_layout import TableLayout
from risk_tui.widgets.table_model import RowData, TableModel
from tests.factories import T0, make_call

HKD_SGD = Decimal("0.17231")  # about the feed's HKD → SGD rate
NOW = T0 + timedelta(hours=1)


def _figures(equity: str, level: RiskLevel = RiskLevel.MARGIN_CALL) -> MarginFigures:
    return MarginFigures(
        level, Decimal(0), Decimal(equity), Decimal(1), Decimal(1), Decimal(1), None, True
    )


def _row(
    account_id: str,
    amount: str,
    currency: str = "SGD",
    *,
    level: RiskLevel = RiskLevel.MARGIN_CALL,
    deadline: datetime | None = None,
    equity: str = "100",
    rate: Decimal | None = None,
) -> WarningRow:
    if rate is None:
        rate = HKD_SGD if currency == "HKD" else Decimal(1)
    call = make_call(
        account_id,
        currency=currency,
        market=Market.HK if currency == "HKD" else Market.SG,
        call_amount=Decimal(amount),
        risk_level=level,
        state=CallState.FORCE_CALL if level is RiskLevel.FORCE_CALL else CallState.TRIGGERED,
        **({"deadline": deadline} if deadline is not None else {}),
    )
    return WarningRow(
        call,
        _figures(equity, level),
        False,
        reporting_rate=rate,
        call_amount_reporting=in_reporting(call.call_amount, rate),
    )


def _model(*rows: WarningRow | IncompleteRow) -> TableModel:
    model = TableModel(COLUMNS, order.urgency)
    model.set_rows(
        {
            row.account_id: RowData(
                incomplete_cells(row).cells
                if isinstance(row, IncompleteRow)
                else row_cells(row, NOW).cells,
                1,
                row,
            )
            for row in rows
        }
    )
    return model


def _order(model: TableModel) -> list[str]:
    return model.visible_keys()


def test_call_amount_sorts_by_its_value_in_the_reporting_currency() -> None:
    # Issue 13: `K` put SGD 90,712.63 below HKD 92,483.25 (SGD 15,935.73).
    model = _model(_row("H1", "92483.25", "HKD"), _row("S1", "90712.63"), _row("S2", "20000"))
    model.cycle_sort("call_amount")
    assert _order(model) == ["S1", "S2", "H1"]  # the first press: largest first
    assert model.sort_reverse
    model.cycle_sort("call_amount")
    assert _order(model) == ["H1", "S2", "S1"]  # the second: smallest first


def test_every_money_column_sorts_in_the_reporting_currency() -> None:
    model = _model(
        _row("H1", "1", "HKD", equity="500000"),  # SGD 86,155.00
        _row("S1", "1", equity="90000"),
        _row("S2", "1", equity="-5000"),
    )
    model.cycle_sort("equity")
    assert _order(model) == ["S1", "H1", "S2"]


def test_a_row_without_a_rate_sorts_apart_never_as_zero() -> None:
    no_rate = _row("X1", "5", "HKD", rate=None)
    no_rate = WarningRow(no_rate.call, no_rate.margin, False)  # the feed has no HKD rate
    model = _model(no_rate, _row("S1", "-0"), _row("S2", "10"))
    model.cycle_sort("call_amount")
    assert _order(model) == ["S2", "S1", "X1"]
    assert order.apart([no_rate, _row("S2", "10")], "call_amount") == 1


def test_the_default_order_is_by_urgency() -> None:
    soon, later = T0 + timedelta(hours=2), T0 + timedelta(days=2)
    model = _model(
        _row("M-later-big", "90000", deadline=later),
        _row("M-soon-small", "10", deadline=soon),
        _row("M-soon-big", "10", "HKD", deadline=soon),  # SGD 1.72: below SGD 10
        _row("F-small", "5", level=RiskLevel.FORCE_CALL, deadline=later),
        _row("F-big", "50", "HKD", level=RiskLevel.FORCE_CALL, deadline=soon),  # SGD 8.62
        IncompleteRow("I7001", "Ng", "no price for NOQ.SG", AccountKind.MARGIN, Market.SG, "SGD"),
    )
    assert model.sort_index is None  # no column chosen: the default order
    assert _order(model) == [
        "F-big",
        "F-small",
        "M-soon-small",
        "M-soon-big",
        "M-later-big",
        "I7001",
    ]


def test_urgency_stays_correct_when_a_call_moves() -> None:
    later = T0 + timedelta(days=2)
    model = _model(_row("A", "10", deadline=later), _row("B", "20", deadline=later))
    assert _order(model) == ["B", "A"]
    forced = _row("A", "1", level=RiskLevel.FORCE_CALL, deadline=later)
    model.apply_diff({"A": RowData(row_cells(forced, NOW).cells, 2, forced)})
    assert _order(model) == ["A", "B"]


def test_the_header_names_the_sort_when_its_column_is_off_screen() -> None:
    layout = TableLayout(COLUMNS)
    layout.widths = [12 for column in COLUMNS]
    layout.wide = True
    layout.arrange(60)
    index = next(i for i, column in enumerate(COLUMNS) if column.key == "equity")
    off_screen = layout.sort_names(index, True, "urgency", ("in SGD", False), 0, 60)
    assert off_screen[0] == " sorted by Equity in SGD ▼ "
    assert off_screen[-1] == " Equity▼"  # the shortest, when the header has little room
    on_screen = layout.sort_names(index, True, "urgency", ("in SGD", False), 78, 60)
    assert on_screen == ()  # scrolled to it: the column's own label shows the arrow
    assert layout.sort_names(None, False, "urgency", ("", False), 0, 60)[0] == (
        " sorted by urgency "
    )


def test_sort_values_are_ints_precomputed_from_the_record() -> None:
    # The live table packs int sort values (one C comparison per move): every value is one.
    row = _row("H1", "92483.25", "HKD")
    for read in (*order.SORT_VALUES.values(), order.urgency):
        assert isinstance(read(row), int)
    assert order.call_amount(row) == int(Decimal("92483.25") * HKD_SGD * 10**12)


def test_time_columns_compare_instants_not_local_text() -> None:
    hk = _row("H1", "1", "HKD", deadline=datetime(2026, 3, 3, 7, 0, tzinfo=UTC))  # 15:00 HKT
    sg = _row("S1", "1", deadline=datetime(2026, 3, 3, 6, 0, tzinfo=UTC))  # 14:00 SGT
    model = _model(hk, sg)
    model.cycle_sort("deadline")
    assert _order(model) == ["S1", "H1"]


def test_every_row_has_one_cell_per_column_under_its_label() -> None:
    """A cell added or dropped shifts every later figure under the wrong label."""
    labels = [column.key for column in COLUMNS]
    row = _row("A", "1015", equity="9500")
    cells = row_cells(row, NOW).cells
    assert len(cells) == len(COLUMNS)
    assert cells[labels.index("call_amount")].plain == "SGD 1,015.00"
    assert cells[labels.index("equity")].plain == "9,500.00"
    assert cells[labels.index("exception")].plain == ""
    assert cells[labels.index("kind")].plain == row.call.kind.value
    incomplete = IncompleteRow("I", "Ng", "no price", AccountKind.MARGIN, Market.SG, "SGD")
    assert len(incomplete_cells(incomplete).cells) == len(COLUMNS)
