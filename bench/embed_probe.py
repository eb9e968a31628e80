#!/usr/bin/env python
"""MMLU probe of the optional embedding extra, on bench/routing_quality.py's protocol (id + prompt only).

Per-rung predictors on the prompt's all-MiniLM-L6-v2 embedding (ridge, k-nearest neighbours), the
shipped hashed-feature ridge (``--sparse``), and blends of them; every choice (ridge strength, k,
blend weight) by the bench's inner 3-fold CV inside each training part; cross-fit (5 folds by id)
and hold-out (30 % of ids, seed 2024), under the difficulty and the gap rule. Needs the extra;
embeddings come from (and go to) the bench's cache file, which stays out of the repository.

    .venv/bin/python bench/embed_probe.py [--sparse]     (about 2-4 minutes once the cache is warm)
"""
import itertools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from tierwise.outcomes import fold_of, load_prices, read_outcomes
from tierwise.replay.curves import build_matrix, metric_row
from tierwise.replay.runner import learned_curve
from tierwise.routing.features import FeatureSpec, Featurizer
from tierwise.routing.solvers import ridge_cg
from tierwise.routing.training import order_by_price, parse_ladder

D = str(ROOT.parent / "shared" / "bench")
CACHE = "/tmp/tierwise-embed-cache.npz"
prices = load_prices(D + "/prices.json")
rungs = order_by_price(parse_ladder("mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview"), prices)
recs = read_outcomes(D + "/mmlu.jsonl")
m = build_matrix(recs, rungs, prices)
from tierwise.routing.embed import load_encoder

enc = load_encoder()
if Path(CACHE).exists():
    enc.load_cache(CACHE)
E = enc.encode(m.prompts).astype(np.float64)
enc.save_cache(CACHE)
ids_arr = list(m.ids)
USE_SPARSE = "--sparse" in sys.argv
if USE_SPARSE:
    X = Featurizer(FeatureSpec().without_category()).transform(m.prompts, None)

def apgr(P, rows, rule):
    sub = m.take(rows)
    return metric_row(learned_curve("x", P, sub, rule=rule), sub)["APGR"]

def ridge_emb(tr, te, lam):
    A = E[tr]; mu_x = A.mean(0); Y = m.Q[tr]; mu = Y.mean(0)
    Ac = A - mu_x
    W = np.linalg.solve(Ac.T @ Ac + lam * np.eye(A.shape[1]), Ac.T @ (Y - mu))
    return (E[te] - mu_x) @ W + mu

def knn(tr, te, k):
    S = E[te] @ E[tr].T
    idx = np.argpartition(-S, k, axis=1)[:, :k]
    w = np.take_along_axis(S, idx, 1).clip(0) + 1e-6
    return (m.Q[tr][idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)

def sparse(tr, te, lam):
    W, mu = ridge_cg(X.subset(tr), m.Q[tr], lam)
    return np.clip(X.subset(te).dot(np.asarray(W, dtype=np.float32).astype(np.float64)) + mu, 0, 1)

# candidate predictors: name -> (fn, grid)
CANDS = {
    "ridge-emb": (ridge_emb, [10.0, 30.0, 100.0, 300.0]),
    "knn-emb": (knn, [50, 100, 200, 400]),
}
if USE_SPARSE:
    CANDS["sparse"] = (sparse, [3.0, 10.0, 30.0])

def oof(fn, rows, k, seed, param):
    f = np.array([fold_of(ids_arr[i], k, seed) for i in rows])
    P = np.zeros((len(rows), 2))
    for j in range(k):
        te, tr = rows[f == j], rows[f != j]
        P[f == j] = fn(tr, te, param)
    return P

MEMO = {}
def fit_predict(tr, te, rule, log):
    """All choices on tr by inner 3-fold CV (seed 1), as the bench does; returns predictions on te per method."""
    key = (len(tr), int(tr[:50].sum()))
    if key not in MEMO:
        inner = {name: {g: oof(fn, tr, 3, 1, g) for g in grid} for name, (fn, grid) in CANDS.items()}
        outer = {name: {g: fn(tr, te, g) for g in grid} for name, (fn, grid) in CANDS.items()}
        MEMO[key] = (inner, outer)
    inner, outer = MEMO[key]
    out = {}
    best = {}
    for name, (_fn, grid) in CANDS.items():
        sc = {g: apgr(inner[name][g], tr, rule) for g in grid}
        g = max(grid, key=lambda x: sc[x]); best[name] = g
        out[name] = outer[name][g]
        log.append(f"  {name}: inner {rule} " + " ".join(f"{k}:{v:.3f}" for k, v in sc.items()) + f" -> {g}")
    # blends of the chosen members: weight picked on the inner CV predictions
    names = list(CANDS)
    for a, b in itertools.combinations(names, 2):
        Pa, Pb = inner[a][best[a]], inner[b][best[b]]
        sc = {w: apgr(w * Pa + (1 - w) * Pb, tr, rule) for w in (0.25, 0.5, 0.75)}
        w = max(sc, key=lambda x: sc[x])
        out[f"{a}+{b}"] = w * out[a] + (1 - w) * out[b]
        log.append(f"  blend {a}+{b}: " + " ".join(f"{k}:{v:.3f}" for k, v in sc.items()) + f" -> {w}")
    if len(names) == 3:
        sc = {}
        for wa in (0.2, 0.33, 0.5):
            for wb in (0.2, 0.33, 0.5):
                if wa + wb < 0.95:
                    P = wa * inner[names[0]][best[names[0]]] + wb * inner[names[1]][best[names[1]]] + (1 - wa - wb) * inner[names[2]][best[names[2]]]
                    sc[(wa, wb)] = apgr(P, tr, rule)
        wa, wb = max(sc, key=lambda x: sc[x])
        out["all3"] = wa * out[names[0]] + wb * out[names[1]] + (1 - wa - wb) * out[names[2]]
        log.append(f"  blend all3 -> {wa},{wb} ({sc[(wa, wb)]:.3f})")
    return out

n = m.n
allrows = np.arange(n)
for rule in ("difficulty", "gap"):
    t0 = time.time()
    # cross-fit, 5 folds by id (seed 0)
    f = np.array([fold_of(i, 5, 0) for i in ids_arr])
    Pcf = {}
    log = []
    for k in range(5):
        te, tr = allrows[f == k], allrows[f != k]
        o = fit_predict(tr, te, rule, log)
        for name, P in o.items():
            Pcf.setdefault(name, np.zeros((n, 2)))[te] = P
    # hold-out: 30% by id, seed 2024
    h = np.array([fold_of(i, 10, 2024) for i in ids_arr])
    te, tr = allrows[h < 3], allrows[h >= 3]
    oh = fit_predict(tr, te, rule, log)
    print(f"== choices by inner CV on the {rule} rule ({time.time()-t0:.0f}s)")
    print("\n".join(log[-12:]))
    for name in Pcf:
        print(f"  {name:<24} {rule:<10} cross-fit {apgr(Pcf[name], allrows, rule):.3f}  hold-out {apgr(oh[name], te, rule):.3f}")
    sys.stdout.flush()
