"""Replay: evaluate routing strategies on recorded outcomes without leakage.

Either a separate test file (train on one set, test on the other) or k-fold cross-fitting by id
on one file: every prompt is scored by a model that never saw it (folds from a hash of the id).
The learned router is swept over its knob: for the difficulty rule (the default) the share of
prompts kept on the cheapest rung, i.e. a threshold on its predicted score (for three or more rungs
the escalated prompts are split in the seeds' 25:5 proportions); for the gap rule of older
artifacts the tolerance (two rungs: the predicted gain threshold). Cascades are swept over the
verifier's threshold. The ladder is put in price order first, as ``train`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..cascade.evaluate import cascade_curve, verifier_matrix
from ..outcomes import Record, fold_of
from ..routing.features import FeatureSpec
from .curves import (
    Curve,
    OutcomeMatrix,
    always_curves,
    build_matrix,
    choice_point,
    choices_curve,
    metric_row,
    oracle_curve,
    random_curve,
    sweep_by_score,
)

__all__ = ["LearnedConfig", "ReplayResult", "inner_cv_apgr", "inner_cv_embed", "learned_oof", "replay", "strategy_choices", "tier_to_rung"]


@dataclass
class LearnedConfig:
    name: str = "learned"
    lam: float = 10.0
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    use_category: bool = False    # True only for a category live requests carry (the task type)
    rule: str = "difficulty"      # or "gap" (artifact versions 1-2)
    # the same out-of-fold predictions also swept under these rules (for comparison): "gap", "hybrid"
    extra_rules: tuple[str, ...] = ()
    cascade: bool = True          # also evaluate router-free verifier cascades when answers exist
    # when set, every training run picks its ridge strength among these by an inner 3-fold CV on
    # its own training rows only (nested: the rows it is tested on never take part in the choice)
    lambdas: tuple[float, ...] | None = None
    # also blend in a ridge on the prompt's sentence embedding (the ``tierwise[embed]`` extra); with
    # ``lambdas`` set, its ridge strength and blend weight are picked by the same inner 3-fold CV
    embed: bool = False
    embed_lambdas: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0)
    embed_weights: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)


@dataclass
class ReplayResult:
    ladder: list[str]
    n_test: int
    mode: str
    curves: list[Curve]
    rows: dict[str, dict[str, float | None]]
    matrix: OutcomeMatrix | None = None
    notes: list[str] = field(default_factory=list)


def _train(train_m: OutcomeMatrix, rungs: Sequence[Sequence[str]], prices: Mapping[str, Any], cfg: LearnedConfig,
           verifiers: bool) -> Any:
    from ..routing.training import train

    lam = cfg.lam
    extra: dict[str, Any] = {}
    if cfg.lambdas:
        kept: dict[float, np.ndarray] = {}
        scores = inner_cv_apgr(train_m, cfg.spec, cfg.lambdas, folds=3, seed=1, use_category=cfg.use_category,
                               rule=cfg.rule, keep=kept)
        lam = max(cfg.lambdas, key=lambda x: scores[x])
        if cfg.embed:
            extra = inner_cv_embed(train_m, kept[lam], cfg.embed_lambdas, cfg.embed_weights, folds=3, seed=1,
                                   rule=cfg.rule)
    spec = FeatureSpec.from_json(cfg.spec.to_json())
    return train(train_m.records, rungs, prices, lam=lam, spec=spec, use_category=cfg.use_category, verifiers=verifiers,
                 embed=cfg.embed, **extra)


def learned_oof(train_m: OutcomeMatrix, test_m: OutcomeMatrix | None, rungs: Sequence[Sequence[str]],
                prices: Mapping[str, Any], cfg: LearnedConfig, folds: int = 5, seed: int = 0,
                verifiers: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (n, rungs) and verifier probabilities (n, rungs-1) for the test rows: from a model
    trained on ``train_m`` when ``test_m`` is given, else out-of-fold on ``train_m`` (k-fold by id)."""
    R = len(rungs)
    if test_m is not None:
        art = _train(train_m, rungs, prices, cfg, verifiers)
        P = art.predict(test_m.prompts, test_m.categories if art.spec.uses_category else None)
        V = verifier_matrix(art.verifiers, test_m) if verifiers else np.full((test_m.n, R - 1), np.nan)
        return P, V
    fold = np.array([fold_of(i, folds, seed) for i in train_m.ids])
    P = np.zeros((train_m.n, R))
    V = np.full((train_m.n, R - 1), np.nan)
    for k in range(folds):
        te = np.nonzero(fold == k)[0]
        tr = np.nonzero(fold != k)[0]
        if te.size == 0 or tr.size < 2:
            continue
        sub_tr, sub_te = train_m.take(tr), train_m.take(te)
        art = _train(sub_tr, rungs, prices, cfg, verifiers)
        P[te] = art.predict(sub_te.prompts, sub_te.categories if art.spec.uses_category else None)
        if verifiers:
            V[te] = verifier_matrix(art.verifiers, sub_te)
    return P, V


