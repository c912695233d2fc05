"""The liquidate dialog: it opens on the desk's least-value cure, shows the account after
the selection as the desk computes it, refuses a halted review, and sends market orders
with keys minted once.

The seed example and the host are `tests.ui.test_dialogs`'s (SPEC.md): cash −15,000 SGD,
A 1,000 @ 5.00 (MM 25 %), B 1,000 @ 19.50 (MM 45 %): equity 9,500, call 1,015.00. The
least-value cure in whole lots sells 100 A and 100 B (2,450.00); 700 A alone leaves
70.00 to collect.
"""

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import cast

import pytest
from textual.widgets import Input

from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.model import (
    CashBalance,
    Position,
    Quote,
    Side,
)
from risk_tui.core.roles import Actor
from risk_tui.desk.api import DeskApi
from risk_tui.widgets.dialogs import (
    AutoLiquidationDialog,
    LiquidateDialog,
    NotPermitted,
)
from risk_tui.widgets.dialogs.base import MarkCheckbox
from risk_tui.widgets.dialogs.kill_switch import liquidation_halt
from risk_tui.widgets.whole import fitting
from tests.factories import OPERATOR, VIEWER, BookFigures
from tests.ui.test_dialogs import (
    ENGAGED,
    NOW,
    TRADER,
    Host,
    instrument,
    liquidate,
    problems_text,
    screen_text,
    seed_book,
    seed_call,
    seed_margin,
    static_text,
    type_into,
    working_order,
)


async def test_liquidate_escape_returns_none() -> None:
    app = Host(liquidate())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def test_liquidate_escape_cancels_from_the_review_step_too() -> None:
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+r")
        assert dialog.reviewing
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def test_liquidate_opens_on_the_least_value_cure_and_sends_it_after_review() -> None:
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.focused, MarkCheckbox)  # focus starts on the first control
        assert app.focused.id == "pick-0"
        checks = {c.id: c.value for c in dialog.query(MarkCheckbox)}
        assert checks == {"pick-0": True, "pick-1": True}  # 100 A + 100 B: 2,450.00
        assert dialog.query_one("#qty-0", Input).value == "100"
        assert dialog.query_one("#qty-1", Input).value == "100"
        assert static_text(dialog, "#proposal") == (
            "Preselected: least-value cure in whole lots, SGD 2,450.00 (exact search)."
        )
        await pilot.press("ctrl+r")
        review = static_text(dialog, "#review-text")
        for words in (
            "A1001",
            "Tan Mei Ling",
            "SELL         A.SG              100 shares   est. SGD 500.00",
            "SELL         B.SG              100 shares   est. SGD 1,950.00",
            "Total estimated value SGD 2,450.00",
            "After: equity SGD 9,500.00 · MM SGD 9,022.50 · WATCH (equity below IM)",
            "Meets the call: call amount after 0.00.",
        ):
            assert words in review, words
        assert app.results == []  # reviewing sends nothing
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert [(i.client_order_id, i.symbol, i.side, i.quantity) for i in app.results[0]] == [
        ("RT-O-0000", "A.SG", Side.SELL, D("100")),
        ("RT-O-0001", "B.SG", Side.SELL, D("100")),
    ]
    assert {(i.order_type, i.reason, i.reference, i.operator) for i in app.results[0]} == {
        ("market", "margin_call", "MC20260310-A1001-0001", "alice")
    }


async def test_liquidate_after_figures_and_notes_follow_the_quantities() -> None:
    """The issue's A1001 case: 700 A "cured alone" by value × IM ratio; the desk's
    recomputed call after it is 70.00, and the note says so when the quantity changes."""
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert static_text(dialog, "#after") == (
            "After: equity SGD 9,500.00 · MM SGD 9,022.50 · WATCH (equity below IM)"
        )
        assert static_text(dialog, "#verdict") == (
            "Meets the call: call amount after 0.00 · est. SGD 2,450.00 at last prices"
        )
        assert static_text(dialog, "#published") == (
            "Broker's published minimum (call ÷ IM ratio), not a cure: "
            "B.SG 2,030.00 · A.SG 3,383.33"
        )
        dialog.query_one("#pick-1", MarkCheckbox).value = False
        await type_into(pilot, dialog.query_one("#qty-0", Input), "700")
        await pilot.pause()
        assert static_text(dialog, "#verdict") == (
            "Leaves SGD 70.00 to collect · est. SGD 3,500.00 at last prices"
        )
        # Equity is back above MM (watch), yet the buffer leaves 70.00: the call stays open.
        assert "MM SGD 9,150.00 · WATCH" in static_text(dialog, "#after")
        assert "−945.00" in screen_text(app)
        assert "cures alone" not in screen_text(app).split("B.SG")[0]
        await type_into(pilot, dialog.query_one("#qty-0", Input), "800")
        await pilot.pause()
        assert static_text(dialog, "#verdict").startswith("Meets the call")
        assert "cures alone" in screen_text(app).split("B.SG")[0]
        await type_into(pilot, dialog.query_one("#qty-0", Input), "300")
        await pilot.pause()
        assert static_text(dialog, "#verdict").startswith("Leaves SGD 610.00 to collect")
        assert "−405.00" in screen_text(app)


