"""An operator's own marks on a call: remarks, the exception flag, the claim ("I'm on it").

Each is checked (every problem at once, as `ActionRefused`; a refusal is audited),
committed with its audit entry, then shown: the engine's open call is updated and the
view republished, so the operator sees the change at once. None needs a second person.
"""

from __future__ import annotations

import asyncio
from typing import NoReturn

from risk_tui.core.actions import ActionRefused
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.roles import Actor, Intent, Role, allowed, refusal
from risk_tui.desk.action_log import ActionLog
from risk_tui.desk.engine import Engine
from risk_tui.storage.errors import ClaimTaken, UnknownCall
from risk_tui.storage.store import Store


class CallActions:
    """Remarks, exception flags and claims on the desk's calls."""

    def __init__(
        self, engine: Engine, store: Store, actions: ActionLog, calls_lock: asyncio.Lock
    ) -> None:
        self._engine = engine
        self._store = store
        self._actions = actions
        self._calls_lock = calls_lock

    async def add_remark(
        self, call_id: str, text: str, *, exception: bool, actor: Actor
    ) -> MarginCall:
        """Set a call's remark and exception flag: history and audit in one commit, shown at once.

        Operators, traders and supervisors; open or ended calls (history rows take remarks
        too). The text is stored as typed: the screens sanitize it when they show it.
        """
        refused = refusal(actor, Intent.REMARK)
        if refused:
            await self._refuse_remark(actor, call_id, refused, text, exception)
        if exception and not text.strip():  # the Exceptions tab must say why each is there
            await self._refuse_remark(
                actor, call_id, "an exception needs a remark saying why", text, exception
            )
        engine = self._engine
        async with self._calls_lock:
            try:
                await self._store.calls.add_remark(
                    call_id, actor.name, text, exception, engine.clock()
                )
            except UnknownCall as unknown:
                raise ActionRefused("remark", [str(unknown)]) from None
            shown = engine.note_remark(call_id, text, exception)
        if shown is None:  # an ended call: not on the live screens
            stored = await self._store.calls.get_call(call_id)
            assert stored is not None  # add_remark just found it
            return stored
        return shown

    async def _refuse_remark(
        self, actor: Actor, call_id: str, problem: str, text: str, exception: bool
    ) -> NoReturn:
        await self._actions.refuse(
            "remark_refused",
            "remark",
            actor,
            call_id,
            [problem],
            {"text": text, "exception": exception},
        )

    async def set_exception(self, call_id: str, flag: bool, actor: Actor) -> MarginCall:
        """Mark or unmark a call as an exception, keeping its current remark text.

        Recorded like a remark edit (same text, new flag), so the remark history shows
        who flipped the flag and when. Setting the flag it already has writes nothing.
        """
        call = await self._store.calls.get_call(call_id)
        if allowed(actor.role, Intent.REMARK) and call is not None and call.exception == flag:
            return call
        # The stored remark, not the engine's copy: another terminal may have edited it.
        remark = call.remark if call is not None else ""
        return await self.add_remark(call_id, remark, exception=flag, actor=actor)

    async def claim(self, call_id: str, actor: Actor, *, release: bool = False) -> MarginCall:
        """Claim an open call ("I'm on it", shown to every terminal) or give the claim up.

        Operators, traders and supervisors. A call someone else holds is refused, except
        to a supervisor, who may take the claim over or release it (audited as such).
        """
        store = self._store
        what = "release" if release else "claim"
        refused = refusal(actor, Intent.CLAIM, f"{what} calls")
        if refused:
            await self._actions.refuse(f"{what}_refused", what, actor, call_id, [refused], {})
        current = await store.calls.get_call(call_id)
        holder = None if current is None else current.claimed_by
        over = (
            holder if holder not in (None, actor.name) and actor.role is Role.SUPERVISOR else None
        )
        if release and over is None and holder != actor.name and current is not None:
            await self._actions.refuse(
                f"{what}_refused",
                what,
                actor,
                call_id,
                [
                    f"call {call_id} is "
                    + ("not claimed" if holder is None else f"claimed by {holder}")
                ],
                {},
            )
        try:
            stored = await store.calls.set_claim(
                call_id, actor.name, self._engine.clock(), claim=not release, over=over
            )
        except (ClaimTaken, UnknownCall) as taken:
            raise ActionRefused(what, [str(taken)]) from None
        async with self._calls_lock:
            self._engine.take_stored([stored])
        return stored
