"""A/B tests: arms recorded in the ledger, the report and its verdict with intervals."""

from __future__ import annotations

import pytest

from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher
from tierwise.record import CallRecord
from tierwise.reports.ab import ab_report, record_experiment, verdict_text

from ..evidence_helpers import feedback, flushed, send

AB = {"enabled": True, "name": "drafts", "key": "user",
      "arms": {"A": {}, "B": {"registry": {"draft_email": "fast"}}}}


def _settings(tmp_path, ab=AB):
    return load_settings(None, overrides={"ab": ab, "ledger": {"url": f"sqlite:///{tmp_path}/l.db"}}, environ={})


def test_live_experiment_report_and_verdict(proxy_factory):
    proxy = proxy_factory(ab=AB, monitor={"interval": 0})
    record_experiment(proxy.state.ledger.engine, "drafts", "user", AB["arms"])
    arms_seen = {}
    for r in send(proxy, "draft_email", n=60, user="u", prompt="Write a short reply to the customer about the refund"):
        tier = r.headers["x-tierwise-tier"]
        arms_seen[tier] = arms_seen.get(tier, 0) + 1
        assert feedback(proxy, r.headers["x-tierwise-request-id"], outcome="ok").status_code == 200
    assert set(arms_seen) == {"fast", "balanced"}
    flushed(proxy)
    rows = proxy.state.ledger.rows()
    assert {r["arm"] for r in rows} == {"drafts/A", "drafts/B"}
    assert all((r["tier"] == "fast") == (r["arm"] == "drafts/B") for r in rows)
    rep = ab_report(proxy.state.ledger.engine, "drafts")
    a, b = rep["arms"]
    assert (a["arm"], b["arm"]) == ("A", "B") and a["n"] + b["n"] == 60
    assert a["n"] == sum(1 for r in rows if r["arm"] == "drafts/A")
    assert b["cost_per_call_usd"] == pytest.approx(sum(r["cost_nanos"] for r in rows if r["arm"] == "drafts/B") / b["n"] / 1e9)
    (comp,) = rep["comparisons"]
    r, lo, hi = comp["cost_ratio"]
    assert hi < 1, "Haiku is cheaper than Sonnet on the same prompts"
    assert comp["verdict"].startswith(f"B saves {100 * (1 - r):.0f}% ± ")
    assert "no detectable quality loss at n=60" in comp["verdict"]


def test_verdict_wording():
    base = {"arm": "B", "control": "A", "n": 500, "n_control": 500, "feedback_n": 400, "feedback_n_control": 400}
    v = verdict_text(dict(base, cost_ratio=(0.59, 0.55, 0.65), bad_rate_diff=(0.05, 0.02, 0.08),
                          bad_rate=0.08, bad_rate_control=0.03))
    assert v.startswith("B saves 41% ± 5% per call vs A") and "quality loss detected" in v
    v = verdict_text(dict(base, cost_ratio=(1.2, 1.1, 1.3), bad_rate_diff=None, bad_rate=None, bad_rate_control=None))
    assert "B costs 20% ± 10% more" in v and "no quality signal" in v
    v = verdict_text(dict(base, cost_ratio=(0.98, 0.9, 1.07), bad_rate_diff=(0.0, -0.02, 0.02), bad_rate=0.03,
                          bad_rate_control=0.03))
    assert "no detectable cost difference" in v and "no detectable quality loss at n=800" in v


def test_report_counts_only_its_own_experiment(tmp_path):
    """'_' in an experiment name is a plain character, not a LIKE wildcard matching another experiment."""
    import time as _time

    from tierwise.ledger.schema import calls
    from tierwise.registry_history import open_db

    settings = _settings(tmp_path)
    engine = open_db(settings)
    d = Dispatcher(settings)
    rows = []
    for i, arm in enumerate(["exp_1/A", "exp_1/B", "exp-1/A", "exp-1/B", "exp-1/B"]):
        row = CallRecord.new(f"r{i}", _time.time(), requested="claude-haiku-4-5", upstream="offline").answer(
            d.book, None, None).finish(200, started=_time.perf_counter()).row()
        row.update(arm=arm, cost_nanos=1000, default_cost_nanos=2000, latency_ms=10.0)
        rows.append(row)
    with engine.begin() as conn:
        conn.execute(calls.insert(), rows)
    rep = ab_report(engine, "exp_1")
    assert {a["arm"]: a["n"] for a in rep["arms"]} == {"A": 1, "B": 1}
