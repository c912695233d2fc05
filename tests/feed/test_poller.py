"""The poller against FEED.md servers that behave, and against ones that do not."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from risk_tui.config import FeedSettings, load_settings
from risk_tui.core.calendar import TradingCalendars, default_overrides_path, load_overrides
from risk_tui.core.feed_health import FeedHealth, FeedStatus
from risk_tui.desk.api import DeskRole
from risk_tui.desk.compose import compose_desk
from risk_tui.feed.client import FeedAuthError, FeedUnavailable, make_client
from risk_tui.feed.models import ParsedPayload
from risk_tui.feed.poller import Poller
from tests.clocks import Monotonic
from tests.feed.fake_feed import (
    FakeFeed,
    serve,
    silent_server,
    trickling_server,
    unconnectable_port,
)
from tests.recording import RecordingCalls, recording_store
from tests.waiting import until


class Recorder:
    def __init__(self) -> None:
        self.payloads: list[tuple[bool, ParsedPayload]] = []

    async def __call__(self, parsed: ParsedPayload, *, full: bool) -> int:
        self.payloads.append((full, parsed))
        return len(parsed.changes.accounts)


def feed_settings(url: str, **kw: Any) -> FeedSettings:
    return FeedSettings(url=url, **kw)


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


async def test_snapshot_then_changes_with_cursor() -> None:
    fake = FakeFeed()
    async with serve(fake.app()) as url, make_client(feed_settings(url)) as client:
        sink = Recorder()
        poller = Poller(client, feed_settings(url), sink)
        first = await poller.poll_once()
        assert first.full
        assert first.cursor == "000000000000000"
        fake.add_changes(quotes=[{"symbol": "B.SG", "price": "19.00"}])
        second = await poller.poll_once()
        assert not second.full
        assert second.cursor == "000000000000001"
        third = await poller.poll_once()  # an empty change list is a heartbeat
        assert not third.full
        assert third.applied == 0
    assert fake.requests == {"snapshot": 1, "changes": 2}
    assert sink.payloads[1][1].changes.quotes[0].price == 19
    assert poller.health.status(time.monotonic()) is FeedStatus.LIVE


async def test_410_gone_fetches_a_fresh_snapshot() -> None:
    fake = FakeFeed()
    async with serve(fake.app()) as url, make_client(feed_settings(url)) as client:
        sink = Recorder()
        poller = Poller(client, feed_settings(url), sink)
        await poller.poll_once()
        fake.add_changes(quotes=[{"symbol": "B.SG", "price": "18.00"}])
        fake.gone_next = 1
        result = await poller.poll_once()
    assert result.full
    assert fake.requests == {"snapshot": 2, "changes": 1}
    full, parsed = sink.payloads[-1]
    assert full
    assert parsed.changes.cursor == "000000000000001"


async def test_malformed_records_rejected_alone_and_counted() -> None:
    fake = FakeFeed()
    async with serve(fake.app()) as url, make_client(feed_settings(url)) as client:
        sink = Recorder()
        poller = Poller(client, feed_settings(url), sink)
        await poller.poll_once()
        fake.add_changes(
            quotes=[
                {"symbol": "A.SG", "price": 4.5},
                {"symbol": "B.SG", "price": "18.50", "exchange_note": "unknown field"},
            ],
            cash=[{"account_id": "A1001", "currency": "SGD"}],
        )
        result = await poller.poll_once()
    assert (result.applied, result.rejected) == (1, 2)
    assert poller.health.rejected == 2
    assert poller.health.rejected_total == 2
    assert [q.symbol for q in sink.payloads[-1][1].changes.quotes] == ["B.SG"]


async def test_token_is_sent_and_401_is_reported_not_hammered() -> None:
    fake = FakeFeed(token="right")
    async with serve(fake.app()) as url:
        async with make_client(feed_settings(url, token="right")) as client:
            assert (await Poller(client, feed_settings(url), Recorder()).poll_once()).full
        settings = feed_settings(url, token="wrong")
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            if len(slept) == 3:
                await asyncio.Event().wait()  # three rounds are enough: park here

        async with make_client(settings) as client:
            poller = Poller(client, settings, Recorder(), sleep=sleep)
            with pytest.raises(FeedAuthError):
                await poller.poll()  # not retried
            assert slept == []
            task = asyncio.create_task(poller.run())
            await until(lambda: len(slept) == 3, what="run() waiting three times after a 401")
            task.cancel()
    # One good, one refused, then one a round from run(), each round waiting the cap.
    assert fake.requests["snapshot"] == 5
    assert slept == [poller.backoff_cap] * 3
    assert poller.health.status(time.monotonic()) is FeedStatus.DOWN
    assert "401" in (poller.health.last_error or "")


async def test_5xx_retried_with_capped_exponential_backoff() -> None:
    fake = FakeFeed(fail_next=8)
    delays: list[float] = []

    async def record_sleep(delay: float) -> None:
        delays.append(delay)

    async with serve(fake.app()) as url, make_client(feed_settings(url)) as client:
        health: list[FeedHealth] = []
        poller = Poller(
            client,
            feed_settings(url),
            Recorder(),
            sleep=record_sleep,
            backoff_cap=4.0,
            on_health=health.append,
        )
        result = await poller.poll()
    assert result.full
    assert fake.requests["snapshot"] == 9
    assert len(delays) == 8
    assert all(0.5 <= d <= 4.0 for d in delays)
    assert delays[-1] == 4.0
    assert delays[0] < 2.0
    assert [h.consecutive_failures for h in health[:8]] == list(range(1, 9))
    assert "HTTP 503" in (health[0].last_error or "")
    assert health[-1].consecutive_failures == 0


@pytest.mark.parametrize("server", ["trickle", "silent", "unconnectable"])
async def test_poll_stays_within_its_total_deadline(server: str) -> None:
    async def attempt(url: str) -> float:
        settings = feed_settings(url, timeout=1.0)
        async with make_client(settings) as client:
            poller = Poller(client, settings, Recorder())
            started = time.monotonic()
            with pytest.raises(FeedUnavailable, match="no complete answer within 1s"):
                await poller.poll_once()
            return time.monotonic() - started

    if server == "trickle":
        async with trickling_server() as url:
            elapsed = await attempt(url)
    elif server == "silent":
        async with silent_server() as url:
            elapsed = await attempt(url)
    else:
        with unconnectable_port() as url:
            elapsed = await attempt(url)
    assert 0.9 <= elapsed < 2.5


async def test_feed_down_and_back_stale_then_down_then_live_and_no_call_ends(
    tmp_path: Path,
) -> None:
    """The desk polling a feed that goes away and comes back, on a hand-moved clock that
    the poller's own sleeps move: the 15 s of silence before DOWN pass at once. The
    real-time version, through the terminal's banner, is in `tests/ui/test_app.py`."""
    fake = FakeFeed()
    defaults = load_settings(None, env={}, discover=False)
    calendars = TradingCalendars(load_overrides(default_overrides_path()), today=date(2026, 11, 22))
    clock = Monotonic()
    statuses: list[FeedStatus] = []  # each status the operator could have seen, in order
    async with recording_store(tmp_path) as store:
        async with serve(fake.app()) as url:
            port = int(url.rsplit(":", 1)[1])
            feed = FeedSettings(url=url)  # a poll a second, stale after 5 s, down after 15 s
            client = make_client(feed)
            settings = defaults.model_copy(update={"feed": feed})
            desk = compose_desk(
                DeskRole.EMBEDDED, settings, store, calendars, client, monotonic=clock
            )

            def look() -> None:
                status = desk.poller.health.status(clock())
                if not statuses or statuses[-1] is not status:
                    statuses.append(status)

            async def sleep(seconds: float) -> None:  # between polls and in the backoff
                look()
                await clock.sleep(seconds)
                look()

            desk.poller.sleep = sleep
            await desk.start()
            look()
            task = asyncio.create_task(desk.run())
            await until(
                lambda: [r.account_id for r in desk.engine.view.warnings] == ["A1001"],
                what="the seed account's call",
            )
            fake.add_changes(quotes=[{"symbol": "B.SG", "price": "19.40"}])
            await until(lambda: fake.delivered[0] == 1, what="the first change set polled")
        # The server is gone; polling goes on into the void. The call stays open.
        await until(lambda: FeedStatus.DOWN in statuses, what="the feed reported DOWN")
        assert desk.engine.view.warnings
        assert desk.engine.view.warnings[0].call.is_open
        assert "cannot connect" in (desk.poller.health.last_error or "")
        assert max(clock.slept) <= desk.poller.backoff_cap
        # Back on the same port, with a price recovery that ends the call on fresh data.
        fake.add_changes(quotes=[{"symbol": "B.SG", "price": "22.00"}])
        async with serve(fake.app(), port=port):
            await until(
                lambda: desk.poller.health.status(clock()) is FeedStatus.LIVE,
                what="the feed LIVE again",
            )
            look()
            await until(lambda: not desk.engine.view.warnings, what="the call ended")

            task.cancel()
            await client.aclose()
        assert statuses == [
            FeedStatus.CONNECTING,
            FeedStatus.LIVE,
            FeedStatus.STALE,
            FeedStatus.DOWN,
            FeedStatus.LIVE,
        ]
        assert isinstance(store.calls, RecordingCalls)
        ends = [s for b in store.calls.batches for s in b.snapshots if s.scenario == "end"]
        assert len(ends) == 1
        # Each change set went out once: the poller never re-asked from a cursor it had passed.
        assert fake.delivered == {0: 1, 1: 1}