async def test_liquidate_says_when_selling_everything_cannot_cure() -> None:
    book = seed_book()
    book.set_cash(CashBalance("A1001", "SGD", D("-30000.00")))  # equity −5,500
    dialog = liquidate(book=book)
    app = Host(dialog)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert static_text(dialog, "#proposal") == (
            "Selling everything cannot cure: SGD 5,500.00 short (every whole lot preselected)."
        )
        assert [dialog.query_one(f"#qty-{i}", Input).value for i in (0, 1)] == ["1,000", "1,000"]
        assert static_text(dialog, "#verdict").startswith("Leaves SGD 5,500.00 to collect")


async def test_an_engaged_kill_switch_shows_and_refuses_the_review() -> None:
    dialog = liquidate(halted=ENGAGED)
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert ENGAGED in screen_text(app)  # shown as the dialog opens
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert "Error: halted (see above): no liquidation can be reviewed or sent" in (
            problems_text(dialog)
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == []


async def test_liquidate_keys_are_minted_once_however_often_confirmed() -> None:
    # The real key factory.
    dialog = LiquidateDialog(seed_call(), seed_margin(), TRADER, figures=BookFigures(seed_book()))
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        key = dialog.order_ids["B.SG"]
        assert key.startswith("RT-O-")
        first = dialog.intents()
        assert dialog.intents() == first
        # Review, go back, change the quantity, review again: the same key.
        await pilot.press("ctrl+r")
        await pilot.click("#back")
        assert not dialog.reviewing
        await type_into(pilot, dialog.query_one("#qty-1", Input), "300")
        await pilot.press("ctrl+r", "ctrl+s", "ctrl+s")  # a doubled confirm
        await pilot.pause()
    assert len(app.results) == 1  # answered once
    intent = next(i for i in app.results[0] if i.symbol == "B.SG")
    assert intent.client_order_id == key
    assert intent.quantity == D("300")


async def test_liquidate_send_key_needs_the_review_step_first() -> None:
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+s", "ctrl+s")
        await pilot.pause()
        assert app.results == []
        assert "Review with ctrl+r first" in problems_text(dialog)
        await pilot.press("ctrl+r", "ctrl+r", "enter")  # enter lands on Back, not Send
        await pilot.pause()
        assert app.results == []
        assert not dialog.reviewing


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("150", "B.SG: 150 is not whole board lots of 100; order whole lots or all 1,000"),
        ("1,100", "B.SG: 1,100 is more than the 1,000 held"),
        ("", "B.SG: enter a whole number of shares"),
        ("0", "B.SG: the quantity must be more than zero"),
    ],
)
async def test_liquidate_invalid_quantity_blocks_review_with_a_text_error(
    typed: str, error: str
) -> None:
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, dialog.query_one("#qty-1", Input), typed)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert f"Error: {error}" in problems_text(dialog)
        assert f"Error: {error}" in screen_text(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == []


async def test_liquidate_nothing_selected_is_an_error() -> None:
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog.query_one("#pick-0", MarkCheckbox).value = False
        dialog.query_one("#pick-1", MarkCheckbox).value = False
        await pilot.press("ctrl+r")
        assert "Error: select at least one holding" in problems_text(dialog)


async def test_liquidate_an_odd_lot_is_fine_when_closing_the_whole_position() -> None:
    dialog = liquidate(book=seed_book(b_quantity="1050"))
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog.query_one("#pick-0", MarkCheckbox).value = False
        await type_into(pilot, dialog.query_one("#qty-1", Input), "1050")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
    assert [i.quantity for i in app.results[0]] == [D("1050")]


async def test_liquidate_counts_working_orders_against_the_holding() -> None:
    dialog = liquidate(working=[working_order("B.SG", "900", filled="0")])
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        # 900 B working take 8,248.50 off the call once filled: nothing more to sell.
        assert static_text(dialog, "#proposal") == (
            "The working orders meet the call once filled: nothing more to sell."
        )
        assert static_text(dialog, "#after").startswith("After this and the working orders:")
        assert not dialog.query_one("#pick-1", MarkCheckbox).value
        dialog.query_one("#pick-1", MarkCheckbox).value = True
        await type_into(pilot, dialog.query_one("#qty-1", Input), "200")
        await pilot.press("ctrl+r")
        assert (
            "B.SG: 200 plus the 900 in working orders is more than the 1,000 held"
            in problems_text(dialog)
        )
        assert "Already working:" in screen_text(app)
        await type_into(pilot, dialog.query_one("#qty-1", Input), "100")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
    assert [i.quantity for i in app.results[0]] == [D("100")]


async def test_liquidate_short_is_bought_back_and_suspended_cannot_be_chosen() -> None:
    book = seed_book()
    book.instruments["C.SG"] = instrument("C.SG", "0.50", "0.45", "0.40", suspended=True)
    book.instruments["S.SG"] = instrument("S.SG", "0.60", "0.55", "0.50")
    book.quotes["C.SG"] = Quote("C.SG", D("2.00"))
    book.quotes["S.SG"] = Quote("S.SG", D("10.00"))
    book.set_position(Position("A1001", "C.SG", D("500")))
    book.set_position(Position("A1001", "S.SG", D("-300")))
    dialog = liquidate(book=book)
    app = Host(dialog)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert not dialog.query("#pick-2")  # C.SG: suspended, no checkbox
        assert "suspended/delisted" in screen_text(app)
        assert "[-] C.SG" in screen_text(app)
        for check in dialog.query(MarkCheckbox):
            check.value = check.id == "pick-3"
        await type_into(pilot, dialog.query_one("#qty-3", Input), "300")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
    (intent,) = app.results[0]
    assert (intent.symbol, intent.side, intent.quantity) == ("S.SG", Side.BUY, D("300"))


async def test_liquidate_on_incomplete_figures_offers_nothing() -> None:
    book = seed_book()
    del book.quotes["B.SG"]
    dialog = liquidate(book=book)
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "No figures to choose from: no price for B.SG" in screen_text(app)
        await pilot.press("ctrl+r")
        assert "Error: select at least one holding" in problems_text(dialog)


@pytest.mark.parametrize("actor", [OPERATOR, VIEWER])
def test_liquidate_refuses_non_trading_roles(actor: Actor) -> None:
    figures = BookFigures(seed_book())
    with pytest.raises(NotPermitted, match="may not place liquidation orders"):
        LiquidateDialog(seed_call(), seed_margin(), actor, figures=figures)
    with pytest.raises(NotPermitted, match="may not schedule"):
        AutoLiquidationDialog(seed_call(), seed_margin(), actor, NOW, figures=figures)


def test_liquidate_refuses_figures_of_another_account() -> None:
    with pytest.raises(ValueError, match="figures of A1001"):
        LiquidateDialog(
            seed_call(account_id="B2002"), seed_margin(), TRADER, figures=BookFigures(seed_book())
        )


async def test_figures_in_the_rows_are_shown_whole_or_not_at_all_at_80x24() -> None:
    # A big account: B.SG 100,000 @ 38.00, the cure sells 27,000 (1,026,000.00).
    book = seed_book(b_quantity="100000")
    book.quotes["B.SG"] = Quote("B.SG", D("38.00"))
    book.set_cash(CashBalance("A1001", "SGD", D("-2500000")))
    app = Host(liquidate(book=book))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if "B.SG" in line)
        assert "27,000" in row
        assert " 1,026,000.00 " in row  # whole: a 12-wide cell drew "1,026,000.0"
        # −482,220.00 off the call fits the note at 80 columns (narrower Holding and
        # Quantity columns): whole, never cut (`WholeCell` draws "…" when it cannot).
        assert row.split("1,026,000.00", 1)[1].split() == ["−482,220.00", "█"]
    app = Host(liquidate(book=book))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if "B.SG" in line)
        assert "1,026,000.00 −482,220.00" in row


