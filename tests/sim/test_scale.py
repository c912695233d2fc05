"""Crash-day scale: 200,000 accounts build fast, fit in memory, and stream as one snapshot."""

from __future__ import annotations

import gc
import resource
import time

import httpx
import pytest

from risk_tui.cli.commands import serve_simulator
from risk_tui.sim.scenarios import build_state

ACCOUNTS = 200_000
TOKEN = b'"avg_cost":'  # one per position record


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.mark.slow
async def test_200k_accounts_build_tick_and_stream(capsys: pytest.CaptureFixture[str]) -> None:
    gc.collect()
    rss_before = _rss_mb()
    started = time.perf_counter()
    state = build_state("selloff", accounts=ACCOUNTS, seed=1, tick_interval=None)
    build_seconds = time.perf_counter() - started
    gc.collect()
    book_mb = _rss_mb() - rss_before
    positions = state.store.count("positions")
    assert 1_800_000 <= positions <= 2_300_000

    started = time.perf_counter()
    quotes = sum(len(state.tick()) for _ in range(10))
    tick_ms = (time.perf_counter() - started) * 100

    started = time.perf_counter()
    streamed = chunks = counted = 0
    head = b""
    carry = b""
    async with (
        serve_simulator(state) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        client.stream("GET", "/v1/snapshot") as answer,
    ):
        assert answer.status_code == 200
        async for chunk in answer.aiter_raw():
            head = head or chunk[:64]
            streamed += len(chunk)
            chunks += 1
            counted += (carry + chunk).count(TOKEN)  # a token split across chunks counts once
            carry = chunk[-(len(TOKEN) - 1) :]
            last = chunk[-2:]
    stream_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with capsys.disabled():
        print(
            f"\n[sim scale] {ACCOUNTS:,} accounts, {positions:,} positions: built in "
            f"{build_seconds:.1f}s, book ≈ {book_mb:,.0f} MB RSS, process peak "
            f"{peak_mb:,.0f} MB; tick {tick_ms:.0f} ms ({quotes // 10:,} quotes); snapshot "
            f"{streamed / 2**20:,.0f} MiB in {chunks:,} chunks, {stream_seconds:.1f}s "
            f"({streamed / 2**20 / stream_seconds:,.0f} MiB/s)"
        )
    assert head.startswith(b'{"cursor":"000000000000010","as_of":"')
    assert last == b"]}"
    assert counted == positions  # every position record, once
    assert build_seconds < 60
    assert peak_mb < 3 * 1024
