"""TableModel without an app: diffs, sort, filter, marks and cursor, and what each reports.

The property test drives the model and a naive reference (a dict re-sorted and
re-filtered from scratch after every step) with the same random operations and
compares everything the widget reads: the view's order, positions, cursor, marks,
stored versions, and the `TableChange` each operation returned.
"""

from __future__ import annotations

import functools
import random
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from rich.text import Text

from risk_tui.widgets import table_model
from risk_tui.widgets.table_model import (
    Column,
    CursorMove,
    RowData,
    RowFilter,
    TableChange,
    TableModel,
)


def _int_or_decimal(cell: Text) -> int | Decimal:
    """Ints until a value with a decimal point arrives: the view must change entry kind."""
    plain = cell.plain
    return Decimal(plain) if "." in plain else int(plain)


SORT_KEYS: dict[str, Callable[[Text], Any] | None] = {
    "key": None,  # the plain text: tuple entries
    "int": lambda cell: int(cell.plain),  # packed integer entries
    "decimal": lambda cell: Decimal(cell.plain),  # tuple entries, Decimal comparisons
    "mixed": _int_or_decimal,  # packed, until a Decimal arrives
}
COLUMNS = tuple(Column(name, name.title(), sort_key=key) for name, key in SORT_KEYS.items())


def cells(key: str, value: int, half: bool = False) -> tuple[Text, ...]:
    """A row's cells: its key, `value` as an int, as a Decimal, and as either."""
    return (
        Text(key),
        Text(str(value)),
        Text(f"{value}.{abs(value) % 3}0", style="red" if value < 0 else ""),
        Text(f"{value}.5" if half else str(value)),
    )


def row(key: str, value: int, version: int | None = 1) -> RowData:
    return RowData(cells(key, value), version)


def loaded(values: dict[str, int]) -> TableModel:
    model = TableModel(COLUMNS)
    model.set_rows({key: row(key, value) for key, value in values.items()})
    return model


# ---------------------------------------------------------------------- plain cases


def test_a_load_shows_rows_in_arrival_order_with_the_cursor_on_the_first() -> None:
    model = TableModel(COLUMNS)
    change = model.set_rows({"B": row("B", 2), "A": row("A", 1), "C": row("C", 3)})
    assert model.visible_keys() == ["B", "A", "C"]
    assert change.reordered
    assert change.cursor == CursorMove(None, "B")
    assert (model.row_count, model.total_row_count, model.cursor_index) == (3, 3, 0)
    assert [model.index_of(key) for key in "ABC"] == [1, 0, 2]
    assert model.keys_between(1, 10) == ["A", "C"]


def test_a_diff_reports_changed_rows_and_the_data_they_replaced() -> None:
    model = loaded({"A": 1, "B": 2})
    old_a = model.get_row("A")
    change = model.apply_diff({"A": row("A", 5, version=2), "N": row("N", 0, version=None)})
    assert change.changed == {"A", "N"}
    assert change.previous == {"A": old_a}
    assert change.previous["A"] is old_a
    assert change.reordered  # N entered the view
    assert change.cursor is None
    assert not change.marks
    assert model.visible_keys() == ["A", "B", "N"]
    assert model.get_row("N") == RowData(cells("N", 0), 0)  # no version: stored as 0


def test_an_unchanged_version_or_equal_cells_are_no_change() -> None:
    model = loaded({"A": 1, "B": 2})
    model.sort_by("int")
    stored = model.get_row("A")
    # Same version: the caller says "unchanged", even though the cells differ.
    assert model.apply_diff({"A": row("A", 99, version=1)}) == TableChange()
    # No version: the model compares cells; equal cells are no change.
    assert model.apply_diff({"A": row("A", 1, version=None)}) == TableChange()
    assert model.get_row("A") is stored
    change = model.apply_diff({"A": row("A", 7, version=None)})
    assert change.changed == {"A"}
    assert change.reordered
    assert model.get_row("A") == RowData(cells("A", 7), 2)  # the stored version, bumped
    assert model.visible_keys() == ["B", "A"]


def test_in_arrival_order_an_update_never_moves_a_row() -> None:
    model = loaded({"A": 1, "B": 2})
    change = model.apply_diff({"A": row("A", 9, version=2)})
    assert change.changed == {"A"}
    assert not change.reordered
    assert model.visible_keys() == ["A", "B"]