def inner_cv_apgr(m: OutcomeMatrix, spec: FeatureSpec, lambdas: Sequence[float], folds: int = 3, seed: int = 1,
                  use_category: bool = False, rule: str = "difficulty",
                  keep: dict[float, np.ndarray] | None = None) -> dict[float, float]:
    """APGR (calls axis; AIQ for ladders of 3 or more rungs) of out-of-fold predictions on ``m`` for
    each ridge strength: for choosing hyper-parameters inside a training split. The prompts are featurised once (the same features as
    :func:`learned_oof`'s artifacts), then one ridge fit per fold and lambda."""
    from ..routing.features import Featurizer
    from ..routing.learned import ridge_cg

    spec = FeatureSpec.from_json(spec.to_json())
    if not use_category:
        spec = spec.without_category()
    X = Featurizer(spec).transform(m.prompts, m.categories if spec.uses_category else None)
    fold = np.array([fold_of(i, folds, seed) for i in m.ids])
    parts = [(np.nonzero(fold == k)[0], np.nonzero(fold != k)[0]) for k in range(folds)]
    parts = [(te, tr) for te, tr in parts if te.size and tr.size >= 2]
    subsets = [(te, X.subset(te), tr, X.subset(tr)) for te, tr in parts]
    out: dict[float, float] = {}
    for lam in lambdas:
        P = np.zeros((m.n, len(m.ladder)))
        for te, Xte, tr, Xtr in subsets:
            W, mu = ridge_cg(Xtr, m.Q[tr], lam)
            P[te] = np.clip(Xte.dot(np.asarray(W, dtype=np.float32).astype(np.float64)) + mu, 0.0, 1.0)
        row = metric_row(learned_curve("inner cv", P, m, rule=rule), m)
        out[lam] = float(row["APGR"] if row["APGR"] is not None else row["AIQ"] or 0.0)
        if keep is not None:
            keep[lam] = P
    return out


def inner_cv_embed(m: OutcomeMatrix, P_words: np.ndarray, lambdas: Sequence[float], weights: Sequence[float],
                   folds: int = 3, seed: int = 1, rule: str = "difficulty") -> dict[str, float]:
    """``train``'s ``embed_lam`` and ``embed_weight``, picked by the same inner CV as the ridge strength:
    out-of-fold embedding-ridge predictions blended with the hashed features' out-of-fold ``P_words``."""
    from ..routing.embed import load_encoder

    E = load_encoder().encode(m.prompts).astype(np.float64)
    fold = np.array([fold_of(i, folds, seed) for i in m.ids])
    best, best_score = {"embed_lam": float(lambdas[0]), "embed_weight": float(weights[0])}, -np.inf
    for elam in lambdas:
        P_emb = np.zeros_like(P_words)
        for k in range(folds):
            te, tr = fold == k, fold != k
            if not te.any() or tr.sum() < 2:
                continue
            x_mean, mu = E[tr].mean(0), m.Q[tr].mean(0)
            Ec = E[tr] - x_mean
            W = np.linalg.solve(Ec.T @ Ec + elam * np.eye(E.shape[1]), Ec.T @ (m.Q[tr] - mu))
            P_emb[te] = (E[te] - x_mean) @ W + mu
        for w in weights:
            P = np.clip((1 - w) * P_words + w * P_emb, 0.0, 1.0)
            row = metric_row(learned_curve("inner cv", P, m, rule=rule), m)
            score = float(row["APGR"] if row["APGR"] is not None else row["AIQ"] or 0.0)
            if score > best_score:
                best, best_score = {"embed_lam": float(elam), "embed_weight": float(w)}, score
    return best


