"""A desk process composed for its role from the desk's services; no service knows the role.

- `DeskRole.EMBEDDED`: one process does everything (the default, on SQLite).
- `DeskRole.ENGINE` (`risk-tui engine`): the lifecycle — opening, escalating and ending
  calls with their snapshots — the daily jobs, auto-liquidation and following orders,
  with a heartbeat; it hears the terminals' changes. One engine per desk is active
  (`storage.election.Leadership`, in the command line).
- `DeskRole.TERMINAL` (`risk-tui run` on PostgreSQL): an operator's screen. It polls the
  feed and computes every figure itself (exactly as the engine does), takes the calls'
  lifecycle as the engine stored it (`Follower`), writes only operators' actions, and
  watches the engine's heartbeat.

What differs between roles is only which decider the engine runs, what follows each
poll, which tasks run and what is recovered at start — chosen here, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

import httpx

from risk_tui.config import Settings
from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.clock import utc_now
from risk_tui.core.feed_health import FeedStatus
from risk_tui.desk.action_log import ActionLog
from risk_tui.desk.api import DeskRole, EngineChanged, HealthChanged, ViewChanged
from risk_tui.desk.approvals import Approvals
from risk_tui.desk.call_actions import CallActions
from risk_tui.desk.collector import collect_garbage
from risk_tui.desk.daily import DAILY_INTERVAL, DailyJobs
from risk_tui.desk.engine import Engine, PollOutcome
from risk_tui.desk.events import EventHub
from risk_tui.desk.heartbeat import EngineWatch, Heartbeat
from risk_tui.desk.intents import Intents
from risk_tui.desk.kill_switch import KillSwitchService
from risk_tui.desk.languages import MessageLanguages
from risk_tui.desk.listener import CallVersions, DeskListener, every_call, newer_calls
from risk_tui.desk.outbox import Outbox
from risk_tui.desk.plans import AutoLiquidations
from risk_tui.desk.runtime import BookCache, Desk, PollSink
from risk_tui.desk.trading import Trading
from risk_tui.feed.broker import Broker
from risk_tui.feed.poller import Poller
from risk_tui.storage.store import Store


def compose_desk(
    role: DeskRole,
    settings: Settings,
    store: Store,
    calendars: TradingCalendars,
    client: httpx.AsyncClient,
    *,
    broker: Broker | None = None,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    daily_interval: float = DAILY_INTERVAL,
) -> Desk:
    """The desk process for `role` on this store, feed client and (optional) broker
    client, through which its outbox sends orders and messages."""
    events = EventHub()
    engine = Engine(settings, store.calls, calendars, clock=clock, follow=role is DeskRole.TERMINAL)
    engine.on_view = lambda view: events.publish(ViewChanged(view))
    calls_lock = asyncio.Lock()
    sink = PollSink(engine, calls_lock)
    poller = Poller(
        client,
        settings.feed,
        sink,
        on_health=lambda health: events.publish(HealthChanged(health)),
        clock=monotonic,
    )

    def feed_status() -> FeedStatus:
        return poller.health.status(monotonic())

    def feed_live() -> bool:
        return feed_status() is FeedStatus.LIVE

    actions = ActionLog(engine, store, calls_lock, feed_status)
    outbox = None if broker is None else Outbox(broker, store, clock=clock)
    trading = Trading(engine, store, outbox, feed_live=feed_live)
    kill_switch = KillSwitchService(store, trading, actions, clock=engine.clock)
    plans = AutoLiquidations(engine, store, trading, kill_switch, actions)
    languages = MessageLanguages(engine)
    desk = Desk(
        role=role,
        settings=settings,
        store=store,
        engine=engine,
        poller=poller,
        events=events,
        calls_lock=calls_lock,
        cache=BookCache(engine, store, calls_lock, monotonic),
        trading=trading,
        kill_switch=kill_switch,
        plans=plans,
        intents=Intents(settings, engine, store, trading, plans, kill_switch, actions),
        approvals=Approvals(engine, store, trading, plans, kill_switch, actions),
        call_actions=CallActions(engine, store, actions, calls_lock),
        daily=DailyJobs(
            engine,
            store,
            trading,
            calls_lock,
            feed_live=feed_live,
            first_poll=sink.applied,
            reminders=outbox is not None,
            languages=languages,
            interval=daily_interval,
        ),
        languages=languages,
    )
    desk.runners += [collect_garbage, poller.run]
    desk.recoveries.append(desk.approvals.recover)
    if role is DeskRole.TERMINAL:
        _as_terminal(desk)
        return desk
    _runs_the_lifecycle(desk, sink, outbox is not None)
    if role is DeskRole.ENGINE:
        _as_engine(desk, sink)
    return desk


def _runs_the_lifecycle(desk: Desk, sink: PollSink, has_outbox: bool) -> None:
    """The embedded desk and an engine: after each poll, orders' fills asked for, the book
    cached, the plans and requests of ended calls settled; plans, daily jobs and orders
    followed; unsettled orders and messages recovered at start."""

    async def settle_ended(outcome: PollOutcome, _full: bool) -> None:
        ended = [t.call.call_id for t in outcome.transitions if t.ended]
        if ended:
            await desk.plans.settle_for_ended_calls(ended)
            await desk.approvals.void_for_ended_calls(ended)

    async def fills(_outcome: PollOutcome, _full: bool) -> None:
        await desk.trading.after_poll()

    sink.after += [fills, desk.cache.after_poll, settle_ended]
    if has_outbox:
        desk.runners += [desk.trading.follow_orders, desk.plans.run]
        desk.recoveries.append(desk.trading.recover)
    desk.runners.append(desk.daily.run)


def _as_engine(desk: Desk, sink: PollSink) -> None:
    """The active engine of a shared desk: a heartbeat, and the terminals' changes heard."""
    heartbeat = desk.heartbeat = Heartbeat(desk.store)

    async def polled(_outcome: PollOutcome, _full: bool) -> None:
        heartbeat.polled()

    sink.after.insert(0, polled)
    desk.listener = _listener(desk, newer_calls)

    async def active() -> None:
        await heartbeat.beats("active")

    desk.runners += [desk.listener.run, active]


def _as_terminal(desk: Desk) -> None:
    """An operator's terminal of a shared desk: the engine watched, changes heard."""
    watch = desk.watch = EngineWatch(
        desk.store, lambda status: desk.events.publish(EngineChanged(status))
    )
    desk.listener = _listener(desk, every_call, on_state=watch.listener_state)
    desk.runners += [desk.listener.run, watch.watch]


def _listener(
    desk: Desk,
    wanted: Callable[[CallVersions, Engine], CallVersions],
    *,
    on_state: Callable[[bool], None] | None = None,
) -> DeskListener:
    """The desk's listener for the others' changes, taking in the calls `wanted` picks
    and the plans another process scheduled, ran or cancelled."""
    listener = DeskListener(
        desk.settings.db.url,
        desk.engine,
        desk.store,
        desk.calls_lock,
        desk.events.publish,
        wanted=wanted,
        on_state=on_state,
    )

    async def plans_changed(tables: frozenset[str]) -> None:
        if not tables or "auto_liquidations" in tables:
            await desk.plans.note_planned()

    listener.after.append(plans_changed)
    return listener