def test_rows_the_model_versions_keep_their_records_for_the_default_order() -> None:
    """`version=None` rows (the model compares the cells) still sort by their record."""
    model = TableModel([Column("k", "K")], default_order=lambda record: record)
    text = (Text("x"),)
    model.set_rows({"late": RowData(text, None, 30), "early": RowData((Text("y"),), None, 10)})
    assert model.visible_keys() == ["early", "late"]
    model.apply_diff({"first": RowData(text, None, 5), "late": RowData((Text("z"),), None, 1)})
    assert model.visible_keys() == ["late", "first", "early"]


def test_sorting_descending_reads_the_ascending_view_backwards() -> None:
    model = loaded({"A": 2, "B": 1, "C": 2, "D": 3})
    assert model.sort_by("int").reordered
    assert model.visible_keys() == ["B", "A", "C", "D"]  # ties keep arrival order
    assert model.sort_by("int", reverse=True).reordered
    assert model.visible_keys() == ["D", "C", "A", "B"]
    assert [model.key_at(index) for index in range(4)] == ["D", "C", "A", "B"]
    assert model.index_of("D") == 0
    assert model.cursor_key == "A"
    assert model.cursor_index == 2
    assert model.sort_by("int", reverse=True) == TableChange()  # already so
    assert (model.sort_column, model.sort_reverse, model.sort_index) == ("int", True, 1)
    assert model.sort_by(None).reordered
    assert model.visible_keys() == ["A", "B", "C", "D"]


def test_cycle_sort_goes_ascending_then_flips() -> None:
    model = loaded({"A": 2, "B": 1})
    model.cycle_sort("int")
    assert (model.sort_column, model.sort_reverse) == ("int", False)
    model.cycle_sort("int")
    assert (model.sort_column, model.sort_reverse) == ("int", True)
    model.cycle_sort("key")
    assert (model.sort_column, model.sort_reverse) == ("key", False)


def test_a_decimal_arriving_in_an_integer_view_changes_the_entry_kind() -> None:
    model = loaded({"A": 3, "B": 1, "C": 2})
    model.sort_by("mixed")
    assert model.visible_keys() == ["B", "C", "A"]
    model.apply_diff({"A": RowData(cells("A", 1, half=True), 2)})  # 1.5
    assert model.visible_keys() == ["B", "A", "C"]
    model.apply_diff({"B": RowData(cells("B", 4), 2)})
    assert model.visible_keys() == ["A", "C", "B"]
    # Exactly ordered however large: no packing of a Decimal into an integer entry.
    huge = Text("123456789012345678901234567.5")
    model.apply_diff({key: RowData((*cells(key, 0)[:3], huge), 3) for key in ("C", "A")})
    assert model.visible_keys() == ["B", "A", "C"]


def test_a_row_that_stops_matching_the_filter_leaves_the_view() -> None:
    model = loaded({"A": 2, "B": 4, "C": 6})
    model.set_filter(lambda key, data: int(data.cells[1].plain) % 2 == 0)
    change = model.apply_diff({"B": row("B", 5, version=2), "D": row("D", 8)})
    assert change.reordered
    assert change.changed == {"B", "D"}
    assert model.visible_keys() == ["A", "C", "D"]
    assert not model.is_shown("B")
    model.apply_diff({"B": row("B", 0, version=3)})
    assert model.visible_keys() == ["A", "B", "C", "D"]  # back in its arrival place


def test_a_removed_row_that_comes_back_arrives_last() -> None:
    model = loaded({"A": 1, "B": 1, "C": 1})
    model.sort_by("int")
    model.apply_diff({}, ["A"])
    model.apply_diff({"A": row("A", 1)})
    assert model.visible_keys() == ["B", "C", "A"]
    model.apply_diff({"B": row("B", 1)}, ["B"])  # removed and re-added in one diff
    assert model.visible_keys() == ["C", "A", "B"]


