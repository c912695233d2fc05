"""The simulator over a real loopback socket: the ticker, streaming, and `risk-tui sim`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from risk_tui.cli import SIM_SCENARIOS, build_parser
from risk_tui.cli.commands import serve_simulator
from risk_tui.feed.models import parse_payload
from risk_tui.sim.app import SimState
from risk_tui.sim.scenarios import SCENARIOS, build_state
from tests.sim.helpers import order
from tests.waiting import read_until, until


async def test_over_loopback_the_ticker_fills_an_order_and_the_snapshot_streams() -> None:
    state = build_state("calm", accounts=500, seed=2, tick_interval=0.05)
    async with serve_simulator(state) as url, httpx.AsyncClient(base_url=url) as client:
        snapshot = await client.get("/v1/snapshot")
        assert snapshot.headers["transfer-encoding"] == "chunked"  # streamed, not buffered
        body = snapshot.json()
        assert parse_payload(body).rejected == []
        assert len(body["accounts"]) == 507
        created = await client.post("/v1/orders", json=order())
        assert created.status_code == 201
        changes: dict[str, Any] = {}

        async def filled() -> bool:
            nonlocal changes
            changes = (await client.get("/v1/changes", params={"cursor": body["cursor"]})).json()
            return any(p["account_id"] == "A1001" for p in changes.get("positions", []))

        await until(filled, what="the order's fill in /v1/changes")
        positions = [p for p in changes["positions"] if p["account_id"] == "A1001"]

        assert positions == [
            {"account_id": "A1001", "symbol": "B.SG", "quantity": "700", "avg_cost": "25.00"}
        ]
        assert "quotes" in changes  # calm prices moved meanwhile
        status = (await client.get("/sim/status")).json()
        assert status["scenario"] == "calm"
        assert status["tick"] >= 1


async def test_a_state_without_a_ticker_stays_put_over_loopback() -> None:
    state = SimState(tick_interval=None)
    async with serve_simulator(state) as url, httpx.AsyncClient(base_url=url) as client:
        await asyncio.sleep(0.2)
        assert (await client.get("/sim/status")).json()["tick"] == 0
        assert (await client.post("/sim/tick")).json()["tick"] == 1


def test_the_sim_command_line() -> None:
    args = build_parser().parse_args(
        ["sim", "--scenario", "selloff", "--accounts", "5000", "--seed", "9", "--port", "0"]
    )
    assert (args.host, args.port, args.scenario, args.accounts, args.seed) == (
        "127.0.0.1",
        0,
        "selloff",
        5000,
        9,
    )
    assert args.tick_interval == 1.0
    assert tuple(SCENARIOS) == SIM_SCENARIOS
    for bad in (["--port", "70000"], ["--accounts", "-1"], ["--tick-interval", "-1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["sim", *bad])


def _sim(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "risk_tui", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
    )


def test_risk_tui_sim_says_where_in_one_line_and_serves() -> None:
    options = "--port 0 --scenario calm --accounts 300 --tick-interval 0.05 --token t0k3n"
    process = _sim(*options.split())
    try:
        assert process.stdout is not None
        said = read_until(
            process.stdout.fileno(),
            lambda out: b"\n" in out,
            seconds=30,
            what="`risk-tui sim` saying where it serves",
        )
        line, _, rest = said.decode().partition("\n")

        match = re.search(r"at (http://127\.0\.0\.1:\d+) — scenario calm, 307 accounts", line)
        assert match, line
        assert "t0k3n" not in line
        assert "bearer token required" in line
        headers = {"Authorization": "Bearer t0k3n"}
        with httpx.Client(base_url=match.group(1), headers=headers, timeout=10) as client:
            assert client.get("/v1/snapshot").status_code == 200
            time.sleep(0.3)
            assert client.get("/sim/status").json()["tick"] >= 1
            assert httpx.get(f"{match.group(1)}/v1/snapshot").status_code == 401
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert rest + out == ""  # that one line, nothing more
    assert "Traceback" not in err


def test_risk_tui_sim_refuses_accounts_on_the_seed_desk() -> None:
    process = _sim("--port", "0", "--accounts", "10")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "--accounts needs a generated scenario" in err


def test_risk_tui_sim_reports_a_busy_port_in_one_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _sim("--port", str(port))
        out, err = process.communicate(timeout=30)
    assert process.returncode == 2, err
    assert out == "", err
    assert err.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_snapshot_json_is_exactly_the_decoded_book() -> None:
    state = build_state("calm", accounts=50, seed=4, tick_interval=None)
    for _ in range(3):
        state.tick()
    body = state.snapshot()
    assert list(body) == [
        "cursor",
        "as_of",
        "instruments",
        "quotes",
        "fx",
        "accounts",
        "cash",
        "positions",
        "borrow",
    ]
    assert json.loads(json.dumps(body)) == body
    assert {k: v for k, v in body.items() if k not in ("cursor", "as_of")} == state.book
