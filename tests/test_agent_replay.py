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


def test_replay_prices_by_the_documented_rules_end_to_end(ar, catalog):
    """Hand-priced: a write on Sonnet, a read on Sonnet (5.5 prices: write 2.50, read 0.10, output 10 per
    Mtok), then the same prompt on Haiku past 100k tokens: nothing cached there, written at Haiku's
    long-context rates (0.625 write, 2.50 output), output included."""
    from tierwise.cachesim import Block, CacheSim

    S, H = catalog.model_for_tier("balanced").id, catalog.model_for_tier("fast").id
    sim = CacheSim()
    first = [Block(b"a", 60_000, "5m")]
    second = [Block(b"a", 60_000, None), Block(b"b", 50_000, "5m")]
    acc = sim.account(S, first, 0.0)
    assert ar.price(catalog, S, acc, 1000) == 60_000 * 2_500 + 1000 * 10_000  # nano-USD: $2.50 / Mtok = 2,500 a token
    acc = sim.account(S, second, 10.0)
    assert (acc.cache_read_tokens, acc.cache_write_5m_tokens) == (60_000, 50_000)
    assert ar.price(catalog, S, acc, 1000) == 60_000 * 100 + 50_000 * 2_500 + 1000 * 10_000
    acc = sim.account(H, second, 20.0)  # another model: its own cache, empty
    assert (acc.cache_read_tokens, acc.cache_write_5m_tokens) == (0, 110_000)
    assert ar.price(catalog, H, acc, 1000) == 110_000 * 625 + 1000 * 2_500
    acc = sim.account(S, second, 400.0)  # the Sonnet entries were last read at 10 s: gone after 5 minutes
    assert acc.cache_read_tokens == 0
