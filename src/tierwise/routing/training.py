"""Training the ``learned`` router (``tierwise train``): per-rung score predictors on recorded outcomes.

One ridge regression per rung of the ladder (hashed words, optionally bigrams / char n-grams,
structural signals; see :mod:`.features`), solved with conjugate gradients in numpy
(:mod:`.solvers`). By default no feature depends on the record's category: a live request does not
carry an MMLU subject, so what ``train`` uses is exactly what ``decide`` sees (``--category`` is for
a category that *is* the live task type). The ladder is put in **price** order (the blended list
price per million tokens of each rung's model, from the prices given to ``train``; never the mean
cost measured on the training prompts, which depends on how long each model's answers were). The
difficulty thresholds are set so the training prompts land on a target mix. The result is an
:class:`.learned.Artifact`; decide-time code is in :mod:`.learned`, the cascade verifiers' fit in
:mod:`tierwise.cascade.training`.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..cascade.training import fit_verifier
from ..errors import ConfigError
from .features import FeatureSpec, Featurizer
from .learned import DEFAULT_LAMBDA, DEFAULT_TOLERANCE, Artifact
from .rules import DEFAULT_MIX, blended_price, mix_for, thresholds_for_mix
from .solvers import logistic_fit, ridge_cg

if TYPE_CHECKING:
    from ..outcomes import Record

EMBED_LAMBDA = 100.0  # inner-CV choices on the MMLU dev data's hold-out training part (embed hand-off)
EMBED_WEIGHT = 0.75

__all__ = ["train", "parse_ladder", "rung_outcomes", "order_by_price", "fit_verifier", "ridge_cg", "logistic_fit"]


def parse_ladder(spec: str | Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """``"a,b|b2,c"`` -> ``[["a"], ["b", "b2"], ["c"]]``: rungs cheapest first; ``|`` lists alternative
    models whose outcomes stand in for that rung (e.g. other datasets' weak/strong models)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    rungs: list[list[str]] = []
    for item in items:
        models = [m.strip() for m in (item.split("|") if isinstance(item, str) else item) if m.strip()]
        if not models:
            raise ConfigError(f"ladder {spec!r}: empty rung")
        rungs.append(models)
    if len(rungs) < 2:
        raise ConfigError(f"ladder {spec!r}: a ladder needs at least 2 models (cheapest first)")
    names = [r[0] for r in rungs]
    if len(set(names)) != len(names):
        raise ConfigError(f"ladder {spec!r}: a model appears twice")
    return rungs


def rung_outcomes(record: "Record", rungs: Sequence[Sequence[str]]) -> list[str] | None:
    """For each rung, the model whose outcome the record has (first alternative present), or None."""
    out = []
    for alts in rungs:
        m = next((a for a in alts if a in record.outcomes), None)
        if m is None:
            return None
        out.append(m)
    return out


def order_by_price(rungs: Sequence[Sequence[str]], prices: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The rungs sorted by the blended list price of their (first) model, cheapest first; a rung
    without a price keeps its place relative to the others (stable sort on the given position)."""
    bp = [blended_price(prices.get(r[0])) for r in rungs]
    if any(b is None for b in bp):
        return [list(r) for r in rungs]
    return [list(rungs[i]) for i in sorted(range(len(rungs)), key=lambda i: (bp[i], i))]


def train(records: Sequence["Record"], ladder: str | Sequence[Any], prices: Mapping[str, Mapping[str, float]], *,
          lam: float = DEFAULT_LAMBDA, spec: FeatureSpec | None = None, tolerance: float = DEFAULT_TOLERANCE,
          sources: Sequence[str] = (), provenance: Mapping[str, Any] | None = None, verifiers: bool = True,
          use_category: bool = False, mix: Sequence[float] = DEFAULT_MIX, embed: bool = False,
          embed_lam: float = EMBED_LAMBDA, embed_weight: float = EMBED_WEIGHT) -> Artifact:
    """Fit the per-rung score predictors on every record that has an outcome for each rung.

    The rungs are put in price order (blended list price of each rung's model). A record whose
    stand-in models (``a|a2``) are priced against that order (the "strong" stand-in cheaper than the
    "weak" one) is skipped: it says nothing about when paying more helps. ``use_category=False``
    (the default) switches off every category-dependent feature. The difficulty thresholds are set
    so the training prompts land on ``mix``; recalibrate on your own prompts (``tierwise calibrate``).
    ``embed=True`` (the ``tierwise[embed]`` extra) also fits a ridge on each prompt's sentence
    embedding and blends it in with ``embed_weight`` (:class:`.embed.EmbedHead`)."""
    from ..outcomes import outcome_cost, records_hash

    given = parse_ladder(ladder)
    rungs = order_by_price(given, prices)
    spec = FeatureSpec.from_json(spec.to_json()) if spec is not None else FeatureSpec()
    if not use_category:
        spec = spec.without_category()
    rows, Y, costs = [], [], []
    skipped = 0
    for r in records:
        models = rung_outcomes(r, rungs)
        if models is None:
            continue
        bp = [blended_price(prices.get(m)) for m in models]
        if all(b is not None for b in bp) and any(bp[j] > bp[j + 1] for j in range(len(bp) - 1)):  # type: ignore[operator]
            skipped += 1
            continue
        rows.append(r)
        Y.append([r.outcomes[m].score for m in models])
        costs.append([outcome_cost(r.outcomes[m], rung[0] if rung[0] in prices else m, prices)
                      for m, rung in zip(models, rungs)])
    if len(rows) < 2:
        raise ConfigError(f"training: only {len(rows)} record(s) have an outcome for every rung of "
                          f"{','.join('|'.join(r) for r in rungs)}"
                          + (f" ({skipped} skipped: stand-in models priced against the ladder order)" if skipped else ""))
    fz = Featurizer(spec)
    X = fz.transform([r.prompt for r in rows], [r.category for r in rows] if spec.uses_category else None)
    W, mu = ridge_cg(X, np.array(Y), lam)
    Yarr, Carr = np.array(Y), np.array(costs)
    datasets: dict[str, int] = {}
    for r in rows:
        datasets[r.dataset or "?"] = datasets.get(r.dataset or "?", 0) + 1
    names = [r[0] for r in rungs]
    rung_price = [blended_price(prices.get(m)) for m in names]
    ordered = "by price (blended list price per Mtok, 3 input : 1 output, from the prices given to train)" \
        if all(b is not None for b in rung_price) else "as given (not every rung has a price)"
    used = [k for k, v in spec.weights.items() if v and spec.uses(k)]
    art = Artifact(
        ladder=names, rung_models=rungs, spec=spec, W=W, mu=mu,
        prices={m: dict(prices[m]) for m in {a for r in rungs for a in r} if m in prices},
        rung_cost=[float(c) for c in Carr.mean(0)], lam=lam, tolerance=tolerance,
        rung_price=[round(float(b), 6) for b in rung_price] if all(b is not None for b in rung_price) else [],
        training={"records": len(rows), "sha256": records_hash(rows), "files": [os.path.basename(str(s)) for s in sources],
                  "datasets": datasets, "mean_score": [round(float(x), 4) for x in Yarr.mean(0)],
                  "mean_cost_usd": [float(f"{c:.6g}") for c in Carr.mean(0)],
                  **({"skipped_price_order": skipped} if skipped else {})},
        provenance={"created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "tool": "tierwise train", "method": "per-rung ridge regression (conjugate gradients) on hashed "
                    "words (" + ", ".join(used) + f"; hash scheme {spec.hash}) and structural signals",
                    "features": "prompt text only: no category-dependent feature" if not spec.uses_category else
                    "prompt text and the category, which live requests must carry as their task type",
                    "ladder_order": ordered + ("" if names == [r[0] for r in given] else
                                               f"; given as {' -> '.join(r[0] for r in given)}"),
                    **dict(provenance or {})},
    )
    if embed:
        from .embed import fit_head

        art.embed = fit_head([r.prompt for r in rows], Yarr, embed_lam, embed_weight)
        art.provenance["embed"] = (f"blended {embed_weight:g} : {1 - embed_weight:g} with a ridge (lambda "
                                   f"{embed_lam:g}) on {art.embed.model} sentence embeddings of the prompt")
    shares = mix_for(len(names), mix)
    art.mix = [round(x, 6) for x in shares]
    P = art.predict([r.prompt for r in rows], [r.category for r in rows] if spec.uses_category else None)
    art.thresholds = thresholds_for_mix(P[:, art.cheap], shares)
    art.provenance.setdefault("rule", "difficulty: thresholds on the cheapest rung's predicted score, set so the "
                              "training prompts land " + "/".join(f"{100 * x:.0f}" for x in shares)
                              + " cheapest first; recalibrate with `tierwise calibrate --mix`")
    if verifiers:
        for i in range(len(rungs) - 1):
            v = fit_verifier(rows, rungs, i)
            if v is not None:
                art.verifiers.append(v)
    return art
