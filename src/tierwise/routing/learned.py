"""The ``learned`` strategy at decide time: predicted score of every rung of a ladder; a low
predicted score for the cheapest rung means a harder prompt, which escalates.

The artifact (:class:`Artifact`) comes from ``tierwise train`` (:mod:`.training`: one ridge
regression per rung on recorded outcomes, features in :mod:`.features`; by default no feature
depends on the record's category, so what ``train`` uses is exactly what ``decide`` sees). Its
ladder is ordered by **price** (the blended list price per million tokens of each rung's model).
At decide time the router featurises the prompt and predicts each rung's expected score. The
**difficulty rule** (artifact version 3): the predicted score of the cheapest rung is compared
with ``thresholds`` (one per step up the ladder, non-increasing): at or above the first, the
cheapest rung; below it, one rung up; below the second, two rungs up... The thresholds are
calibrated so a sample of prompts lands on a target tier mix (the seeds' 70/25/5 by default;
``tierwise calibrate``). A hard prompt that every rung is predicted to find hard therefore
escalates; it is never sent down because the predicted gap between the rungs is small (the
``gap`` rule of artifact versions 1-2, "cheapest rung within ``tolerance`` of the best
prediction", which those artifacts still use unless ``thresholds`` are configured).

Decide time is on the proxy's hot path: for hash-2 features prediction goes through ``FastScorer``
(pure Python, float32 weight columns built once at load, a few C-level ``map`` calls per prompt, the
request's cached heuristic signals reused); the numpy path (``predict_one_reference``, ``predict``)
computes the same numbers and is what training uses.

The artifact is JSON (arrays as base64 little-endian float32), never pickle. It records the
ladder, the prices, the training-set hash, the version and the provenance; it may also carry
a verifier per cheap rung (logistic regression on the cheap answer's features, fitted by
:func:`tierwise.cascade.training.fit_verifier`) for cascades.

Ladders of non-Claude models (e.g. the benchmark's mixtral -> gpt-4) are served by mapping
ladder positions to tiers: the ``rungs`` option (``{"0": "fast", "1": "balanced"}`` or a list)
or, by default, a rung whose model is a catalog model gets that model's tier and otherwise
rung ``i`` (in price order) gets ``tier_order[i]`` (a 2-rung ladder -> fast, balanced: the weak
rung is the fast tier and the strong rung the default tier; ``deep`` is never chosen by a 2-rung
ladder).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from itertools import repeat
from operator import itemgetter, sub
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..cascade.training import VERIFIER_NAMES, verifier_features
from ..errors import ConfigError
from .base import Decision, RouteRequest, decision
from .features import FastScorer, FeatureSpec, Featurizer, count_numbers, count_options, prompt_signals
from .rules import (
    DEFAULT_MIX,
    argmax,
    blended_price,
    choose_rung,
    choose_rungs,
    difficulty_rung,
    difficulty_rungs,
    mix_for,
    thresholds_for_mix,
)
from .solvers import ridge_cg

if TYPE_CHECKING:
    from ..config import Settings
    from .signals import Signals

# ridge_cg, the rules and the mix helpers are re-exported: the shadow learner, the replay and
# ``tierwise calibrate`` read them from here (training itself lives in :mod:`.training`)
__all__ = ["Artifact", "LearnedRouter", "load_artifact", "encode_array", "decode_array", "ridge_cg", "choose_rung", "choose_rungs",
           "difficulty_rung", "difficulty_rungs", "thresholds_for_mix", "mix_for", "blended_price",
           "DEFAULT_ARTIFACT", "ARTIFACT_VERSION", "DEFAULT_MIX", "DEFAULT_LAMBDA", "DEFAULT_TOLERANCE", "Verifier",
           "artifact_digest"]

# 3: the difficulty rule (thresholds on the cheapest rung's predicted score), rungs in price order;
# 2: hash-2 features (fast decide path); 1: numpy-only features. Versions 1-2 still load (gap rule).
ARTIFACT_VERSION = 3
FORMAT = "tierwise-learned-router"
DEFAULT_ARTIFACT = "data/router.json"
DEFAULT_LAMBDA = 10.0
DEFAULT_TOLERANCE = 0.05
RULES = ("difficulty", "gap")


# ----------------------------------------------------------------------------- (de)serialisation
def encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: Mapping[str, Any]) -> np.ndarray:
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
        # a verifier fitted on fewer features (an older artifact) reads the ones it was fitted on
        return verifier_features(answer, prompt, None if len(self.w) == len(VERIFIER_NAMES) else len(self.w))

    def prob(self, answer: str | None, prompt: str) -> float:
        z = float(self.features(answer, prompt) @ self.w + self.b)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_json(self) -> dict[str, Any]:
        return {"rung": self.rung, "model": self.model, "names": list(VERIFIER_NAMES[:len(self.w)]),
                "w": [round(float(x), 6) for x in self.w], "b": round(self.b, 6), "threshold": self.threshold}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Verifier":
        names = list(d.get("names", VERIFIER_NAMES[:len(d["w"])]))
        if names != list(VERIFIER_NAMES[:len(names)]) or len(names) != len(d["w"]):
            raise ConfigError("router artifact: a verifier's features are not this tierwise's "
                              f"({len(names)} names, {len(d['w'])} weights)")
        return cls(rung=int(d["rung"]), model=str(d["model"]), w=np.array(d["w"], dtype=np.float64), b=float(d["b"]),
                   threshold=float(d.get("threshold", 0.5)))


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
    rule: str = "difficulty"      # "gap" for artifacts of versions 1-2
    thresholds: list[float] = field(default_factory=list)   # difficulty rule: one per step up the ladder
    mix: list[float] = field(default_factory=list)          # the mix the thresholds were calibrated to
    rung_price: list[float] = field(default_factory=list)   # blended USD per Mtok of each rung's model
    embed: Any = None   # optional EmbedHead (routing/embed.py, the ``tierwise[embed]`` extra): blended in

    def __post_init__(self) -> None:
        # the artifact stores float32: round a freshly trained W the same way, so an artifact predicts
        # exactly the same before and after a save/load, and the fast path (float32 arrays) equals numpy
        self.W = np.asarray(self.W, dtype=np.float32).astype(np.float64)
        self.featurizer = Featurizer(self.spec)
        self._Wf = np.ascontiguousarray(self.W)
        self.fast = FastScorer(self.spec, self.W, self.mu) if self.spec.hash == 2 else None
        if not self.rung_price:  # older artifacts: from the prices they recorded, when every rung has one
            bp = [blended_price(self.prices.get(m)) for m in self.ladder]
            self.rung_price = [float(b) for b in bp] if all(b is not None for b in bp) else []

    @property
    def order(self) -> list[int]:
        """Rung positions cheapest first: by price; artifacts without prices by mean training cost."""
        key = self.rung_price or self.rung_cost or list(range(len(self.ladder)))
        return sorted(range(len(self.ladder)), key=lambda i: (key[i], i))

    @property
    def cheap(self) -> int:
        """Position of the cheapest rung: its predicted score is the difficulty the rule reads."""
        return self.order[0]

    # -- prediction ------------------------------------------------------------
    def predict_one(self, text: str, category: str | None = None, signals: Any = None) -> np.ndarray:
        if self.embed is not None:
            return self.predict([text], [category] if self.spec.uses_category else None)[0]
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
        P = np.clip(X.dot(self.W) + self.mu, 0.0, 1.0)
        return P if self.embed is None else self.embed.blend(P, texts)

    def verifier_for(self, rung: int) -> Verifier | None:
        return next((v for v in self.verifiers if v.rung == rung), None)

    # -- io ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": self.version, "ladder": self.ladder, "rung_models": self.rung_models,
            "prices": {m: self.prices[m] for m in self.ladder if m in self.prices}, "rung_cost": self.rung_cost,
            "rung_price": self.rung_price, "rule": self.rule, "thresholds": self.thresholds, "mix": self.mix,
            "lambda": self.lam, "tolerance": self.tolerance, "features": self.spec.to_json(),
            "training": self.training, "provenance": self.provenance,
            "verifiers": [v.to_json() for v in self.verifiers],
            "intercepts": [float(x) for x in self.mu], "weights": encode_array(self.W),
            **({"embed": self.embed.to_json()} if self.embed is not None else {}),
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
        rule = str(d.get("rule", "gap" if version <= 2 else "difficulty"))
        if rule not in RULES:
            raise ConfigError(f"{where}: unknown decision rule {rule!r} ({', '.join(RULES)})")
        n_thr = len(d.get("thresholds", []))
        if rule == "difficulty" and n_thr != len(d["ladder"]) - 1:
            raise ConfigError(f"{where}: the difficulty rule needs {len(d['ladder']) - 1} threshold(s), found {n_thr}")
        return cls(ladder=list(d["ladder"]), rung_models=[list(r) for r in d["rung_models"]],
                   spec=spec, W=decode_array(d["weights"]),
                   mu=np.array(d["intercepts"], dtype=np.float64), prices=dict(d.get("prices", {})),
                   rung_cost=[float(c) for c in d.get("rung_cost", [])], lam=float(d.get("lambda", DEFAULT_LAMBDA)),
                   tolerance=float(d.get("tolerance", DEFAULT_TOLERANCE)), training=dict(d.get("training", {})),
                   provenance=dict(d.get("provenance", {})),
                   verifiers=[Verifier.from_json(v) for v in d.get("verifiers", [])], version=int(d["version"]),
                   rule=rule, thresholds=[float(t) for t in d.get("thresholds", [])],
                   mix=[float(x) for x in d.get("mix", [])], rung_price=[float(x) for x in d.get("rung_price", [])],
                   embed=_embed_head(d.get("embed")))


def _embed_head(d: Any) -> Any:
    """The artifact's optional embedding head (its weights only: the model loads at the first predict)."""
    if d is None:
        return None
    from .embed import EmbedHead

    return EmbedHead.from_json(d)


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


