"""The desk's dialogs: cancel, the happy paths, idempotency keys, validation, inert data, snapshots.

Each dialog is pushed by a tiny host app with a callback and driven with `Pilot`. The
seed example (SPEC.md): cash −15,000 SGD, A 1,000 @ 5.00 (MM 25 %), B 1,000 @ 19.50
(MM 45 %): equity 9,500, call 1,015.00. The least-value cure in whole lots sells 100 A
and 100 B (2,450.00); 700 A alone leaves 70.00 to collect. The liquidate dialog's own
behaviour is tested in `test_liquidate_dialog` (its snapshots stay here, under this
module's name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal as D
from itertools import count
from typing import Any

import pytest
from textual.app import App
from textual.screen import Screen
from textual.widgets import Input, RadioSet, Static, TextArea

from risk_tui.core.actions import (
    AutoCondition,
    AutoLiquidationPlan,
    MessageIntent,
    PlanLine,
    SendState,
)
from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.lifecycle import CallState, MarginCall
from risk_tui.core.margin import AccountMargin, CallPolicy, compute_account
from risk_tui.core.messages import Language, LanguageChoice, LanguageSource
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    CashBalance,
    Instrument,
    Market,
    Position,
    Quote,
    Side,
)
from risk_tui.core.records import StoredOrder, StoredRemark
from risk_tui.core.roles import Actor, Role
from risk_tui.widgets.dialogs import (
    AutoLiquidationDialog,
    LiquidateDialog,
    MessageDialog,
    NotPermitted,
    RemarkDialog,
)
from risk_tui.widgets.dialogs.base import MarkCheckbox, Problems
from tests.factories import OPERATOR, VIEWER, BookFigures, make_call

SG = MARKET_TZ[Market.SG]
NOW = datetime(2026, 3, 10, 10, 30, tzinfo=SG)  # a Tuesday morning in Singapore
# Not the shared TRADER: the review's snapshot shows "operator alice".
TRADER = Actor("alice", Role.TRADER)

HOSTILE = "\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\ \x1b[2J \x9b31m [b]bold[/b] \u202e"
RAW_CONTROLS = ("\x1b", "\x9b", "\u202e", "\x07")


# --- data ----------------------------------------------------------------------------


def instrument(symbol: str, im: str, mm: str, fm: str, **kw: Any) -> Instrument:
    return Instrument(
        symbol=symbol,
        name=symbol,
        market=Market.SG,
        currency="SGD",
        lot_size=D(str(kw.pop("lot", "100"))),
        im_ratio=D(im),
        mm_ratio=D(mm),
        fm_ratio=D(fm),
        **kw,
    )


def seed_book(client_name: str = "Tan Mei Ling", b_quantity: str = "1000") -> Book:
    book = Book()
    book.instruments["A.SG"] = instrument("A.SG", "0.30", "0.25", "0.20")
    book.instruments["B.SG"] = instrument("B.SG", "0.50", "0.45", "0.40")
    book.quotes["A.SG"] = Quote("A.SG", D("5.00"))
    book.quotes["B.SG"] = Quote("B.SG", D("19.50"))
    book.accounts["A1001"] = Account("A1001", client_name, AccountKind.MARGIN, "SGD", Market.SG)
    book.set_cash(CashBalance("A1001", "SGD", D("-15000.00")))
    book.set_position(Position("A1001", "A.SG", D("1000")))
    book.set_position(Position("A1001", "B.SG", D(b_quantity)))
    return book


def seed_margin(book: Book | None = None) -> AccountMargin:
    return compute_account(book or seed_book(), "A1001", CallPolicy())


def seed_call(client_name: str = "Tan Mei Ling", **changes: Any) -> MarginCall:
    """The seed account's call, with the fixed id the snapshots show."""
    seed: dict[str, Any] = {
        "account_id": "A1001",
        "call_id": "MC20260310-A1001-0001",
        "client_name": client_name,
        "triggered_at": datetime(2026, 3, 10, 9, 5, tzinfo=SG),
        "deadline": datetime(2026, 3, 12, 15, 0, tzinfo=SG),
    }
    return make_call(**(seed | changes))


def ids(prefix: str) -> Callable[[], str]:
    """Deterministic keys for snapshots and assertions: RT-O-0000, RT-O-0001, …"""
    counter = count()
    return lambda: f"{prefix}{next(counter):04d}"


