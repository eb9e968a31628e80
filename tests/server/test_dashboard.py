"""The dashboard: numbers from the ledger, readable plots; checked in a real headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from importlib import resources
from pathlib import Path

import httpx2
import pytest

from tierwise.cost import Usage
from tierwise.evaluation.charts import fmt_usd
from tierwise.evaluation.graders import load_items
from tierwise.evaluation.runner import EvalRunner, RunOptions, make_judge
from tierwise.ledger.schema import calls
from tierwise.record import CallRecord
from tierwise.registry_history import RegistryHistory
from tierwise.reports.ab import record_experiment
from tierwise.reports.evaluation import build_report
from tierwise.upstream.offline import OfflineUpstream

from ..evidence_helpers import feedback, flushed, send

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = Path(str(resources.files("tierwise").joinpath("data/eval_example.jsonl")))
AB = {"enabled": True, "name": "drafts-on-haiku", "key": "user", "arms": {"A": {}, "B": {"registry": {"draft_email": "fast"}}}}
HISTORY = {"classify_intent": ("fast", 60, 40), "extract_entities": ("fast", 30, 120), "summarize_short": ("fast", 25, 160),
           "draft_email": ("balanced", 18, 320), "review_code": ("balanced", 8, 600), "security_review": ("deep", 2, 900),
           None: ("balanced", 10, 250)}


def _history_rows(state, days=14):
    """Two weeks of earlier traffic, priced exactly like live rows (the dispatcher builds them)."""
    d = state.dispatcher
    rows, now = [], time.time()
    for day in range(days, 0, -1):
        for task, (tier, per_day, out_tokens) in HISTORY.items():
            for i in range(per_day + (day % 4) * 2):
                model = state.settings.catalog.tiers[tier]
                ts = now - day * 86400 + i * 37.0
                row = CallRecord.new(f"h{day}-{task}-{i}", ts, requested="auto" if task is None else f"tierwise/{task}",
                                     upstream="offline").answer(d.book, model, Usage(900 + 13 * i, out_tokens + 3 * i)).finish(
                    200 if i % 41 else 529, started=time.perf_counter()).row()
                row.update(task=task, tier=tier, router="registry" if task else "heuristic",
                           latency_ms={"fast": 420, "balanced": 1900, "deep": 5200}[tier] * (0.7 + (i % 9) / 10),
                           escalations=1 if task is None and i % 5 == 0 else 0)
                rows.append(row)
    with state.ledger.engine.begin() as conn:
        conn.execute(calls.insert(), rows)


@pytest.fixture
def populated(proxy_factory, tmp_path):
    (tmp_path / "tierwise.toml").write_text("# team config\n[registry]\ndraft_email = \"balanced\"\n")
    proxy = proxy_factory(ab=AB, monitor={"interval": 0, "min_samples": 10, "auto_revert": True},
                          upstream={"kind": "offline", "offline": {"latency_scale": 0.05}})
    state = proxy.state
    engine = state.ledger.engine
    _history_rows(state)
    # an evaluation and its report
    items = [it for it in load_items(EXAMPLE) if it.task in ("detect_language", "draft_email", "review_code")]
    up = OfflineUpstream(latency_scale=0.0)
    runner = EvalRunner(state.settings, up, engine)
    asyncio.run(runner.run(items, "ev_dash", RunOptions(tiers=["fast", "balanced", "deep"], judge=make_judge(state.settings, up))))
    build_report(state.settings, runner.store, "ev_dash", config_path=tmp_path / "tierwise.toml")
    # an A/B test on live traffic, with feedback
    record_experiment(engine, AB["name"], "user", AB["arms"])
    for i, r in enumerate(send(proxy, "draft_email", n=24, user="u", prompt="Reply to the customer about the late parcel")):
        feedback(proxy, r.headers["x-tierwise-request-id"], outcome="bad" if i % 11 == 0 else "ok")
    send(proxy, "classify_intent", n=6)
    send(proxy, None, n=6, stream=True, prompt="Summarise this paragraph about routing")
    # a deliberately bad registry change, caught and reverted by the monitor
    history = RegistryHistory(state.settings, engine)
    history.set("review_code", "fast", reason="deliberately bad: try Haiku for code review", actor="ana")
    state.evidence.reload_registry()
    for i, r in enumerate(send(proxy, "review_code", n=12)):
        feedback(proxy, r.headers["x-tierwise-request-id"], outcome="bad" if i % 2 else "ok")
    flushed(proxy)
    assert state.evidence.tick()[0]["reverted"]
    flushed(proxy)
    return proxy


def test_dashboard_shows_the_ledger(populated):
    proxy = populated
    rows = proxy.state.ledger.rows()
    data = httpx2.get(proxy.url + "/dashboard/data.json?days=30").json()
    assert data["requests"] == len(rows)
    spend = sum(r["cost_nanos"] or 0 for r in rows)
    assert data["spend_usd"] == pytest.approx(spend / 1e9)
    assert data["saved_vs_default_usd"] == pytest.approx(sum(r["default_cost_nanos"] or 0 for r in rows) / 1e9 - spend / 1e9)
    assert data["tier_mix"] == {t: sum(1 for r in rows if (r["tier"] or "-") == t) for t in data["tiers"]}
    assert data["ab"]["experiment"] == "drafts-on-haiku" and data["ab"]["comparisons"][0]["verdict"]
    assert data["alerts"][0]["task"] == "review_code" and data["alerts"][0]["reverted"]
    assert data["eval"]["run_id"] == "ev_dash"
    html = httpx2.get(proxy.url + "/dashboard").text
    assert fmt_usd(spend / 1e9) in html and "<svg" in html and "<script" not in html
    assert "drafts-on-haiku" in html and "reverted" in html and "ev_dash" in html
    assert httpx2.get(proxy.url + "/dashboard?days=0").status_code == 400


from ..conftest import _service_missing  # noqa: E402  (fails in CI, skips elsewhere)


def _chrome():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        _service_missing("Debian's chromium and chromium-driver", "apt-get install -y chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _service_missing("the selenium package", "pip install selenium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,2200",
                 "--hide-scrollbars", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_dashboard_in_a_real_browser(populated, tmp_path):
    from selenium.webdriver.common.by import By

    proxy = populated
    rows = proxy.state.ledger.rows()
    browser = _chrome()
    try:
        browser.get(proxy.url + "/dashboard")
        assert browser.title == "tierwise dashboard"
        kpi = {e.get_attribute("data-kpi"): e for e in browser.find_elements(By.CSS_SELECTOR, "[data-kpi]")}
        spend = sum(r["cost_nanos"] or 0 for r in rows) / 1e9
        assert float(kpi["spend"].get_attribute("data-value")) == pytest.approx(spend, abs=1e-9)
        assert fmt_usd(spend) in kpi["spend"].text
        assert kpi["requests"].get_attribute("data-value") == str(len(rows))
        assert f"{len(rows):,}" in kpi["requests"].text
        fast_calls = sum(1 for r in rows if r["tier"] == "fast")
        cell = browser.find_element(By.CSS_SELECTOR, "[data-tier-calls='fast']")
        assert cell.text == f"{fast_calls:,}"
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg")) >= 5
        svg = browser.find_element(By.CSS_SELECTOR, "svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 100, "plots are rendered at a readable size"
        verdict = browser.find_element(By.CSS_SELECTOR, "[data-verdict='B']").text
        assert verdict.startswith("B ") and "n=" in verdict
        assert "review_code" in browser.find_element(By.CSS_SELECTOR, "[data-alert]").text
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, max(900, int(height) + 160))
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert shot.stat().st_size > 20_000
    print(f"dashboard screenshot: {shot}")
    if os.environ.get("TIERWISE_UPDATE_SCREENSHOT"):  # refresh docs/dashboard.png on purpose, not on every test run
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / "dashboard.png")


def test_savings_leave_out_unpriced_calls_like_the_report(settings):
    """An answer from a model the catalog cannot price is not a saving (tierwise report's convention)."""
    from tierwise.dispatch import Dispatcher
    from tierwise.registry_history import open_db
    from tierwise.reports.spend import totals
    from tierwise.server.dashboard import collect

    engine = open_db(settings)
    d = Dispatcher(settings)
    rows = []
    for i, model in enumerate([settings.catalog.tiers["fast"], settings.catalog.tiers["fast"], "claude-unknown-9"]):
        row = CallRecord.new(f"u{i}", time.time(), requested=model, upstream="offline").answer(
            d.book, model, Usage(1000, 500)).finish(200, started=time.perf_counter()).row()
        rows.append(row)
    assert rows[2]["cost_nanos"] is None and rows[2]["default_cost_nanos"]
    with engine.begin() as conn:
        conn.execute(calls.insert(), rows)
    data = collect(settings, engine)
    assert data["saved_vs_default_usd"] == pytest.approx(totals(engine)["savings_usd"])
    assert data["default_spend_usd"] == pytest.approx(totals(engine)["default_cost_usd"])
