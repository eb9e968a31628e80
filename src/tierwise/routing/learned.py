"""The ``learned`` strategy: predicted score of every rung of a ladder, cheapest good-enough rung wins.

Training (``tierwise train``) fits one ridge regression per rung of the ladder on recorded
outcomes (hashed words, optionally bigrams / char n-grams, the category / task type and its
crosses with the words and the structural signals, structural signals; see
``features.py``), solved with conjugate gradients in numpy. At decide time the router
featurises the prompt, predicts each rung's expected score, and picks the cheapest rung whose
prediction is within ``tolerance`` of the best one: ``tolerance`` is the single knob trading cost
for quality (0 = best predicted rung, larger = cheaper).

Decide time is on the proxy's hot path: for hash-2 features (artifact version 2) prediction goes
through ``FastScorer`` (pure Python, float32 weight columns built once at load, a few C-level
``map`` calls per prompt, the request's cached heuristic signals reused); the numpy path
(``predict_one_reference``, ``predict``) computes the same numbers and is what training uses.

The artifact is JSON (arrays as base64 little-endian float32), never pickle. It records the
ladder, the prices, the training-set hash, the version and the provenance; it may also carry
a verifier per cheap rung (logistic regression on the cheap answer's features) for cascades.

Ladders of non-Claude models (e.g. the benchmark's mixtral -> gpt-4) are served by mapping
ladder positions to tiers: the ``rungs`` option (``{"0": "fast", "1": "balanced"}`` or a list)
or, by default, a rung whose model is a catalog model gets that model's tier and otherwise
rung ``i`` gets ``tier_order[i]`` (a 2-rung ladder -> fast, balanced: the weak rung is the
fast tier and the strong rung the default tier; ``deep`` is never chosen by a 2-rung ladder).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .base import Decision, RouteRequest, register
from .features import (ANSWER_NAMES, DENSE_NAMES, FastScorer, Featurizer, FeatureSpec, SparseRows, answer_features,
                       dense_signals, describe_prompt)

if TYPE_CHECKING:
    from ..config import Settings
    from ..outcomes import Record

__all__ = ["Artifact", "LearnedRouter", "train", "load_artifact", "parse_ladder", "ridge_cg", "logistic_fit",
           "choose_rung", "DEFAULT_ARTIFACT", "ARTIFACT_VERSION", "Verifier"]

ARTIFACT_VERSION = 2          # 2: hash-2 features (fast decide path); version-1 artifacts still load (numpy path)
FORMAT = "tierwise-learned-router"
DEFAULT_ARTIFACT = "data/router.json"
DEFAULT_LAMBDA = 10.0
DEFAULT_TOLERANCE = 0.05


# ----------------------------------------------------------------------------- ladders
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


# ----------------------------------------------------------------------------- solvers
def ridge_cg(X: SparseRows, Y: np.ndarray, lam: float, iters: int = 200, tol: float = 1e-5,
             sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression ``min |X w + mu - y|^2 + lam |w|^2`` for every column of Y, by conjugate
    gradients on the normal equations (X sparse). Returns (W of shape (n_cols, k), intercepts mu)."""
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    sw = np.ones(Y.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mu = (Y * sw[:, None]).sum(0) / sw.sum()
    Yc = (Y - mu) * sw[:, None]
    B = X.tdot(Yc)
    W = np.zeros_like(B)
    R = B.copy()
    P = R.copy()
    rs = (R * R).sum(0)
    bnorm = np.sqrt(rs) + 1e-12
    for _ in range(iters):
        AP = X.tdot(X.dot(P) * sw[:, None]) + lam * P
        alpha = rs / np.maximum((P * AP).sum(0), 1e-30)
        W += alpha * P
        R -= alpha * AP
        rn = (R * R).sum(0)
        if np.all(np.sqrt(rn) <= tol * bnorm):
            break
        P = R + (rn / np.maximum(rs, 1e-30)) * P
        rs = rn
    return W, mu


def logistic_fit(X: np.ndarray, y: np.ndarray, lam: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (dense, small X). Returns (w, b)."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, lam)
    reg[-1] = 1e-6
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Xb @ w, -30, 30)))
        g = Xb.T @ (p - y) + reg * w
        H = (Xb * (p * (1 - p))[:, None]).T @ Xb + np.diag(reg)
        step = np.linalg.solve(H, g)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


