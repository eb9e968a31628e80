"""The learned router: training on a synthetic ladder, the artifact, the knob, tiers and reasons."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tierwise.cascade.training import ANSWER_NAMES, answer_features
from tierwise.config import load_settings
from tierwise.errors import ConfigError
from tierwise.outcomes import parse_record
from tierwise.routing.base import RouteRequest, build_router
from tierwise.routing.features import CATEGORY_WEIGHTS, FeatureSpec, Featurizer, SparseRows
from tierwise.routing.learned import (
    ARTIFACT_VERSION,
    Artifact,
    choose_rung,
    load_artifact,
)
from tierwise.routing.training import logistic_fit, parse_ladder, ridge_cg, train

PRICES = {"small": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
          "big": {"input_per_mtok": 10.0, "output_per_mtok": 30.0}}
EASY = ["capital of france", "color of the sky", "spell cat", "say hello", "name a fruit"]
HARD = ["prove the riemann lemma rigorously", "derive the optimal tax integral", "quantum field renormalization proof",
        "prove the riemann conjecture bound", "derive the optimal control law"]


def synthetic(n: int = 120, seed: int = 0, responses: bool = False) -> list:
    """Easy prompts: both rungs right. Hard prompts: only the big rung is right."""
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        hard = i % 2 == 1
        text = f"{rng.choice(HARD if hard else EASY)} number {i}"
        small = {"score": 0.0 if hard else 1.0, "input_tokens": 100, "output_tokens": 50}
        if responses:
            small["response"] = "I am not sure, perhaps 3." if hard else "Step <<2+2=4>>4\n#### 4"
        recs.append(parse_record({"id": f"s-{i}", "dataset": "syn", "category": "hard" if hard else "easy",
                                  "prompt": text, "outcomes": {"small": small,
                                  "big": {"score": 1.0, "input_tokens": 100, "output_tokens": 80}}}))
    return recs


@pytest.fixture(scope="module")
def artifact() -> Artifact:
    return train(synthetic(responses=True), "small,big", PRICES, lam=1.0, sources=["syn.jsonl"])


def settings():
    return load_settings(None, environ={})


def test_parse_ladder() -> None:
    assert parse_ladder("a, b|b2 ,c") == [["a"], ["b", "b2"], ["c"]]
    with pytest.raises(ConfigError, match="at least 2"):
        parse_ladder("a")
    with pytest.raises(ConfigError, match="twice"):
        parse_ladder("a,a")


def test_ridge_cg_matches_closed_form() -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(30, 6)) * (rng.random((30, 6)) < 0.5)
    y = rng.normal(size=(30, 2))
    X = SparseRows.from_rows([(np.nonzero(r)[0], r[np.nonzero(r)[0]]) for r in dense], 6)
    W, mu = ridge_cg(X, y, lam=2.0, tol=1e-10)
    expect = np.linalg.solve(dense.T @ dense + 2.0 * np.eye(6), dense.T @ (y - y.mean(0)))
    assert np.allclose(W, expect, atol=1e-6) and np.allclose(mu, y.mean(0))


def test_logistic_fit_separates() -> None:
    X = np.array([[0.0], [0.1], [0.9], [1.0]] * 5)
    y = np.array([0, 0, 1, 1] * 5, dtype=float)
    w, b = logistic_fit(X, y, lam=0.1)
    p = 1 / (1 + np.exp(-(X[:, 0] * w[0] + b)))
    assert p[0] < 0.2 and p[3] > 0.8


def test_featurizer_is_deterministic_and_normalised() -> None:
    fz = Featurizer(FeatureSpec(bits=12, weights={**FeatureSpec().weights, **CATEGORY_WEIGHTS}))
    a = fz.transform_one("Hello world, hello!", "algebra")
    b = Featurizer(FeatureSpec.from_json(fz.spec.to_json())).transform_one("Hello world, hello!", "algebra")
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    assert a[0].max() < fz.n_cols and np.all(np.diff(a[0]) > 0)
    # words: 5 tokens ("hello" twice, "," and "!" count), 4 distinct -> unit norm, sqrt(2) for "hello"
    plain = Featurizer(FeatureSpec(bits=12, weights={"word": 1.0, "dense": 0.0}))
    _, v = plain.transform_one("Hello world, hello!")
    assert np.isclose(np.dot(v, v), 1.0) and sorted(np.round(v ** 2 * 5, 6).tolist()) == [1.0, 1.0, 1.0, 2.0]
    no_cross = Featurizer(FeatureSpec(bits=12, weights={**FeatureSpec().weights, "category": 2.0}))
    a = no_cross.transform_one("Hello world, hello!", "algebra")
    c = no_cross.transform_one("Hello world, hello!", None)
    da, dc = dict(zip(a[0].tolist(), a[1])), dict(zip(c[0].tolist(), c[1]))
    assert len({k for k in da if da[k] != dc.get(k)}) == 1  # the category touches exactly one hashed column
    a = fz.transform_one("Hello world, hello!", "algebra")  # with the crosses: also words x category, signals x category
    c = fz.transform_one("Hello world, hello!", None)
    da, dc = dict(zip(a[0].tolist(), a[1])), dict(zip(c[0].tolist(), c[1]))
    assert len({k for k in da if da[k] != dc.get(k)}) > 3
    # the default spec has no category-dependent feature: the category is never read
    default = Featurizer(FeatureSpec(bits=12))
    assert not FeatureSpec().uses_category and fz.spec.without_category().weights == FeatureSpec(bits=12).weights
    a, c = default.transform_one("Hello world, hello!", "algebra"), default.transform_one("Hello world, hello!", None)
    assert np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1])


def test_answer_features_check_arithmetic() -> None:
    good = answer_features("3 x 60 = <<3*60=180>>180 meters\n#### 180", "He runs 3 sprints of 60 meters")
    bad = answer_features("3 x 60 = <<3*60=170>>170 meters\n#### 170", "He runs 3 sprints of 60 meters")
    f = dict(zip(ANSWER_NAMES, good))
    g = dict(zip(ANSWER_NAMES, bad))
    assert f["has_final"] == 1 and f["calc_errors"] == 0 and f["final_matches_last_calc"] == 1
    assert g["calc_error_any"] == 1 and f["question_numbers_used"] == 1.0
    assert dict(zip(ANSWER_NAMES, answer_features("", "x")))["empty"] == 1


def test_training_learns_difficulty(artifact: Artifact) -> None:
    assert artifact.ladder == ["small", "big"]
    assert artifact.training["records"] == 120 and artifact.training["datasets"] == {"syn": 120}
    assert artifact.training["mean_score"] == [0.5, 1.0]
    # mean cost per prompt: small 150 tok * $1/M; big 100*10 + 80*30 per M
    assert artifact.rung_cost == pytest.approx([150e-6, 3400e-6])
    easy = artifact.predict_one("capital of france number 999", "easy")
    hard = artifact.predict_one("prove the riemann lemma rigorously number 999", "hard")
    assert easy[0] > 0.8 and hard[0] < 0.2 and hard[1] > 0.8
    assert artifact.verifiers and artifact.verifiers[0].model == "small"
    v = artifact.verifiers[0]
    assert v.prob("Step <<2+2=4>>4\n#### 4", "say hello") > 0.8 > 0.2 > v.prob("I am not sure, perhaps 3.", "prove it")


def test_artifact_round_trip_is_json(artifact: Artifact, tmp_path: Path) -> None:
    p = tmp_path / "router.json"
    artifact.save(p)
    data = json.loads(p.read_text())
    assert data["format"] == "tierwise-learned-router" and data["version"] == ARTIFACT_VERSION == 3
    assert data["ladder"] == ["small", "big"] and set(data["prices"]) == {"small", "big"}
    assert data["rule"] == "difficulty" and len(data["thresholds"]) == 1 and data["mix"] == [0.7, 0.3]
    assert data["rung_price"] == [1.0, 15.0]  # blended: (3 * input + output) / 4 per Mtok
    assert data["provenance"]["ladder_order"].startswith("by price")
    assert data["provenance"]["features"] == "prompt text only: no category-dependent feature"
    assert len(data["training"]["sha256"]) == 64 and data["training"]["files"] == ["syn.jsonl"]
    assert "created" in data["provenance"]
    back = load_artifact(p)
    text = "derive the optimal control law number 5"
    # W is held as float32 values in memory too: a save/load round trip predicts exactly the same
    assert np.array_equal(back.predict_one(text, "hard"), artifact.predict_one(text, "hard"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not a tierwise"):
        load_artifact(bad)


def test_choose_rung_tolerance() -> None:
    pred = np.array([0.70, 0.80, 0.82])
    assert choose_rung(pred, 0.0) == 2
    assert choose_rung(pred, 0.05) == 1
    assert choose_rung(pred, 0.15) == 0


def test_router_decisions_map_rungs_to_tiers(artifact: Artifact, tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    artifact.save(p)
    router = build_router("learned", settings(), artifact=str(p), thresholds=[0.5])
    hard = router.decide(RouteRequest.from_prompt("prove the riemann lemma rigorously number 7", task="hard"))
    easy = router.decide(RouteRequest.from_prompt("capital of france number 7", task="easy"))
    assert (hard.tier, hard.model, hard.router) == ("balanced", "big", "learned")
    assert (easy.tier, easy.model) == ("fast", "small")
    assert set(hard.scores) == {"small", "big"} and hard.scores["big"] > hard.scores["small"]
    # rungs are named after the Claude model serving their tier, whatever models the artifact learned from
    assert any("predicted Haiku score" in r and "Sonnet score" in r for r in hard.reasons)
    assert hard.reasons[-1] == "Haiku score below 0.50: harder, up to Sonnet"
    assert easy.reasons[-1] == "Haiku score at or above 0.50: Haiku"
    assert 0.5 <= hard.confidence <= 0.95
    # the knob: a threshold nobody falls below always takes the cheapest rung
    cheap = build_router("learned", settings(), artifact=str(p), thresholds=[0.0])
    assert cheap.decide(RouteRequest.from_prompt("prove the riemann lemma", task="hard")).model == "small"
    # explicit rung -> tier mapping
    mapped = build_router("learned", settings(), artifact=str(p), thresholds=[0.5], rungs={"0": "balanced", "1": "deep"})
    assert mapped.decide(RouteRequest.from_prompt("prove the riemann lemma rigorously", task="hard")).tier == "deep"
    with pytest.raises(ConfigError, match="unknown tier"):
        build_router("learned", settings(), artifact=str(p), rungs=["fast", "nope"])
    with pytest.raises(ConfigError, match="needs 1 threshold"):
        build_router("learned", settings(), artifact=str(p), thresholds=[0.5, 0.2])
    with pytest.raises(ConfigError, match="unknown rule"):
        build_router("learned", settings(), artifact=str(p), rule="magic")
    # escalation(): the catalog tier index the rule alone picks (no seed floors), for strategies that
    # start from their own base tier and only move up
    order = settings().catalog.tier_order
    assert router.escalation(RouteRequest.from_prompt("prove the riemann lemma rigorously number 7")) == order.index("balanced")
    assert router.escalation(RouteRequest.from_prompt("capital of france number 7")) == order.index("fast")
    assert router.escalation(RouteRequest.from_prompt("is this contract clause legal? capital of france")) == 0


def test_seed_floors_on_top_of_the_prediction(artifact: Artifact, tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    artifact.save(p)
    router = build_router("learned", settings(), artifact=str(p), thresholds=[0.0])  # would always pick the cheap rung
    stakes = router.decide(RouteRequest.from_prompt("is this contract clause legal?"))
    assert stakes.tier == "balanced" and stakes.model is None
    assert stakes.reasons[-1] == "high-stakes domain: at least balanced (the seeds' rule)"
    deep = router.decide(RouteRequest.from_prompt(
        "Compare document 1 and document 2 step by step, analyze where the contract terms contradict each other, "
        "and assess the security and payment risks."))
    assert deep.tier == "deep" and deep.reasons[-1].endswith("raised to deep")
    plain = build_router("learned", settings(), artifact=str(p), thresholds=[0.0], escalate=False)
    assert plain.decide(RouteRequest.from_prompt("is this contract clause legal?")).tier == "fast"


def test_shipped_default_artifact_loads_and_decides() -> None:
    art = load_artifact()
    assert len(art.ladder) >= 2 and art.training["records"] > 1000
    assert "alpacaeval" not in art.training["datasets"]
    assert "sources" in art.provenance
    d = build_router("learned", settings()).decide(RouteRequest.from_prompt("What is 2+2?"))
    assert d.tier in ("fast", "balanced") and d.model in art.ladder and d.router == "learned"


# ----------------------------------------------------------------------------- the fast decide path
def varied_prompts() -> list[tuple[str, str | None]]:
    """~50 prompts of every shape: empty, one word, repeats, punctuation, unicode, a lone surrogate,
    code, math, multiple choice, negations, long (beyond max_chars), with and without a category."""
    base = [
        "", "hi", "Hello world, hello!", "the the the the the the", "?!?!...", "What is 2+2?",
        "Janet has 3 apples and buys 1,250.5 more at $0.40 each. How many apples does she have in total?",
        "Which of the following is NOT a prime?\nA. 2\nB. 3\nC. 9\nD. 11",
        "A) yes B) no", "Which statement is false, except in the least likely case? Never mind, it isn't.",
        "def f(x):\n    return x ** 2  # square\n\nWrite a function that reverses a list.",
        "Compare and contrast the pros and cons of microservices; first plan, then implement step by step.",
        "Classify the sentiment of this review as positive or negative: 'I loved it.'",
        "Résumé naïve café — 東京の天気は？ Ünïcödé ¹²³ ٣٤٥ digits", "Ελληνικά κείμενα και ερωτήσεις;",
        "emoji 🙂🙂 and tabs\tand\u00a0nbsp and\u3000ideographic space", "lone surrogate \ud800 in text",
        "If the contract is breached, assuming GDPR applies, what liability does the payment processor have?",
        "x" * 5000, ("word " * 1200).strip(), "Proof: " + "let n be an integer. " * 300,
        "12345678901234567890", "don't won't it's o'clock rock'n'roll",
    ]
    rng = random.Random(7)
    vocab = ("the of and to integral probability derive contract france code sql 42 3.5 , . ? ( ) "
             "not except which following true false total percent how many").split()
    while len(base) < 46:
        base.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 200))))
    cats = [None, "easy", "hard", "Professional_Law", "élémentaire"]
    return [(t, cats[i % len(cats)]) for i, t in enumerate(base)] + [(t, "hard") for t in base[:6]]


def _rich_artifact() -> Artifact:
    """Every namespace switched on (bigrams, char n-grams, category x signals), so every branch of the
    fast path is compared with the numpy path."""
    spec = FeatureSpec(bits=12, weights={"word": 1.0, "bigram": 0.7, "char": 0.5, "category": 2.0, "dense": 1.0,
                                         "catdense": 0.8, "catword": 0.6})
    return train(synthetic(responses=True), "small,big", PRICES, lam=0.3, spec=spec)


@pytest.mark.parametrize("which", ["shipped", "synthetic", "rich"])
def test_fast_path_equals_numpy_path(which: str, artifact: Artifact) -> None:
    art = {"shipped": load_artifact, "synthetic": lambda: artifact, "rich": _rich_artifact}[which]()
    assert art.fast is not None and art.spec.hash == 2
    prompts = varied_prompts()
    assert len(prompts) >= 50
    worst = 0.0
    for text, cat in prompts:
        signals = RouteRequest.from_prompt(text).signals
        fast, _, _ = art.fast.predict(text, cat, signals)
        ref = art.predict_one_reference(text, cat, signals)
        worst = max(worst, float(np.max(np.abs(np.array(fast) - ref))))
    assert worst <= 1e-9, worst
    # the batch (training / replay) path agrees too
    P = art.predict([t for t, _ in prompts], [c for _, c in prompts])
    ref = np.array([art.predict_one_reference(t, c) for t, c in prompts])
    assert np.max(np.abs(P - ref)) <= 1e-9
    if which != "shipped":  # the synthetic prompts are learned, so the predictions are not all clipped
        assert len({round(float(x), 6) for x in ref[:, 0]}) > 10


def test_decide_uses_fast_path_and_cached_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    router = build_router("learned", settings())
    art = router.artifact
    req = RouteRequest.from_prompt("Which of the following is NOT a prime?\nA. 2\nB. 3\nC. 9\nD. 11", task="hard")
    import tierwise.routing.signals as sig

    calls = []
    real = sig.extract
    monkeypatch.setattr(sig, "extract", lambda r: calls.append(1) or real(r))
    monkeypatch.setattr(type(art), "predict_one_reference", lambda *a, **k: pytest.fail("numpy path on the hot path"))
    d = router.decide(req)
    router.decide(req)
    assert len(calls) == 1  # signals computed once, cached on the request
    assert "multiple-choice question" in d.reasons
    monkeypatch.undo()
    expect = load_artifact().predict_one_reference(req.last_user_text, "hard")
    assert d.scores == {m: round(float(p), 4) for m, p in zip(art.ladder, expect)}


def test_version_1_artifact_still_loads(tmp_path: Path) -> None:
    """A version-1 artifact (no "hash" key; 64-bit mixed hashes) loads and predicts through numpy."""
    spec = FeatureSpec(bits=12, hash=1, weights={"word": 1.0, "bigram": 0.7, "char": 1.0, "category": 2.0, "dense": 1.0})
    art = train(synthetic(), "small,big", PRICES, lam=1.0, spec=spec, verifiers=False)
    data = art.to_json()
    data["version"] = 1
    del data["features"]["hash"]
    for key in ("rule", "thresholds", "mix", "rung_price"):  # written since version 3
        del data[key]
    p = tmp_path / "v1.json"
    p.write_text(json.dumps(data))
    old = load_artifact(p)
    assert old.version == 1 and old.spec.hash == 1 and old.fast is None
    text = "prove the riemann lemma rigorously number 3"
    assert np.allclose(old.predict_one(text, "hard"), art.predict_one(text, "hard"))
    assert old.predict_one(text, "hard")[0] < 0.3 < 0.7 < old.predict_one("say hello number 3", "easy")[0]
    d = build_router("learned", settings(), artifact=str(p)).decide(RouteRequest.from_prompt(text, task="hard"))
    assert d.model == "big"
    data["version"] = ARTIFACT_VERSION + 1
    p.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="newer"):
        load_artifact(p)
