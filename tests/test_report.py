"""`report` renderings: SPEC.md's JSON shape, CSV, and a table that no feed text can hijack."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from rich.cells import cell_len

from risk_tui.cli.report import render_csv, render_json, render_table
from risk_tui.core.view import DeskView
from tests.recording import RecordingCalls
from tests.test_engine import apply, engine_with, payload

HOSTILE = (
    "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\ \x1b[2J\x1b[H \x9b31m \x07"
    " abc\u202etxt.exe [link=https://evil]x[/link] [b]bold[/b] 陳大文"
)


async def seed_view(
    calls: RecordingCalls, client_name: str = "Tan Mei Ling", remark: str = ""
) -> DeskView:
    body = payload()
    for account in body["accounts"]:
        if account["account_id"] == "A1001":
            account["client_name"] = client_name
    engine = await engine_with(calls)
    return (await apply(engine, body, full=True)).view


async def test_json_has_spec_fields_and_exact_money(calls: RecordingCalls) -> None:
    report: dict[str, Any] = json.loads(render_json(await seed_view(calls)))
    assert set(report) >= {"as_of", "stale", "totals", "warnings", "incomplete"}
    assert report["stale"] is False
    assert set(report["totals"]) >= {"call_amount", "long_outstanding_amount", "count"}
    assert report["totals"]["count"] == 4
    seed = next(w for w in report["warnings"] if w["account_id"] == "A1001")
    for key in (
        "account_id",
        "client_name",
        "kind",
        "risk_level",
        "state",
        "currency",
        "equity",
        "im",
        "mm",
        "fm",
        "call_amount",
        "triggered_at",
        "deadline",
        "exception",
        "remark",
    ):
        assert key in seed, key
    assert seed["call_amount"] == "1015.00"
    assert (seed["equity"], seed["im"], seed["mm"], seed["fm"]) == (
        "9500.00",
        "11250.00",
        "10025.00",
        "8800.00",
    )
    assert seed["kind"] == "margin"
    assert seed["risk_level"] == "margin_call"
    assert seed["state"] == "triggered"
    assert seed["currency"] == "SGD"
    assert seed["deadline"] == "2026-11-25T15:00:00+08:00"
    hk = next(w for w in report["warnings"] if w["account_id"] == "H2001")
    assert hk["call_amount"] == "22000.00"
    assert hk["currency"] == "HKD"
    assert report["incomplete"][0]["account_id"] == "I7001"
    for warning in report["warnings"]:  # money is always a decimal string
        assert isinstance(warning["call_amount"], str)


async def test_table_shows_the_seed_figures(calls: RecordingCalls) -> None:
    text = render_table(await seed_view(calls))
    line = next(row for row in text.splitlines() if "A1001" in row)
    for figure in ("9,500.00", "11,250.00", "10,025.00", "8,800.00", "1,015.00"):
        assert figure in line
    assert "Incomplete" in text
    assert "I7001" in text


async def test_hostile_client_name_is_inert_in_every_format(calls: RecordingCalls) -> None:
    view = await seed_view(calls, HOSTILE)
    table = render_table(view)
    assert "\x1b" not in table
    assert "\x07" not in table
    assert "\x9b" not in table
    assert "\u202e" not in table
    assert "[b]bold[/b]" in table
    assert "[link=https://evil]x[/link]" in table
    assert "␛]8;;http://evil" in table
    assert "⟨9B⟩31m" in table
    assert "陳大文" in table
    raw_csv = render_csv(view)
    assert "\x1b" not in raw_csv
    assert "\x9b" not in raw_csv
    row = next(r for r in csv.DictReader(io.StringIO(raw_csv)) if r["account_id"] == "A1001")
    assert "[b]bold[/b]" in row["client_name"]
    raw_json = render_json(view)
    assert all(ord(ch) < 128 for ch in raw_json)  # no raw control byte at all
    name = next(w for w in json.loads(raw_json)["warnings"] if w["account_id"] == "A1001")
    assert name["client_name"] == HOSTILE  # the data themselves are exact


async def test_the_table_fits_the_width_with_the_most_important_columns_whole(
    calls: RecordingCalls,
) -> None:
    """Issue 14 point 7: the table was ~190 columns wide in an 80-column terminal and
    printed enums ("margin_call")."""
    view = await seed_view(calls)
    for width in (80, 120):
        text = render_table(view, width=width)
        assert all(cell_len(line) <= width for line in text.splitlines())
        header = next(line for line in text.splitlines() if "Account" in line)
        for column in ("Account", "Level", "Call amount", "Deadline"):
            assert column in header
        for account, amount in (("A1001", "SGD 1,015.00"), ("H2001", "HKD 22,000.00")):
            line = next(row for row in text.splitlines() if account in row)
            assert amount in line  # the figure whole, with its currency
        assert re.search(r"\bCALL\b", text)  # the level in the screen's one word
        for enum in ("margin_call", "force_call", "MarginCall"):
            assert enum not in text
    narrow = render_table(view, width=80)
    wide = render_table(view, width=240)
    assert "Equity" not in narrow  # left out whole, not squeezed
    assert "Equity" in wide
    assert "triggered, not yet notified" in wide