# ----------------------------------------------------------------------------- (de)serialisation
def _enc(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def _dec(d: Mapping[str, Any]) -> np.ndarray:
    if d.get("dtype") != "float32":
        raise ConfigError(f"router artifact: unsupported array dtype {d.get('dtype')!r}")
    return np.frombuffer(base64.b64decode(d["b64"]), dtype="<f4").reshape(d["shape"]).astype(np.float64)


@dataclass
class Verifier:
    """P(the cheap rung's answer is good enough | its answer text and the prompt), for cascades."""

    rung: int
    model: str
    w: np.ndarray
    b: float
    threshold: float = 0.5

    def features(self, answer: str | None, prompt: str) -> np.ndarray:
        return np.concatenate([answer_features(answer, prompt), dense_signals(prompt)])

    def prob(self, answer: str | None, prompt: str) -> float:
        z = float(self.features(answer, prompt) @ self.w + self.b)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_json(self) -> dict[str, Any]:
        return {"rung": self.rung, "model": self.model, "names": list(ANSWER_NAMES + DENSE_NAMES),
                "w": [round(float(x), 6) for x in self.w], "b": round(self.b, 6), "threshold": self.threshold}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Verifier":
        return cls(rung=int(d["rung"]), model=str(d["model"]), w=np.array(d["w"], dtype=np.float64), b=float(d["b"]),
                   threshold=float(d.get("threshold", 0.5)))


def fit_verifier(records: Sequence["Record"], rungs: Sequence[Sequence[str]], rung: int = 0,
                 lam: float = 1.0) -> Verifier | None:
    """Train on records whose rung-``rung`` outcome has a response; target = that answer scored at
    least as well as the strongest rung's (i.e. escalating would not have helped)."""
    X, y = [], []
    for r in records:
        models = rung_outcomes(r, rungs)
        if models is None:
            continue
        o = r.outcomes[models[rung]]
        if o.response is None:
            continue
        X.append(np.concatenate([answer_features(o.response, r.prompt), dense_signals(r.prompt)]))
        y.append(1.0 if o.score >= r.outcomes[models[-1]].score - 1e-9 else 0.0)
    if len(y) < 20 or min(sum(y), len(y) - sum(y)) < 3:
        return None
    w, b = logistic_fit(np.array(X), np.array(y), lam=lam)
    return Verifier(rung=rung, model=rungs[rung][0], w=w, b=b)


# ----------------------------------------------------------------------------- the artifact
@dataclass
class Artifact:
    ladder: list[str]
    rung_models: list[list[str]]
    spec: FeatureSpec
    W: np.ndarray             # (n_cols, n_rungs)
    mu: np.ndarray            # (n_rungs,)
    prices: dict[str, dict[str, float]]
    rung_cost: list[float]    # mean USD per prompt on the training set, per rung
    lam: float = DEFAULT_LAMBDA
    tolerance: float = DEFAULT_TOLERANCE
    training: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    verifiers: list[Verifier] = field(default_factory=list)
    version: int = ARTIFACT_VERSION

    def __post_init__(self) -> None:
        # the artifact stores float32: round a freshly trained W the same way, so an artifact predicts
        # exactly the same before and after a save/load, and the fast path (float32 arrays) equals numpy
        self.W = np.asarray(self.W, dtype=np.float32).astype(np.float64)
        self.featurizer = Featurizer(self.spec)
        self._Wf = np.ascontiguousarray(self.W)
        self.fast = FastScorer(self.spec, self.W, self.mu) if self.spec.hash == 2 else None

    # -- prediction ------------------------------------------------------------
    def predict_one(self, text: str, category: str | None = None, signals: Any = None) -> np.ndarray:
        if self.fast is not None:
            return np.array(self.fast.predict(text, category, signals or _signals_of(text))[0])
        return self.predict_one_reference(text, category, signals)

    def predict_one_reference(self, text: str, category: str | None = None, signals: Any = None) -> np.ndarray:
        """The numpy path (sparse row from :class:`Featurizer`, then ``x @ W + mu``); the fast path must equal it."""
        idx, val = self.featurizer.transform_one(text, category, signals)
        return np.clip(val @ self._Wf[idx] + self.mu, 0.0, 1.0)

    def predict(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.ladder)))
        X = self.featurizer.transform(texts, categories)
        return np.clip(X.dot(self.W) + self.mu, 0.0, 1.0)

    def verifier_for(self, rung: int) -> Verifier | None:
        return next((v for v in self.verifiers if v.rung == rung), None)

    # -- io ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": self.version, "ladder": self.ladder, "rung_models": self.rung_models,
            "prices": {m: self.prices[m] for m in self.ladder if m in self.prices}, "rung_cost": self.rung_cost,
            "lambda": self.lam, "tolerance": self.tolerance, "features": self.spec.to_json(),
            "training": self.training, "provenance": self.provenance,
            "verifiers": [v.to_json() for v in self.verifiers],
            "intercepts": [float(x) for x in self.mu], "weights": _enc(self.W),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "router artifact") -> "Artifact":
        if d.get("format") != FORMAT:
            raise ConfigError(f"{where}: not a tierwise learned-router artifact")
        version = int(d.get("version", 0))
        if version > ARTIFACT_VERSION:
            raise ConfigError(f"{where}: artifact version {d.get('version')} is newer than this tierwise ({ARTIFACT_VERSION})")
        features = dict(d["features"])
        if version <= 1:
            features["hash"] = 1  # version 1 had one hashing scheme and no "hash" key
        try:
            spec = FeatureSpec.from_json(features)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{where}: bad feature spec: {exc}") from None
        return cls(ladder=list(d["ladder"]), rung_models=[list(r) for r in d["rung_models"]],
                   spec=spec, W=_dec(d["weights"]),
                   mu=np.array(d["intercepts"], dtype=np.float64), prices=dict(d.get("prices", {})),
                   rung_cost=[float(c) for c in d.get("rung_cost", [])], lam=float(d.get("lambda", DEFAULT_LAMBDA)),
                   tolerance=float(d.get("tolerance", DEFAULT_TOLERANCE)), training=dict(d.get("training", {})),
                   provenance=dict(d.get("provenance", {})),
                   verifiers=[Verifier.from_json(v) for v in d.get("verifiers", [])], version=int(d["version"]))