@pytest.mark.parametrize("column", ["int", "decimal"])  # packed and tuple entries
@pytest.mark.parametrize("changes", [20, 600])  # bisect moves, and one merge
def test_many_diffs_keep_the_view_equal_to_a_full_sort(column: str, changes: int) -> None:
    rng = random.Random(changes)
    values = {f"K{index:05d}": rng.randint(-500, 500) for index in range(2_000)}
    arrival = {key: position for position, key in enumerate(values)}
    model = loaded(values)
    model.sort_by(column, reverse=changes > 100)
    for version in range(2, 6):
        upserts = {}
        for key in rng.sample(sorted(values), changes):
            values[key] = rng.randint(-500, 500)
            upserts[key] = row(key, values[key], version)
        removed = rng.sample(sorted(set(values) - set(upserts)), changes // 10)
        for key in removed:
            del values[key]
        for index in range(changes // 10):
            key = f"N{version}-{index}"
            values[key] = rng.randint(-500, 500)
            arrival[key] = len(arrival)
            upserts[key] = row(key, values[key], version)
        assert model.apply_diff(upserts, removed).reordered
        expected = sorted(values, key=lambda key: (values[key], arrival[key]))
        assert model.visible_keys() == (expected[::-1] if changes > 100 else expected)


def test_removing_the_cursor_row_puts_the_cursor_on_the_row_now_at_its_place() -> None:
    model = loaded({key: index for index, key in enumerate("ABCD")})
    model.set_cursor("C")
    change = model.apply_diff({}, ["C", "missing"])
    assert change.cursor == CursorMove("C", "D")
    assert change.reordered
    change = model.apply_diff({}, ["D"])  # the last row: the cursor takes the new last
    assert change.cursor == CursorMove("D", "B")
    change = model.apply_diff({}, ["A", "B"])
    assert change.cursor == CursorMove("B", None)
    assert model.cursor_index is None
    change = model.apply_diff({"E": row("E", 0)})
    assert change.cursor == CursorMove(None, "E")


def test_marks_flip_survive_filters_and_go_with_removed_rows() -> None:
    model = loaded({"A": 1, "B": 2, "C": 3})
    assert model.toggle_mark("nobody") == TableChange()
    assert model.toggle_mark("A").marks == {"A"}
    assert model.toggle_mark("B").marks == {"B"}
    model.set_filter(lambda key, data: key != "A")
    assert model.marked_keys == {"A", "B"}
    assert model.is_marked("A")
    change = model.apply_diff({}, ["B"])
    assert change.marks == {"B"}
    assert model.marked_keys == {"A"}
    change = model.set_rows({"A": row("A", 1), "C": row("C", 3)})
    assert not change.marks
    assert model.marked_keys == {"A"}
    model.toggle_mark("C")
    change = model.set_rows({"C": row("C", 3)})
    assert change.marks == {"A"}
    assert model.marked_keys == {"C"}
    assert model.clear_marks().marks == {"C"}
    assert model.marked_keys == frozenset()
    assert model.clear_marks() == TableChange()


def test_a_filter_keeps_the_cursor_row_else_takes_the_first() -> None:
    model = loaded({f"K{index}": index for index in range(20)})
    model.set_cursor("K13")
    change = model.set_filter(lambda key, data: key.endswith("3"))
    assert model.visible_keys() == ["K3", "K13"]
    assert change.cursor is None
    change = model.set_filter(lambda key, data: key.endswith("7"))
    assert change.cursor == CursorMove("K13", "K7")
    # A diff that makes a row match shows it; one that stops matching hides it.
    change = model.apply_diff({"K27": row("K27", 27)}, ["K17"])
    assert model.visible_keys() == ["K7", "K27"]
    assert change.reordered
    model.set_filter(None)
    assert model.row_count == 20
    assert model.cursor_key == "K7"
    assert not model.is_shown("K17")
    assert model.is_shown("K27")


def test_cursor_target_stays_in_the_view() -> None:
    model = TableModel(COLUMNS)
    assert model.cursor_target(1) is None
    model.set_rows({key: row(key, 0) for key in "ABCDE"})
    assert model.cursor_target(-3) == (0, 0)
    assert model.cursor_target(3) == (0, 3)
    model.set_cursor("D")
    assert model.cursor_target(10) == (3, 4)
    assert model.set_cursor("D") == TableChange()
    assert model.set_cursor("A").cursor == CursorMove("D", "A")


def test_rows_are_formatted_only_when_a_sort_or_filter_reads_them() -> None:
    made: list[str] = []

    def lazy(key: str, value: int, version: int) -> RowData:
        def make() -> tuple[Text, ...]:
            made.append(key)
            return cells(key, value)

        return RowData.lazy(make, version)

    model = TableModel(COLUMNS)
    model.set_rows({f"K{index}": lazy(f"K{index}", index, 1) for index in range(100)})
    model.apply_diff({f"K{index}": lazy(f"K{index}", -index, 2) for index in range(0, 100, 2)})
    assert made == []  # arrival order, no filter: nothing needed the cells
    model.set_filter(lambda key, data: key.endswith("2"))
    assert made == []  # the filter reads only keys; unsorted, nothing else is read
    model.sort_by("int")  # the ten shown rows are read, to sort them
    assert sorted(made) == sorted(f"K{index}" for index in range(2, 100, 10))
    assert model.visible_keys()[:2] == ["K92", "K82"]


def test_columns_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TableModel([])
    with pytest.raises(ValueError, match="duplicate"):
        TableModel([Column("a", "A"), Column("a", "B")])
    with pytest.raises(ValueError, match="no column"):
        TableModel(COLUMNS).sort_by("nope")


def test_the_model_imports_no_textual() -> None:
    path = Path(table_model.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('table_model', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['table_model'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# ---------------------------------------------------------------------- model vs naive

FILTERS: dict[str, RowFilter | None] = {
    "none": None,
    "key": lambda key, data: not key.endswith("3"),
    "even": lambda key, data: int(data.cells[1].plain) % 2 == 0,  # reads (lazy) cells
}
KEYS = st.sampled_from([f"K{index:02d}" for index in range(30)])
VALUES = st.integers(min_value=-4, max_value=4)  # small: many ties, negatives
# How an upsert is sent: a new version, the stored version ("unchanged"), no version
# (the model compares cells), or a new version as a lazy row.
SENDS = st.sampled_from(["new", "same", "none", "lazy"])
UPSERTS = st.dictionaries(KEYS, st.tuples(VALUES, st.booleans(), SENDS), max_size=20)


class Naive:
    """The reference: plain dicts, re-filtered and re-sorted from scratch when asked."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[tuple[Text, ...], int]] = {}  # key → (cells, version)
        self.arrival: dict[str, int] = {}
        self.next_arrival = 0
        self.filter = "none"
        self.sort: str | None = None
        self.reverse = False
        self.cursor: str | None = None
        self.marks: set[str] = set()

    def arrive(self, key: str) -> None:
        self.arrival[key] = self.next_arrival
        self.next_arrival += 1

    def visible(self) -> list[str]:
        predicate = FILTERS[self.filter]
        keys = [
            key
            for key, (cells, version) in self.rows.items()
            if predicate is None or predicate(key, RowData(cells, version))
        ]
        if self.sort is None:
            return sorted(keys, key=self.arrival.__getitem__, reverse=self.reverse)
        index = list(SORT_KEYS).index(self.sort)
        sort_key = SORT_KEYS[self.sort] or (lambda cell: cell.plain)

        def order(key: str) -> tuple[Any, int]:
            return sort_key(self.rows[key][0][index]), self.arrival[key]

        return sorted(keys, key=order, reverse=self.reverse)

    def restore_cursor(self, index_before: int | None) -> None:
        visible = self.visible()
        if self.cursor in visible:
            return
        self.cursor = visible[min(index_before or 0, len(visible) - 1)] if visible else None

    def cursor_index(self) -> int | None:
        return None if self.cursor is None else self.visible().index(self.cursor)


class TableModelMachine(RuleBasedStateMachine):
    """Random loads, diffs, sorts, filters, marks and cursor moves, on both models."""

    def __init__(self) -> None:
        super().__init__()
        self.model = TableModel(COLUMNS)
        self.naive = Naive()
        self.threshold: Any = None

    @initialize(threshold=st.sampled_from([0, 3, 256]))
    def merge_threshold(self, threshold: int) -> None:
        """Small thresholds take the one-merge path on small diffs too."""
        self.threshold = patch.object(table_model, "_RESORT_THRESHOLD", threshold)
        self.threshold.start()

    def teardown(self) -> None:
        if self.threshold is not None:
            self.threshold.stop()

    def _expect_cursor(self, change: TableChange, before: str | None) -> None:
        after = self.naive.cursor
        assert change.cursor == (None if before == after else CursorMove(before, after))

    @rule(values=st.dictionaries(KEYS, VALUES, max_size=25))
    def set_rows(self, values: dict[str, int]) -> None:
        naive = self.naive
        index_before, cursor_before = naive.cursor_index(), naive.cursor
        change = self.model.set_rows({key: row(key, value) for key, value in values.items()})
        naive.rows = {key: (cells(key, value), 1) for key, value in values.items()}
        naive.arrival, naive.next_arrival = {}, 0
        for key in values:
            naive.arrive(key)
        assert change.marks == naive.marks - set(values)
        naive.marks &= set(values)
        naive.restore_cursor(index_before)
        self._expect_cursor(change, cursor_before)

    @rule(upserts=UPSERTS, removals=st.lists(KEYS, max_size=6))
    def apply_diff(self, upserts: dict[str, tuple[int, bool, str]], removals: list[str]) -> None:
        naive = self.naive
        visible_before, cursor_before = naive.visible(), naive.cursor
        index_before = naive.cursor_index()
        stored_before = {
            key: None if key in removals else self.model.get_row(key) for key in upserts
        }
        unmarked = naive.marks & set(removals)
        for key in removals:
            if naive.rows.pop(key, None) is not None:
                del naive.arrival[key]
        naive.marks -= unmarked
        sent: dict[str, RowData] = {}
        changed: set[str] = set()
        for key, (value, half, send) in upserts.items():
            new_cells = cells(key, value, half)
            old = naive.rows.get(key)
            old_version = None if old is None else old[1]
            if send == "none":
                sent[key] = RowData(new_cells, None)
                if old is None:
                    naive.rows[key] = (new_cells, 0)
                elif old[0] != new_cells:
                    naive.rows[key] = (new_cells, old[1] + 1)
            elif send == "same" and old_version is not None:
                sent[key] = RowData(new_cells, old_version)  # the model keeps its cells
            else:
                version = (old_version or 0) + 1
                if send == "lazy":
                    sent[key] = RowData.lazy(functools.partial(tuple, new_cells), version)
                else:
                    sent[key] = RowData(new_cells, version)
                naive.rows[key] = (new_cells, version)
            if key not in naive.arrival:
                naive.arrive(key)
            if naive.rows[key][1] != old_version:
                changed.add(key)

        change = self.model.apply_diff(sent, removals)

        assert change.changed == changed
        assert set(change.previous) == {key for key in changed if stored_before[key] is not None}
        assert all(change.previous[key] is stored_before[key] for key in change.previous)
        assert change.marks == unmarked
        if naive.visible() != visible_before:
            assert change.reordered
        naive.restore_cursor(index_before)
        self._expect_cursor(change, cursor_before)

    @rule(column=st.sampled_from([None, *SORT_KEYS]), reverse=st.booleans())
    def sort_by(self, column: str | None, reverse: bool) -> None:
        naive = self.naive
        change = self.model.sort_by(column, reverse)
        assert change.reordered == ((column, reverse) != (naive.sort, naive.reverse))
        assert change.cursor is None
        naive.sort, naive.reverse = column, reverse

    @rule(column=st.sampled_from(list(SORT_KEYS)))
    def cycle_sort(self, column: str) -> None:
        naive = self.naive
        naive.reverse = not naive.reverse if naive.sort == column else False
        naive.sort = column
        assert self.model.cycle_sort(column).reordered

    @rule(name=st.sampled_from(list(FILTERS)))
    def set_filter(self, name: str) -> None:
        naive = self.naive
        cursor_before = naive.cursor
        change = self.model.set_filter(FILTERS[name])
        naive.filter = name
        naive.restore_cursor(0)
        self._expect_cursor(change, cursor_before)

    @rule(key=KEYS)
    def toggle_mark(self, key: str) -> None:
        change = self.model.toggle_mark(key)
        if key in self.naive.rows:
            self.naive.marks ^= {key}
            assert change.marks == {key}
        else:
            assert change == TableChange()

    @rule()
    def clear_marks(self) -> None:
        assert self.model.clear_marks().marks == self.naive.marks
        self.naive.marks = set()

    @precondition(lambda self: bool(self.naive.visible()))
    @rule(data=st.data())
    def set_cursor(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.naive.visible()))
        change = self.model.set_cursor(key)
        before, self.naive.cursor = self.naive.cursor, key
        self._expect_cursor(change, before)

    @rule(delta=st.integers(min_value=-40, max_value=40))
    def cursor_target(self, delta: int) -> None:
        visible = self.naive.visible()
        start = self.naive.cursor_index() or 0
        expected = (start, max(0, min(len(visible) - 1, start + delta))) if visible else None
        assert self.model.cursor_target(delta) == expected

    @invariant()
    def same_as_naive(self) -> None:
        model, naive = self.model, self.naive
        visible = naive.visible()
        assert model.visible_keys() == visible
        assert [model.key_at(index) for index in range(len(visible))] == visible
        assert [model.index_of(key) for key in visible] == list(range(len(visible)))
        assert model.keys_between(2, 7) == visible[2:7]
        assert all(model.is_shown(key) == (key in visible) for key in naive.rows)
        assert (model.row_count, model.total_row_count) == (len(visible), len(naive.rows))
        assert model.cursor_key == naive.cursor
        assert (model.cursor_key is None) == (not visible)
        assert model.cursor_index == naive.cursor_index()
        assert model.marked_keys == naive.marks
        assert (model.sort_column, model.sort_reverse) == (naive.sort, naive.reverse)
        for key, (expected_cells, version) in naive.rows.items():
            stored = model.get_row(key)
            assert stored is not None
            assert stored.version == version
            assert stored.cells == expected_cells
        assert list(model.rows) == list(naive.rows)


TableModelMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=25, deadline=None
)
test_table_model_matches_a_naive_resort = TableModelMachine.TestCase
