"""Messages in the client's language, through the real app, desk and simulator: the dialog
says which language and why, and what it previews is what the outbox records and sends.

The simulator's seed gives H2001 (陳大文) `"language": "zh-Hant"` and A1001 (Tan Mei Ling)
no language; `[messages.markets.SG]` then decides A1001's.
"""

from __future__ import annotations

import pytest
from textual.widgets import Static, TextArea

from risk_tui.config import MessagesSettings
from risk_tui.core.messages import Language
from risk_tui.widgets.dialogs import MessageDialog
from risk_tui.widgets.live_table import LiveTable
from tests.ui.helpers import desk_of
from tests.ui.test_app import Desk, make_app, row_text
from tests.ui.test_app import desk as app_desk
from tests.waiting import until

desk = app_desk  # the same simulator-backed desk as the app's own tests


@pytest.fixture
async def sg_simplified(desk: Desk) -> Desk:
    """SG clients without a language in the feed are written in Simplified Chinese."""
    messages = MessagesSettings.model_validate({"markets": {"SG": {"language": "zh-Hans"}}})
    desk.settings = desk.settings.model_copy(update={"messages": messages})
    return desk


async def _open_message(app: object, pilot: object, *accounts: str) -> MessageDialog:
    from risk_tui.app import RiskApp

    assert isinstance(app, RiskApp)
    table = app.query_one("#warnings-pane-table", LiveTable)
    for account in accounts:
        await until(lambda account=account: row_text(app, account) != "")  # type: ignore[misc]
    if len(accounts) == 1:
        assert table.move_cursor(accounts[0])
    else:
        for account in accounts:
            table.toggle_mark(account)
    await pilot.press("m")  # type: ignore[attr-defined]
    await until(lambda: isinstance(app.screen, MessageDialog))
    dialog = app.screen
    assert isinstance(dialog, MessageDialog)
    await pilot.pause()  # type: ignore[attr-defined]
    return dialog


async def test_one_client_in_their_feed_language_and_the_preview_is_what_is_sent(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await _open_message(app, pilot, "H2001")
        language = str(dialog.query_one("#language", Static).render())
        assert language == "Language: 繁體中文 (zh-Hant), the client's language in the feed"
        shown = dialog.query_one("#body", TextArea).text
        assert shown.startswith("尊敬的客戶 陳大文：\n\n您的保證金帳戶 H2001 的資產淨值已低於")
        call = desk_of(app).engine.open_calls["H2001"]
        assert f"HKD {call.call_amount:,.2f}" in shown  # the desk's figure, as on screen
        await pilot.press("ctrl+s")
        await until(lambda: sum(desk.sim.message_posts.values()) == 1, seconds=5)
        stored = await desk_of(app).store.messages.get(dialog.message_ids[call.call_id])
    assert stored is not None
    assert stored.body == shown  # recorded (and sent) exactly as previewed
    assert stored.account_id == "H2001"


async def test_marked_clients_each_in_their_language_and_the_preview_is_the_first_sent(
    sg_simplified: Desk,
) -> None:
    desk = sg_simplified
    app = make_app(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await _open_message(app, pilot, "A1001", "H2001")
        languages = {key: choice.language for key, choice in dialog.languages.items()}
        assert languages == {"A1001": Language.ZH_HANS, "H2001": Language.ZH_HANT}
        preview = str(dialog.query_one("#preview", Static).render())
        said = str(dialog.query_one("#language", Static).render())
        assert said.startswith("Languages: ")
        assert "繁體中文 1" in said
        assert "简体中文 1" in said
        await pilot.press("ctrl+s")
        await until(lambda: sum(desk.sim.message_posts.values()) == 2, seconds=5)
        stored = {}
        for call in dialog.calls:
            message = await desk_of(app).store.messages.get(dialog.message_ids[call.call_id])
            assert message is not None
            stored[call.account_id] = message.body
    first = dialog.calls[0].account_id
    assert stored[first] in preview  # the preview shows the first account's very text
    assert stored["A1001"].startswith("尊敬的客户 Tan Mei Ling：")  # SG's default: Simplified
    assert "追缴金额为 SGD 1,015.00" in stored["A1001"]
    assert stored["H2001"].startswith("尊敬的客戶 陳大文：")  # the feed's zh-Hant
