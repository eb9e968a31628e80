from __future__ import annotations

import pytest

from tierwise.cascade.verify import answer_score, build_verifiers
from tierwise.errors import ConfigError
from tierwise.upstream.offline import OfflineUpstream


def msg(text="", stop="end_turn", content=None):
    return {"content": content if content is not None else [{"type": "text", "text": text}], "stop_reason": stop}


async def run(specs, message, request=None, upstream=None):
    [v] = build_verifiers(specs, upstream)
    return await v.check(message, request or {"messages": [{"role": "user", "content": "q"}]})


async def test_stop_reason():
    assert (await run(["stop_reason"], msg("ok"))).ok
    v = await run(["stop_reason"], msg("cut", stop="max_tokens"))
    assert not v.ok and v.reason == "stop_reason was max_tokens"
    assert not (await run(["stop_reason"], msg("", stop="refusal"))).ok


async def test_json_schema():
    schema = {"type": "object", "properties": {"label": {"enum": ["billing", "shipping"]}}, "required": ["label"]}
    spec = [{"type": "json_schema", "schema": schema}]
    assert (await run(spec, msg('{"label": "billing"}'))).ok
    assert (await run(spec, msg('```json\n{"label": "shipping"}\n```'))).ok
    bad = await run(spec, msg('{"label": "refunds"}'))
    assert not bad.ok and "at label" in bad.reason and "'refunds' is not one of" in bad.reason
    assert (await run(spec, msg("billing"))).reason == "the answer is not valid JSON"
    with pytest.raises(ConfigError, match="invalid schema"):
        build_verifiers([{"type": "json_schema", "schema": {"type": 7}}])


async def test_regex_and_tool_fields():
    assert (await run([{"type": "regex", "pattern": r"####\s*\d+"}], msg("so 540\n#### 540"))).ok
    assert not (await run([{"type": "regex", "pattern": r"####\s*\d+"}], msg("about 540"))).ok
    tools = [{"name": "lookup", "input_schema": {"type": "object", "required": ["order_id"]}}]
    good = msg(content=[{"type": "tool_use", "name": "lookup", "input": {"order_id": "1"}}])
    bad = msg(content=[{"type": "tool_use", "name": "lookup", "input": {}}])
    req = {"tools": tools, "messages": []}
    assert (await run(["tool_fields"], good, req)).ok
    v = await run(["tool_fields"], bad, req)
    assert not v.ok and "missing required field(s) order_id" in v.reason


def test_answer_score():
    assert answer_score("") == 0.0
    assert answer_score("The capital of France is Paris.") == 1.0
    assert answer_score("I'm not sure, it is unclear...") < 0.5


async def test_llm_grader_goes_through_the_upstream():
    up = OfflineUpstream(latency_scale=0)
    v = await run([{"type": "llm_grader", "rubric": "Mentions a date."}], msg("It was 3 May."), upstream=up)
    # the offline upstream answers in prose, not the JSON asked for: the grader fails closed
    assert not v.ok and v.reason == "the grader's reply was not the JSON asked for"
    assert up.calls == 1
    with pytest.raises(ConfigError, match="unknown type"):
        build_verifiers(["nope"])
