#!/usr/bin/env python
"""Decision latency of ``auto``'s routers on the proxy's hot path.

First the default, ``prior`` (task category, bounded view, conversation state), on 1,000 requests
from the realistic set's dev split: chat prompts, side requests, and Claude Code-shaped agent
requests with 25 tools and a 30,000-token system prompt (a quarter of them), each a fresh request
of its own conversation. Targets: p50 <= 0.1 ms, p99 <= 0.5 ms.

Then the learned router, as before:

The issue's targets: ``decide`` in p50 <= 0.5 ms and p99 <= 2 ms per prompt. Tighter, the
project's own budget: the proxy may add <= 0.5 ms p50 per request in all and everything else costs
~0.4 ms, so ``decide`` should cost <= 0.08 ms p50 (and <= 0.5 ms p99). Both verdicts are printed.

Times ``LearnedRouter.decide`` (heuristic signals, featurise, predict every rung, choose, build
reasons) on 1,000 fresh requests, so the request's cached signals are computed inside the timed
call: benchmark prompts when ``../shared/bench`` exists, otherwise synthetic ones. Also prints the
figure when the signals were already computed (the dispatcher needs them anyway for the context
window check) and, once, the numpy reference path for comparison.

    .venv/bin/python bench/decision_latency.py [--n 1000] [--data ../shared/bench]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.config import load_settings  # noqa: E402
from tierwise.routing.base import RouteRequest  # noqa: E402

TARGET_P50, TARGET_P99 = 0.5, 2.0     # ms: the targets
BUDGET_P50, BUDGET_P99 = 0.08, 0.5    # ms: the proxy's 0.5 ms budget minus ~0.4 ms for everything else


def prompts(data: Path, n: int) -> list[str]:
    out: list[str] = []
    if data.exists():
        from tierwise.outcomes import read_outcomes

        recs = read_outcomes([p for p in sorted(data.glob("*.jsonl")) if p.name != "alpacaeval.jsonl"])
        random.Random(0).shuffle(recs)
        out = [r.prompt for r in recs[:n]]
    words = "the quick analysis of contract risk compare total probability function code plan step".split()
    rng = random.Random(1)
    while len(out) < n:
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 400))))
    return out


PRIOR_P50, PRIOR_P99 = 0.1, 0.5     # ms: the targets for the default (prior) router


def realistic_bodies(n: int) -> list[dict]:
    """``n`` request bodies from the realistic dev split; every 4th an agent request with a
    30,000-token system prompt and 25 tools, each with its own session."""
    from tierwise import evaldata

    items = evaldata.load("dev")
    agents = [i for i in items if i.kind == "agent"]
    big = evaldata.agent_body(agents[0].raw["turns"], system_tokens=30_000)
    system = big["system"]
    out = []
    for k in range(n):
        if k % 4 == 3:
            item = agents[(k // 4) % len(agents)]
            body = evaldata.agent_body(item.raw["turns"], session=f"lat{k}")
            body["system"] = system  # the same 30k-token system prompt (as a harness sends it every turn)
        else:
            body = items[k % len(items)].body()
        out.append(body)
    return out


def prior_latency(n: int, timed, q) -> float:
    from tierwise.routing.base import build_router

    router = build_router("prior", load_settings(None, environ={}))
    bodies = realistic_bodies(n)
    for b in bodies[:50]:
        router.decide(RouteRequest(b))
    times = timed(router.decide, [RouteRequest(b) for b in bodies])
    agent = timed(router.decide, [RouteRequest(b) for b in bodies if "tools" in b])
    cpu = timed(router.decide, [RouteRequest(b) for b in bodies], clock=time.thread_time)
    wall50, wall99 = q(times, 0.5), q(times, 0.99)
    # the verdict is on this thread's CPU time: on a 2-core machine shared with other work, wall time
    # counts the time other processes held the core (both are printed)
    p50, p99 = q(cpu, 0.5), q(cpu, 0.99)
    sys_tokens = max(sum(len(x["text"]) for x in b["system"]) // 4 for b in bodies if "tools" in b)
    print(f"prior router (auto default): {len(bodies)} realistic requests, {sum('tools' in b for b in bodies)} of them "
          f"agent requests with 25 tools and a {sys_tokens:,}-token system prompt")
    print(f"decide wall time p50 {wall50:.3f} ms, p99 {wall99:.3f} ms (agent requests alone p50 {q(agent, 0.5):.3f} ms, "
          f"p99 {q(agent, 0.99):.3f} ms); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"decide CPU time (this thread) p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {1000 * cpu[-1]:.3f} ms")
    print(f"target p50 <= {PRIOR_P50:.2f} ms: {p50:.3f} ms {'MET' if p50 <= PRIOR_P50 else 'MISSED'}; "
          f"target p99 <= {PRIOR_P99:.1f} ms: {p99:.3f} ms {'MET' if p99 <= PRIOR_P99 else 'MISSED'}\n")
    return wall50


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    args = ap.parse_args()

    def timed(fn, reqs, clock=time.perf_counter) -> list[float]:
        out = []
        gc.collect()  # start clean; collections triggered while timing are counted (as in the proxy)
        for r in reqs:
            t = clock()
            fn(r)
            out.append(clock() - t)
        return sorted(out)

    def q(times: list[float], p: float) -> float:
        return 1000 * times[min(len(times) - 1, int(len(times) * p))]

    prior_wall50 = prior_latency(args.n, timed, q)
    t0 = time.perf_counter()
    from tierwise.routing.base import build_router

    router = build_router("learned", load_settings(None, environ={}))
    load_ms = 1000 * (time.perf_counter() - t0)
    texts = prompts(Path(args.data), args.n)
    for t in texts[:50]:  # warm-up (regex compilation, first use of the weight arrays)
        router.decide(RouteRequest.from_prompt(t))

    times = timed(router.decide, [RouteRequest.from_prompt(t) for t in texts])
    warm = [RouteRequest.from_prompt(t) for t in texts]
    for r in warm:
        _ = r.signals  # computed and cached on the request
    cached = timed(router.decide, warm)
    art = router.artifact  # type: ignore[attr-defined]
    ref = timed(lambda r: art.predict_one_reference(r.last_user_text, r.task, r.signals), warm)
    p50, p99 = q(times, 0.5), q(times, 0.99)
    mean_chars = sum(len(t) for t in texts) / len(texts)
    path = "fast pure-Python path" if art.fast is not None else "numpy path (version-1 artifact)"
    print(f"learned router (default artifact v{art.version}, {path}): load {load_ms:.0f} ms; "
          f"{len(texts)} prompts, mean {mean_chars:.0f} chars, median {sorted(map(len, texts))[len(texts) // 2]} chars")
    print(f"decide p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {1000 * times[-1]:.3f} ms (fresh requests, signals computed inside)")
    print(f"decide p50 {q(cached, 0.5):.3f} ms, p99 {q(cached, 0.99):.3f} ms with the request's signals already cached; "
          f"numpy reference predict alone p50 {q(ref, 0.5):.3f} ms")
    print(f"prior vs learned in this run (same machine, same load): p50 wall {prior_wall50:.3f} ms vs {p50:.3f} ms, "
          f"ratio {prior_wall50 / p50:.2f}")
    for what, t50, t99 in (("target", TARGET_P50, TARGET_P99), ("proxy budget", BUDGET_P50, BUDGET_P99)):
        print(f"{what} p50 <= {t50:.2f} ms: {p50:.3f} ms {'MET' if p50 <= t50 else 'MISSED'}; "
              f"{what} p99 <= {t99:.1f} ms: {p99:.3f} ms {'MET' if p99 <= t99 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