def working_order(symbol: str, quantity: str, filled: str = "0") -> StoredOrder:
    at = datetime(2026, 3, 10, 10, 0, tzinfo=SG)
    return StoredOrder(
        client_order_id="RT-O-earlier",
        call_id="MC20260310-A1001-0001",
        account_id="A1001",
        symbol=symbol,
        side=Side.SELL,
        quantity=D(quantity),
        order_type="market",
        limit_price=None,
        reason="margin_call",
        operator="alice",
        created_at=at,
        send_state=SendState.ACKNOWLEDGED,
        order_id="X1",
        status="working",
        filled_quantity=D(filled),
        avg_price=None,
        reject_reason=None,
        updated_at=at,
        account_state={},
    )


def remark(id_: int, text: str, exception: bool = False, operator: str = "bob") -> StoredRemark:
    return StoredRemark(
        id=id_,
        call_id="MC20260310-A1001-0001",
        at=datetime(2026, 3, 10, 9, 30 + id_, tzinfo=SG),
        operator=operator,
        text=text,
        exception=exception,
    )


# --- the host ------------------------------------------------------------------------


class Host(App[None]):
    """Pushes one screen with a callback and records every answer it gives."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.dialog = screen
        self.results: list[Any] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.results.append)


def screen_text(app: App[Any]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def segments(app: App[Any]) -> Iterator[Any]:
    for strip in app.screen._compositor.render_strips():
        yield from strip


def problems_text(screen: Screen[Any]) -> str:
    return str(screen.query_one("#problems", Problems).render())


def static_text(screen: Screen[Any], selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def type_into(pilot: Any, field: Input, text: str) -> None:
    field.focus()
    await pilot.press("end", "ctrl+u", *text)


ENGAGED = "KILL SWITCH engaged by sue at 2026-03-10 02:15 UTC: liquidations blocked"


def liquidate(**kw: Any) -> LiquidateDialog:
    book = kw.pop("book", None) or seed_book()
    return LiquidateDialog(
        kw.pop("call", seed_call()),
        seed_margin(book),
        kw.pop("actor", TRADER),
        kw.pop("working", ()),
        figures=BookFigures(book),
        halted=kw.pop("halted", None),
        new_order_id=kw.pop("new_order_id", ids("RT-O-")),
    )


# --- AutoLiquidationDialog -----------------------------------------------------------


def auto(**kw: Any) -> AutoLiquidationDialog:
    book = kw.pop("book", None) or seed_book()
    return AutoLiquidationDialog(
        kw.pop("call", seed_call()),
        seed_margin(book),
        kw.pop("actor", TRADER),
        kw.pop("now", NOW),
        figures=BookFigures(book),
        halted=kw.pop("halted", None),
        new_id=kw.pop("new_id", ids("RT-A-")),
    )


async def test_auto_escape_returns_none() -> None:
    app = Host(auto())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert app.focused is not None
        assert app.focused.id == "execute-at"
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def test_auto_schedules_a_plan_with_a_moved_deadline() -> None:
    dialog = auto()
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await type_into(pilot, dialog.query_one("#execute-at", Input), "15:00")
        dialog.query_one("#condition", RadioSet).focus()
        await pilot.press("down", "space")  # below FM
        await type_into(pilot, dialog.query_one("#new-deadline", Input), "2026-03-13 15:00")
        await type_into(pilot, dialog.query_one("#deadline-reason", Input), "client abroad")
        await pilot.press("ctrl+r")
        review = static_text(dialog, "#review-text")
        assert "At 2026-03-10 15:00 SG, if the account is below" in review
        assert "Deadline moves from 2026-03-12 15:00 SG to 2026-03-13 15:00 SG" in review
        await pilot.press("ctrl+s", "ctrl+s")
        await pilot.pause()
    assert app.results == [
        AutoLiquidationPlan(
            plan_id="RT-A-0000",
            call_id="MC20260310-A1001-0001",
            account_id="A1001",
            execute_at=datetime(2026, 3, 10, 15, 0, tzinfo=SG),
            condition=AutoCondition.BELOW_FM,
            lines=(PlanLine("A.SG", Side.SELL, D("100")), PlanLine("B.SG", Side.SELL, D("100"))),
            operator="alice",
            moved_deadline=datetime(2026, 3, 13, 15, 0, tzinfo=SG),
            deadline_reason="client abroad",
        )
    ]


async def test_auto_shows_the_cure_and_refuses_review_under_the_kill_switch() -> None:
    dialog = auto(halted=ENGAGED)
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert ENGAGED in screen_text(app)
        assert static_text(dialog, "#verdict").startswith("Meets the call")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert "no liquidation can be reviewed or sent" in problems_text(dialog)
    assert app.results == []


async def test_auto_defaults_to_the_deadline_while_still_in_call() -> None:
    dialog = auto()
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        assert dialog.query_one("#execute-at", Input).value == "2026-03-12 15:00"
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
    plan = app.results[0]
    assert plan.execute_at == datetime(2026, 3, 12, 15, 0, tzinfo=SG)
    assert plan.condition is AutoCondition.STILL_IN_CALL
    assert plan.moved_deadline is None
    assert plan.deadline_reason is None


@pytest.mark.parametrize(
    ("at", "deadline", "reason", "error"),
    [
        ("09:00", "", "", "Execute at: 2026-03-10 09:00 SG is not in the future"),
        ("soon", "", "", "Execute at: 'soon' is not HH:MM or YYYY-MM-DD HH:MM"),
        ("15:00", "2026-03-13 15:00", "", "Reason: moving a deadline needs a reason"),
        ("15:00", "2026-03-01 15:00", "typo", "Move deadline: 2026-03-01 15:00 SG is not"),
        ("15:00", "", "why", "Reason: given, but no new deadline"),
    ],
)
async def test_auto_invalid_entries_block_with_text_errors(
    at: str, deadline: str, reason: str, error: str
) -> None:
    dialog = auto()
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await type_into(pilot, dialog.query_one("#execute-at", Input), at)
        await type_into(pilot, dialog.query_one("#new-deadline", Input), deadline)
        await type_into(pilot, dialog.query_one("#deadline-reason", Input), reason)
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
        assert not dialog.reviewing
        assert f"Error: {error}" in problems_text(dialog)
    assert app.results == []


# --- MessageDialog -------------------------------------------------------------------


def message(targets: list[tuple[MarginCall, AccountMargin | None]] | None = None) -> MessageDialog:
    return MessageDialog(
        targets or [(seed_call(), seed_margin())], TRADER, NOW, new_id=ids("RT-M-")
    )


async def test_message_escape_returns_none() -> None:
    app = Host(message())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.focused is not None
        assert app.focused.id == "channel"
        app.dialog.query_one("#body", TextArea).focus()
        await pilot.press("escape")  # even from the text editor
        await pilot.pause()
    assert app.results == [None]


async def test_message_to_one_client_by_email_with_the_filled_template() -> None:
    dialog = message()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("right", "space")  # channel: email
        await pilot.press("ctrl+s")
        await pilot.pause()
    (intent,) = app.results[0]
    assert isinstance(intent, MessageIntent)
    assert intent.message_id == "RT-M-0000"
    assert (intent.account_id, intent.channel) == ("A1001", "email")
    assert intent.subject == "Margin call on account A1001"
    assert intent.body.startswith("Dear Tan Mei Ling,")
    assert "deposit SGD 1,015.00" in intent.body
    assert "by 2026-03-12 15:00 SG time" in intent.body
    assert (intent.reference, intent.operator) == ("MC20260310-A1001-0001", "alice")


async def test_message_preview_is_editable_and_the_template_can_change() -> None:
    dialog = message()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog.query_one("#template", RadioSet).focus()
        await pilot.press("right", "space")  # reminder
        await pilot.pause()
        body = dialog.query_one("#body", TextArea)
        assert "still in margin call" in body.text
        body.text = body.text + "\nCall us on 6555 0000."
        await pilot.press("ctrl+s", "ctrl+s")
        await pilot.pause()
    assert len(app.results) == 1
    (intent,) = app.results[0]
    assert intent.channel == "app"
    assert intent.subject is None
    assert intent.body.endswith("still in margin call. The amount due is SGD 1,015.00, to be "
                                "met by 2026-03-12 15:00 SG time. If it is not met by then, we "
                                "may liquidate your positions without further notice.\n"
                                "Call us on 6555 0000.")  # fmt: skip


async def test_message_to_marked_rows_fills_the_template_per_account() -> None:
    calls = [
        seed_call(call_id="C1", account_id="A1", client_name="Lim", call_amount=D("100")),
        seed_call(call_id="C2", account_id="A2", client_name="Wong", call_amount=D("250.5")),
        seed_call(call_id="C3", account_id="A3", client_name="Ng", call_amount=D("1000")),
    ]
    dialog = message([(c, None) for c in calls])
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "3 accounts marked · total call amount SGD 1,350.50" in text
        assert "Send to 3 accounts" in text
        await pilot.press("ctrl+s")
        await pilot.pause()
    intents = app.results[0]
    assert [i.account_id for i in intents] == ["A1", "A2", "A3"]
    assert [i.reference for i in intents] == ["C1", "C2", "C3"]
    assert [i.message_id for i in intents] == ["RT-M-0000", "RT-M-0001", "RT-M-0002"]
    assert "Dear Wong," in intents[1].body
    assert "SGD 250.50" in intents[1].body
    assert "Dear Ng," in intents[2].body
    assert "SGD 1,000.00" in intents[2].body


async def test_message_empty_body_is_refused() -> None:
    dialog = message()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog.query_one("#body", TextArea).text = "   "
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Error: the message is empty" in problems_text(dialog)
    assert app.results == []


HANT = LanguageChoice(Language.ZH_HANT, LanguageSource.CLIENT, Market.SG)
HANS_SG = LanguageChoice(Language.ZH_HANS, LanguageSource.MARKET, Market.SG)


async def test_message_in_the_clients_language_says_which_and_why() -> None:
    dialog = MessageDialog(
        [(seed_call(), seed_margin())], TRADER, NOW, languages={"A1001": HANT}, new_id=ids("M")
    )
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert static_text(dialog, "#language") == (
            "Language: 繁體中文 (zh-Hant), the client's language in the feed"
        )
        body = dialog.query_one("#body", TextArea).text
        assert body.startswith("尊敬的客戶 Tan Mei Ling：\n\n")
        assert "須追加保證金 SGD 1,015.00。請於 2026-03-12 15:00（新加坡時間）前" in body
        assert not dialog.query_one("#subject", Static).display  # the app has no subject
        await pilot.press("right", "space")  # channel: email, whose subject is sent too
        await pilot.pause()
        assert dialog.query_one("#subject", Static).display
        assert static_text(dialog, "#subject") == "Subject: 帳戶 A1001 追加保證金通知"
        await pilot.press("ctrl+s")
        await pilot.pause()
    (intent,) = app.results[0]
    assert (intent.subject, intent.body) == ("帳戶 A1001 追加保證金通知", body)


async def test_message_without_a_language_says_the_desks_default() -> None:
    dialog = message()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert static_text(dialog, "#language") == "Language: English (en), the desk's default"


async def test_a_force_call_gets_the_force_call_notice_by_default() -> None:
    dialog = message([(seed_call(state=CallState.FORCE_CALL), None)])
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert dialog.template.key == "force"
        body = dialog.query_one("#body", TextArea).text
        assert "Please deposit SGD 1,015.00 immediately." in body


async def test_message_many_previews_the_very_text_each_language_sends() -> None:
    calls = [
        seed_call(call_id="C1", account_id="A1", client_name="Lim", call_amount=D("100")),
        seed_call(call_id="C2", account_id="A2", client_name="陳大文", call_amount=D("250.5")),
    ]
    languages = {"A1": HANS_SG, "A2": HANT}
    dialog = MessageDialog(
        [(c, None) for c in calls], TRADER, NOW, languages=languages, new_id=ids("M")
    )
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        preview = static_text(dialog, "#preview")
        assert "Languages: 简体中文 1, 繁體中文 1" in static_text(dialog, "#language")
        drafts = dialog.drafts(dialog.template)
        await pilot.press("ctrl+s")
        await pilot.pause()
    first, second = app.results[0]
    assert first.body is drafts["C1"].body  # the very string the preview was made from
    assert second.body is drafts["C2"].body
    assert preview.endswith(first.body)
    assert first.body.startswith("尊敬的客户 Lim：")
    assert "追缴金额为 SGD 100.00" in first.body
    assert second.body.startswith("尊敬的客戶 陳大文：")
    assert "須追加保證金 SGD 250.50" in second.body


def test_message_refuses_viewers() -> None:
    with pytest.raises(NotPermitted, match="may not send messages"):
        MessageDialog([(seed_call(), None)], VIEWER, NOW)
    MessageDialog([(seed_call(), None)], OPERATOR, NOW)  # operators may message


# --- RemarkDialog --------------------------------------------------------------------


def remark_dialog(**changes: Any) -> RemarkDialog:
    history = [remark(1, "client promised to pay"), remark(2, "no positions left", True, "alice")]
    return RemarkDialog(seed_call(remark="called client", **changes), history)


async def test_remark_escape_returns_none() -> None:
    app = Host(remark_dialog())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.focused is not None
        assert app.focused.id == "remark"
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def test_remark_is_prefilled_and_answers_text_and_exception() -> None:
    dialog = remark_dialog()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        field = dialog.query_one("#remark", Input)
        assert field.value == "called client"
        assert dialog.query_one("#exception", MarkCheckbox).value is False
        text = screen_text(app)
        assert "2026-03-10 09:32 SG  alice         EXCEPTION  no positions left" in text
        assert text.index("no positions left") < text.index("client promised")  # newest first
        await type_into(pilot, field, "debt, no positions: write-off pending")
        dialog.query_one("#exception", MarkCheckbox).focus()
        await pilot.press("space", "ctrl+s")
        await pilot.pause()
    assert app.results == [("debt, no positions: write-off pending", True)]


async def test_remark_exception_needs_a_reason() -> None:
    dialog = remark_dialog()
    app = Host(dialog)
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, dialog.query_one("#remark", Input), "")
        dialog.query_one("#exception", MarkCheckbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Error: an exception needs a remark saying why" in problems_text(dialog)
    assert app.results == []


# --- hostile data --------------------------------------------------------------------


def hostile_dialogs() -> dict[str, Callable[[], Screen[Any]]]:
    call = seed_call(client_name=HOSTILE, remark=HOSTILE)
    book = seed_book(client_name=HOSTILE)
    margin = seed_margin(book)
    figures = BookFigures(book)
    return {
        "liquidate": lambda: LiquidateDialog(call, margin, TRADER, figures=figures, halted=HOSTILE),
        "auto": lambda: AutoLiquidationDialog(call, margin, TRADER, NOW, figures=figures),
        "message": lambda: MessageDialog([(call, margin)], TRADER, NOW),
        "message-many": lambda: MessageDialog(
            [(call, margin), (replace(call, call_id="C2"), None)], TRADER, NOW
        ),
        "remark": lambda: RemarkDialog(call, [remark(1, HOSTILE, operator=HOSTILE)]),
    }


@pytest.mark.parametrize("name", list(hostile_dialogs()))
async def test_hostile_client_name_renders_inert(name: str) -> None:
    app = Host(hostile_dialogs()[name]())
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "[b]bold[/b]" in text  # markup shown literally, not applied
        assert "␛]8;;http://evil" in text  # the escape shown as a visible stand-in
        for control in RAW_CONTROLS:
            assert control not in text
        assert all(segment.style is None or not segment.style.link for segment in segments(app))


# --- snapshots -----------------------------------------------------------------------


def snapshot_host(screen: Screen[Any]) -> Host:
    return Host(screen)


SIZES = [(80, 24), (160, 50)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_liquidate(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(snapshot_host(liquidate()), terminal_size=size)


def test_snapshot_liquidate_review(snap_compare: Any) -> None:
    assert snap_compare(snapshot_host(liquidate()), press=["ctrl+r"], terminal_size=(80, 24))


def test_snapshot_liquidate_error(snap_compare: Any) -> None:
    async def odd_lot(pilot: Any) -> None:
        dialog = pilot.app.dialog
        dialog.query_one("#qty-1", Input).value = "150"
        await pilot.press("ctrl+r")

    assert snap_compare(snapshot_host(liquidate()), run_before=odd_lot, terminal_size=(80, 24))


@pytest.mark.parametrize("size", [*SIZES, (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_auto_liquidation(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(snapshot_host(auto()), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_message(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(snapshot_host(message()), terminal_size=size)


def test_snapshot_message_in_traditional_chinese(snap_compare: Any) -> None:
    dialog = MessageDialog(
        [(seed_call(client_name="陳大文"), seed_margin())],
        TRADER,
        NOW,
        languages={"A1001": HANT},
        new_id=ids("RT-M-"),
    )
    assert snap_compare(snapshot_host(dialog), terminal_size=(80, 24))


def test_snapshot_message_many(snap_compare: Any) -> None:
    calls = [
        seed_call(call_id=f"C{n}", account_id=f"A100{n}", client_name=name)
        for n, name in enumerate(["Tan Mei Ling", "陳大文", "Wong Kar Fai"])
    ]
    assert snap_compare(snapshot_host(message([(c, None) for c in calls])), terminal_size=(80, 24))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_remark(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(snapshot_host(remark_dialog()), terminal_size=size)
