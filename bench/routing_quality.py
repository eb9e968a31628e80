#!/usr/bin/env python
"""Routing quality on the benchmark's dev data: train on part, test on the rest (split by id).

Two protocols, both without leakage, each printed with always-each-rung, random mixing and the
oracle so a regression is visible:

* **cross-fit** (the headline): all prompts, 5 folds by a hash of the id; every prompt is scored by
  a router trained on the other four folds. The issue's reference figures (TF-IDF ridge plateau,
  oracle 1.29 / 6 % on MMLU) are over the whole set, so this is the protocol they compare with.
* **hold-out**: one split, 30 % of ids held out, trained once on the other 70 %.

Every learned configuration picks its ridge strength among ``LAMBDAS`` by 3-fold CV *inside each
training part* (nested), so the rows it is tested on never take part in any choice. The target
verdicts are for the ``learned`` row, the default feature spec (what ``tierwise train`` and the
shipped artifact use: words, category, category x signals, category x words, structural
signals), fixed before any test figure was seen; the baseline and the no-crosses variant are shown
for comparison only. Two subject-only reference rows (see ``subject_rows``) show how much of the
signal is the category alone. Nothing is hard-coded: the verdicts are computed from the printed rows.

Ladder: mixtral-8x7b-instruct-v0.1 -> gpt-4-1106-preview. Targets: MMLU APGR >= 0.75 and
CPT(50%) <= 25%; GSM8K APGR >= 0.68 on the cost axis with cascades allowed.

    .venv/bin/python bench/routing_quality.py [--data ../shared/bench] [--datasets mmlu,gsm8k]
        [--protocols crossfit,holdout] [--plots bench/out]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from tierwise.outcomes import fold_of, load_prices, read_outcomes  # noqa: E402
from tierwise.replay.curves import metric_row, sweep_by_score  # noqa: E402
from tierwise.replay.report import format_table, save_plot  # noqa: E402
from tierwise.replay.runner import LearnedConfig, replay  # noqa: E402
from tierwise.routing.features import FeatureSpec  # noqa: E402
from tierwise.routing.learned import parse_ladder  # noqa: E402

LADDER = "mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview"
LAMBDAS = (3.0, 10.0, 30.0)
SPLIT_SEED = 2024
TEST_TENTHS = 3
FOLDS = 5


def baseline_spec() -> FeatureSpec:
    """TF-IDF-ridge-like: word unigrams + bigrams only (no category, no structural signals)."""
    return FeatureSpec(weights={"word": 1.0, "bigram": 0.7, "char": 0.0, "category": 0.0, "dense": 0.0})


def no_crosses_spec() -> FeatureSpec:
    return FeatureSpec(weights={**FeatureSpec().weights, "catdense": 0.0, "catword": 0.0})


def configs() -> list[LearnedConfig]:
    return [LearnedConfig(name="ngram-ridge baseline", spec=baseline_spec(), lambdas=LAMBDAS, cascade=False),
            LearnedConfig(name="learned", spec=FeatureSpec(), lambdas=LAMBDAS, cascade=True),
            LearnedConfig(name="learned (no category crosses)", spec=no_crosses_spec(), lambdas=LAMBDAS, cascade=False)]


def subject_rows(result, protocol: str) -> None:
    """Two reference rows that show where the plateau comes from (prompts with a category only):

    * ``subject prior``: send prompts to the strong rung in order of the mean gain (strong minus
      weak score) of their category in the *training* rows (shrunk to the global mean with 5
      pseudo-prompts) -- a router that knows only the subject, evaluated like the others;
    * ``subject oracle (in-sample)``: the same with the category means of the *test* rows
      themselves: an upper bound for any router whose only signal is the subject (it leaks by
      construction, so it is a ceiling, never a result).
    """
    m = result.matrix
    if m is None or len(m.ladder) != 2 or not any(m.categories):
        return
    gain = m.Q[:, 1] - m.Q[:, 0]
    cats = np.array([c or "" for c in m.categories])

    def means(rows: np.ndarray) -> dict[str, float]:
        g = float(gain[rows].mean())
        out: dict[str, float] = {}
        for c in np.unique(cats[rows]):
            sel = rows[cats[rows] == c]
            out[c] = (float(gain[sel].sum()) + 5 * g) / (sel.size + 5)
        out[""] = out.get("", g)
        return out

    score = np.zeros(m.n)
    if protocol == "crossfit":
        fold = np.array([fold_of(i, FOLDS, 0) for i in m.ids])
        for k in range(FOLDS):
            tr, te = np.nonzero(fold != k)[0], np.nonzero(fold == k)[0]
            mu = means(tr)
            score[te] = [mu.get(c, mu[""]) for c in cats[te]]
        curves = [sweep_by_score("subject prior (category means of the training folds)", score, m)]
    else:
        curves = []  # the hold-out's training rows are not in the result: only the ceiling
    mu_all = {c: float(gain[cats == c].mean()) for c in np.unique(cats)}
    curves.append(sweep_by_score("subject oracle (in-sample ceiling)", np.array([mu_all[c] for c in cats]), m,
                                 kind="baseline"))
    for c in curves:
        result.curves.append(c)
        result.rows[c.name] = metric_row(c, m)


def verdict(ds: str, protocol: str, result) -> str | None:
    if ds == "mmlu":
        row = result.rows["learned"]
        ok = (row["APGR"] or 0) >= 0.75 and row["CPT50"] is not None and row["CPT50"] <= 0.25
        cpt = "never" if row["CPT50"] is None else f"{100 * row['CPT50']:.1f}%"
        return (f"MMLU  {protocol:<9} learned: APGR {row['APGR']:.3f} (target >= 0.75), CPT(50%) {cpt} "
                f"(target <= 25%): {'met' if ok else 'MISSED'}")
    if ds == "gsm8k":  # cascades allowed: the learned verifier's cascade when answers were recorded
        name = "cascade (learned verifier)" if "cascade (learned verifier)" in result.rows else "learned"
        row = result.rows[name]
        ok = (row["APGR$"] or 0) >= 0.68
        return (f"GSM8K {protocol:<9} {name}: APGR on the cost axis {row['APGR$']:.3f} (target >= 0.68): "
                f"{'met' if ok else 'MISSED'}")
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--datasets", default="mmlu,gsm8k")
    ap.add_argument("--protocols", default="crossfit,holdout")
    ap.add_argument("--plots", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    data = Path(args.data)
    prices = load_prices(data / "prices.json")
    rungs = parse_ladder(LADDER)
    Path(args.plots).mkdir(parents=True, exist_ok=True)
    verdicts: list[str] = []
    for ds in args.datasets.split(","):
        records = read_outcomes(data / f"{ds}.jsonl")
        for protocol in args.protocols.split(","):
            t0 = time.time()
            if protocol == "crossfit":
                result = replay(records, rungs, prices, learned=configs(), strategies=["heuristic", "random"],
                                folds=FOLDS, seed=0)
                title = f"=== {ds}, cross-fit: all {result.n_test} prompts, {FOLDS} folds by id ==="
            elif protocol == "holdout":
                test = [r for r in records if fold_of(r.id, 10, SPLIT_SEED) < TEST_TENTHS]
                train = [r for r in records if fold_of(r.id, 10, SPLIT_SEED) >= TEST_TENTHS]
                result = replay(train, rungs, prices, test_records=test, learned=configs(),
                                strategies=["heuristic", "random"])
                title = f"=== {ds}, hold-out: train {len(train)} / test {len(test)} prompts (split by id) ==="
            else:
                ap.error(f"unknown protocol {protocol!r} (crossfit, holdout)")
            subject_rows(result, protocol)
            print()
            print(format_table(result, title=title))
            png = Path(args.plots) / f"routing_quality_{ds}_{protocol}.png"
            if save_plot(result, png, title=f"{ds} ({protocol})"):
                print(f"plot: {png}")
            v = verdict(ds, protocol, result)
            if v:
                verdicts.append(v)
            print(f"({ds} {protocol}: {time.time() - t0:.0f}s)")
    print()
    print("targets (test rows never used for any choice):")
    for v in verdicts:
        print("  " + v)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
