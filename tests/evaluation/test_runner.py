"""tierwise eval run: every input through every tier, resumable, capped, batched, outcomes written."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import pytest

from tierwise.errors import OverloadedError
from tierwise.evaluation.batches import OfflineBatches
from tierwise.evaluation.graders import load_items
from tierwise.evaluation.runner import EvalRunner, RunOptions, make_judge, parse_tiers, run_id_for, write_outcomes_file
from tierwise.ledger.schema import calls
from tierwise.outcomes import read_outcomes
from tierwise.registry_history import open_db
from tierwise.upstream.offline import OfflineUpstream

EXAMPLE = Path(str(resources.files("tierwise").joinpath("data/eval_example.jsonl")))
TIERS = ["fast", "balanced", "deep"]


class FlakyUpstream(OfflineUpstream):
    """Offline answers, but fails every call after ``fail_after`` (an interruption mid-run)."""

    def __init__(self, fail_after: int) -> None:
        super().__init__(latency_scale=0.0)
        self.fail_after = fail_after

    async def send(self, path, body, *, headers, stream, model=None):
        if self.calls >= self.fail_after:
            self.calls += 1
            raise OverloadedError("overloaded (test)")
        return await super().send(path, body, headers=headers, stream=stream, model=model)


def _run(settings, upstream, items, **kw):
    engine = open_db(settings)
    runner = EvalRunner(settings, upstream, engine, batches=kw.pop("batches", None))
    opts = RunOptions(tiers=TIERS, judge=make_judge(settings, upstream), **kw)
    rid = run_id_for(items, TIERS)
    return runner, asyncio.run(runner.run(items, rid, opts, inputs=str(EXAMPLE)))


def _count_calls(engine, router="eval"):
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(calls).where(calls.c.router == router)).scalar()


def test_every_input_through_every_tier_graded_and_accounted(settings):
    items = load_items(EXAMPLE)
    up = OfflineUpstream(latency_scale=0.0)
    runner, summary = _run(settings, up, items)
    assert summary.status == "done"
    assert summary.calls_made == len(items) * 3 == up.calls
    rows = runner.store.results(summary.run_id)
    assert len(rows) == len(items) * 3
    assert {r["tier"] for r in rows} == set(TIERS)
    assert all(r["passed"] is not None for r in rows), "every answer is graded"
    # spend: the run's total equals the calls ledger rows it wrote
    run = runner.store.get_run(summary.run_id)
    assert run["spent_nanos"] == sum(r["cost_nanos"] for r in rows) > 0
    assert _count_calls(runner.store.engine) == len(rows)
    # bigger tiers cost more per call on the same inputs
    by = {t: sum(r["cost_nanos"] for r in rows if r["tier"] == t) for t in TIERS}
    assert by["fast"] < by["balanced"] < by["deep"]


def test_resume_after_interruption_does_not_pay_twice(settings):
    items = load_items(EXAMPLE)
    total = len(items) * 3
    flaky = FlakyUpstream(fail_after=40)
    runner, first = _run(settings, flaky, items, concurrency=1)
    assert first.calls_made == 40 and first.calls_failed == total - 40
    paid_first = runner.store.get_run(first.run_id)["spent_nanos"]
    healthy = OfflineUpstream(latency_scale=0.0)
    runner2, second = _run(settings, healthy, items)
    assert second.run_id == first.run_id, "the same inputs and tiers resume the same run"
    assert healthy.calls == total - 40, "only the missing answers are requested again"
    assert second.calls_reused == 40
    rows = runner2.store.results(second.run_id)
    assert all(r["status"] == 200 for r in rows) and len(rows) == total
    spent = runner2.store.get_run(second.run_id)["spent_nanos"]
    assert spent == sum(r["cost_nanos"] for r in rows) > paid_first
    # a third run makes no call at all
    idle = OfflineUpstream(latency_scale=0.0)
    _run(settings, idle, items)
    assert idle.calls == 0


def test_spend_cap_stops_new_calls(settings):
    items = load_items(EXAMPLE)
    up = OfflineUpstream(latency_scale=0.0)
    runner, summary = _run(settings, up, items, max_spend_usd=0.01, concurrency=1)
    assert summary.status == "capped" and summary.skipped_for_cap > 0
    assert up.calls < len(items) * 3
    assert runner.store.get_run(summary.run_id)["spent_nanos"] <= 0.01 * 1e9


def test_batch_mode_is_half_price_and_has_no_latency(settings):
    items = load_items(EXAMPLE)[:6]
    live_up = OfflineUpstream(latency_scale=0.0)
    engine = open_db(settings)
    runner = EvalRunner(settings, live_up, engine)
    live = asyncio.run(runner.run(items, "ev_live", RunOptions(tiers=TIERS, judge=make_judge(settings, live_up))))
    assert live.calls_made == len(items) * 3
    batcher = EvalRunner(settings, live_up, engine, batches=OfflineBatches())
    calls_before = live_up.calls
    batch = asyncio.run(batcher.run(items, "ev_batch", RunOptions(tiers=TIERS, batch=True, judge=make_judge(settings, live_up))))
    assert live_up.calls == calls_before, "batch answers come from the batch backend, not live calls"
    assert batch.calls_made == len(items) * 3
    lr = {(r["item_id"], r["tier"]): r for r in runner.store.results("ev_live")}
    br = {(r["item_id"], r["tier"]): r for r in runner.store.results("ev_batch")}
    for k, r in br.items():
        assert r["batch"] and r["latency_ms"] is None
        assert r["output"] == lr[k]["output"]
        assert abs(r["cost_nanos"] - lr[k]["cost_nanos"] / 2) <= 1


def test_outcomes_file_is_the_bench_format(settings, tmp_path):
    items = load_items(EXAMPLE)
    runner, summary = _run(settings, OfflineUpstream(latency_scale=0.0), items)
    out = tmp_path / "outcomes.jsonl"
    n = write_outcomes_file(runner.store, summary.run_id, items, out)
    recs = read_outcomes(out)
    assert n == len(recs) == len(items)
    models = {settings.catalog.tiers[t] for t in TIERS}
    for rec in recs:
        assert set(rec.outcomes) == models
        assert rec.category in {it.task for it in items} and rec.dataset == "tierwise-eval"
        for o in rec.outcomes.values():
            assert o.score in (0.0, 1.0) and o.tokens_estimated is False and o.response


def test_parse_tiers_rejects_unknown(settings):
    from tierwise.errors import ConfigError

    assert parse_tiers("deep,fast", settings) == ["fast", "deep"]
    with pytest.raises(ConfigError, match="unknown tier"):
        parse_tiers("fast,tiny", settings)


class JudgingUpstream(OfflineUpstream):
    """Offline answers; the judge's prompts scored from each response's text; ``down`` models fail (529)."""

    def __init__(self, down: tuple[str, ...] = ()) -> None:
        super().__init__(latency_scale=0.0)
        self.down = down
        self.judge_prompts: list[list[str]] = []   # per judge call: the responses it was shown, in order

    @staticmethod
    def score(text: str) -> int:
        return sum(text.encode()) % 11

    async def send(self, path, body, *, headers, stream, model=None):
        import json
        import re

        import orjson

        from tierwise.upstream.base import UpstreamResponse

        params = orjson.loads(body)
        prompt = params["messages"][0]["content"]
        if isinstance(prompt, str) and prompt.startswith("You are grading answers"):
            shown = re.findall(r'<response id="(\d+)">\n(.*?)\n</response>', prompt, re.S)
            self.judge_prompts.append([t for _, t in shown])
            scores = [{"response": int(i), "score": self.score(t), "reason": "scripted"} for i, t in shown]
            msg = {"id": "msg_j", "type": "message", "role": "assistant", "model": params["model"],
                   "content": [{"type": "text", "text": json.dumps({"scores": scores})}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 300 + 100 * len(shown), "output_tokens": 40 * len(shown)}}
            return UpstreamResponse(200, {}, body=orjson.dumps(msg), upstream=self.name)
        if model in self.down:
            raise OverloadedError("overloaded (test)")
        return await super().send(path, body, headers=headers, stream=stream, model=model)


def test_resume_never_pays_the_judge_twice(settings):
    """An item judged on fast and balanced gets its deep answer on a resume: the judge sees only the new
    answer, the old grades stay; a re-grade of answers already judged is served from the cache."""
    import sqlalchemy as sa

    from tierwise.evaluation.graders import EvalItem
    from tierwise.evaluation.judge import LLMJudge, redact
    from tierwise.ledger.evidence_schema import eval_results

    items = [EvalItem(id=f"j{i}", task="draft_email", prompt=f"Write to customer {i}.",
                      messages=[{"role": "user", "content": f"Write a polite note to customer {i}."}],
                      checks=[{"type": "judge", "rubric": "Polite and complete.", "pass": 0.5}]) for i in range(3)]
    engine = open_db(settings)
    deep = settings.catalog.tiers["deep"]
    rid = run_id_for(items, TIERS)

    def run(up):
        runner = EvalRunner(settings, up, engine)
        judge = LLMJudge(up, settings.catalog.tiers["balanced"], settings.catalog)
        return runner, asyncio.run(runner.run(items, rid, RunOptions(tiers=TIERS, judge=judge)))

    first = JudgingUpstream(down=(deep,))
    runner, _ = run(first)
    assert [len(p) for p in first.judge_prompts] == [2, 2, 2]  # fast and balanced, per item
    judge_rows = _count_calls(engine, "eval-judge")
    second = JudgingUpstream()
    runner, summary = run(second)
    assert summary.calls_made == 3  # the deep answers
    assert [len(p) for p in second.judge_prompts] == [1, 1, 1], "only the new answer goes to the judge"
    assert _count_calls(engine, "eval-judge") == judge_rows + 3
    rows = runner.store.results(rid)
    assert len(rows) == 9 and all(r["passed"] is not None for r in rows)
    for r in rows:  # every grade is the one the judge gave that very answer (blind order mapped back right)
        g = next(g for g in r["grades"] if g["grader"] == "judge")
        assert g["score"] == JudgingUpstream.score(redact(r["output"], settings.catalog)) / 10
    # grading interrupted after the judge was paid (nothing written back): the re-grade comes from the cache
    with engine.begin() as conn:
        conn.execute(eval_results.update().where(eval_results.c.run_id == rid).values(passed=None, score=None, grades=None))
    third = JudgingUpstream()
    runner, summary = run(third)
    assert third.judge_prompts == [] and third.calls == 0
    assert _count_calls(engine, "eval-judge") == judge_rows + 3
    regraded = runner.store.results(rid)
    assert [(r["passed"], r["score"], r["grades"]) for r in regraded] == [(r["passed"], r["score"], r["grades"]) for r in rows]
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM eval_judgements WHERE run_id = :r"), {"r": rid}).scalar()
    assert n == 9
