"""What every operator action records besides itself: who, in which role, on what state —
the audit entry of an action the desk refused (compliance reads attempts too), and the
one way a change to a call is made: built under the calls lock, committed (refused if
another process changed the call first), then shown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

from risk_tui.core.actions import ActionRefused
from risk_tui.core.feed_health import FeedStatus
from risk_tui.core.lifecycle import AuditEntry, MarginCall
from risk_tui.core.roles import Actor
from risk_tui.desk.engine import Engine
from risk_tui.storage.errors import CallChanged
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class ActionLog:
    """Audited refusals, the details each action records, and changes to calls."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        calls_lock: asyncio.Lock,
        feed_status: Callable[[], FeedStatus],
    ) -> None:
        self._engine = engine
        self._store = store
        self._calls_lock = calls_lock
        self._feed_status = feed_status

    def details(self, actor: Actor, account_id: str) -> dict[str, Any]:
        """Who acted, in which role, on what state of the account and the feed."""
        return {
            "role": actor.role.value,
            "feed_status": self._feed_status().value,
            "account_state": self._engine.account_state(account_id),
        }

    async def refuse(
        self,
        action: str,
        what: str,
        actor: Actor,
        call_id: str | None,
        problems: list[str],
        details: Mapping[str, Any],
    ) -> NoReturn:
        """Audit a refused action, then raise ActionRefused.

        The refusal stands even when it cannot be audited (the database that failed may be
        why it was refused): logged, and the operator is still told every reason.
        """
        call = self._engine.open_call(call_id) if call_id else None
        entry = AuditEntry(
            at=self._engine.clock(),
            operator=actor.name,
            action=action,
            call_id=call_id,
            account_id=call.account_id if call else None,
            details={**dict(details), "problems": problems, "role": actor.role.value},
        )
        try:
            await self._store.audit.append_audit([entry])
        except Exception:  # never let a failed audit turn a refusal into a pass
            log.exception("the refusal %s of %s could not be audited", action, actor.name)
            raise ActionRefused(what, [*problems, "(this refusal could not be audited)"]) from None
        raise ActionRefused(what, problems)

    @contextlib.asynccontextmanager
    async def changed_elsewhere(self, what: str) -> AsyncIterator[None]:
        """An action on a call another terminal or the engine changed first is refused,
        and the call is shown as stored now, so the operator decides again on it."""
        try:
            yield
        except CallChanged as changed:
            self._engine.take_stored(await self._store.calls.calls_by_id(changed.call_ids))
            raise ActionRefused(what, [f"{changed}; it now shows as stored: look again"]) from None

    async def change_call(
        self,
        what: str,
        build: Callable[[], tuple[MarginCall | None, T]],
        write: Callable[[T], Awaitable[R]],
    ) -> R:
        """Lock → build → commit → show, for every operator change to a call.

        Under the calls lock (no poll puts an older copy back meanwhile): `build` makes
        the changed call, unwritten, and what `write` commits with it; a call no longer
        open here, or a change the lifecycle refuses, is refused as `what`. A call another
        process changed first is refused and shown as stored now (`changed_elsewhere`).
        Once committed, the changed call is shown at once.
        """
        async with self._calls_lock:
            try:
                changed, payload = build()
            except (LookupError, ValueError) as problem:  # ended by a poll since the checks
                raise ActionRefused(what, [str(problem)]) from None
            async with self.changed_elsewhere(what):
                result = await write(payload)
            if changed is not None:
                self._engine.adopt(changed)
        return result