def _signals_of(text: str) -> Any:
    return RouteRequest.from_prompt(text).signals


# ----------------------------------------------------------------------------- the router
def describe_prompt(text: str, signals: "Signals | None" = None, n_numbers: int | None = None,
                    n_options: int | None = None) -> list[str]:
    """A few human-readable phrases about a prompt (for Decision.reasons). ``n_numbers`` and
    ``n_options`` (:func:`.features.count_numbers` / :func:`.features.count_options` of ``text``)
    skip recounting them."""
    s = signals or prompt_signals(text)
    out: list[str] = []
    if n_numbers is None:
        n_numbers = count_numbers(text)
    if n_options is None:
        n_options = count_options(text)
    if s.math and (n_numbers >= 3 or s.multi_step):  # numbers alone (dates, prices, ids) are no math ask
        out.append("multi-step math word problem" if len(text) > 150 else "arithmetic question")
    elif s.math:
        out.append("math or quantities")
    if n_options >= 2:
        out.append("multiple-choice question")
    if s.code or s.code_task:
        out.append("code")
    if s.analysis:
        out.append("comparison or analysis")
    if s.stakes:
        out.append("high-stakes domain")
    if s.short_output:
        out.append("short, schema-bound output")
    if len(text) > 8000:
        out.append(f"long prompt ({(len(text) + 3) // 4:,} tokens)")
    return out


