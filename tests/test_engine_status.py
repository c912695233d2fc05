"""What a terminal of a shared desk says about the engine, from the heartbeat rows."""

from __future__ import annotations

from datetime import UTC, datetime

from risk_tui.core.records import EngineBeat
from risk_tui.desk.heartbeat import ENGINE_SILENT_AFTER, engine_status

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def beat(role: str, age: float, pid: int = 10, poll: float | None = 0.4) -> EngineBeat:
    return EngineBeat(f"h:{pid}", "h", pid, role, T0, age, poll)


def test_an_active_engine_and_its_standbys() -> None:
    status = engine_status([beat("active", 0.5), beat("standby", 0.8, 11)], listening=True)
    assert status.ok
    assert status.describe() == "engine h:10, polled 0s ago, 1 standby"


def test_a_silent_engine_is_no_engine() -> None:
    silent = ENGINE_SILENT_AFTER + 1
    status = engine_status([beat("active", silent), beat("standby", 0.5, 11)], listening=True)
    assert not status.ok
    assert status.describe() == (
        f"NO ENGINE — calls are not being opened or ended "
        f"(last heartbeat from h:10 {silent:.0f}s ago)"
    )


def test_a_stopped_engine_and_a_desk_never_run() -> None:
    stopped = engine_status([beat("stopped", 3.0), beat("active", 40.0, 9)], listening=True)
    assert "the engine on h:10 stopped 3s ago" in stopped.describe()
    assert "no engine has run on this desk" in engine_status([], listening=True).describe()


def test_a_terminal_cut_off_says_so_first() -> None:
    status = engine_status([beat("active", 0.5)], listening=False)
    assert not status.ok
    assert status.describe().startswith("UPDATES CUT OFF")
