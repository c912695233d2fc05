"""The desk's orders and messages: checked on the desk's own figures, recorded before they
are sent (by the desk's `Outbox`), and followed until the broker settles them.

Every order is checked against the account as this desk computes it now (live feed,
complete figures, the position held, whether a call is open); a message that reached the
client marks its call notified, with a snapshot. Fills are noted on their calls (a call
cured by a desk order ends "liquidated"), and calls with working orders are known to the
lifecycle so that a fill the feed shows before the order's status does is not taken for
a deposit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal

from risk_tui.core.actions import (
    ActionError,
    ActionRefused,
    MessageIntent,
    OrderIntent,
    SendState,
    check_order,
)
from risk_tui.core.records import MessageOutcome, OrderOutcome, StoredMessage, StoredOrder
from risk_tui.core.roles import Actor
from risk_tui.desk.engine import Engine
from risk_tui.desk.outbox import Outbox
from risk_tui.feed.broker import GatewayError
from risk_tui.storage.errors import CallChanged
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

NOTIFY_ATTEMPTS = 3  # a sent message's call changed elsewhere: read again and record, this often
ORDER_REFRESH_INTERVAL = 2.0  # seconds between status queries while desk orders work


class Trading:
    """Orders and messages of one desk process, through its outbox to the broker.

    Without an outbox (`risk-tui report` has no gateway to the broker) every order,
    cancel and message is refused.
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        outbox: Outbox | None,
        *,
        feed_live: Callable[[], bool],
    ) -> None:
        self._engine = engine
        self._store = store
        self._outbox_or_none = outbox
        self._feed_live = feed_live

    def _outbox(self) -> Outbox:
        if self._outbox_or_none is None:
            raise ActionRefused("action", ["this desk has no gateway to the broker"])
        return self._outbox_or_none

    # --- checks -----------------------------------------------------------------------------

    def data_fresh(self, account_id: str) -> bool:
        """Live feed and complete figures for the account: the only basis for an order."""
        result = self._engine.results.get(account_id)
        return self._feed_live() and result is not None and result.incomplete is None

    def order_problems(
        self, intent: OrderIntent, actor: Actor, override_reason: str | None
    ) -> list[str]:
        """Every reason the outbox would refuse `intent` now (`check_order` on this desk)."""
        return check_order(
            intent,
            position_quantity=self._holding(intent),
            call_open=intent.account_id in self._engine.open_calls,
            data_fresh=self.data_fresh(intent.account_id),
            actor=actor,
            override_reason=override_reason,
        )

    def _holding(self, intent: OrderIntent) -> Decimal | None:
        return self._engine.state.holding(intent.account_id, intent.symbol)

    # --- orders -----------------------------------------------------------------------------

    async def place_order(
        self, intent: OrderIntent, actor: Actor, *, override_reason: str | None = None
    ) -> OrderOutcome:
        """Check, record and send through the outbox (refused while the kill switch is on).

        No four-eyes here: `desk.intents` decides whether an order goes now or waits for
        a second person, and sends the ones that go through this.
        """
        engine = self._engine
        outcome = await self._outbox().submit_order(
            intent,
            account_state=engine.account_state(intent.account_id),
            actor=actor,
            position_quantity=self._holding(intent),
            call_open=intent.account_id in engine.open_calls,
            data_fresh=self.data_fresh(intent.account_id),
            override_reason=override_reason,
        )
        self.note_fills([outcome.order])
        await self.note_working()
        return outcome

    async def cancel_order(self, client_order_id: str, actor: Actor) -> StoredOrder:
        order = await self._outbox().cancel_order(client_order_id, actor)
        self.note_fills([order])
        return order

    async def refresh_orders(self) -> list[StoredOrder]:
        """The broker's latest status and fills of the desk's orders."""
        changed = await self._outbox().refresh_orders()
        self.note_fills(changed)
        await self.note_working()
        return changed

    async def note_working(self) -> None:
        """Which calls have desk orders the broker still works (`OpenCalls.working`)."""
        working = await self._store.orders.working_orders()
        self._engine.calls.working = {o.call_id for o in working if o.call_id}

    async def note_filled(self) -> None:
        """Which calls desk orders filled on, as stored (at start)."""
        self._engine.calls.filled = await self._store.orders.calls_with_fills()

    def note_fills(self, orders: Iterable[StoredOrder]) -> None:
        for order in orders:
            if order.call_id and order.filled_quantity > 0:
                self._engine.calls.filled.add(order.call_id)

    async def after_poll(self) -> None:
        """A call with working orders looked met: were they filled? (decided next poll)"""
        calls = self._engine.calls
        if not calls.fills_wanted or self._outbox_or_none is None:
            return
        calls.fills_wanted = False
        try:
            await self.refresh_orders()
        except ActionError as problem:
            log.warning("order status refresh failed: %s", problem)

    async def follow_orders(self) -> None:
        """While desk orders work, ask the broker for their status every few seconds."""
        while True:
            await asyncio.sleep(ORDER_REFRESH_INTERVAL)
            try:
                if await self._store.orders.working_orders():
                    await self.refresh_orders()
            except ActionError as problem:
                log.warning("order status refresh failed: %s", problem)

    # --- messages ---------------------------------------------------------------------------

    async def send_message(self, intent: MessageIntent, actor: Actor) -> MessageOutcome:
        outcome = await self._outbox().send_message(
            intent, account_state=self._engine.account_state(intent.account_id), actor=actor
        )
        # Only the send that delivered it notifies: a double press (posts == 0) does not.
        if outcome.posts and outcome.send_state is SendState.ACKNOWLEDGED:
            await self._notified(outcome.message)
        return outcome

    async def _notified(self, message: StoredMessage) -> None:
        """The message went out: its call is notified. A call changed elsewhere meanwhile
        (escalated by the engine, say) is read again and the notification recorded on it."""
        if not message.call_id:
            return
        engine = self._engine
        for _attempt in range(NOTIFY_ATTEMPTS):
            try:
                await engine.record_notification(message.call_id, engine.clock())
            except CallChanged as changed:
                engine.take_stored(await self._store.calls.calls_by_id(changed.call_ids))
                continue
            return
        log.error(
            "message %s sent, but its call kept changing: notification not recorded",
            message.message_id,
        )

    # --- after a restart ----------------------------------------------------------------------

    async def recover(self) -> None:
        """Settle orders and messages a previous run left unsent or in doubt (same keys)."""
        if self._outbox_or_none is None:
            return
        try:
            recovery = await self._outbox_or_none.recover()
        except GatewayError as problem:
            log.error("recovering unsettled actions failed: %s", problem)
            return
        self.note_fills(recovery.orders)
        for message in recovery.messages:
            if message.send_state is SendState.ACKNOWLEDGED:
                await self._notified(message)
        if recovery.unsettled:
            log.warning("%d actions still in doubt after recovery", recovery.unsettled)