def _pretty(model: str) -> str:
    for fam in ("haiku", "sonnet", "opus"):
        if fam in model:
            return fam.capitalize()
    return model


class LearnedRouter:
    """Options: ``artifact`` (path; default the shipped one), ``thresholds`` (difficulty rule: one per
    step up the ladder, non-increasing; default the artifact's), ``rule`` (``difficulty`` or ``gap``;
    default the artifact's: ``gap`` for artifacts of versions 1-2 unless ``thresholds`` are given),
    ``tolerance`` (gap rule only), ``rungs`` (ladder position -> tier, as a list or
    ``{"0": "fast", ...}``), ``use_category`` (pass the task type as the category, for artifacts
    trained with ``--category``; others never read it), ``escalate`` (the seeds' floors)."""

    name = "learned"

    def __init__(self, settings: "Settings", artifact: "str | os.PathLike[str] | Artifact | None" = None,
                 tolerance: float | None = None, rungs: Sequence[str] | Mapping[str, str] | None = None,
                 use_category: bool = True, escalate: bool = True, thresholds: Sequence[float] | None = None,
                 rule: str | None = None) -> None:
        self.artifact = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
        art = self.artifact
        self.tolerance = float(art.tolerance if tolerance is None else tolerance)
        self.use_category = bool(use_category) and art.spec.uses_category
        catalog = settings.catalog
        n = len(art.ladder)
        self.rule = rule or ("difficulty" if thresholds is not None else art.rule)
        if self.rule not in RULES:
            raise ConfigError(f"routing learned: unknown rule {self.rule!r} (difficulty, gap)")
        try:
            self.thresholds = [float(t) for t in (art.thresholds if thresholds is None else thresholds)]
        except (TypeError, ValueError):
            raise ConfigError(f"routing learned: 'thresholds' must be a list of numbers, got {thresholds!r}") from None
        if self.rule == "difficulty":
            if len(self.thresholds) != n - 1:
                raise ConfigError(f"routing learned: the difficulty rule needs {n - 1} threshold(s) for a {n}-rung "
                                  f"ladder, got {len(self.thresholds)} (run `tierwise calibrate --mix 70/25/5`)")
            if any(b > a for a, b in zip(self.thresholds, self.thresholds[1:])):
                raise ConfigError(f"routing learned: 'thresholds' must be non-increasing (cheapest rung first), "
                                  f"got {self.thresholds}")
        if rungs is None:
            tiers = []
            for i, m in enumerate(art.ladder):
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
                raise ConfigError(f"routing learned: rung {i} ({art.ladder[i]}) maps to unknown tier {t!r} "
                                  f"(tiers: {', '.join(catalog.tier_order)})")
        self.tiers = tiers
        self.order = art.order          # cheapest first, by price
        self.cheap = self.order[0]
        # Name rungs after the Claude model that serves them ("Haiku", "Sonnet"), whatever models the
        # artifact learned from: the reason reads "predicted Haiku score 0.41 vs Sonnet 0.83".
        self._pretty = [_pretty(m) if catalog.get(m) is not None else
                        (catalog.model_for_tier(t).family.capitalize() or t) for m, t in zip(art.ladder, tiers)]
        self._tier_index = [catalog.tier_index(t) for t in tiers]
        tol = f"{self.tolerance:.2f}"
        self._why_cheaper = [f"{p} within tolerance {tol} of the best: cheaper" for p in self._pretty]
        self._why_best = [f"{p} predicted best" for p in self._pretty]
        cheap = self._pretty[self.cheap]
        self._why_level = []
        if self.rule == "difficulty":
            for k in range(n):
                if k == 0:
                    why = f"{cheap} score at or above {self.thresholds[0]:.2f}: {cheap}"
                else:
                    why = f"{cheap} score below {self.thresholds[k - 1]:.2f}: harder, up to {self._pretty[self.order[k]]}"
                self._why_level.append(why)
        # Floors from the seeds, on top of the learned prediction (``escalate = false`` turns them off):
        # a high-stakes request goes at least to the default tier ("route high-stakes tasks to Sonnet
        # regardless of output length"), and one the complexity signals score deep (multi-step
        # analysis of several documents with stakes...) goes to the deep tier, which a ladder trained
        # on a weak/strong pair (the shipped one) never reaches on its own.
        self._catalog = catalog
        self._heuristic: Any = None
        self._stakes_floor = settings.default_tier
        self._why_stakes = f"high-stakes domain: at least {self._stakes_floor} (the seeds' rule)"
        if escalate:
            from .heuristic import HeuristicRouter

            self._heuristic = HeuristicRouter(settings)
        # per rung, what ``_floor`` asks of its tier (decide reads these instead of calling it)
        h, idx = self._heuristic, catalog.tier_index
        self._below_deep = [h is not None and h.deep in catalog.tiers and idx(t) < idx(h.deep) for t in tiers]
        self._below_stakes = [idx(t) < idx(self._stakes_floor) for t in tiers]
        # the predictions reason, one "%.2f" per rung in price order (what f"{p:.2f}" prints)
        self._why_pred = "predicted " + " vs ".join(f"{self._pretty[j].replace('%', '%%')} score %.2f" for j in self.order)
        self._in_order = itemgetter(*self.order)

    def _floor(self, request: RouteRequest, signals: Any, tier: str, model: str | None,
               reasons: list[str]) -> tuple[str, str | None]:
        idx = self._catalog.tier_index
        h = self._heuristic
        if h.deep in self._catalog.tiers and idx(tier) < idx(h.deep):
            score = h.total_of(signals)
            if score >= h.deep_from:
                reasons.append(f"complexity signals score {score:g} (multi-step, analysis, stakes): raised to {h.deep}")
                return h.deep, None
        if signals.stakes and idx(tier) < idx(self._stakes_floor):
            reasons.append(self._why_stakes)
            return self._stakes_floor, None
        return tier, model

    def _predict(self, request: RouteRequest) -> tuple[list[float], int | None, int | None, str]:
        text = request.last_user_text or request.text
        category = request.task if self.use_category else None
        fast = self.artifact.fast
        if fast is not None:
            pred, n_numbers, n_options = fast.predict(text, category, request.signals)
            if len(text) > fast.max_chars:  # the counts were taken on the cut text
                return pred, None, None, text
            return pred, n_numbers, n_options, text
        return self.artifact.predict_one(text, category, request.signals).tolist(), None, None, text

    def predict(self, request: RouteRequest) -> np.ndarray:
        return np.array(self._predict(request)[0])

    def _choose(self, pred: Sequence[float]) -> int:
        if self.rule == "difficulty":
            return self.order[difficulty_rung(pred[self.cheap], self.thresholds)]
        return choose_rung(pred, self.tolerance, self.order)

    def escalation(self, request: RouteRequest) -> int:
        """Index in the catalog's ``tier_order`` of the tier this router's rule alone picks (no
        seed floors): for a strategy that starts from its own base tier and only moves *up* when
        the predicted score of the cheapest rung is low (``max(base, escalation)``)."""
        return self._tier_index[self._choose(self._predict(request)[0])]

    def decide(self, request: RouteRequest) -> Decision:
        signals = request.signals  # cached on the request: shared with any other strategy that asked
        pred, n_numbers, n_options, text = self._predict(request)
        ladder = self.artifact.ladder
        p_cheap = pred[self.cheap]
        reasons = describe_prompt(text, signals, n_numbers, n_options)[:3]
        reasons.append(self._why_pred % self._in_order(pred))  # "predicted Haiku score 0.41 vs Sonnet score 0.83"
        if self.rule == "difficulty":
            k = difficulty_rung(p_cheap, self.thresholds)
            i = self.order[k]
            reasons.append(self._why_level[k])
            # confidence: how far the cheapest rung's score is from the nearest threshold, squashed
            margin = min(map(abs, map(sub, repeat(p_cheap), self.thresholds)), default=0.5)
        else:
            i = choose_rung(pred, self.tolerance, self.order)
            best = argmax(pred)
            reasons.append(self._why_cheaper[i] if i != best else self._why_best[i])
            gaps = [pred[best] - pred[j] - self.tolerance for j in range(len(pred)) if j != i]
            margin = min(map(abs, gaps), default=0.5)
        confidence = round(min(0.95, 0.5 + margin * 2), 2)
        tier, model = self.tiers[i], ladder[i]
        h = self._heuristic
        if h is not None:
            if self._below_deep[i]:
                score = h.total_of(signals)
                if score >= h.deep_from:
                    reasons.append(f"complexity signals score {score:g} (multi-step, analysis, stakes): raised to {h.deep}")
                    tier, model = h.deep, None
                elif signals.stakes and self._below_stakes[i]:
                    reasons.append(self._why_stakes)
                    tier, model = self._stakes_floor, None
            elif signals.stakes and self._below_stakes[i]:
                reasons.append(self._why_stakes)
                tier, model = self._stakes_floor, None
        return decision(tier, confidence, tuple(reasons), self.name, model, request.task,
                        dict(zip(ladder, map(round, pred, repeat(4)))))


def artifact_digest(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
