#!/usr/bin/env python
"""Decision latency of the default learned router: p50 <= 0.5 ms and p99 <= 2 ms per prompt.

Times ``LearnedRouter.decide`` (featurise, predict every rung, choose, build reasons) on 1,000
prompts: benchmark prompts when ``../shared/bench`` exists, otherwise synthetic ones.

    .venv/bin/python bench/decision_latency.py [--n 1000] [--data ../shared/bench]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.config import load_settings  # noqa: E402
from tierwise.routing.base import RouteRequest  # noqa: E402


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    from tierwise.routing.base import build_router

    router = build_router("learned", load_settings(None, environ={}))
    load_ms = 1000 * (time.perf_counter() - t0)
    texts = prompts(Path(args.data), args.n)
    reqs = [RouteRequest.from_prompt(t) for t in texts]
    for r in reqs[:50]:  # warm-up (regex compilation, numpy dispatch)
        router.decide(RouteRequest.from_prompt(r.text))
    times = []
    for r in reqs:
        t = time.perf_counter()
        router.decide(r)
        times.append(time.perf_counter() - t)
    times.sort()
    p50 = 1000 * times[len(times) // 2]
    p99 = 1000 * times[min(len(times) - 1, int(len(times) * 0.99))]
    mean_chars = sum(len(t) for t in texts) / len(texts)
    print(f"learned router (default artifact): load {load_ms:.0f} ms; {len(texts)} prompts, mean {mean_chars:.0f} chars")
    print(f"decide p50 {p50:.3f} ms (target <= 0.5): {'met' if p50 <= 0.5 else 'MISSED'}")
    print(f"decide p99 {p99:.3f} ms (target <= 2): {'met' if p99 <= 2.0 else 'MISSED'}")
    print(f"decide max {1000 * times[-1]:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
