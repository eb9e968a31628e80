#!/usr/bin/env python
"""Reproduce the shipped default artifact ``src/tierwise/data/router.json``.

Trained only on the Apache-2.0 parts of the router benchmark's dev data (GSM8K, MMLU, MT-Bench
turn 1; never AlpacaEval, which is CC BY-NC). The ladder is a weak -> strong pair in **price
order** (blended list price from ``prices.json``): ``mixtral-8x7b-instruct-v0.1 -> gpt-4-1106-preview``.
RouterArena is left out: its pair (claude-3-haiku, gemini-2.0-flash) is priced against that order
(the stronger model is the cheaper one), so it says nothing about when paying more helps.

The features are the prompt text only (no category-dependent feature: a live request carries no
MMLU subject), i.e. exactly what ``decide`` sees. The router therefore predicts *difficulty learned
from other models*; a team should retrain it on its own outcomes (``tierwise train``). In the proxy
the weak rung serves the ``fast`` tier and the strong rung the ``balanced`` tier; a predicted weak-
rung score below the threshold escalates. The threshold puts 70% of a balanced sample of the
training prompts on the cheap rung (the seeds' 70/25/5 folded onto two rungs).

    .venv/bin/python bench/train_default_router.py [--data ../shared/bench] [--out src/tierwise/data/router.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.outcomes import load_prices, read_outcomes
from tierwise.routing.features import FeatureSpec
from tierwise.routing.learned import load_artifact, mix_for, thresholds_for_mix
from tierwise.routing.training import train

CAL_PER_DATASET = 500
FILES = ["gsm8k.jsonl", "mmlu.jsonl", "mt_bench_t1.jsonl"]
LADDER = "mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview"
SOURCES = {
    "gsm8k": "github.com/lm-sys/RouteLLM @ 0b64fdafe049e596a3f5657c219329f24af24198 (Apache-2.0; GSM8K questions MIT)",
    "mmlu": "github.com/lm-sys/RouteLLM @ 0b64fdafe049e596a3f5657c219329f24af24198 (Apache-2.0; MMLU questions MIT)",
    "mt_bench_t1": "github.com/lm-sys/RouteLLM @ 0b64fdafe049e596a3f5657c219329f24af24198 (Apache-2.0; FastChat MT-bench Apache-2.0)",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--out", default=str(ROOT / "src" / "tierwise" / "data" / "router.json"))
    ap.add_argument("--lambda", dest="lam", type=float, default=10.0)
    args = ap.parse_args()
    data = Path(args.data)
    paths = [data / f for f in FILES]
    t0 = time.time()
    records = read_outcomes(paths)
    prices = load_prices(data / "prices.json")
    art = train(records, LADDER, prices, lam=args.lam, spec=FeatureSpec(), sources=[str(p) for p in paths],
                provenance={"tool": "bench/train_default_router.py", "data": "router benchmark dev split (Apache-2.0 parts only)",
                            "sources": SOURCES, "excluded": "alpacaeval (CC BY-NC 4.0); routerarena (its model pair "
                            "is priced against the ladder order: the stronger model is the cheaper one)",
                            "note": "difficulty learned from other models (a weak/strong pair); retrain on your own outcomes",
                            "command": ".venv/bin/python bench/train_default_router.py --data ../shared/bench",
                            "verifiers": "logistic regression per cheap rung on the cheap answer's features, the "
                            "prompt's signals and checks of the answer's written-out arithmetic "
                            "(tierwise.cascade.training.VERIFIER_NAMES)"})
    # The knob: the threshold on the predicted cheap-rung score that puts the seeds' example mix
    # (70/25/5, folded onto two rungs: 70/30) on a balanced sample of the training prompts (at most
    # CAL_PER_DATASET per dataset, so MMLU does not dominate), scored as decide scores them.
    by_ds: dict[str, list] = {}
    for r in records:
        by_ds.setdefault(r.dataset, []).append(r)
    sample = [r for rs in by_ds.values() for r in rs[:CAL_PER_DATASET]]
    shares = mix_for(len(art.ladder))
    art.mix = [round(x, 6) for x in shares]
    art.thresholds = thresholds_for_mix(art.predict([r.prompt for r in sample])[:, art.cheap], shares)
    art.provenance["rule"] = (
        "difficulty: predicted " + art.ladder[art.cheap] + " score below " + ", ".join(f"{t:.4f}" for t in art.thresholds)
        + " escalates; set so " + "/".join(f"{100 * x:.0f}" for x in shares) + f" of a balanced sample of the training "
        f"prompts ({len(sample)} prompts, at most {CAL_PER_DATASET} per dataset) land on each rung, cheapest first "
        "(the seeds' 70/25/5); recalibrate on your own prompts with `tierwise calibrate --mix`")
    art.save(args.out)
    t1 = time.time()
    load_artifact(args.out)
    size = Path(args.out).stat().st_size
    print(f"trained on {art.training['records']} prompts {art.training['datasets']} in {t1 - t0:.1f}s; "
          f"verifiers: {[v.model for v in art.verifiers]}")
    print(f"ladder {' -> '.join(art.ladder)} ({art.provenance['ladder_order']}); {art.provenance['features']}")
    print(art.provenance["rule"])
    print(f"wrote {args.out} ({size / 1e6:.2f} MB), loads in {1000 * (time.time() - t1):.0f} ms; "
          f"training sha256 {art.training['sha256'][:16]}...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
