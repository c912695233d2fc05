"""Garbage collections during a measurement, for the benchmarks that report them."""

from __future__ import annotations

import gc
import time
from typing import Any


class GcLog:
    """Every garbage collection while active (through `gc.callbacks`): its generation
    and its milliseconds, in order."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __enter__(self) -> GcLog:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1000))

    def mark(self) -> int:
        """A point to measure from (`since`)."""
        return len(self.pauses)

    def since(self, mark: int) -> tuple[float, int]:
        """Milliseconds collected since `mark`, and the oldest generation collected
        (-1: none)."""
        recent = self.pauses[mark:]
        return sum(ms for _, ms in recent), max((gen for gen, _ in recent), default=-1)

    def summary(self) -> dict[str, Any]:
        """Count, longest and total milliseconds by generation."""
        summary = {}
        for generation in (0, 1, 2):
            pauses = [ms for gen, ms in self.pauses if gen == generation]
            summary[f"gen{generation}"] = {
                "count": len(pauses),
                "max_ms": round(max(pauses), 1) if pauses else 0.0,
                "total_ms": round(sum(pauses), 1),
            }
        return summary