def load_artifact(path: str | os.PathLike[str] | None = None) -> Artifact:
    """An artifact from ``path``, or the shipped default (``tierwise/data/router.json``)."""
    if path is None:
        text = resources.files("tierwise").joinpath(DEFAULT_ARTIFACT).read_text(encoding="utf-8")
        where = f"tierwise/{DEFAULT_ARTIFACT}"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: router artifact not found") from None
        where = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc.msg}") from None
    return Artifact.from_json(data, where)


def train(records: Sequence["Record"], ladder: str | Sequence[Any], prices: Mapping[str, Mapping[str, float]], *,
          lam: float = DEFAULT_LAMBDA, spec: FeatureSpec | None = None, tolerance: float = DEFAULT_TOLERANCE,
          sources: Sequence[str] = (), provenance: Mapping[str, Any] | None = None, verifiers: bool = True,
          use_category: bool = True) -> Artifact:
    """Fit the per-rung score predictors on every record that has an outcome for each rung."""
    from ..outcomes import outcome_cost, records_hash

    rungs = parse_ladder(ladder)
    spec = spec or FeatureSpec()
    if not use_category:
        spec.weights["category"] = 0.0
    rows, Y, costs = [], [], []
    for r in records:
        models = rung_outcomes(r, rungs)
        if models is None:
            continue
        rows.append(r)
        Y.append([r.outcomes[m].score for m in models])
        costs.append([outcome_cost(r.outcomes[m], rung[0] if rung[0] in prices else m, prices)
                      for m, rung in zip(models, rungs)])
    if len(rows) < 2:
        raise ConfigError(f"training: only {len(rows)} record(s) have an outcome for every rung of "
                          f"{','.join('|'.join(r) for r in rungs)}")
    fz = Featurizer(spec)
    X = fz.transform([r.prompt for r in rows], [r.category for r in rows])
    W, mu = ridge_cg(X, np.array(Y), lam)
    Yarr, Carr = np.array(Y), np.array(costs)
    datasets: dict[str, int] = {}
    for r in rows:
        datasets[r.dataset or "?"] = datasets.get(r.dataset or "?", 0) + 1
    names = [r[0] for r in rungs]
    art = Artifact(
        ladder=names, rung_models=rungs, spec=spec, W=W, mu=mu,
        prices={m: dict(prices[m]) for m in {a for r in rungs for a in r} if m in prices},
        rung_cost=[float(c) for c in Carr.mean(0)], lam=lam, tolerance=tolerance,
        training={"records": len(rows), "sha256": records_hash(rows), "files": [os.path.basename(str(s)) for s in sources],
                  "datasets": datasets, "mean_score": [round(float(x), 4) for x in Yarr.mean(0)],
                  "mean_cost_usd": [float(f"{c:.6g}") for c in Carr.mean(0)]},
        provenance={"created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "tool": "tierwise train", "method": "per-rung ridge regression (conjugate gradients) on hashed "
                    "words (" + ", ".join(k for k, v in spec.weights.items() if v) + "; hash scheme "
                    f"{spec.hash}) and structural signals", **dict(provenance or {})},
    )
    if verifiers:
        for i in range(len(rungs) - 1):
            v = fit_verifier(rows, rungs, i)
            if v is not None:
                art.verifiers.append(v)
    return art


