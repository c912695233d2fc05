"""The one JSON serialization the desk stores and hashes: sorted keys, no spaces, UTF-8 text.

Evidence is hashed over these exact bytes (the audit and snapshot chains, the details an
approver signs off in four-eyes), so every writer and checker uses this function.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """`value` (JSON-ready: dicts, lists, strings, ints, bools, None) in canonical form."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


__all__ = ["canonical_json"]
