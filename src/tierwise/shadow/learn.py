"""``tierwise learn``: retrain the learned router on the team's graded pairs, recalibrate, keep the old one.

Each graded pair between the two cheapest tiers is one training record: the prompt's features (as the
router featurised it when the call was sampled: ``features`` in ``shadow_pairs``; prompt text is not
needed, so this works with ``ledger.store_prompts`` off) and the score of each tier's answer (1 passed,
0 failed; downstream feedback on the live call, when there is some, overrides the grade of the live
side). The fit is the learned router's own per-rung ridge regression (``routing.learned.ridge_cg``),
the artifact its own format (``routing.learned.Artifact``), with provenance: the pairs, their hash,
the previous artifact.

Recalibration picks the tolerance: for ``shadow.learn_mix`` (the share of each tier, cheapest first)
or ``shadow.learn_budget`` (mean USD per call) on the training prompts, as ``tierwise calibrate``
does; with neither, the middle of the seeds' band (between ``move_below`` and ``stay_above``): the
cheaper tier when its predicted score is that close to the best.

The new artifact goes to ``shadow.artifact_dir`` and ``[routing.options.learned]`` in tierwise.toml
points at it; the previous table is kept in ``history.json`` there, and ``tierwise learn --revert``
writes it back (old artifacts are never deleted).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from ..errors import ConfigError
from ..ledger.evidence_schema import feedback
from ..ledger.shadow_schema import shadow_pairs

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["LearnResult", "training_set", "fit", "learn", "revert", "artifact_dir", "TABLE"]

TABLE = "routing.options.learned"


@dataclass
class LearnResult:
    artifact: str
    tolerance: float
    records: int
    shares: list[float]          # share of the training prompts on each rung at that tolerance, cheapest first
    goal: str
    previous: dict[str, Any]


def artifact_dir(settings: "Settings", config_path: Path) -> Path:
    d = Path(str(settings.raw["shadow"]["artifact_dir"]))
    return d if d.is_absolute() else config_path.resolve().parent / d


def _current_spec(settings: "Settings") -> Any:
    from ..routing.learned import load_artifact

    opts = (settings.routing.get("options") or {}).get("learned") or {}
    return load_artifact(opts.get("artifact")).spec


def training_set(settings: "Settings", engine: sa.Engine, spec_hash: str) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                                               np.ndarray, np.ndarray, list[str]]:
    """(feature rows, Y (n, 2) scores cheapest tier first, tokens (n, 2, 2) in/out per rung, request ids)."""
    order = list(settings.catalog.tier_order)
    lo, hi = order[0], order[1]
    p = shadow_pairs.c
    q = (sa.select(p.request_id, p.live_tier, p.shadow_tier, p.live_passed, p.shadow_passed, p.features,
                   p.live_input_tokens, p.live_output_tokens, p.shadow_input_tokens, p.shadow_output_tokens)
         .where(p.status == "graded", p.feature_spec == spec_hash, p.features.is_not(None),
                sa.or_(sa.and_(p.live_tier == lo, p.shadow_tier == hi), sa.and_(p.live_tier == hi, p.shadow_tier == lo)))
         .order_by(p.id))
    rows, Y, T, rids = [], [], [], []
    with engine.connect() as conn:
        fetched = conn.execute(q).all()
        fb: dict[str, int] = {}
        ids = [r[0] for r in fetched]
        for i in range(0, len(ids), 500):
            qq = (sa.select(feedback.c.request_id, sa.func.max(sa.case((feedback.c.error, 1), else_=0)))
                  .where(feedback.c.request_id.in_(ids[i:i + 500])).group_by(feedback.c.request_id))
            fb.update({rid: int(bad) for rid, bad in conn.execute(qq)})
    for rid, lt, _st, lp, sp, feats, lin, lout, sin, sout in fetched:
        live_ok = (not fb[rid]) if rid in fb else bool(lp)
        f = json.loads(feats)
        rows.append((np.array(f["i"], dtype=np.int64), np.array(f["v"], dtype=np.float64)))
        if lt == lo:
            Y.append([float(live_ok), float(bool(sp))])
            T.append([[lin, lout], [sin, sout]])
        else:
            Y.append([float(bool(sp)), float(live_ok)])
            T.append([[sin, sout], [lin, lout]])
        rids.append(rid)
    return rows, np.array(Y, dtype=np.float64), np.array(T, dtype=np.float64), rids


def _tolerance(P: np.ndarray, costs: np.ndarray, conf: dict[str, Any]) -> tuple[float, list[float], str]:
    from ..cli.calibrate import parse_mix
    from ..routing.learned import choose_rungs

    R = P.shape[1]
    order = list(np.argsort(costs, kind="stable"))
    gaps = (P.max(1, keepdims=True) - P).ravel()
    grid = np.unique(np.concatenate([[0.0], np.quantile(gaps, np.linspace(0, 1, 401)), [1.0]]))
    shares = np.array([np.bincount(choose_rungs(P, float(t), order), minlength=R) / len(P) for t in grid])
    if conf.get("learn_mix"):
        target = np.array(parse_mix(str(conf["learn_mix"]), R))[np.argsort(order)]
        k = int(np.argmin(np.abs(shares - target).sum(1)))
        goal = f"mix {conf['learn_mix']}"
        tol = float(grid[k])
    elif float(conf.get("learn_budget") or 0) > 0:
        mean_cost = shares @ costs
        ok = np.nonzero(mean_cost <= float(conf["learn_budget"]) + 1e-15)[0]
        k = int(ok[0]) if ok.size else len(grid) - 1
        goal = f"budget ${float(conf['learn_budget']):.3g}/call"
        tol = float(grid[k])
    else:
        tol = (float(conf["move_below"]) + float(conf["stay_above"])) / 2
        goal = f"the seeds' band: the cheaper tier when its predicted score is within {tol:.3f} of the best"
    got = np.bincount(choose_rungs(P, tol, order), minlength=R) / len(P)
    return tol, [float(got[i]) for i in order], goal


def fit(settings: "Settings", engine: sa.Engine, *, lam: float | None = None) -> tuple[Any, float, list[float], str, int]:
    """Train and calibrate on the pairs: (artifact, tolerance, shares, goal, records)."""
    from ..routing.features import Featurizer, SparseRows
    from ..routing.learned import DEFAULT_LAMBDA, Artifact, ridge_cg
    from .runtime import spec_hash

    conf = settings.raw["shadow"]
    spec = _current_spec(settings)
    rows, Y, T, rids = training_set(settings, engine, spec_hash(spec))
    need = int(conf["learn_min_pairs"])
    if len(rows) < need:
        raise ConfigError(f"tierwise learn: {len(rows)} graded pair(s) with features between "
                          f"{' and '.join(settings.catalog.tier_order[:2])}; shadow.learn_min_pairs is {need}")
    n_cols = Featurizer(spec).n_cols
    X = SparseRows.from_rows(rows, n_cols)
    lam = DEFAULT_LAMBDA if lam is None else lam
    W, mu = ridge_cg(X, Y, lam)
    cat = settings.catalog
    models = [cat.model_for_tier(t) for t in cat.tier_order[:2]]
    prices = {}
    costs = []
    for j, m in enumerate(models):
        rates = m.price_at().rates
        prices[m.id] = {"input_per_mtok": float(rates.input), "output_per_mtok": float(rates.output)}
        costs.append(float(np.mean(T[:, j, 0] * float(rates.input) / 1e6 + T[:, j, 1] * float(rates.output) / 1e6)))
    digest = hashlib.sha256("\n".join(rids).encode() + Y.tobytes()).hexdigest()
    art = Artifact(ladder=[m.id for m in models], rung_models=[[m.id] for m in models], spec=spec, W=W, mu=mu,
                   prices=prices, rung_cost=costs, lam=lam, rule="gap",  # calibrated by tolerance (below)
                   training={"records": len(rows), "sha256": digest, "files": [], "datasets": {"tierwise-shadow": len(rows)},
                             "mean_score": [round(float(x), 4) for x in Y.mean(0)],
                             "mean_cost_usd": [float(f"{c:.6g}") for c in costs]},
                   provenance={"created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "tool": "tierwise learn", "method": "per-rung ridge regression (conjugate gradients) on "
                               "the features recorded with each graded shadow pair", "source": "shadow_pairs",
                               "grades": "blind judge or task checks; downstream feedback overrides the live side"})
    P = np.clip(X.dot(art.W) + art.mu, 0.0, 1.0)
    tol, shares, goal = _tolerance(P, np.array(costs), conf)
    art.tolerance = tol
    return art, tol, shares, goal, len(rows)


def _history(d: Path) -> list[dict[str, Any]]:
    f = d / "history.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else []


def learn(settings: "Settings", engine: sa.Engine, config_path: Path, *, dry_run: bool = False) -> LearnResult:
    from ..cli.calibrate import write_table

    art, tol, shares, goal, n = fit(settings, engine)
    previous = dict((settings.routing.get("options") or {}).get("learned") or {})
    d = artifact_dir(settings, config_path)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = d / f"router-{stamp}.json"
    if dry_run:
        return LearnResult(str(path), tol, n, shares, goal, previous)
    d.mkdir(parents=True, exist_ok=True)
    art.provenance["previous"] = previous.get("artifact") or "tierwise/data/router.json (shipped)"
    art.save(path)
    table = dict(previous, artifact=str(path.resolve()), tolerance=tol)
    hist = _history(d)
    hist.append({"ts": stamp, "artifact": str(path.resolve()), "tolerance": tol, "records": n, "previous": previous})
    (d / "history.json").write_text(json.dumps(hist, indent=1) + "\n", encoding="utf-8")
    write_table(config_path, table)
    _set_live(settings, table)
    return LearnResult(str(path), tol, n, shares, goal, previous)


def revert(settings: "Settings", config_path: Path) -> dict[str, Any]:
    """Restore the [routing.options.learned] table the last ``learn`` replaced; returns it."""
    from ..cli.calibrate import write_table

    d = artifact_dir(settings, config_path)
    hist = _history(d)
    if not hist:
        raise ConfigError(f"tierwise learn --revert: nothing to revert ({d / 'history.json'} has no learn)")
    last = hist.pop()
    write_table(config_path, dict(last["previous"]))
    (d / "history.json").write_text(json.dumps(hist, indent=1) + "\n", encoding="utf-8")
    _set_live(settings, dict(last["previous"]))
    return dict(last["previous"])


def _set_live(settings: "Settings", table: dict[str, Any]) -> None:
    opts = settings.routing.setdefault("options", {})
    opts["learned"] = dict(table)
