"""The ``prior`` router's decisions are pinned: the latency work changed how fast it decides, not what.

``prior_cases`` builds ~2,800 requests (the realistic dev split in several shapes, the decision bench's
1,000 requests through one stateful router, replayed agent conversations, the test fixtures) and
compares (tier, model, confidence, reasons) with the decisions recorded from main before the work
(``data/prior_decisions.json.gz``; re-record a deliberate change with ``prior_cases.py --write``).
"""

from __future__ import annotations

import pytest

from tierwise import evaldata
from tierwise.config import load_settings
from tierwise.routing.base import RouteRequest, build_router

from .prior_cases import FIXTURE, compare, decisions, load_recorded


def test_decisions_are_identical_to_the_recorded_ones():
    recorded = load_recorded()
    now = decisions()
    assert len(now) == len(recorded) > 2500
    diff = compare(now, recorded)
    assert not diff, f"{len(diff)} of {len(now)} decisions differ from {FIXTURE.name}:\n" + "\n".join(diff[:10])


_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
BAD_SHAPES = [
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "   \n\t "}],
    [{"role": "user", "content": [_IMAGE, _IMAGE]}],
    [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x"}}]}],
    [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}],
    [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [_IMAGE]}]}],
    [{"role": "user", "content": [{"type": "tool_result", "content": {"nested": "dict"}}]}],
    [{"role": "tool", "content": "output"}, {"role": "user", "content": [{"type": "tool_result"}]}],
    [{"role": "developer", "content": "be terse"}, {"role": None, "content": "hi"}, {"role": 7}],
    [{"role": "assistant", "content": None}, {"role": "user", "content": [None, 3, "text", {"type": "text", "text": 5}]}],
    [{"role": "user", "content": [{"type": "text", "text": "\ud800 surrogate and \x00 nul"}]}],
    [{"role": "user", "content": "x" * 1_000_000}],
    [{"role": "user", "content": [{"type": "text", "text": "word "}] * 5000}],
    [{"role": "user", "content": "fix the bug"}, {"role": "assistant", "content": [{"type": "tool_use", "input": 5}]},
     {"role": "user", "content": [{"type": "tool_result", "content": [{"type": "text", "text": 7}]}]}],
]


@pytest.mark.parametrize("messages", BAD_SHAPES)
@pytest.mark.parametrize("shape", ["chat", "agent", "odd-fields", "odd-tools"])
def test_bad_input_gets_a_decision_with_a_reason_never_an_exception(messages, shape):
    body = {"model": "auto", "max_tokens": 100, "messages": messages}
    if shape == "agent":
        h = evaldata.harness()
        body.update(system=h["system"], tools=h["tools"], max_tokens=32000, metadata={"user_id": "u_session_bad"})
    elif shape == "odd-fields":
        body.update(system=[3, None, {"type": "text", "text": ["not", "text"]}], tools=[None, "t", {"name": 3}],
                    max_tokens=True, metadata="nope")
    elif shape == "odd-tools":  # descriptions that are not text: measured as nothing, never an exception
        body.update(tools=[{"name": "a", "description": 5}, {"name": "b", "description": ["x"]}, {"description": None}] * 3,
                    metadata={"user_id": "u_session_odd"})
    router = build_router("prior", load_settings(None, environ={}))
    for _ in range(2):  # a first turn and a repeat (conversation state in the way)
        d = router.decide(RouteRequest(body))
        assert d.tier in router.catalog.tiers and d.model
        assert d.reasons and all(isinstance(r, str) and r for r in d.reasons)
