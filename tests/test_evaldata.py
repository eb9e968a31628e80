"""The realistic evaluation set: its size and spread, the dev/test split, and the rule that only
reporting benchmarks read the test split."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tierwise import evaldata
from tierwise.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
REPORTERS = {"bench/realistic_quality.py", "bench/agent_replay.py"}


def everything():
    return evaldata.load("dev") + evaldata.load("test", for_report=True)


def test_size_spread_and_labels():
    items = everything()
    assert len(items) >= 500
    assert len({i.id for i in items}) == len(items)
    types = Counter(i.task_type for i in items)
    assert len(types) >= 25
    tiers = Counter(i.tier for i in items)
    assert set(tiers) == {"fast", "balanced", "deep"} and min(tiers.values()) >= 100
    assert all(i.why.strip() for i in items)
    kinds = Counter(i.kind for i in items)
    assert kinds["agent"] >= 25 and kinds["side"] >= 10
    # varied, not a few templates: openings and lengths spread widely
    prompts = [i.raw["prompt"] for i in items if i.kind == "chat"]
    openings = Counter(" ".join(p.lower().split()[:3]) for p in prompts)
    assert openings.most_common(1)[0][1] <= 12 and len(openings) >= 300
    lengths = sorted(map(len, prompts))
    assert lengths[0] < 40 and lengths[-1] > 3000
    # short hard ones and long easy ones are both there
    assert any(i.tier == "deep" and len(i.raw.get("prompt", "")) < 120 for i in items)
    assert any(i.tier == "fast" and len(i.raw.get("prompt", "")) > 2000 for i in items)


def test_split_is_a_stable_hash_of_the_id():
    items = everything()
    assert all(i.split == evaldata.split_of(i.id) for i in items)
    assert evaldata.split_of("rw-0000000000") == evaldata.split_of("rw-0000000000")
    n_test = sum(1 for i in items if i.split == "test")
    assert 0.35 < n_test / len(items) < 0.65


def test_test_split_needs_for_report():
    with pytest.raises(PermissionError, match="reporting only"):
        evaldata.load("test")
    with pytest.raises(ValueError):
        evaldata.load("train")
    dev = evaldata.load("dev")
    assert dev and all(i.split == "dev" for i in dev)


def test_only_reporting_benchmarks_read_the_test_split():
    users = set()
    for base in ("src", "bench"):
        for path in (ROOT / base).rglob("*.py"):
            if re.search(r"for_report\s*=\s*True", path.read_text(encoding="utf-8")):
                users.add(str(path.relative_to(ROOT)))
    assert users == REPORTERS


def test_bodies_are_valid_requests():
    from tierwise.dispatch import validate_body

    for item in everything():
        body = item.body()
        validate_body(body)
        json.dumps(body)
    agent = next(i for i in everything() if i.kind == "agent")
    body = agent.body()
    assert len(body["tools"]) == 25 and len(body["system"]) == 3
    assert body["system"][2]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    big = agent.body(system_tokens=30_000)
    assert sum(len(b["text"]) for b in big["system"]) > 120_000


def test_the_default_router_meets_the_dev_figure():
    """The dev split (the one the cues were written against) stays above the target, with no
    deep work sent to the fast tier; the test figure is reported by bench/realistic_quality.py."""
    from tierwise.routing.base import RouteRequest, build_router

    router = build_router("prior", load_settings(None, environ={}), sticky=False)
    items = evaldata.load("dev")
    got = [(i.tier, router.decide(RouteRequest(i.body())).tier) for i in items]
    agree = sum(a == b for a, b in got) / len(got)
    assert agree >= 0.9
    assert not [1 for a, b in got if a == "deep" and b == "fast"]