def choose_rung(pred: Sequence[float] | np.ndarray, tolerance: float, order: Sequence[int] | None = None) -> int:
    """Cheapest rung (in ``order``, cheapest first) whose prediction is within ``tolerance`` of the best."""
    best = max(pred)
    for i in order if order is not None else range(len(pred)):
        if pred[i] >= best - tolerance - 1e-12:
            return int(i)
    return _argmax(pred)


def _argmax(pred: Sequence[float] | np.ndarray) -> int:
    best = 0
    for j in range(1, len(pred)):
        if pred[j] > pred[best]:
            best = j
    return best


def _signals_of(text: str) -> Any:
    return RouteRequest.from_prompt(text).signals


def choose_rungs(P: np.ndarray, tolerance: float, order: Sequence[int] | None = None) -> np.ndarray:
    """Vectorised :func:`choose_rung` over rows of P."""
    order = list(order) if order is not None else list(range(P.shape[1]))
    ok = P[:, order] >= P.max(1, keepdims=True) - tolerance - 1e-12
    return np.array(order)[np.argmax(ok, axis=1)]


# ----------------------------------------------------------------------------- the router
def _pretty(model: str) -> str:
    for fam in ("haiku", "sonnet", "opus"):
        if fam in model:
            return fam.capitalize()
    return model


