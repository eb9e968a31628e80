"""``tierwise demo`` against a real running proxy (offline upstream), and its pieces."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from tierwise.catalog import load_catalog
from tierwise.cli import _load_commands, app
from tierwise.cli.demo import DemoResult, load_workload, summarize_results
from tierwise.config import DEFAULT_REGISTRY
from tierwise.cost import Usage, cost_nanos

from ..conftest import free_port


@pytest.fixture
def run(monkeypatch):
    for var in ("TIERWISE_CONFIG", "TIERWISE_LEDGER_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    _load_commands()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["demo", *args])


def ledger_rows(proxy, n):
    led = proxy.state.ledger
    deadline = time.monotonic() + 10
    while True:
        assert led.flush(10)
        rows = led.rows()
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.01)


def test_demo_through_a_running_proxy_matches_its_ledger(run, proxy_factory):
    proxy = proxy_factory()  # offline upstream, in-thread uvicorn
    result = run("--url", proxy.url, "--n", "12", "--concurrency", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    total = data["total"]
    assert data["requests"] == 12 and total["calls"] == 12 and total["errors"] == 0
    rows = ledger_rows(proxy, 12)
    assert len(rows) == 12
    # what the demo computed from the x-tierwise-* headers and usage is what the proxy recorded
    assert total["cost_nanos"] == sum(r["cost_nanos"] for r in rows)
    assert total["default_cost_nanos"] == sum(r["default_cost_nanos"] for r in rows)
    assert total["input_tokens"] == sum(r["input_tokens"] for r in rows)
    by_tier = {r["tier"]: r["calls"] for r in data["by_tier"]}
    ledger_tiers: dict[str, int] = {}
    for r in rows:
        ledger_tiers[r["tier"]] = ledger_tiers.get(r["tier"], 0) + 1
    assert by_tier == ledger_tiers
    assert data["upstreams"] == ["offline"]
    # the first 12 bundled requests are registry task types: each went to its registry tier
    for kind, k in data["by_kind"].items():
        assert set(k["tiers"]) == {DEFAULT_REGISTRY[kind]}
    assert data["summary"].startswith("Routing saved")


def test_demo_tables(run, proxy_factory):
    proxy = proxy_factory()
    result = run("--url", proxy.url, "--n", "4")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Where the requests went" in out and "tierwise/classify_intent" in out
    assert "Demo: 4 requests" in out and "Total" in out and "Saved %" in out
    assert "synthetic" in out  # the offline upstream is called out
    assert "against sending everything to balanced/claude-sonnet-5-5" in out


def test_no_proxy_running_is_a_clear_error(run):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--url", url, "--n", "1")
    assert result.exit_code == 2
    assert f"no tierwise proxy at {url}: start it with `make run`" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args,message", [
    (["--n", "0"], "--n must be at least 1"),
    (["--concurrency", "0"], "--concurrency must be at least 1"),
    (["--url", "localhost:8787"], "expected http://host:port"),
])
def test_bad_options_exit_2(run, args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_bad_workload_file_names_the_line(run, tmp_path):
    bad = tmp_path / "w.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"task": "classify_intent"}\n')
    result = run("--workload", str(bad), "--url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 2 and f"{bad}:2" in " ".join(result.stderr.split())


def test_bundled_workload_covers_the_seed_task_types_and_auto():
    items = load_workload()
    assert len(items) >= 30
    tasks = {i["task"] for i in items}
    assert set(DEFAULT_REGISTRY) <= tasks  # every task type of the registry appears
    autos = [i for i in items if i["task"] is None]
    assert len(autos) >= 8
    assert all(i["prompt"].strip() and i["max_tokens"] >= 1 for i in items)


def test_summarize_results_by_hand():
    catalog = load_catalog()
    haiku, sonnet = catalog.model_for_tier("fast"), catalog.model_for_tier("balanced")
    u1 = {"input_tokens": 1000, "output_tokens": 100}
    u2 = {"input_tokens": 2000, "output_tokens": 300}
    c1 = Decimal(cost_nanos(haiku, Usage.from_api(u1))) / Decimal(10**9)
    c2 = Decimal(cost_nanos(sonnet, Usage.from_api(u2))) / Decimal(10**9)
    results = [
        DemoResult("classify_intent", True, tier="fast", model=haiku.id, upstream="offline", cost_usd=c1, usage=u1,
                   latency_ms=10.0),
        DemoResult("auto", True, tier="balanced", model=sonnet.id, upstream="offline", cost_usd=c2, usage=u2,
                   latency_ms=30.0),
        DemoResult("auto", False, tier="fast", error="HTTP 529", latency_ms=5.0),
        DemoResult("auto", True, tier=None, model="claude-unknown", cost_usd=None, usage=u1, latency_ms=20.0),
    ]
    s = summarize_results(results, catalog, "balanced")
    total = s["total"]
    assert total["calls"] == 4 and total["errors"] == 1 and total["unpriced_calls"] == 1
    assert total["cost_nanos"] == cost_nanos(haiku, Usage.from_api(u1)) + cost_nanos(sonnet, Usage.from_api(u2))
    assert total["default_cost_nanos"] == cost_nanos(sonnet, Usage.from_api(u1)) + cost_nanos(sonnet, Usage.from_api(u2))
    assert total["savings_pct"] == pytest.approx(
        (total["default_cost_nanos"] - total["cost_nanos"]) / total["default_cost_nanos"] * 100)
    assert total["latency_p50_ms"] == pytest.approx(20.0)  # the failed call's latency is left out
    assert s["by_kind"]["auto"] == {"requests": 3, "errors": 1, "tiers": {"balanced": 1, "(no tier)": 1},
                                    "cost_nanos": cost_nanos(sonnet, Usage.from_api(u2))}
    assert [r["tier"] for r in s["by_tier"]] == ["fast", "balanced", None]


def test_unreadable_workload_file_exits_2(run, tmp_path):
    bad = tmp_path / "w.jsonl"
    bad.write_bytes(b"\xff\xfe\x00binary\n")
    result = run("--workload", str(bad), "--url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 2 and "UTF-8" in result.stderr
