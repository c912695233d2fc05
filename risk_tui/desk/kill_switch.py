"""The kill switch (supervisors only): engaging stops every desk order, releasing lets them go.

Engaging it is one audited step that blocks every new liquidation on the desk: the store
refuses to record a new order while it is engaged (read in the same transaction, for
every order, from the database every terminal shares), the outbox posts no order
recorded before it, new plans and liquidation requests are refused, approvals of them
wait. Then every working or unsettled desk order is cancelled through the outbox, each
cancel audited like an operator's, and the outcome of each (failures too) is reported
and audited. Scheduled auto-liquidations are held, not lost: the runner sends nothing
while it is engaged, and after the release a held plan runs if its call is still open
and its condition still holds on live data. Releasing it (supervisors, with a reason) is
audited too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from risk_tui.core.actions import ActionError, ActionRefused, SendState
from risk_tui.core.four_eyes import KillSwitch, check_kill_switch
from risk_tui.core.lifecycle import AuditEntry
from risk_tui.core.records import StoredOrder
from risk_tui.core.roles import Actor
from risk_tui.desk.action_log import ActionLog
from risk_tui.desk.api import CancelOutcome, Engagement
from risk_tui.desk.trading import Trading
from risk_tui.feed.broker import OrderNotFound
from risk_tui.storage.errors import KillSwitchConflict
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)


class KillSwitchService:
    """The desk's kill switch: read for every decision, moved by supervisors."""

    def __init__(
        self,
        store: Store,
        trading: Trading,
        actions: ActionLog,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._trading = trading
        self._actions = actions
        self._clock = clock
        self._held_said = False  # the plan runner said once that the switch holds its plans

    async def state(self) -> KillSwitch:
        """As stored now: read every time, because every terminal of the desk shares it.

        Fails closed: a switch whose state cannot be read (the database unreachable, the
        row missing or unreadable) is taken as engaged — every order, plan and approval of
        a liquidation is refused, with the reason, until it can be read again.
        """
        try:
            return await self._store.kill_switch.get()
        except Exception as problem:  # whatever the failure, the answer must block orders
            log.exception("the kill switch cannot be read: liquidations blocked")
            lines = str(problem).strip().splitlines()
            return KillSwitch.unreadable(lines[0] if lines else type(problem).__name__)

    async def holds_plans(self) -> bool:
        """Whether the kill switch holds the auto-liquidation runner now (said once)."""
        switch = await self.state()
        if switch.engaged and not self._held_said:
            log.warning("auto-liquidation held: %s", switch.describe())
        elif not switch.engaged and self._held_said:
            log.warning("kill switch released: held auto-liquidations run if still valid")
        self._held_said = switch.engaged
        return switch.engaged

    async def _check(self, actor: Actor, reason: str, *, engage: bool) -> None:
        """Refuse (audited) a kill-switch move this actor may not make now."""
        problems = check_kill_switch(actor, await self.state(), engage=engage, reason=reason)
        if problems:
            await self._actions.refuse(
                "kill_switch_refused",
                "kill switch",
                actor,
                None,
                problems,
                {"engage": engage, "reason": reason},
            )

    async def engage(self, reason: str, actor: Actor) -> Engagement:
        """Engage the kill switch (supervisors, with a reason), then stop every desk order."""
        store = self._store
        await self._check(actor, reason, engage=True)
        try:
            switch = await store.kill_switch.engage(actor, reason.strip(), at=self._clock())
        except KillSwitchConflict as conflict:
            raise ActionRefused("kill switch", [str(conflict)]) from None
        log.warning("%s (reason: %s)", switch.describe(), switch.reason)
        stopped = tuple([await self._stop(order, actor) for order in await self.live_orders()])
        engagement = Engagement(switch, stopped)
        await store.audit.append_audit(
            [
                AuditEntry(
                    at=self._clock(),
                    operator=actor.name,
                    action="kill_switch_orders_stopped",
                    details={
                        "role": actor.role.value,
                        "orders": [outcome.wire() for outcome in stopped],
                        "failed": len(engagement.failed),
                    },
                )
            ]
        )
        return engagement

    async def release(self, reason: str, actor: Actor) -> KillSwitch:
        """Release the kill switch (supervisors, with a reason), audited."""
        await self._check(actor, reason, engage=False)
        try:
            released = await self._store.kill_switch.release(
                actor, reason.strip(), at=self._clock()
            )
        except KillSwitchConflict as conflict:
            raise ActionRefused("kill switch", [str(conflict)]) from None
        log.warning("kill switch released by %s (reason: %s)", actor.name, reason)
        return released

    async def live_orders(self) -> list[StoredOrder]:
        """Orders still worked at the broker, then those not settled (pending, in doubt)."""
        store = self._store
        orders = {o.client_order_id: o for o in await store.orders.working_orders()}
        for order in await store.orders.needing_send():
            orders.setdefault(order.client_order_id, order)
        return list(orders.values())

    async def _stop(self, order: StoredOrder, actor: Actor) -> CancelOutcome:
        key = order.client_order_id
        try:
            cancelled = await self._trading.cancel_order(key, actor)
        except OrderNotFound as missing:
            current = await self._store.orders.get(key)
            if current is not None and current.send_state is SendState.FAILED:
                return CancelOutcome(key, "withdrawn", str(missing))
            return CancelOutcome(key, "failed", str(missing))
        except ActionError as problem:  # refused (no outbox, say) or the broker failed
            return CancelOutcome(key, "failed", str(problem))
        if cancelled.status == "cancelled":
            return CancelOutcome(key, "cancelled", f"{cancelled.filled_quantity} had filled")
        if cancelled.status in ("working", "partially_filled"):
            return CancelOutcome(
                key, "failed", f"cancel sent, but the broker still works it ({cancelled.status})"
            )
        # Filled or rejected before the cancel arrived: nothing of it is working any more.
        return CancelOutcome(key, "finished", f"already {cancelled.status} at the broker")
