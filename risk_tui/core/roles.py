"""Who may do what on the desk: the one table of operator intents and the roles allowed each.

The terminal offers a key only to a role this table allows (`check_action`), a dialog
refuses to open for any other, and the desk checks it again before acting (and audits a
refusal): three readers, one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    VIEWER = "viewer"  # reads only
    OPERATOR = "operator"  # may message clients, remark and claim calls; may not trade
    TRADER = "trader"  # may liquidate, and override "not in call" with a reason
    SUPERVISOR = "supervisor"  # a trader who may also use the kill switch


@dataclass(frozen=True, slots=True)
class Actor:
    """The person at the terminal (or the engine, for scheduled actions) and their role."""

    name: str
    role: Role


class Intent(StrEnum):
    """What an operator can ask the desk to do."""

    LIQUIDATE = "liquidate"  # liquidation and buy-to-cover orders, overrides of "not in call"
    CANCEL_ORDER = "cancel_order"
    AUTO_LIQUIDATE = "auto_liquidate"  # schedule an auto-liquidation plan
    CANCEL_PLAN = "cancel_plan"
    CLOSE_CALL = "close_call"
    MOVE_DEADLINE = "move_deadline"
    MESSAGE = "message"
    REMARK = "remark"  # remarks and the exception flag
    CLAIM = "claim"  # "I'm on it", and giving a claim up
    DECIDE = "decide"  # approve or reject another person's four-eyes request
    KILL_SWITCH = "kill_switch"  # engage or release


_TRADING = frozenset({Role.TRADER, Role.SUPERVISOR})
_WORKING = frozenset({Role.OPERATOR, Role.TRADER, Role.SUPERVISOR})

ROLES: Mapping[Intent, frozenset[Role]] = MappingProxyType(
    {
        Intent.LIQUIDATE: _TRADING,
        Intent.CANCEL_ORDER: _TRADING,
        Intent.AUTO_LIQUIDATE: _TRADING,
        Intent.CANCEL_PLAN: _TRADING,
        Intent.CLOSE_CALL: _TRADING,
        Intent.MOVE_DEADLINE: _TRADING,
        Intent.MESSAGE: _WORKING,
        Intent.REMARK: _WORKING,
        Intent.CLAIM: _WORKING,
        Intent.DECIDE: _TRADING,
        Intent.KILL_SWITCH: frozenset({Role.SUPERVISOR}),
    }
)

# What a refusal says the person may not do.
WORDS: Mapping[Intent, str] = MappingProxyType(
    {
        Intent.LIQUIDATE: "place liquidation orders",
        Intent.CANCEL_ORDER: "cancel orders",
        Intent.AUTO_LIQUIDATE: "schedule liquidations",
        Intent.CANCEL_PLAN: "cancel liquidations",
        Intent.CLOSE_CALL: "close margin calls",
        Intent.MOVE_DEADLINE: "move deadlines",
        Intent.MESSAGE: "send messages",
        Intent.REMARK: "edit remarks",
        Intent.CLAIM: "claim calls",
        Intent.DECIDE: "approve or reject requests",
        Intent.KILL_SWITCH: "use the kill switch",
    }
)


def allowed(role: Role, intent: Intent) -> bool:
    """Whether the role may ask for the intent at all (the action's own checks follow)."""
    return role in ROLES[intent]


def refusal(actor: Actor, intent: Intent, doing: str | None = None) -> str | None:
    """`jdoe (viewer) may not place liquidation orders`, or None when the role may.

    `doing` words the refusal for this particular act (e.g. "release calls").
    """
    if allowed(actor.role, intent):
        return None
    return f"{actor.name} ({actor.role}) may not {doing or WORDS[intent]}"


__all__ = ["ROLES", "WORDS", "Actor", "Intent", "Role", "allowed", "refusal"]