@pytest.mark.parametrize(
    ("width", "shown"),
    [(30, "100 working, −1,015.00"), (20, "100 working"), (3, "…"), (0, "")],
)
def test_a_whole_cell_draws_the_first_choice_that_fits(width: int, shown: str) -> None:
    assert fitting(("100 working, −1,015.00", "100 working"), width) == shown


def test_a_whole_cell_without_choices_draws_nothing() -> None:
    assert fitting((), 10) == ""


async def test_a_suspended_row_at_80x24_says_so_in_the_room_it_has() -> None:
    book = seed_book()
    book.instruments["C.SG"] = instrument("C.SG", "0.50", "0.45", "0.40", suspended=True)
    book.quotes["C.SG"] = Quote("C.SG", D("2.00"))
    book.set_position(Position("A1001", "C.SG", D("500")))
    app = Host(liquidate(book=book))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if "C.SG" in line)
    assert row.split("2.00", 1)[1].split() == ["—", "no", "trade", "█"]  # no value, no "…"


class _Switch:
    """The one query `liquidation_halt` asks of the desk."""

    def __init__(self, answer: KillSwitch | Exception) -> None:
        self.answer = answer

    async def kill_switch(self) -> KillSwitch:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_the_halt_a_dialog_opens_with_fails_closed() -> None:
    engaged = KillSwitch(True, "sue", datetime(2026, 3, 10, 2, 15, tzinfo=UTC), "drill")
    halt = await liquidation_halt(cast(DeskApi, _Switch(engaged)))
    assert halt is not None
    assert halt.startswith("KILL SWITCH engaged by sue at 2026-03-10 02:15 UTC")
    assert await liquidation_halt(cast(DeskApi, _Switch(KillSwitch(False)))) is None
    unreadable = await liquidation_halt(cast(DeskApi, _Switch(OSError("database gone"))))
    assert unreadable == ("KILL SWITCH state cannot be read (database gone): liquidations blocked")
