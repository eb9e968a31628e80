"""The report applies the seeds' rule; its diff is what eval apply writes (with history)."""

from __future__ import annotations

import pytest

from tierwise.evaluation.apply import apply_report
from tierwise.evaluation.stats import wilson
from tierwise.evaluation.store import EvalStore
from tierwise.registry_history import RegistryHistory, open_db
from tierwise.reports.evaluation import build_report, render_html


def _seed_run(engine, spec):
    """spec: {(task, tier): [passed, ...]} -> a finished run with those grades."""
    store = EvalStore(engine)
    store.create_run("ev_t", inputs="x.jsonl", inputs_hash="h", tiers=["fast", "balanced", "deep"], options={})
    models = {"fast": "claude-haiku-5-5", "balanced": "claude-sonnet-5-5", "deep": "claude-opus-5-5"}
    price = {"fast": 1000, "balanced": 5000, "deep": 25000}
    for (task, tier), grades in spec.items():
        for i, ok in enumerate(grades):
            store.save_result({"run_id": "ev_t", "item_id": f"{task}-{i}", "task": task, "tier": tier, "model": models[tier],
                               "ts": 0.0, "status": 200, "error": None, "output": "x", "input_tokens": 10,
                               "output_tokens": 5, "cost_nanos": price[tier], "latency_ms": 10.0 * (i + 1),
                               "batch": False, "passed": ok, "score": 1.0 if ok else 0.0, "grades": "[]"})
    return store


def test_rule_lowest_tier_under_threshold(settings, tmp_path):
    engine = open_db(settings)
    store = _seed_run(engine, {
        ("tag_ticket", "fast"): [True] * 40,                       # 0% -> fast (new entry)
        ("tag_ticket", "balanced"): [True] * 40,
        ("draft_email", "fast"): [True] * 36 + [False] * 4,        # 10% -> not fast
        ("draft_email", "balanced"): [True] * 39 + [False],        # 2.5% -> balanced, already so: no change
        ("review_code", "fast"): [False] * 10 + [True] * 30,
        ("review_code", "balanced"): [False] * 5 + [True] * 35,    # nothing under 5% -> keep
    })
    rep = build_report(settings, store, "ev_t", config_path=tmp_path / "tierwise.toml")
    recs = {r["task"]: r for r in rep["recommendations"]}
    assert recs["tag_ticket"]["recommended"] == "fast" and recs["tag_ticket"]["change"]
    assert recs["draft_email"]["recommended"] == "balanced" and not recs["draft_email"]["change"]
    assert recs["review_code"]["recommended"] is None and "keep balanced" in recs["review_code"]["reason"]
    cell = next(c for c in rep["cells"] if c["task"] == "draft_email" and c["tier"] == "fast")
    assert cell["n"] == 40 and cell["errors"] == 4 and cell["error_rate"] == pytest.approx(0.1)
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(wilson(4, 40))
    assert cell["cost_per_call_usd"] == pytest.approx(1e-6)
    assert cell["cost_per_ok_usd"] == pytest.approx(40 * 1000 / 36 / 1e9)
    assert cell["p95_latency_ms"] == pytest.approx(380.5)  # 10..400 ms: index 37.05 of 40
    assert rep["changes"] == {"tag_ticket": "fast"}
    assert '+tag_ticket = "fast"' in rep["diff"]
    # a stricter threshold moves draft_email nowhere and tag_ticket still to fast
    strict = build_report(settings, store, "ev_t", threshold=0.02, config_path=tmp_path / "tierwise.toml")
    assert {r["task"]: r["recommended"] for r in strict["recommendations"]}["draft_email"] is None
    html = render_html(rep)
    assert "<svg" in html and "tag_ticket" in html and "10.0%" in html


def test_apply_edits_the_file_keeps_comments_and_records_history(settings, tmp_path):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text("# our proxy\n[server]\nport = 9000  # keep me\n\n[registry]\ndraft_email = \"balanced\"  # reviewed\n")
    engine = open_db(settings)
    store = _seed_run(engine, {("tag_ticket", "fast"): [True] * 20, ("draft_email", "fast"): [True] * 20})
    history = RegistryHistory(settings, engine, path=cfg)
    rep = build_report(settings, store, "ev_t", registry=history.current(), config_path=cfg)
    assert set(rep["changes"]) == {"tag_ticket", "draft_email"}
    made = apply_report(settings, engine, "ev_t", actor="ana", history=history)
    assert {(c.task, c.old_tier, c.new_tier) for c in made} == {("tag_ticket", None, "fast"), ("draft_email", "balanced", "fast")}
    text = cfg.read_text()
    assert "# our proxy" in text and "port = 9000  # keep me" in text
    assert history.current()["draft_email"] == "fast" and history.current()["tag_ticket"] == "fast"
    h = history.list()
    assert h[0].actor == "ana" and h[0].source == "eval apply" and "ev_t" in h[0].reason
    # applying again changes nothing; one undo restores the old entry
    assert apply_report(settings, engine, "ev_t", history=history) == []
    email = next(c for c in made if c.task == "draft_email")
    history.undo(email.id, actor="ana")
    assert history.current()["draft_email"] == "balanced"


def test_apply_follows_human_grades_imported_after_the_report(settings, tmp_path):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text("[registry]\n")
    engine = open_db(settings)
    store = _seed_run(engine, {("tag_ticket", "fast"): [True] * 20, ("tag_ticket", "balanced"): [True] * 20})
    history = RegistryHistory(settings, engine, path=cfg)
    rep = build_report(settings, store, "ev_t", threshold=0.2, registry=history.current(), config_path=cfg)
    assert rep["changes"] == {"tag_ticket": "fast"}
    for i in range(10):  # people fail half of fast's answers (what tierwise eval import-grades records)
        store.set_grade("ev_t", f"tag_ticket-{i}", "fast", passed=None, score=None, human=False)
    made = apply_report(settings, engine, "ev_t", history=history)
    assert [(c.task, c.new_tier) for c in made] == [("tag_ticket", "balanced")]
    assert "under 20%" in made[0].reason, "the threshold the report was built with is kept"
