"""bench/agent_replay.py and bench/replay_bound.py: dev-only conversations for building, one way of
pricing for every policy, the hindsight search never below a task's need, and test rows' text kept out
of the breakdown."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tierwise import evaldata
from tierwise.config import load_settings

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def ar():
    return _load("agent_replay")


@pytest.fixture(scope="module")
def catalog():
    return load_settings(None, environ={}).catalog


def test_dev_conversations_draw_only_dev_rows(ar):
    dev_texts = {i.raw["turns"][0]["text"] for i in evaldata.load("dev") if i.kind == "agent"}
    convs = ar.conversations(8, 7, "dev")
    turns = [r for c in convs for r in c if not r.side]
    assert turns and all(r.split == "dev" for r in turns)
    assert all(ar._task_text(r) in dev_texts for r in turns)
    every = [r for c in ar.conversations(24, 7) for r in c if not r.side]
    assert {r.split for r in every} == {"dev", "test"}
    with pytest.raises(ValueError):
        ar.task_rows("test")


def test_tasks_are_numbered_and_costs_add_up(ar, catalog):
    convs = ar.conversations(3, 7)
    for conv in convs:
        tasks = [r.task for r in conv]
        assert tasks == sorted(tasks) and tasks[0] == 0
    sonnet = catalog.model_for_tier("balanced").id
    res = ar.run("always-Sonnet", lambda r: (sonnet, ()), convs, catalog)
    assert len(res.costs) == len(res.decisions) == res.requests
    assert sum(res.costs) == res.cost_nanos > 0


def test_the_search_prices_like_the_replay_and_never_goes_below_need(catalog):
    ar = _load("agent_replay")
    rb = _load("replay_bound")
    convs = ar.conversations(3, 7)
    s = rb.Search(ar, convs, catalog)
    oracle_pick = {id(r): s.model[r.need] for r in s.events if not r.side}
    oracle = ar.run("oracle", lambda r: (catalog.model_for_tier(r.need).id, ()), convs, catalog)
    assert s.total(oracle_pick) == oracle.cost_nanos
    best, tasks = s.task_level(1)
    assert best <= oracle.cost_nanos
    idx = catalog.tier_index
    for c, ks in tasks.items():
        for k, model in ks.items():
            assert idx(catalog.tier_of(model)) >= idx(s.needs[c][k])
    assert s.total(s.by_task(tasks)) == best


def test_breakdown_shows_no_test_row_text(ar, catalog, capsys):
    convs = ar.conversations(24, 7)
    haiku, sonnet = catalog.model_for_tier("fast").id, catalog.model_for_tier("balanced").id
    a = ar.run("all fast", lambda r: (haiku, ("why",)), convs, catalog)
    b = ar.run("always-Sonnet", lambda r: (sonnet, ()), convs, catalog)
    ar.breakdown(a, b, b)
    out = capsys.readouterr().out
    test_texts = [ar._task_text(r)[:50] for c in convs for r in c if r.split == "test" and not r.side]
    assert test_texts and "(test row)" in out
    assert not any(repr(t) in out for t in test_texts)
    assert "cost by the tier" in out