def tier_to_rung(tier: str | None, rung_tiers: Sequence[str], tier_order: Sequence[str]) -> int:
    """A strategy's tier -> ladder position: exact match, else the highest rung not above the tier."""
    if tier in rung_tiers:
        return list(rung_tiers).index(tier)
    pos = {t: i for i, t in enumerate(tier_order)}
    if tier not in pos:
        return len(rung_tiers) - 1
    best = 0
    for i, t in enumerate(rung_tiers):
        if pos.get(t, 10**6) <= pos[tier]:
            best = i
    return best


def strategy_choices(name: str, m: OutcomeMatrix, settings: Any, rung_tiers: Sequence[str] | None = None,
                     options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Rung chosen by a registered (non-learned) strategy for every prompt of ``m``."""
    from ..routing.base import RouteRequest, build_router

    router = build_router(name, settings, **dict(options or {}))
    order = settings.catalog.tier_order
    tiers = list(rung_tiers) if rung_tiers else [order[min(i, len(order) - 1)] for i in range(len(m.ladder))]
    out = np.zeros(m.n, dtype=np.int64)
    for j, prompt in enumerate(m.prompts):
        d = router.decide(RouteRequest.from_prompt(prompt))
        if d.model in m.ladder:
            out[j] = m.ladder.index(d.model)
        else:
            out[j] = tier_to_rung(d.tier, tiers, order)
    return out


HYBRID_HARD_SHARE = 0.5  # fixed beforehand, not tuned: half of the escalations by difficulty, half by gain


def learned_curve(name: str, P: np.ndarray, m: OutcomeMatrix, steps: int = 200, rule: str = "difficulty") -> Curve:
    """Operating points of a learned router's predictions ``P`` (columns in ``m``'s ladder order,
    which is price order) under ``rule``, swept over its knob. ``hybrid`` (two rungs, measured for
    comparison, not a decide rule): escalate when the predicted gain is high OR the cheap rung's
    predicted score is low; at each escalated share ``e`` the ``HYBRID_HARD_SHARE * e`` lowest
    cheap-rung scores go up first, then the highest predicted gains among the rest."""
    if rule == "hybrid" and P.shape[1] == 2:
        n = m.n
        hard_order = np.argsort(P[:, 0], kind="stable")
        gain_order = np.argsort(-(P[:, 1] - P[:, 0]), kind="stable")
        choices = []
        for e in np.linspace(0.0, 1.0, steps + 1):
            k = int(round(e * n))
            h = int(round(HYBRID_HARD_SHARE * k))
            ch = np.zeros(n, dtype=np.int64)
            ch[hard_order[:h]] = 1
            rest = gain_order[ch[gain_order] == 0][: k - h]
            ch[rest] = 1
            choices.append(ch)
        return choices_curve(name, choices, m)
    if rule == "difficulty":
        from ..routing.learned import DEFAULT_MIX, difficulty_rungs, thresholds_for_mix

        cheap = P[:, 0]
        if P.shape[1] == 2:
            return sweep_by_score(name, -cheap, m)
        upper = np.array(DEFAULT_MIX[1:P.shape[1]], dtype=float)
        upper = upper / upper.sum()
        choices = []
        for s0 in np.linspace(0.0, 1.0, steps + 1):
            thr = thresholds_for_mix(cheap, [s0, *((1 - s0) * upper)])
            choices.append(difficulty_rungs(cheap, thr))
        return choices_curve(name, choices, m)
    if P.shape[1] == 2:
        return sweep_by_score(name, P[:, 1] - P[:, 0], m)
    from ..routing.learned import choose_rungs

    gaps = (P.max(1, keepdims=True) - P).ravel()
    tols = np.unique(np.concatenate([[0.0], np.quantile(gaps, np.linspace(0, 1, steps)), [1.0 + 1e-9]]))
    order = np.argsort(m.C.mean(0), kind="stable")
    return choices_curve(name, [choose_rungs(P, t, order) for t in tols], m)


def replay(train_records: Sequence[Record], rungs: Sequence[Sequence[str]], prices: Mapping[str, Any], *,
           test_records: Sequence[Record] | None = None, learned: Sequence[LearnedConfig] = (LearnedConfig(),),
           strategies: Sequence[str] = (), settings: Any = None, folds: int = 5, seed: int = 0,
           fixed_artifact: Any = None, rung_tiers: Sequence[str] | None = None) -> ReplayResult:
    """Evaluate every requested strategy plus always-each-rung, random mixing and the oracle."""
    from ..routing.training import order_by_price

    rungs = order_by_price(rungs, prices)  # as ``train`` orders them, so P's columns match the matrix
    train_m = build_matrix(train_records, rungs, prices)
    test_m = build_matrix(test_records, rungs, prices) if test_records is not None else None
    m = test_m if test_m is not None else train_m
    if m.n < 2:
        from ..errors import ConfigError

        raise ConfigError(f"replay: only {m.n} prompt(s) have an outcome for every rung of the ladder")
    mode = "separate test file" if test_m is not None else f"{folds}-fold cross-fitting by id"
    curves: list[Curve] = [*always_curves(m), random_curve(m), oracle_curve(m)]
    notes: list[str] = []
    has_answers = any(r[0] is not None for r in m.responses)
    if fixed_artifact is not None:
        P = fixed_artifact.predict(m.prompts, m.categories if fixed_artifact.spec.uses_category else None)
        if list(fixed_artifact.ladder) == list(m.ladder):
            curves.append(learned_curve("learned (artifact as-is)", P, m, rule=fixed_artifact.rule))
        else:
            notes.append("artifact as-is skipped: its ladder is not the replayed ladder in price order")
        if fixed_artifact.verifiers and has_answers:
            curves.append(cascade_curve("cascade (artifact verifier)", verifier_matrix(fixed_artifact.verifiers, m), m))
        notes.append("artifact evaluated as-is: only meaningful if it was not trained on these prompts")
    for cfg in learned:
        P, V = learned_oof(train_m, test_m, rungs, prices, cfg, folds=folds, seed=seed,
                           verifiers=cfg.cascade and has_answers)
        curves.append(learned_curve(cfg.name, P, m, rule=cfg.rule))
        for extra in cfg.extra_rules:
            curves.append(learned_curve(f"{cfg.name} predictions, {extra} rule", P, m, rule=extra))
        if cfg.cascade and has_answers and not np.all(np.isnan(V)):
            curves.append(cascade_curve(f"cascade ({cfg.name} verifier)", V, m))
    if strategies:
        if settings is None:
            from ..config import load_settings

            settings = load_settings(None, environ={})
        for name in strategies:
            curves.append(choice_point(name, strategy_choices(name, m, settings, rung_tiers), m))
    rows = {c.name: metric_row(c, m) for c in curves}
    return ReplayResult(ladder=list(m.ladder), n_test=m.n, mode=mode, curves=curves, rows=rows, matrix=m, notes=notes)
