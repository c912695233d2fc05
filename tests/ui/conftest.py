"""UI fixtures: a simulator served from a thread (for snapshot tests, whose app runs in
pytest-textual-snapshot's own event loop) and a deterministic desk app."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from risk_tui.app import RiskApp
from risk_tui.cli.compose import desk_api
from risk_tui.config import FeedSettings, FourEyesSettings, load_settings
from risk_tui.core.calendar import TradingCalendars, default_overrides_path, load_overrides
from risk_tui.core.roles import Role
from risk_tui.sim.app import SimState
from tests.threaded_sim import serve_in_thread

NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)  # Monday 10:15 in Hong Kong and Singapore
CALENDARS = TradingCalendars(load_overrides(default_overrides_path()), today=date(2026, 11, 22))


@pytest.fixture
def seed_feed() -> Iterator[str]:
    yield from serve_in_thread(SimState(tick_interval=None))


@pytest.fixture
def fixed_app(seed_feed: str, tmp_path: Path) -> Callable[..., RiskApp]:
    """A trader's app on the seed desk with a stopped clock: identical on every run."""

    def build(
        operator: str = "trader1",
        *,
        operators: Mapping[str, Role] | None = None,
        four_eyes: FourEyesSettings | None = None,
    ) -> RiskApp:
        defaults = load_settings(None, env={}, discover=False)
        settings = defaults.model_copy(
            update={
                "feed": FeedSettings(url=seed_feed, poll_interval=0.2, stale_after=5),
                "db": defaults.db.model_copy(
                    update={"url": f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"}
                ),
                "operators": dict(operators or {"trader1": Role.TRADER}),
                "four_eyes": four_eyes or defaults.four_eyes,
            }
        )
        return RiskApp(
            settings,
            operator,
            lambda actor: desk_api(
                settings, CALENDARS, actor, clock=lambda: NOW, monotonic=lambda: 0.0
            ),
            calendars=CALENDARS,
            clock=lambda: NOW,
            monotonic=lambda: 0.0,
        )

    return build
