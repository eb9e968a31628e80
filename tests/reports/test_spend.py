"""Report aggregation on hand-built ledger rows: sums, savings, percentiles, windows, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from tierwise.ledger import Ledger, calls
from tierwise.reports.spend import (
    ReportError,
    bounds,
    fmt_usd,
    has_ledger,
    savings_sentence,
    summarize,
    totals,
    usd_places,
)

DAY1 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


def make_row(when: dt.datetime = DAY1, *, tier: str | None = "fast", model: str | None = "claude-haiku-5-5",
             task: str | None = None, cost: int | None = 1_000, default: int | None = 20_000, latency: float = 100.0,
             ttft: float | None = None, status: int = 200, input_tokens: int = 100, output_tokens: int = 10,
             cache_read: int = 0, cache_write_5m: int = 0, **extra: Any) -> dict[str, Any]:
    row = {
        "ts": when.timestamp(), "day": when.strftime("%Y-%m-%d"), "request_id": uuid.uuid4().hex, "task": task,
        "router": "heuristic", "tier": tier, "model": model, "requested_model": "auto", "upstream": "offline",
        "stream": ttft is not None, "batch": False, "input_tokens": input_tokens, "output_tokens": output_tokens,
        "cache_write_5m_tokens": cache_write_5m, "cache_write_1h_tokens": 0, "cache_read_tokens": cache_read,
        "cost_nanos": cost, "default_cost_nanos": default, "latency_ms": latency, "ttft_ms": ttft, "status": status,
        "error_type": None if status < 400 else "overloaded_error", "escalations": 0, "fallbacks": 0,
        "client_disconnected": False,
    }
    row.update(extra)
    return row


def insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(calls.insert(), rows)


def golden_rows() -> list[dict[str, Any]]:
    rows = []
    # fast: 10 calls on day 1, latencies 10, 20, ... 100 ms, each 1,000 nano-USD vs 20,000 on balanced
    for i in range(1, 11):
        rows.append(make_row(DAY1, latency=10.0 * i, task="classify_intent", cache_read=5))
    # balanced: 4 calls on day 2, streamed (ttft 5, 15, 25, 35), cost == default cost
    for i in range(4):
        rows.append(make_row(DAY2, tier="balanced", model="claude-sonnet-5-5", task="review_code", cost=50_000,
                             default=50_000, latency=200.0 + 100 * i, ttft=5.0 + 10 * i, cache_write_5m=7))
    # deep: 1 call, dearer than the default
    rows.append(make_row(DAY2, tier="deep", model="claude-opus-5-5", task="security_review", cost=80_000,
                         default=40_000, latency=1000.0))
    # an upstream error on the fast tier: counted, no cost, kept out of the latency percentiles
    rows.append(make_row(DAY2, cost=0, default=0, latency=5.0, status=529, input_tokens=0, output_tokens=0))
    return rows


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'report.db'}")
    yield led
    led.close()


def check_golden(engine: sa.Engine) -> None:
    by_tier = {r["tier"]: r for r in summarize(engine, group_by=("tier",))}
    assert set(by_tier) == {"fast", "balanced", "deep"}
    fast = by_tier["fast"]
    assert fast["calls"] == 11 and fast["errors"] == 1
    assert fast["input_tokens"] == 1000 and fast["output_tokens"] == 100 and fast["cache_read_tokens"] == 50
    assert fast["cost_nanos"] == 10_000 and fast["default_cost_nanos"] == 200_000
    assert fast["savings_usd"] == pytest.approx(190_000 / 1e9)
    assert fast["savings_pct"] == pytest.approx(95.0)
    # linear interpolation over 10, 20, ... 100 (the failed call's 5 ms is left out)
    assert fast["latency_p50_ms"] == pytest.approx(55.0)
    assert fast["latency_p95_ms"] == pytest.approx(95.5)
    assert fast["ttft_p50_ms"] is None
    bal = by_tier["balanced"]
    assert bal["cache_write_tokens"] == 28 and bal["savings_usd"] == 0 and bal["savings_pct"] == 0
    assert bal["latency_p50_ms"] == pytest.approx(350.0) and bal["latency_p95_ms"] == pytest.approx(485.0)
    assert bal["ttft_p50_ms"] == pytest.approx(20.0)
    deep = by_tier["deep"]
    assert deep["savings_usd"] == pytest.approx(-40_000 / 1e9) and deep["savings_pct"] == pytest.approx(-100.0)

    total = totals(engine)
    assert total["calls"] == 16 and total["errors"] == 1
    assert total["cost_nanos"] == 10_000 + 200_000 + 80_000
    assert total["default_cost_nanos"] == 200_000 + 200_000 + 40_000
    assert total["savings_pct"] == pytest.approx(150_000 / 440_000 * 100)
    lat = [10.0 * i for i in range(1, 11)] + [200.0, 300.0, 400.0, 500.0, 1000.0]
    assert total["latency_p95_ms"] == pytest.approx(float(np.percentile(lat, 95)))

    by_day = {r["day"]: r for r in summarize(engine, group_by=("day",))}
    assert by_day["2026-11-20"]["calls"] == 10 and by_day["2026-11-21"]["calls"] == 6
    by_task = {r["task"]: r["calls"] for r in summarize(engine, group_by=("task",))}
    assert by_task == {"classify_intent": 10, "review_code": 4, "security_review": 1, None: 1}
    two = summarize(engine, group_by=("day", "tier"))
    assert [(r["day"], r["tier"], r["calls"]) for r in two] == [
        ("2026-11-20", "fast", 10), ("2026-11-21", "balanced", 4), ("2026-11-21", "deep", 1), ("2026-11-21", "fast", 1)]


def test_golden_aggregation_sqlite(ledger):
    insert(ledger.engine, golden_rows())
    check_golden(ledger.engine)


def test_window_filters_by_utc_day(ledger):
    insert(ledger.engine, golden_rows())
    only_day1 = totals(ledger.engine, until="2026-11-20")
    assert only_day1["calls"] == 10
    only_day2 = totals(ledger.engine, since=dt.date(2026, 11, 21))
    assert only_day2["calls"] == 6
    assert totals(ledger.engine, since="2026-11-22") is None
    assert summarize(ledger.engine, since="2026-11-22") == []


def test_unpriced_rows_do_not_count_as_savings(ledger):
    insert(ledger.engine, [make_row(cost=1_000, default=20_000),
                           make_row(model="claude-unknown-1", tier=None, cost=None, default=30_000)])
    total = totals(ledger.engine)
    assert total["unpriced_calls"] == 1
    assert total["cost_nanos"] == 1_000 and total["default_cost_nanos"] == 20_000


def test_empty_and_missing_ledgers(tmp_path, ledger):
    assert summarize(ledger.engine) == [] and totals(ledger.engine) is None
    bare = sa.create_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    assert not has_ledger(bare) and summarize(bare) == []
    # a URL works as well as an engine
    assert summarize(ledger.url) == []


def test_bad_arguments_are_named():
    with pytest.raises(ReportError, match="cannot group by colour"):
        summarize(sa.create_engine("sqlite://"), group_by=("colour",))
    with pytest.raises(ReportError, match="YYYY-MM-DD"):
        bounds(since="21/11/2026")
    with pytest.raises(ReportError, match="before --since"):
        bounds(since="2026-11-21", until="2026-11-20")


def test_money_formatting_and_sentence():
    assert fmt_usd(1234.5) == "$1,234.50" and fmt_usd(-2) == "-$2.00" and fmt_usd(0.000123, 6) == "$0.000123"
    assert usd_places([36.0, 135.0]) == 2 and usd_places([0.05]) == 4 and usd_places([0.0003]) == 6
    total = {"savings_usd": 69.3, "savings_pct": 51.33, "default_cost_nanos": 135 * 10**9}
    assert savings_sentence(total, "balanced", "claude-sonnet-5-5") == (
        "Routing saved $69.30 (51.3%) against sending everything to balanced/claude-sonnet-5-5.")
    worse = {"savings_usd": -1.0, "savings_pct": -10.0, "default_cost_nanos": 10}
    assert "cost $1.00 (10.0%) more" in savings_sentence(worse, "balanced", "m")
    assert savings_sentence(None, "balanced", "m").startswith("No priced calls")


# ------------------------------------------------------------------------------------ PostgreSQL
# `pg_url` (tests/conftest.py): a fresh schema; fails in CI when PostgreSQL is down, skips elsewhere.


def test_golden_aggregation_postgres(pg_url):
    led = Ledger(pg_url)
    try:
        insert(led.engine, golden_rows())
        check_golden(led.engine)
    finally:
        led.close()
