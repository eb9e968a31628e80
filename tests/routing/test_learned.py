"""The learned router: training on a synthetic ladder, the artifact, the knob, tiers and reasons."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tierwise.config import load_settings
from tierwise.errors import ConfigError
from tierwise.outcomes import parse_record
from tierwise.routing.base import RouteRequest, build_router
from tierwise.routing.features import Featurizer, FeatureSpec, answer_features, ANSWER_NAMES
from tierwise.routing.learned import (Artifact, choose_rung, load_artifact, logistic_fit, parse_ladder, ridge_cg,
                                      train)
from tierwise.routing.features import SparseRows

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
    fz = Featurizer(FeatureSpec(bits=12))
    a = fz.transform_one("Hello world, hello!", "algebra")
    b = Featurizer(FeatureSpec(bits=12)).transform_one("Hello world, hello!", "algebra")
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    assert a[0].max() < fz.n_cols and np.all(np.diff(a[0]) > 0)
    c = fz.transform_one("Hello world, hello!", None)
    da, dc = dict(zip(a[0].tolist(), a[1])), dict(zip(c[0].tolist(), c[1]))
    assert len({k for k in da if da[k] != dc.get(k)}) == 1  # the category touches exactly one hashed column


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
    assert data["format"] == "tierwise-learned-router" and data["version"] == 1
    assert data["ladder"] == ["small", "big"] and set(data["prices"]) == {"small", "big"}
    assert len(data["training"]["sha256"]) == 64 and data["training"]["files"] == ["syn.jsonl"]
    assert "created" in data["provenance"]
    back = load_artifact(p)
    text = "derive the optimal control law number 5"
    assert np.allclose(back.predict_one(text, "hard"), artifact.predict_one(text, "hard"), atol=1e-5)
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
    router = build_router("learned", settings(), artifact=str(p), tolerance=0.1)
    hard = router.decide(RouteRequest.from_prompt("prove the riemann lemma rigorously number 7", task="hard"))
    easy = router.decide(RouteRequest.from_prompt("capital of france number 7", task="easy"))
    assert (hard.tier, hard.model, hard.router) == ("balanced", "big", "learned")
    assert (easy.tier, easy.model) == ("fast", "small")
    assert set(hard.scores) == {"small", "big"} and hard.scores["big"] > hard.scores["small"]
    assert any("predicted small score" in r and "big score" in r for r in hard.reasons)
    assert 0.5 <= hard.confidence <= 0.95
    # the knob: a huge tolerance always takes the cheapest rung
    cheap = build_router("learned", settings(), artifact=str(p), tolerance=1.0)
    assert cheap.decide(RouteRequest.from_prompt("prove the riemann lemma", task="hard")).model == "small"
    # explicit rung -> tier mapping
    mapped = build_router("learned", settings(), artifact=str(p), tolerance=0.1, rungs={"0": "balanced", "1": "deep"})
    assert mapped.decide(RouteRequest.from_prompt("prove the riemann lemma rigorously", task="hard")).tier == "deep"
    with pytest.raises(ConfigError, match="unknown tier"):
        build_router("learned", settings(), artifact=str(p), rungs=["fast", "nope"])


def test_shipped_default_artifact_loads_and_decides() -> None:
    art = load_artifact()
    assert len(art.ladder) >= 2 and art.training["records"] > 1000
    assert "alpacaeval" not in art.training["datasets"]
    assert "sources" in art.provenance
    d = build_router("learned", settings()).decide(RouteRequest.from_prompt("What is 2+2?"))
    assert d.tier in ("fast", "balanced") and d.model in art.ladder and d.router == "learned"
