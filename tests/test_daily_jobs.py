"""The engine's daily jobs against the simulator: the DAILY snapshot and the reminder.

Once per open call per market-local day, never on the trigger day, only on live data,
and never twice — not after a second pass, a restart, or a second engine racing on the
same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import date

import pytest

from risk_tui.config import ConfigError, MessagesSettings, load_settings
from risk_tui.core.lifecycle import CallState
from risk_tui.core.messages import REMINDER, Language, call_message
from risk_tui.core.money import format_money
from risk_tui.desk.daily import DAILY_REMINDER_ACTOR, reminder_message_id
from tests.desk_rig import Rig, desk_rig, seed_call_id
from tests.factories import OPERATOR
from tests.waiting import until

TUESDAY = date(2026, 11, 24)


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with desk_rig(db_url) as desk:
        yield desk


# --- settings ------------------------------------------------------------------------------


def test_daily_settings_defaults_and_validation() -> None:
    daily = load_settings(None, env={}, discover=False).daily
    assert (daily.snapshot_time.isoformat(), daily.reminder_time.isoformat()) == (
        "17:30:00",
        "09:30:00",
    )
    assert daily.reminders is True
    assert daily.reminder_channel == "app"
    with pytest.raises(ConfigError, match=r"daily\.reminder_channel"):
        load_settings(None, env={"RISK_TUI_DAILY__REMINDER_CHANNEL": "fax"}, discover=False)
    with pytest.raises(ConfigError, match=r"daily\.snapshot_time: a market local time"):
        load_settings(None, env={"RISK_TUI_DAILY__SNAPSHOT_TIME": "17:30+08:00"}, discover=False)
    off = load_settings(None, env={"RISK_TUI_DAILY__REMINDERS": "false"}, discover=False)
    assert off.daily.reminders is False


# --- the daily snapshot ------------------------------------------------------------------


async def test_daily_snapshot_once_per_day_from_the_day_after_the_trigger(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    rig.clock.set_sgt(date(2026, 11, 23), 18, 0)  # Monday, after 17:30: the trigger day
    snapshots, _ = await rig.desk.daily.run_once()
    assert call_id not in snapshots
    assert await rig.daily_snapshots(call_id) == []

    rig.clock.set_sgt(TUESDAY, 17, 29)  # before snapshot_time
    snapshots, _ = await rig.desk.daily.run_once()
    assert call_id not in snapshots

    rig.clock.set_sgt(TUESDAY, 17, 31)
    await rig.desk.poller.poll()
    snapshots, _ = await rig.desk.daily.run_once()
    assert call_id in snapshots
    assert await rig.daily_snapshots(call_id) == [rig.clock.now]
    stored = next(
        s for s in await rig.store.history.snapshots_for(call_id) if s.scenario == "daily"
    )
    assert stored.payload["account_id"] == "A1001"
    assert stored.payload["call_amount"] == "1015.00"
    assert await rig.store.daily.daily_done("snapshot", call_id, TUESDAY)

    # A second pass, and a restart on the same database: still one for Tuesday.
    rig.clock.set_sgt(TUESDAY, 20, 0)
    assert call_id not in (await rig.desk.daily.run_once())[0]
    restarted = await rig.new_desk()
    assert call_id not in (await restarted.daily.run_once())[0]
    assert len(await rig.daily_snapshots(call_id)) == 1

    # Wednesday: the next one.
    rig.clock.set_sgt(date(2026, 11, 25), 17, 45)
    assert call_id in (await restarted.daily.run_once())[0]
    assert len(await rig.daily_snapshots(call_id)) == 2


async def test_a_racing_second_engine_writes_no_second_daily_snapshot(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id = seed_call_id(rig.desk)
    rig.clock.set_sgt(TUESDAY, 17, 31)
    other = await rig.new_desk()
    assert call_id in (await rig.desk.daily.run_once())[0]

    # The other engine read the markers before the first one committed.
    async def nothing_done(job: str) -> dict[str, date]:
        return {}

    monkeypatch.setattr(rig.store.daily, "last_daily", nothing_done)
    snapshots, _ = await other.daily.run_once()  # DailyAlreadyDone is caught
    assert call_id not in snapshots
    assert len(await rig.daily_snapshots(call_id)) == 1


async def test_no_daily_snapshot_while_stale_then_taken_once_live(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = seed_call_id(rig.desk)
    rig.clock.set_sgt(TUESDAY, 17, 31)
    rig.monotonic.now += 31  # no successful poll for longer than stale_after: STALE
    with caplog.at_level(logging.WARNING, logger="risk_tui.desk"):
        assert await rig.desk.daily.run_once() == ([], [])
        assert await rig.desk.daily.run_once() == ([], [])
    assert await rig.daily_snapshots(call_id) == []
    waiting = [r for r in caplog.records if "feed is not live" in r.getMessage()]
    assert len(waiting) == 2  # once for the snapshots, once for the reminders: not per pass
    caplog.clear()

    rig.clock.set_sgt(TUESDAY, 19, 0)
    await rig.desk.poller.poll()  # live again
    with caplog.at_level(logging.WARNING, logger="risk_tui.desk"):
        snapshots, reminders = await rig.desk.daily.run_once()
    assert call_id in snapshots
    assert call_id in reminders
    assert await rig.daily_snapshots(call_id) == [rig.clock.now]
    assert any("done late" in r.getMessage() for r in caplog.records)


# --- the daily reminder ------------------------------------------------------------------


async def test_one_reminder_on_tuesday_after_reminder_time_across_a_restart(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id = seed_call_id(rig.desk)
    message_id = reminder_message_id(call_id, TUESDAY)
    rig.clock.set_sgt(date(2026, 11, 23), 11, 0)  # the trigger day: the notice covers it
    assert call_id not in (await rig.desk.daily.run_once())[1]
    rig.clock.set_sgt(TUESDAY, 9, 29)
    assert call_id not in (await rig.desk.daily.run_once())[1]
    assert message_id not in rig.sim.message_posts

    rig.clock.set_sgt(TUESDAY, 9, 31)
    call_then = rig.desk.engine.open_calls["A1001"]
    _, reminders = await rig.desk.daily.run_once()
    assert call_id in reminders
    assert rig.sim.message_posts[message_id] == 1
    message = await rig.store.messages.get(message_id)
    assert message is not None
    assert message.operator == DAILY_REMINDER_ACTOR.name
    assert message.channel == "app"
    assert message.call_id == call_id
    assert "Tan Mei Ling" in message.body
    assert "SGD 1,015.00" in message.body
    assert "to be met by 2026-11-25 15:00 SG time" in message.body
    assert message.body == call_message(REMINDER, call_then, Language.EN).body
    assert await rig.store.daily.daily_done("reminder", call_id, TUESDAY)
    call = rig.desk.engine.open_calls["A1001"]
    assert call.state is CallState.NOTIFIED

    # A second pass, a restart, and an engine that missed the marker: one message.
    assert call_id not in (await rig.desk.daily.run_once())[1]
    restarted = await rig.new_desk()
    assert call_id not in (await restarted.daily.run_once())[1]

    async def not_done(job: str, call_id: str, day: date) -> bool:
        return False

    monkeypatch.setattr(rig.store.daily, "daily_done", not_done)
    racing = await rig.new_desk()
    assert call_id not in (await racing.daily.run_once())[1]
    assert rig.sim.message_posts[message_id] == 1


async def test_no_reminder_for_an_exception_or_after_the_deadline(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    await rig.desk.call_actions.add_remark(
        call_id, "debt, no positions left", exception=True, actor=OPERATOR
    )
    rig.clock.set_sgt(TUESDAY, 10, 0)
    assert call_id not in (await rig.desk.daily.run_once())[1]
    assert reminder_message_id(call_id, TUESDAY) not in rig.sim.message_posts

    await rig.desk.call_actions.set_exception(call_id, False, OPERATOR)
    thursday = date(2026, 11, 26)  # the deadline was Wednesday 15:00
    rig.clock.set_sgt(thursday, 10, 0)
    await rig.desk.poller.poll()
    assert call_id not in (await rig.desk.daily.run_once())[1]
    assert reminder_message_id(call_id, thursday) not in rig.sim.message_posts


async def test_no_reminder_while_the_feed_is_stale(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    rig.clock.set_sgt(TUESDAY, 10, 0)
    rig.monotonic.now += 31
    assert await rig.desk.daily.run_once() == ([], [])
    assert reminder_message_id(call_id, TUESDAY) not in rig.sim.message_posts


async def test_the_reminder_is_in_the_clients_language_else_the_markets_default(
    rig: Rig,
) -> None:
    # The seed's H2001 (陳大文) is `zh-Hant` in the feed; A1001 gives no language, so
    # its market's configured default (Simplified, here) applies.
    messages = MessagesSettings.model_validate({"markets": {"SG": {"language": "zh-Hans"}}})
    rig.desk.engine.settings = rig.settings.model_copy(update={"messages": messages})
    rig.clock.set_sgt(TUESDAY, 9, 31)
    calls = {key: seed_call_id(rig.desk, key) for key in ("A1001", "H2001")}
    _, reminders = await rig.desk.daily.run_once()
    assert set(calls.values()) <= set(reminders)
    sent = {}
    for account, call_id in calls.items():
        stored = await rig.store.messages.get(reminder_message_id(call_id, TUESDAY))
        assert stored is not None
        sent[account] = stored
    assert sent["A1001"].body.startswith(
        "尊敬的客户 Tan Mei Ling：\n\n温馨提醒，您的保证金账户 A1001"
    )
    assert "追缴金额为 SGD 1,015.00。请于 2026-11-25 15:00（新加坡时间）前补足资金或减仓。" in (
        sent["A1001"].body
    )
    h2001 = rig.desk.engine.open_calls["H2001"]
    amount = format_money(h2001.call_amount, "HKD")
    assert sent["H2001"].body.startswith("尊敬的客戶 陳大文：\n\n謹此提示，您的保證金帳戶 H2001")
    assert f"仍須追加保證金 HKD {amount}。請於 2026-11-25 15:00（香港時間）前" in sent["H2001"].body


async def test_reminders_can_be_switched_off(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    daily = rig.settings.daily.model_copy(update={"reminders": False})
    rig.desk.engine.settings = rig.settings.model_copy(update={"daily": daily})
    rig.clock.set_sgt(TUESDAY, 10, 0)
    assert call_id not in (await rig.desk.daily.run_once())[1]
    assert reminder_message_id(call_id, TUESDAY) not in rig.sim.message_posts


# --- the loop --------------------------------------------------------------------------


async def test_desk_run_starts_the_daily_loop(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    rig.clock.set_sgt(TUESDAY, 17, 31)
    desk = await rig.new_desk(daily_interval=0.01)
    message_id = reminder_message_id(call_id, TUESDAY)
    task = asyncio.create_task(desk.run())
    try:
        await until(
            lambda: rig.store.daily.daily_done("reminder", call_id, TUESDAY),
            what="the day's reminder done by desk.run()",
        )

    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(await rig.daily_snapshots(call_id)) == 1
    assert rig.sim.message_posts[message_id] == 1
