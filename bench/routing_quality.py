#!/usr/bin/env python
"""Routing quality on the benchmark's dev data, on the **id + prompt** protocol.

A field is used at test time only if a live request would carry it: a test prompt is scored from
its id and prompt text alone (no MMLU subject; the hold-out's test records have their category
removed before anything sees them). The GSM8K cascade also reads the cheap rung's recorded answer,
which a live cascade has once the cheap rung answered. Training rows may carry any field; the
``learned`` router's features are the prompt text only (what ``tierwise train`` and the shipped
artifact use), so training and serving see the same features.

Two protocols, both without leakage, each printed with always-each-rung, random mixing and the
oracle so a regression is visible:

* **cross-fit** (the issue's reference protocol): all prompts, 5 folds by a hash of the id; every
  prompt is scored by a router trained on the other four folds.
* **hold-out**: 30 % of ids held out, trained once on the other 70 %.

Every learned configuration picks its ridge strength among ``LAMBDAS`` by 3-fold CV *inside each
training part* (nested), so the rows it is tested on never take part in any choice. The verdicts
are for the ``learned`` row: the shipped decision rule (difficulty: escalate when the predicted
cheap-rung score is low, swept over the share kept on the cheap rung). The same out-of-fold
predictions under the old gap rule and under a hybrid (escalate when the predicted gain is high OR
the cheap-rung score is low; half of the escalations each, fixed beforehand), and an n-gram ridge
baseline, are printed for comparison only.

Ladder mixtral-8x7b-instruct-v0.1 -> gpt-4-1106-preview (price order). Targets: MMLU APGR >= 0.69;
GSM8K cascade APGR on the cost axis >= 0.72.

Then the **open-ended ladder check** (cross-fit, ladders in price order from ``prices.json``):
AlpacaEval (claude-instant-1.2 -> claude-2.1 -> gpt-4-0613-concise), MT-Bench turn 1 and
RouterArena: is the learned router above random mixing at the same cost?

With the optional ``tierwise[embed]`` extra installed, a ``learned + embed`` row (the same recipe
blended with a ridge on each prompt's all-MiniLM-L6-v2 sentence embedding, ``tierwise train
--embed``) is printed beside ``learned``, with the gap rule on its predictions; without it the run
says "embed: not installed". Embeddings are cached in ``--embed-cache`` (a file under /tmp by
default, never in the repository) so a re-run does not encode the prompts again.

    .venv/bin/python bench/routing_quality.py [--data ../shared/bench] [--datasets mmlu,gsm8k]
        [--protocols crossfit,holdout] [--open-ended alpacaeval,mt_bench_t1,routerarena] [--plots bench/out]
        [--no-embed] [--embed-cache /tmp/tierwise-embed-cache.npz]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np

from tierwise.outcomes import fold_of, load_prices, read_outcomes
from tierwise.replay.runner import LearnedConfig, replay
from tierwise.reports.replay import format_table, save_plot
from tierwise.routing.embed import available as embed_available
from tierwise.routing.embed import load_encoder
from tierwise.routing.embed import missing as embed_missing
from tierwise.routing.features import FeatureSpec
from tierwise.routing.rules import blended_price
from tierwise.routing.training import order_by_price, parse_ladder

LADDER = "mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview"
LAMBDAS = (3.0, 10.0, 30.0)
SPLIT_SEED = 2024
TEST_TENTHS = 3
FOLDS = 5
TARGETS = {"mmlu": 0.69, "gsm8k": 0.72}
OPEN_ENDED = {  # dataset -> models of the ladder (put in price order below)
    "alpacaeval": ["claude-instant-1.2", "claude-2.1", "gpt-4-0613-concise"],
    "mt_bench_t1": ["mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview"],
    "routerarena": ["claude-3-haiku-20240307", "gemini-2.0-flash-001"],
}


def baseline_spec() -> FeatureSpec:
    """TF-IDF-ridge-like: word unigrams + bigrams only (no structural signals)."""
    return FeatureSpec(weights={"word": 1.0, "bigram": 0.7, "char": 0.0, "category": 0.0, "dense": 0.0})


EMBED = "learned + embed"


def configs(cascade: bool = True, embed: bool = False) -> list[LearnedConfig]:
    out = [LearnedConfig(name="learned", spec=FeatureSpec(), lambdas=LAMBDAS, cascade=cascade,
                         extra_rules=("gap", "hybrid")),
           LearnedConfig(name="ngram-ridge baseline (gap rule)", spec=baseline_spec(), lambdas=LAMBDAS, cascade=False,
                         rule="gap")]
    if embed:
        out.append(LearnedConfig(name=EMBED, spec=FeatureSpec(), lambdas=LAMBDAS, cascade=False, extra_rules=("gap",),
                                 embed=True))
    for c in out:  # the protocol: no feature may read a field a live request lacks
        c.spec = c.spec.without_category()
        assert not c.use_category and not c.spec.uses_category
    return out


def id_and_prompt(records: list) -> list:
    """Test records as a live request would have them: no category."""
    return [dataclasses.replace(r, category=None) for r in records]


def verdict(ds: str, protocol: str, result) -> str | None:
    if ds == "mmlu":
        row = result.rows["learned"]
        gap, hyb = result.rows["learned predictions, gap rule"], result.rows["learned predictions, hybrid rule"]
        cpt = "never" if row["CPT50"] is None else f"{100 * row['CPT50']:.1f}%"
        ok = (row["APGR"] or 0) >= TARGETS["mmlu"]
        line = (f"MMLU  {protocol:<9} learned (difficulty rule): APGR {row['APGR']:.3f} (target >= {TARGETS['mmlu']}), "
                f"CPT(50%) {cpt}: {'met' if ok else 'MISSED'}  [same predictions: gap rule {gap['APGR']:.3f}, "
                f"hybrid (gain OR hard) {hyb['APGR']:.3f}]")
        if EMBED in result.rows:
            e, eg = result.rows[EMBED], result.rows[f"{EMBED} predictions, gap rule"]
            ok = (e["APGR"] or 0) >= TARGETS["mmlu"]
            line += (f"\n  MMLU  {protocol:<9} {EMBED} (optional extra, difficulty rule): APGR {e['APGR']:.3f}: "
                     f"{'met' if ok else 'MISSED'}  [same predictions: gap rule {eg['APGR']:.3f}]")
        return line
    if ds == "gsm8k":  # cascades allowed: the learned verifier's cascade when answers were recorded
        name = "cascade (learned verifier)" if "cascade (learned verifier)" in result.rows else "learned"
        row = result.rows[name]
        ok = (row["APGR$"] or 0) >= TARGETS["gsm8k"]
        return (f"GSM8K {protocol:<9} {name}: APGR on the cost axis {row['APGR$']:.3f} (target >= "
                f"{TARGETS['gsm8k']}): {'met' if ok else 'MISSED'}")
    return None


def mmlu_gsm8k(data: Path, datasets: list[str], protocols: list[str], plots: Path, embed: bool = False) -> list[str]:
    prices = load_prices(data / "prices.json")
    rungs = order_by_price(parse_ladder(LADDER), prices)
    verdicts: list[str] = []
    for ds in datasets:
        records = read_outcomes(data / f"{ds}.jsonl")
        for protocol in protocols:
            t0 = time.time()
            if protocol == "crossfit":
                result = replay(records, rungs, prices, learned=configs(embed=embed), strategies=["heuristic", "random"],
                                folds=FOLDS, seed=0)
                title = f"=== {ds}, id + prompt, cross-fit: all {result.n_test} prompts, {FOLDS} folds by id ==="
            elif protocol == "holdout":
                test = id_and_prompt([r for r in records if fold_of(r.id, 10, SPLIT_SEED) < TEST_TENTHS])
                train = [r for r in records if fold_of(r.id, 10, SPLIT_SEED) >= TEST_TENTHS]
                result = replay(train, rungs, prices, test_records=test, learned=configs(embed=embed),
                                strategies=["heuristic", "random"])
                title = f"=== {ds}, id + prompt, hold-out: train {len(train)} / test {len(test)} prompts (split by id) ==="
            else:
                raise SystemExit(f"unknown protocol {protocol!r} (crossfit, holdout)")
            print()
            print(format_table(result, title=title))
            png = plots / f"routing_quality_{ds}_{protocol}.png"
            if save_plot(result, png, title=f"{ds} ({protocol}, id + prompt)"):
                print(f"plot: {png}")
            v = verdict(ds, protocol, result)
            if v:
                verdicts.append(v)
            print(f"({ds} {protocol}: {time.time() - t0:.0f}s)")
    return verdicts


def above_random(curve, rand) -> tuple[int, int]:
    """(operating points of ``curve`` strictly above the random-mix line at the same cost, points
    within the random line's cost range)."""
    order = np.argsort(rand.cost, kind="stable")
    rc, rq = rand.cost[order], rand.quality[order]
    inside = (curve.cost >= rc[0] - 1e-15) & (curve.cost <= rc[-1] + 1e-15)
    q_rand = np.interp(curve.cost[inside], rc, rq)
    return int((curve.quality[inside] > q_rand + 1e-12).sum()), int(inside.sum())


def open_ended(data: Path, names: list[str]) -> list[str]:
    prices = load_prices(data / "prices.json")
    lines: list[str] = []
    for ds in names:
        path = data / f"{ds}.jsonl"
        if not path.exists() or ds not in OPEN_ENDED:
            continue
        models = OPEN_ENDED[ds]
        rungs = order_by_price([[m] for m in models], prices)
        t0 = time.time()
        cfg = LearnedConfig(name="learned", spec=FeatureSpec(), lambdas=LAMBDAS, cascade=False)
        result = replay(read_outcomes(path), rungs, prices, learned=[cfg], folds=FOLDS, seed=0)
        price_note = ", ".join(f"{r[0]} ${blended_price(prices[r[0]]):.3g}/Mtok" for r in rungs)
        print()
        print(format_table(result, title=f"=== open-ended ladder check: {ds}, id + prompt, cross-fit, ladder by "
                                         f"blended price ({price_note}) ==="))
        curves = {c.name: c for c in result.curves}
        k, n = above_random(curves["learned"], curves["random mix"])
        aiq = {name: result.rows[name]["AIQ"] for name in ("learned", "random mix", "oracle")}
        lines.append(f"{ds:<12} {' -> '.join(r[0] for r in rungs)}: learned above random mixing at {k} of {n} "
                     f"operating points; AIQ learned {aiq['learned']:.4f}, random {aiq['random mix']:.4f}, "
                     f"oracle {aiq['oracle']:.4f} ({time.time() - t0:.0f}s)")
    return lines


def embed_ready(cache: str) -> bool:
    """Whether the ``learned + embed`` row can run (the optional extra is installed); loads the cache."""
    if not embed_available():
        print(f"embed: not installed (pip install 'tierwise[embed]'; missing {', '.join(embed_missing())}): "
              f"no '{EMBED}' row")
        return False
    enc = load_encoder()
    if cache and Path(cache).exists():
        print(f"embed: {enc.name}; {enc.load_cache(cache)} cached prompt embeddings from {cache}")
    else:
        print(f"embed: {enc.name}; encoding the prompts (cached in {cache or 'memory only'})")
    return True


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--datasets", default="mmlu,gsm8k")
    ap.add_argument("--protocols", default="crossfit,holdout")
    ap.add_argument("--open-ended", default=",".join(OPEN_ENDED), help="datasets of the open-ended check ('' = skip)")
    ap.add_argument("--plots", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--no-embed", action="store_true", help="skip the optional embedding row even if installed")
    ap.add_argument("--embed-cache", default="/tmp/tierwise-embed-cache.npz",
                    help="prompt-embedding cache file ('' = none; keep it out of the repository)")
    args = ap.parse_args()
    embed = not args.no_embed and embed_ready(args.embed_cache)
    data = Path(args.data)
    plots = Path(args.plots)
    plots.mkdir(parents=True, exist_ok=True)
    datasets = [d for d in args.datasets.split(",") if d]
    verdicts = mmlu_gsm8k(data, datasets, [p for p in args.protocols.split(",") if p], plots, embed=embed)
    if embed and args.embed_cache:
        load_encoder().save_cache(args.embed_cache)
    checks = open_ended(data, [d for d in args.open_ended.split(",") if d])
    print()
    print("targets (id + prompt protocol; test rows never used for any choice):")
    for v in verdicts:
        print("  " + v)
    if checks:
        print("open-ended ladder check (cross-fit, difficulty rule, ladders by price):")
        for line in checks:
            print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
