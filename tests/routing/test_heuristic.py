from __future__ import annotations

import pytest

from tierwise.errors import ConfigError, InvalidRequestError
from tierwise.routing import RouteRequest, available, build_router


@pytest.fixture
def heuristic(settings):
    return build_router("heuristic", settings)


@pytest.mark.parametrize("prompt, tier", [
    ("Classify the intent of this message: 'where is my order?'", "fast"),
    ("Extract the invoice number and the date as JSON: INV-2291, 3 May 2026", "fast"),
    ("Write a haiku about autumn.", "fast"),
    ("Write a Python function that parses ISO dates, and fix the bug in this code:\n```\ndef f(x):\n    return x\n```", "balanced"),
    ("Compare document 1 and document 2 step by step, analyze where the contract terms contradict each other, "
     "and if the liability clause applies unless notice was given, assess the security and payment risks.", "deep"),
])
def test_tiers_follow_complexity(heuristic, prompt, tier):
    d = heuristic.decide(RouteRequest.from_prompt(prompt))
    assert d.tier == tier, d.reasons
    assert d.router == "heuristic" and 0.5 <= d.confidence <= 0.95
    assert d.reasons[-1].endswith(f"-> {tier}")


def test_reasons_are_readable(heuristic):
    d = heuristic.decide(RouteRequest.from_prompt("Compare these two approaches and analyze the trade-offs",
                                                  tools=[{"name": "search"}]))
    assert "asks for comparison or analysis" in d.reasons and "tools available (1)" in d.reasons


def test_long_conversation_and_long_prompt_escalate(heuristic):
    body = {"max_tokens": 100, "messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": "x " * 3000}
                                            for i in range(9)]}
    d = heuristic.decide(RouteRequest(body))
    assert d.tier in ("balanced", "deep")
    assert any(r.startswith("long prompt") for r in d.reasons) and any(r.startswith("long conversation") for r in d.reasons)


def test_registry_strategy(settings):
    reg = build_router("registry", settings)
    assert reg.decide(RouteRequest.from_prompt("x", task="extract_entities")).tier == "fast"
    assert reg.decide(RouteRequest.from_prompt("x")).tier == "balanced"
    with pytest.raises(InvalidRequestError, match="known task types: classify_intent"):
        reg.decide(RouteRequest.from_prompt("x", task="made_up"))


def test_random_is_seeded_and_mixes(settings):
    r = build_router("random", settings, seed=3)
    tiers = [r.decide(RouteRequest.from_prompt(f"prompt {i}")).tier for i in range(300)]
    again = [r.decide(RouteRequest.from_prompt(f"prompt {i}")).tier for i in range(300)]
    assert tiers == again
    assert {t: tiers.count(t) for t in set(tiers)}.keys() == {"fast", "balanced", "deep"}
    assert all(60 < tiers.count(t) < 140 for t in ("fast", "balanced", "deep"))


def test_strategies_registered_by_name(settings):
    assert {"registry", "heuristic", "fixed", "random"} <= set(available())
    assert build_router("fixed", settings, tier="deep").decide(RouteRequest.from_prompt("x")).tier == "deep"
    with pytest.raises(ConfigError, match="unknown routing strategy 'nope'"):
        build_router("nope", settings)


def test_total_equals_the_scored_reasons(heuristic):
    for prompt in ("Classify: refund", "Compare document 1 and document 2 step by step and assess the legal risks",
                   "def f(x):\n    return x  # fix the bug in this code", "x " * 5000):
        req = RouteRequest.from_prompt(prompt)
        assert heuristic.total(req) == heuristic.score(req)[0]
