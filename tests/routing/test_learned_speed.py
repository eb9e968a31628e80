"""The learned router's hot path decides exactly as before: pinned decisions, and each shortcut against
the plain definition it replaces (tokens, word counts, the heuristic total, the slot-by-slot builds)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from tierwise.config import load_settings
from tierwise.routing import base, features, signals
from tierwise.routing.base import Decision, RouteRequest, build_router, decision
from tierwise.routing.features import _WORD_B, ascii_word_counts
from tierwise.routing.heuristic import RULES, HeuristicRouter
from tierwise.routing.learned import load_artifact
from tierwise.routing.signals import Signals

from .learned_cases import ALPHABET, bodies
from .test_learned import varied_prompts

PINNED = Path(__file__).parent / "data" / "learned_decisions.json.gz"


def test_decisions_are_pinned() -> None:
    """Every decision (tier, model, confidence, reasons, scores) as the router made it before the hot-path
    work (the fixture was written by that code: tests/routing/learned_cases.py's requests)."""
    with gzip.open(PINNED, "rt", encoding="utf-8") as f:
        pinned = json.load(f)
    router = build_router("learned", load_settings(None, environ={}))
    cases = bodies()
    assert len(cases) == len(pinned) > 600
    for (body, task), want in zip(cases, pinned):
        d = router.decide(RouteRequest(body, task))
        got = {"tier": d.tier, "model": d.model, "confidence": d.confidence, "reasons": list(d.reasons), "scores": d.scores}
        assert got == want, body


def _texts() -> list[str]:
    rng = random.Random(17)
    out = [t for t, _ in varied_prompts()] + ["'", "''", "a'", "'a", "x'1", "1'a", "don't'", "a'b'c", "''x''", "é'a"]
    out += ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 200))) for _ in range(3000)]
    out += ["".join(rng.choice("ab1' \t\n.,;#_-") for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    return out


def test_signal_tokens_match_the_regex() -> None:
    for text in _texts():
        low = text.lower()
        assert signals.tokens(low) == [t.encode("utf-8", "surrogatepass") for t in signals._WORD.findall(low)], text


def test_ascii_word_counts_match_the_regex() -> None:
    n = 0
    for text in _texts():
        low = text[:4000].encode("utf-8", "surrogatepass").lower()
        if text[:4000].isascii():
            n += 1
            assert ascii_word_counts(low) == Counter(_WORD_B.findall(low)), text
    assert n > 3000


def test_heuristic_total_matches_its_rules() -> None:
    h = HeuristicRouter(load_settings(None, environ={}), weights={"tools": 0.3})
    rng = random.Random(3)
    for _ in range(5000):
        s = Signals(chars=rng.choice([0, 150, 199, 200, 5000]), tokens=rng.choice([0, 2000, 2001, 50_000, 50_001]),
                    conditionals=rng.randint(0, 3), multi_step=rng.random() < 0.5, analysis=rng.random() < 0.5,
                    documents=rng.randint(0, 3), code=rng.random() < 0.5, code_task=rng.random() < 0.5,
                    turns=rng.randint(0, 9), tools=rng.randint(0, 2), math=rng.random() < 0.5,
                    stakes=rng.random() < 0.5, short_output=rng.random() < 0.5)
        want = sum(h.weights.get(key, 0.0) for key, fired, _ in RULES if fired(s))
        got = h.total_of(s)
        assert got == want and type(got) is type(want), s


def test_slot_builds_are_the_frozen_classes() -> None:
    assert signals._Built.__slots__ == tuple(f.name for f in dataclasses.fields(Signals))
    assert base._Built.__slots__ == tuple(f.name for f in dataclasses.fields(Decision))
    s = signals.extract(RouteRequest.from_prompt("If we must, first compare; then fix the SQL bug. $5"))
    assert type(s) is Signals and s == Signals(**{f.name: getattr(s, f.name) for f in dataclasses.fields(Signals)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.code = False  # type: ignore[misc]
    d = decision("fast", 0.7, ("a", "b"), "learned", "m", "code", {"m": 0.5})
    assert type(d) is Decision and d == Decision(tier="fast", confidence=0.7, reasons=("a", "b"), router="learned",
                                                 model="m", task="code", scores={"m": 0.5})
    assert d.cascade is None and hash(d) == hash(Decision(tier="fast", confidence=0.7, reasons=("a", "b"),
                                                          router="learned", model="m", task="code"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.tier = "deep"  # type: ignore[misc]


def test_word_cache_replaced_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full word cache is replaced by an empty one; predictions are the same with a cold, warm or tiny cache."""
    art = load_artifact()
    fast = art.fast
    assert fast is not None
    prompts = varied_prompts()
    cold = []
    for text, cat in prompts:
        fresh = features.FastScorer(art.spec, art.W, art.mu)
        cold.append(fresh.predict(text, cat, RouteRequest.from_prompt(text).signals))
    monkeypatch.setattr(features, "WORD_CACHE", 8)
    tiny = features.FastScorer(art.spec, art.W, art.mu)
    biggest = max(len(set(_WORD_B.findall(features.prompt_bytes(t, art.spec.max_chars)[1]))) for t, _ in prompts)
    replaced = 0
    for _ in range(2):
        for (text, cat), want in zip(prompts, cold):
            before = tiny._wc
            assert tiny.predict(text, cat, RouteRequest.from_prompt(text).signals) == want, text
            assert len(tiny._wc[0]) <= biggest
            replaced += tiny._wc is not before
    assert replaced > 10


def test_needs_are_built_as_the_frozen_class() -> None:
    from tierwise import capabilities
    from tierwise.capabilities import Needs, needs_of

    assert capabilities._Built.__slots__ == tuple(f.name for f in dataclasses.fields(Needs))
    body = {"model": "auto", "max_tokens": 99, "tool_choice": {"type": "tool", "name": "x"}, "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": [{"type": "image"}]}, {"role": "system", "content": "s"},
                         {"role": "assistant", "content": "pre"}]}
    n = needs_of(body, 41, "b1, b2")
    assert type(n) is Needs and n == Needs(prompt_tokens=11, max_tokens=99, forced_tool="tool", prefill=True,
                                           thinking_disabled=True, system_messages=True, betas=frozenset({"b1", "b2"}),
                                           block_types=frozenset({"image"}))
    assert needs_of({"messages": []}, 0) == Needs()
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.prefill = False  # type: ignore[misc]
