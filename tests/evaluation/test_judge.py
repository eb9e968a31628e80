"""The LLM judge is blind: anonymised, shuffled answers; scores mapped back to the right tier."""

from __future__ import annotations

import asyncio
import json
import re

import orjson

from tierwise.evaluation.graders import EvalItem
from tierwise.evaluation.judge import LLMJudge, OfflineJudge, blind_order, parse_scores, redact
from tierwise.upstream.base import UpstreamResponse


class ScriptedJudgeUpstream:
    """Answers a judge prompt by scoring each response by the number hidden in its text."""

    name = "scripted"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def send(self, path, body, *, headers, stream, model=None):
        params = orjson.loads(body)
        prompt = params["messages"][0]["content"]
        self.prompts.append(prompt)
        scores = []
        for i, text in re.findall(r'<response id="(\d+)">\n(.*?)\n</response>', prompt, re.S):
            n = int(re.search(r"quality (\d+)", text).group(1))
            scores.append({"response": int(i), "score": n, "reason": f"saw {n}"})
        msg = {"id": "msg_j", "type": "message", "role": "assistant", "model": params["model"],
               "content": [{"type": "text", "text": "Here:\n" + json.dumps({"scores": scores})}],
               "stop_reason": "end_turn", "usage": {"input_tokens": 400, "output_tokens": 60}}
        return UpstreamResponse(200, {}, body=orjson.dumps(msg), upstream=self.name)

    async def aclose(self):
        return None


def _item():
    return EvalItem(id="x1", task="draft_email", prompt="Write to the customer.", messages=[{"role": "user", "content": "w"}],
                    reference="A polite email", checks=[{"type": "judge", "rubric": "Polite and complete.", "pass": 0.6}])


def test_judge_is_blind_and_maps_scores_back(settings):
    up = ScriptedJudgeUpstream()
    judge = LLMJudge(up, "claude-sonnet-5-5", settings.catalog)
    outputs = {
        "fast": "[offline synthetic answer from claude-haiku-5-5] quality 3. As Claude Haiku 5.5 I wrote this.",
        "balanced": "quality 7 from claude-sonnet-5-5 (sonnet)",
        "deep": "quality 9, signed Opus",
    }
    res = asyncio.run(judge.judge(_item(), outputs, seed="run:x1"))
    prompt = up.prompts[0]
    for leak in ("haiku", "sonnet", "opus", "claude-", "fast", "balanced", "deep", "offline synthetic"):
        assert leak not in prompt.lower(), f"the judge saw {leak!r}"
    assert "Polite and complete." in prompt and "A polite email" in prompt
    assert {k: g.score for k, g in res.grades.items()} == {"fast": 0.3, "balanced": 0.7, "deep": 0.9}
    assert [k for k, g in res.grades.items() if g.passed] == ["balanced", "deep"]
    assert res.usage.input_tokens == 400 and res.model == "claude-sonnet-5-5"


def test_order_is_shuffled_per_input_but_reproducible():
    keys = ["fast", "balanced", "deep", "frontier"]
    orders = {tuple(blind_order(keys, f"run:{i}")) for i in range(30)}
    assert len(orders) > 3, "different inputs see different orders"
    assert blind_order(keys, "run:7") == blind_order(keys, "run:7")


def test_unparseable_judge_answer_grades_nothing():
    assert parse_scores("I think they are all fine", ["a", "b"], 0.6) == {"a": None, "b": None}
    got = parse_scores('{"scores": [{"response": 2, "score": 8}, {"response": 9, "score": 1}]}', ["a", "b"], 0.6)
    assert got["a"] is None and got["b"].score == 0.8


def test_redact_and_offline_judge(settings):
    assert redact("I am claude-opus-5-5, also Claude Sonnet 4.6", settings.catalog) == "I am [model], also [model]"
    judge = OfflineJudge(settings.catalog)
    outs = {"fast": "[offline synthetic answer from claude-haiku-5-5] a b c", "deep": "word " * 80}
    res = asyncio.run(judge.judge(_item(), outs, seed="s"))
    assert res.grades["deep"].passed and res.grades["deep"].score >= 0.6
    assert res.grades["fast"].score < res.grades["deep"].score
    assert "haiku" not in res.prompt
