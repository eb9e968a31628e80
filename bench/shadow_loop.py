"""Does the shadow loop learn? The loop end to end on the offline upstream's hidden quality model.

An in-process proxy (real app, ledger, shadow sampler; offline upstream with quality = "sim":
some task types are truly fine on Haiku, some are not, and every answer carries a pass/fail
marker the blind grader reads) serves a simulated workload of 10 task types (30% of it as model
"auto"); a share of live calls is replayed on the other tier and graded. Then `tierwise learn`
retrains the router on the pairs' recorded features, `apply = "auto"` moves registry entries, a
regression is injected and the monitor reverts it. Prints:

- graded pairs needed until every task type's verdict is right (and stays right), per task type;
- shadow spend as a share of live spend;
- the router's agreement with the hidden truth on held-out auto prompts, before and after learn;
- the registry changes, the regression and its revert.

    .venv/bin/python bench/shadow_loop.py [--per-task 800] [--share 0.3] [--seed 0]

Targets: every verdict right within 200 graded pairs per task type; agreement after learn above before.
The truth is read back from the quality model only to score the loop, never to steer it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tierwise.shadow.loop import run_loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-task", type=int, default=800, help="live calls per task type (at most 950)")
    ap.add_argument("--share", type=float, default=0.3, help="share of live calls replayed")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    r = asyncio.run(run_loop(per_task=args.per_task, sample=args.share, seed=args.seed, say=lambda m: print("  " + m)))
    print(f"\ntierwise shadow loop: {r['live_calls']} live calls, share {args.share:.0%}, seed {args.seed}, "
          f"{r['seconds']:.0f} s (workdir {r['workdir']})\n")
    print(f"{'task type':22s} {'truth':8s} {'verdict':11s} {'pairs':>6s}  pairs until right")
    from tierwise.shadow.sim import true_verdict

    for task, n in r["pairs_to_right"].items():
        print(f"{task:22s} {true_verdict(task):8s} {r['verdicts'].get(task, '-'):11s} "
              f"{r['pairs'].get(task, 0):>6d}  {n if n is not None else 'not yet'}")
    need = list(r["pairs_to_right"].values())
    worst = None if None in need else max(need)
    s = r["spend"]
    share = s["shadow_nanos"] / s["live_nanos"] if s["live_nanos"] else 0.0
    print(f"\ngraded pairs needed until every task type's verdict is right: {worst if worst is not None else 'not reached'}")
    print(f"shadow spend ${s['shadow_nanos'] / 1e9:.4f} = {share:.1%} of live spend ${s['live_nanos'] / 1e9:.4f} "
          f"({s['pairs']} pairs for {s['live_calls']} live calls)")
    print(f"router agreement with the hidden truth (held-out auto prompts): {r['agreement_before']:.1%} before learn, "
          f"{r['agreement_after']:.1%} after (trained on {r['learn']['records']} pairs, tolerance {r['learn']['tolerance']:.3f})")
    print(f"registry changes applied: {', '.join(f'{t} -> {tier}' for t, tier in r['applied']) or 'none'}")
    if r.get("regressed"):
        print(f"regression injected on {r['regressed']}: reverted after {r.get('calls_until_revert')} more live calls: "
              f"{'; '.join(r.get('reverted') or ['NOT reverted'])}")
    print("\ntargets:")
    ok1 = worst is not None and worst <= 200 and all(r["verdicts_right"].values())
    print(f"  every verdict right within 200 graded pairs per task type: {worst}  {'MET' if ok1 else 'MISSED'}")
    ok2 = r["agreement_after"] > r["agreement_before"]
    print(f"  agreement after learn above before: {r['agreement_after']:.1%} > {r['agreement_before']:.1%}  "
          f"{'MET' if ok2 else 'MISSED'}")
    ok3 = bool(r.get("reverted")) if r.get("regressed") else False
    print(f"  injected regression reverted by the monitor: {'MET' if ok3 else 'MISSED'}")
    sys.exit(0 if ok1 and ok2 and ok3 else 1)


if __name__ == "__main__":
    main()