async def test_restart_shows_cached_book_stale_until_first_poll(tmp_path: Path) -> None:
    fake = FakeFeed()
    calendars = TradingCalendars(load_overrides(default_overrides_path()), today=date(2026, 11, 22))
    defaults = load_settings(None, env={}, discover=False)
    async with recording_store(tmp_path) as store, serve(fake.app()) as url:
        feed = FeedSettings(url=url, stale_after=1.0, timeout=1.0)
        settings = defaults.model_copy(update={"feed": feed})
        async with make_client(feed) as client:
            first = compose_desk(DeskRole.EMBEDDED, settings, store, calendars, client)
            await first.start()
            await first.poller.poll()
            fake.add_changes(quotes=[{"symbol": "B.SG", "price": "19.40"}])
            await first.poller.poll()
            await first.cache.save()
            # A new process: the last known state at once, marked stale, calls loaded.
            second = compose_desk(DeskRole.EMBEDDED, settings, store, calendars, client)
            await second.start()
            view = second.engine.view
            assert view.stale
            assert [r.account_id for r in view.warnings] == ["A1001"]
            assert view.warnings[0].margin is not None
            assert second.poller.cursor == "000000000000001"
            result = await second.poller.poll()  # resumes from the cached cursor
            assert not result.full
            assert not second.engine.view.stale
    assert fake.requests["snapshot"] == 1