@register("learned")
class LearnedRouter:
    """Options: ``artifact`` (path; default the shipped one), ``tolerance`` (float), ``rungs`` (ladder
    position -> tier, as a list or ``{"0": "fast", ...}``), ``use_category`` (task type as category)."""

    name = "learned"

    def __init__(self, settings: "Settings", artifact: "str | os.PathLike[str] | Artifact | None" = None,
                 tolerance: float | None = None, rungs: Sequence[str] | Mapping[str, str] | None = None,
                 use_category: bool = True, escalate: bool = True, **_: Any) -> None:
        self.artifact = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
        self.tolerance = float(self.artifact.tolerance if tolerance is None else tolerance)
        self.use_category = use_category
        catalog = settings.catalog
        n = len(self.artifact.ladder)
        if rungs is None:
            tiers = []
            for i, m in enumerate(self.artifact.ladder):
                t = catalog.tier_of(m)
                tiers.append(t if t is not None else catalog.tier_order[min(i, len(catalog.tier_order) - 1)])
        elif isinstance(rungs, Mapping):
            tiers = [str(rungs.get(str(i), rungs.get(i, ""))) for i in range(n)]  # type: ignore[call-overload]
        else:
            tiers = [str(t) for t in rungs]
        if len(tiers) != n:
            raise ConfigError(f"routing learned: 'rungs' maps {len(tiers)} position(s) but the ladder has {n} rungs")
        for i, t in enumerate(tiers):
            if t not in catalog.tiers:
                raise ConfigError(f"routing learned: rung {i} ({self.artifact.ladder[i]}) maps to unknown tier {t!r} "
                                  f"(tiers: {', '.join(catalog.tier_order)})")
        self.tiers = tiers
        costs = self.artifact.rung_cost or list(range(n))
        self.order = sorted(range(n), key=lambda i: (costs[i], i))
        # Name rungs after the Claude model that serves them ("Haiku", "Sonnet"), whatever models the
        # artifact learned from: the reason reads "predicted Haiku score 0.41 vs Sonnet 0.83".
        self._pretty = [_pretty(m) if catalog.get(m) is not None else
                        (catalog.model_for_tier(t).family.capitalize() or t) for m, t in zip(self.artifact.ladder, tiers)]
        tol = f"{self.tolerance:.2f}"
        self._why_cheaper = [f"{p} within tolerance {tol} of the best: cheaper" for p in self._pretty]
        self._why_best = [f"{p} predicted best" for p in self._pretty]
        # Floors from the seeds, on top of the learned prediction (``escalate = false`` turns them off):
        # a high-stakes request goes at least to the default tier ("route high-stakes tasks to Sonnet
        # regardless of output length"), and one the complexity signals score deep (multi-step
        # analysis of several documents with stakes...) goes to the deep tier, which a ladder trained
        # on a weak/strong pair (the shipped one) never reaches on its own.
        self._catalog = catalog
        self._heuristic: Any = None
        self._stakes_floor = settings.default_tier
        if escalate:
            from .heuristic import HeuristicRouter

            self._heuristic = HeuristicRouter(settings)

    def _floor(self, request: RouteRequest, signals: Any, tier: str, model: str | None,
               reasons: list[str]) -> tuple[str, str | None]:
        idx = self._catalog.tier_index
        h = self._heuristic
        if h.deep in self._catalog.tiers and idx(tier) < idx(h.deep):
            score = h.total(request)
            if score >= h.deep_from:
                reasons.append(f"complexity signals score {score:g} (multi-step, analysis, stakes): raised to {h.deep}")
                return h.deep, None
        if signals.stakes and idx(tier) < idx(self._stakes_floor):
            reasons.append(f"high-stakes domain: at least {self._stakes_floor} (the seeds' rule)")
            return self._stakes_floor, None
        return tier, model

    def predict(self, request: RouteRequest) -> np.ndarray:
        text = request.last_user_text or request.text
        return self.artifact.predict_one(text, request.task if self.use_category else None, request.signals)

    def decide(self, request: RouteRequest) -> Decision:
        text = request.last_user_text or request.text
        signals = request.signals  # cached on the request: shared with any other strategy that asked
        fast = self.artifact.fast
        if fast is not None:
            pred, n_numbers, n_options = fast.predict(text, request.task if self.use_category else None, signals)
            if len(text) > fast.max_chars:  # the counts were taken on the cut text
                n_numbers = n_options = None
        else:
            pred = self.artifact.predict_one(text, request.task if self.use_category else None, signals).tolist()
            n_numbers = n_options = None
        i = choose_rung(pred, self.tolerance, self.order)
        best = _argmax(pred)
        ladder = self.artifact.ladder
        reasons = describe_prompt(text, signals, n_numbers, n_options)[:3]
        reasons.append("predicted " + " vs ".join(f"{self._pretty[j]} score {pred[j]:.2f}" for j in self.order))
        reasons.append(self._why_cheaper[i] if i != best else self._why_best[i])
        # confidence: how far the decision is from flipping (margin vs the tolerance), squashed
        gaps = [pred[best] - pred[j] - self.tolerance for j in range(len(pred)) if j != i]
        margin = min(map(abs, gaps), default=0.5)
        confidence = round(min(0.95, 0.5 + margin * 2), 2)
        tier, model = self.tiers[i], ladder[i]
        if self._heuristic is not None:
            tier, model = self._floor(request, signals, tier, model, reasons)
        return Decision(tier=tier, confidence=confidence, reasons=tuple(reasons), router=self.name,
                        model=model, task=request.task, scores={m: round(p, 4) for m, p in zip(ladder, pred)})


def artifact_digest(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
