#!/usr/bin/env python
"""Agreement with the seeds' tier on the realistic set's TEST split (reporting only).

Every row of ``src/tierwise/data/eval/realistic.jsonl`` in the test split (split by a hash of its
id; see that directory's README) is sent through each router as the request it stands for (chat
prompts, Claude Code-shaped agent turns with the harness's 3 system blocks and 25 tools, side
requests) and the decided tier compared with the label. Printed per router: agreement, the count
of deep -> fast decisions (the costly mistake), the share sent to each tier; for the default
(``prior``) the confusion matrix and the rows it gets wrong. Beside it: random (uniform over the
three tiers, seeded), always the default tier, the previous default (``learned``), ``heuristic``,
and the oracle (the label itself). Targets: agreement >= 90 %, zero deep -> fast.

    .venv/bin/python bench/realistic_quality.py [--split test] [--show 15]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise import evaldata
from tierwise.config import load_settings
from tierwise.routing.base import RouteRequest, build_router

TIERS = ("fast", "balanced", "deep")
TARGET_AGREEMENT = 0.90


def evaluate(router, items) -> tuple[Counter, list[tuple]]:
    conf: Counter = Counter()
    wrong = []
    for it in items:
        d = router.decide(RouteRequest(it.body()))
        conf[(it.tier, d.tier)] += 1
        if d.tier != it.tier:
            wrong.append((it, d))
    return conf, wrong


def summary(name: str, conf: Counter, n: int) -> str:
    ok = sum(v for (a, b), v in conf.items() if a == b)
    shares = " ".join(f"{t} {sum(v for (a, b), v in conf.items() if b == t) / n:5.1%}" for t in TIERS)
    return f"{name:<34} agreement {ok / n:6.1%} ({ok}/{n})  deep->fast {conf[('deep', 'fast')]:3d}  sent: {shares}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=evaldata.SPLITS)
    ap.add_argument("--show", type=int, default=15, help="wrong rows of the default router to print")
    args = ap.parse_args()
    items = evaldata.load(args.split, for_report=True)  # reporting: the only place the test split is read
    settings = load_settings(None, environ={})
    n = len(items)
    kinds = Counter(i.kind for i in items)
    print(f"realistic set, {args.split} split: {n} rows ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
          f"labels: {', '.join(f'{t} {sum(1 for i in items if i.tier == t)}' for t in TIERS)}")
    rows = []
    prior = build_router("prior", settings, sticky=False)
    conf, wrong = evaluate(prior, items)
    rows.append(("prior (auto default)", conf))
    for name, router in (("random (uniform, seed 0)", build_router("random", settings)),
                         ("always balanced", build_router("fixed", settings, tier="balanced")),
                         ("learned (previous default)", build_router("learned", settings)),
                         ("heuristic", build_router("heuristic", settings))):
        rows.append((name, evaluate(router, items)[0]))
    rows.append(("oracle (the label)", Counter((i.tier, i.tier) for i in items)))
    for name, c in rows:
        print(summary(name, c, n))
    print("\nprior: confusion matrix (rows: the seeds' tier, columns: decided)")
    print(f"{'':>10}" + "".join(f"{t:>10}" for t in TIERS))
    for a in TIERS:
        print(f"{a:>10}" + "".join(f"{conf[(a, b)]:>10}" for b in TIERS))
    by_kind = Counter()
    ok_kind = Counter()
    for it in items:
        by_kind[it.kind] += 1
    for it, _ in wrong:
        ok_kind[it.kind] += 1
    print("by kind: " + ", ".join(f"{k} {1 - ok_kind[k] / v:.1%} of {v}" for k, v in sorted(by_kind.items())))
    ok = sum(v for (a, b), v in conf.items() if a == b)
    agree = ok / n
    d2f = conf[("deep", "fast")]
    print(f"\ntarget agreement >= {TARGET_AGREEMENT:.0%}: {agree:.1%} {'MET' if agree >= TARGET_AGREEMENT else 'MISSED'}; "
          f"target zero deep->fast: {d2f} {'MET' if d2f == 0 else 'MISSED'}")
    if args.show and wrong:
        print(f"\nfirst {min(args.show, len(wrong))} of {len(wrong)} disagreements (label -> decided: first reason | request):")
        for it, d in wrong[: args.show]:
            text = it.raw.get("prompt") or next((t["text"] for t in it.raw.get("turns", []) if t["role"] == "user"), "")
            print(f"  {it.tier:>8} -> {d.tier:<8} {it.task_type:<20} {d.reasons[0][:80]} | {text[:70]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
