#!/usr/bin/env python
"""How cheap can the agent replay be served at the label oracle's quality? A search with hindsight.

``bench/agent_replay.py`` compares tierwise with always-Sonnet and with the label oracle (every request
on the tier its task needs, no state). A router that never serves a task below its need can do better
than the oracle only by the cache: staying on a higher tier when moving would re-write more than it
saves. This searches for the cheapest such assignment, knowing every future request (which no router
does), on the same interleaved replay and cache simulation:

1. task level: one model per human task (at or above the task's need; side requests on the fast
   tier), every assignment of a conversation's tasks tried, conversation after conversation, with the
   others held (coordinate descent; each candidate priced on the whole interleaved replay, since
   conversations share cached system prompts), until a sweep changes nothing;
2. request level: from there, each agent turn's model changed alone (at or above its need), kept when
   the whole replay gets cheaper, until a sweep changes nothing.

The search is not exhaustive (the assignments are too many): what it prints is the cheapest it found,
an upper bound on the optimum, and evidence (not proof) of what any router can reach at the oracle's
quality. Printed beside: always-Sonnet and the oracle, as agent_replay.py prices them.

    .venv/bin/python bench/replay_bound.py [--conversations 24] [--seed 7] [--tasks all|dev] [--sweeps 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.cachesim import CacheSim, blocks_of
from tierwise.config import load_settings
from tierwise.routing.base import RouteRequest, build_router


def _replay() -> Any:
    spec = importlib.util.spec_from_file_location("agent_replay", ROOT / "bench" / "agent_replay.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["agent_replay"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


class Search:
    def __init__(self, ar: Any, convs: list[list[Any]], catalog: Any) -> None:
        self.ar, self.catalog = ar, catalog
        self.events = sorted((r for c in convs for r in c), key=lambda r: (r.t, r.conv))
        self.blocks = {id(r): blocks_of(r.body) for r in self.events}
        tiers = ("fast", "balanced", "deep")
        self.model = {t: catalog.model_for_tier(t).id for t in tiers}
        self.allowed = {t: [self.model[u] for u in tiers[tiers.index(t):]] for t in tiers}
        self.needs: dict[int, dict[int, str]] = {}
        for r in self.events:
            if not r.side:
                self.needs.setdefault(r.conv, {})[r.task] = r.need
        self.evaluated = 0

    def total(self, pick: dict[int, str], side: str | None = None) -> int:
        """Cost (nano-USD) of the whole replay: ``pick`` maps each agent turn (``id``) to a model."""
        sim = CacheSim()
        cost = 0
        fast = side or self.model["fast"]
        for r in self.events:
            m = fast if r.side else pick[id(r)]
            cost += self.ar.price(self.catalog, m, sim.account(m, self.blocks[id(r)], r.t), r.output_tokens)
        self.evaluated += 1
        return cost

    def by_task(self, tasks: dict[int, dict[int, str]]) -> dict[int, str]:
        return {id(r): tasks[r.conv][r.task] for r in self.events if not r.side}

    def task_level(self, sweeps: int) -> tuple[int, dict[int, dict[int, str]]]:
        tasks = {c: {k: self.model[n] for k, n in ks.items()} for c, ks in self.needs.items()}
        best = self.total(self.by_task(tasks))
        for _ in range(sweeps):
            changed = False
            for c, ks in sorted(self.needs.items()):
                order = sorted(ks)
                for combo in itertools.product(*(self.allowed[ks[k]] for k in order)):
                    trial = {**tasks, c: dict(zip(order, combo))}
                    if trial[c] == tasks[c]:
                        continue
                    cost = self.total(self.by_task(trial))
                    if cost < best:
                        best, tasks, changed = cost, trial, True
            if not changed:
                break
        return best, tasks

    def regret(self, pick: dict[int, str]) -> list[tuple[int, int, int, str, str, str]]:
        """Each human task's models (``pick``) replaced by each other model at or above its need, the rest
        kept, the whole replay re-priced: the replacements that would have cost less. ->
        (saving nano-USD, conversation, task, need, models used, cheaper model)."""
        base = self.total(pick)
        out = []
        for c, ks in sorted(self.needs.items()):
            for k, need in sorted(ks.items()):
                reqs = [r for r in self.events if not r.side and r.conv == c and r.task == k]
                used = sorted({pick[id(r)] for r in reqs})
                for m in self.allowed[need]:
                    if used == [m]:
                        continue
                    trial = {**pick, **{id(r): m for r in reqs}}
                    delta = self.total(trial) - base
                    if delta < 0:
                        out.append((delta, c, k, need, "/".join(used), m))
        return sorted(out)

    def request_level(self, pick: dict[int, str], best: int, sweeps: int) -> tuple[int, dict[int, str]]:
        turns = [r for r in self.events if not r.side]
        for _ in range(sweeps):
            changed = False
            for r in turns:
                for m in self.allowed[r.need]:
                    if m == pick[id(r)]:
                        continue
                    old, pick[id(r)] = pick[id(r)], m
                    cost = self.total(pick)
                    if cost < best:
                        best, changed = cost, True
                    else:
                        pick[id(r)] = old
            if not changed:
                break
        return best, pick


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=24)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tasks", choices=("all", "dev"), default="all")
    ap.add_argument("--sweeps", type=int, default=3, help="at most this many sweeps per phase")
    ap.add_argument("--regret", action="store_true",
                    help="also: which of tierwise's per-task choices another model would have served cheaper")
    args = ap.parse_args()
    ar = _replay()
    settings = load_settings(None, environ={})
    catalog = settings.catalog
    convs = ar.conversations(args.conversations, args.seed, args.tasks)
    s = Search(ar, convs, catalog)
    sonnet = s.model["balanced"]
    always = s.total({id(r): sonnet for r in s.events if not r.side}, side=sonnet)
    oracle = s.total({id(r): s.model[r.need] for r in s.events if not r.side})
    print(f"{len(convs)} conversations, {len(s.events)} requests; always-Sonnet ${always / 1e9:.4f}, "
          f"label oracle ${oracle / 1e9:.4f}")
    best, tasks = s.task_level(args.sweeps)
    print(f"cheapest found at the oracle's quality, one model per task (hindsight): ${best / 1e9:.4f}")
    for c, ks in sorted(tasks.items()):
        want = {k: s.model[n] for k, n in s.needs[c].items()}
        if ks != want:
            show = "/".join(ks[k].replace("claude-", "") for k in sorted(ks))
            print(f"  conv {c:2d}: needs {'/'.join(s.needs[c][k] for k in sorted(ks))} -> {show}")
    best, pick = s.request_level(s.by_task(tasks), best, args.sweeps)
    print(f"cheapest found at the oracle's quality, a model per request (hindsight): ${best / 1e9:.4f} "
          f"({s.evaluated} assignments priced)")
    verdict = "below" if best <= always else "above"
    print(f"at the oracle's quality the cheapest assignment found is {verdict} always-Sonnet: "
          f"${best / 1e9:.4f} vs ${always / 1e9:.4f} ({best / always - 1:+.2%})")
    if args.regret:
        tierwise = tierwise_picks(s, settings)
        print(f"\ntierwise ${s.total(tierwise) / 1e9:.4f}; its per-task choices another model (at or above the "
              "need) would have served cheaper, the rest of its choices kept (hindsight):")
        rows = s.regret(tierwise)
        for delta, c, k, need, used, m in rows:
            r0 = next(r for r in s.events if not r.side and r.conv == c and r.task == k)
            print(f"  {delta / 1e9:+.4f}  conv {c:2d} task {k} ({r0.split} {r0.kind}, needs {need}): "
                  f"{used.replace('claude-', '')} -> {m.replace('claude-', '')}")
        print(f"  sum {sum(x[0] for x in rows) / 1e9:+.4f} (not additive: each replacement priced alone)")
    return 0


def tierwise_picks(s: Search, settings: Any) -> dict[int, str]:
    """The model tierwise (``prior`` with conversation state, on the replay's clock) gives each agent turn."""
    router = build_router("prior", settings)
    now = [0.0]
    router.conversations.clock = lambda: now[0]
    pick = {}
    for r in s.events:  # side requests too: the router sees the same stream as in agent_replay.py
        now[0] = r.t
        d = router.decide(RouteRequest(r.body))
        if not r.side:
            named = d.model if d.model and s.catalog.get(d.model) is not None else None
            pick[id(r)] = named or s.catalog.model_for_tier(d.tier).id
    return pick


if __name__ == "__main__":
    raise SystemExit(main())
