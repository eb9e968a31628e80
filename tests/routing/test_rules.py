"""The learned router's decision rules, the price order of a ladder, and one feature set for training
and serving (decide never reads a field a live request lacks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tierwise.config import load_settings
from tierwise.errors import ConfigError
from tierwise.outcomes import parse_record
from tierwise.routing.base import RouteRequest, build_router
from tierwise.routing.features import CATEGORY_WEIGHTS, FeatureSpec
from tierwise.routing.learned import (
    Artifact,
    blended_price,
    difficulty_rung,
    difficulty_rungs,
    load_artifact,
    mix_for,
    thresholds_for_mix,
)
from tierwise.routing.training import train

PRICES = {"small": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
          "big": {"input_per_mtok": 10.0, "output_per_mtok": 30.0},
          "huge": {"input_per_mtok": 20.0, "output_per_mtok": 80.0},
          "cheap_alt": {"input_per_mtok": 0.5, "output_per_mtok": 0.5},
          "pricey_alt": {"input_per_mtok": 50.0, "output_per_mtok": 50.0}}
EASY = ["capital of france", "color of the sky", "spell cat", "say hello", "name a fruit"]
HARD = ["prove the riemann lemma rigorously", "derive the optimal tax integral", "quantum field renormalization proof"]


def settings():
    return load_settings(None, environ={})


def records(n: int = 120, hard_big: float = 0.2) -> list:
    """Easy prompts: small 0.9, big 1.0. Hard prompts: both rungs low (small 0.0, big ``hard_big``):
    a small predicted gap, which the old gap rule sent to the cheap rung."""
    out = []
    for i in range(n):
        hard = i % 2 == 1
        text = f"{(HARD if hard else EASY)[i % 3]} number {i}"
        out.append(parse_record({"id": f"r-{i}", "dataset": "syn", "category": "algebra" if hard else "poetry",
                                 "prompt": text, "outcomes": {
                                     "small": {"score": 0.0 if hard else 0.9, "input_tokens": 100, "output_tokens": 50},
                                     "big": {"score": hard_big if hard else 1.0, "input_tokens": 100, "output_tokens": 900}}}))
    return out


def test_thresholds_for_mix_and_the_rule() -> None:
    scores = np.linspace(1.0, 0.01, 100)
    thr = thresholds_for_mix(scores, [0.7, 0.25, 0.05])
    assert len(thr) == 2 and thr[0] > thr[1]
    steps = difficulty_rungs(scores, thr)
    assert np.bincount(steps, minlength=3).tolist() == [70, 25, 5]
    assert [difficulty_rung(float(x), thr) for x in scores] == steps.tolist()
    # lower predicted cheap-rung score: never a cheaper rung
    assert np.all(np.diff(steps) >= 0)
    assert difficulty_rung(0.99, thr) == 0 and difficulty_rung(0.0, thr) == 2
    # all on the cheapest rung / nobody on it
    assert difficulty_rungs(scores, thresholds_for_mix(scores, [1.0, 0.0])).tolist() == [0] * 100
    assert difficulty_rungs(scores, thresholds_for_mix(scores, [0.0, 1.0])).tolist() == [1] * 100
    # ties are not split: the tied prompts escalate together
    tied = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    assert difficulty_rungs(tied, thresholds_for_mix(tied, [0.4, 0.6])).tolist() == [0, 1, 1, 1, 1]
    assert mix_for(2) == pytest.approx([0.7, 0.3]) and mix_for(3) == pytest.approx([0.7, 0.25, 0.05])
    assert blended_price({"input_per_mtok": 1, "output_per_mtok": 5}) == 2.0 and blended_price(None) is None


def test_a_hard_prompt_escalates_even_when_every_rung_is_predicted_low(tmp_path: Path) -> None:
    art = train(records(), "small,big", PRICES, lam=0.5, verifiers=False)
    text = "prove the riemann lemma rigorously number 999"
    pred = art.predict_one(text)
    assert pred[0] < 0.2 and pred[1] < 0.4 and pred[1] - pred[0] < 0.21  # low on both rungs, small gap
    d = build_router("learned", settings(), artifact=art, thresholds=[0.5]).decide(RouteRequest.from_prompt(text))
    assert d.model == "big" and d.tier == "balanced"
    # the old gap rule (still what a version-2 artifact does) sent it to the cheap rung: the defect
    old = build_router("learned", settings(), artifact=art, rule="gap", tolerance=0.21)
    assert old.decide(RouteRequest.from_prompt(text)).model == "small"
    # the artifact's own thresholds put the training prompts on the seeds' mix folded to 2 rungs (70/30)
    steps = difficulty_rungs(art.predict([r.prompt for r in records()])[:, art.cheap], art.thresholds)
    assert np.bincount(steps, minlength=2) / 120 == pytest.approx([0.7, 0.3], abs=0.01)


def test_ladder_is_put_in_price_order_and_misordered_stand_ins_are_skipped() -> None:
    art = train(records(), "big,small", PRICES, lam=0.5, verifiers=False)
    assert art.ladder == ["small", "big"] and art.cheap == 0 and art.rung_price == [1.0, 15.0]
    assert art.provenance["ladder_order"].endswith("given as big -> small")
    # mean training cost is NOT the order: make the strong rung's answers so short it is cheaper on average
    recs = [parse_record({**json.loads(json.dumps(_raw(r))), "outcomes": {
        "small": {"score": 1.0, "input_tokens": 100, "output_tokens": 5000},
        "huge": {"score": 1.0, "input_tokens": 10, "output_tokens": 1}}}) for r in records(20)]
    art = train(recs, "small,huge", PRICES, verifiers=False)
    assert art.rung_cost[1] < art.rung_cost[0] and art.ladder == ["small", "huge"] and art.order == [0, 1]
    # a stand-in pair priced against the ladder ("strong" stand-in cheaper than the "weak" one) is skipped
    alt = [parse_record({**_raw(r), "id": "alt-" + r.id, "outcomes": {
        "pricey_alt": {"score": 0.0, "input_tokens": 100, "output_tokens": 50},
        "cheap_alt": {"score": 1.0, "input_tokens": 100, "output_tokens": 50}}}) for r in records(30)]
    art = train(records(40) + alt, "small|pricey_alt,big|cheap_alt", PRICES, verifiers=False)
    assert art.training["records"] == 40 and art.training["skipped_price_order"] == 30


def _raw(r) -> dict:
    return {"id": r.id, "dataset": r.dataset, "category": r.category, "prompt": r.prompt}


@pytest.mark.parametrize("which", ["default", "shipped"])
def test_decide_never_reads_a_field_a_live_request_lacks(which: str) -> None:
    """A record scored with and without its category (an MMLU subject, which no live request carries)
    gives identical predictions and decisions: no feature depends on it."""
    art = train(records(), "small,big", PRICES, lam=0.5, verifiers=False) if which == "default" else load_artifact()
    assert not art.spec.uses_category
    router = build_router("learned", settings(), artifact=art)
    for text in ("prove the riemann lemma rigorously number 3", "capital of france number 4",
                 "Which of the following is NOT a prime?\nA. 2\nB. 3\nC. 9\nD. 11"):
        for cat in ("algebra", "professional_law", "poetry"):
            assert np.array_equal(art.predict_one(text, cat), art.predict_one(text, None))
            assert np.array_equal(art.predict_one_reference(text, cat), art.predict_one_reference(text, None))
            assert np.array_equal(art.predict([text], [cat]), art.predict([text]))
            with_task = router.decide(RouteRequest.from_prompt(text, task=cat))
            without = router.decide(RouteRequest.from_prompt(text))
            assert (with_task.scores, with_task.tier, with_task.model) == (without.scores, without.tier, without.model)


def test_category_features_only_on_request() -> None:
    """``use_category=True`` (``tierwise train --category``) is for a category live requests carry
    as their task type; then decide passes the task type, and it changes the prediction."""
    spec = FeatureSpec(weights={**FeatureSpec().weights, **CATEGORY_WEIGHTS})
    with_cat = train(records(), "small,big", PRICES, lam=0.5, spec=spec, use_category=True, verifiers=False)
    assert with_cat.spec.uses_category
    text = "spell cat number 5"
    assert not np.array_equal(with_cat.predict_one(text, "algebra"), with_cat.predict_one(text, None))
    # the same spec without use_category: every category-dependent namespace is off
    plain = train(records(), "small,big", PRICES, lam=0.5, spec=spec, verifiers=False)
    assert not plain.spec.uses_category and all(plain.spec.weights[k] == 0 for k in CATEGORY_WEIGHTS)


def test_three_rungs_and_an_old_gap_rule_artifact(tmp_path: Path) -> None:
    recs = []
    for r in records(90):  # the cheap rung's score is graded: easy 1.0, medium 0.5, hard 0.0
        level = 2 if "riemann" in r.prompt else 1 if any(h in r.prompt for h in HARD) else 0
        scores = ((1.0, 1.0, 1.0), (0.5, 1.0, 1.0), (0.0, 0.3, 1.0))[level]
        o = {m: {"score": v, "input_tokens": 100, "output_tokens": 100} for m, v in zip(("small", "big", "huge"), scores)}
        recs.append(parse_record({**_raw(r), "outcomes": o}))
    art = train(recs, "small,big,huge", PRICES, lam=0.5, verifiers=False)
    assert len(art.thresholds) == 2 and art.thresholds[0] >= art.thresholds[1] and art.mix == [0.7, 0.25, 0.05]
    router = build_router("learned", settings(), artifact=art, rungs=["fast", "balanced", "deep"], escalate=False,
                          thresholds=[0.75, 0.25])
    hard, medium, easy = (RouteRequest.from_prompt(t) for t in (
        "prove the riemann lemma rigorously number 1", "derive the optimal tax integral number 2", "say hello number 2"))
    assert [router.decide(x).tier for x in (hard, medium, easy)] == ["deep", "balanced", "fast"]
    assert [router.escalation(x) for x in (hard, medium, easy)] == [2, 1, 0]
    # an artifact written before version 3 (no rule, no thresholds) loads and keeps its gap rule...
    data = art.to_json()
    data["version"] = 2
    for key in ("rule", "thresholds", "mix", "rung_price"):
        del data[key]
    p = tmp_path / "v2.json"
    p.write_text(json.dumps(data))
    old = load_artifact(p)
    assert old.rule == "gap" and old.thresholds == [] and old.rung_price == [1.0, 15.0, 35.0]
    gap = build_router("learned", settings(), artifact=str(p), tolerance=1.0, escalate=False)
    assert gap.rule == "gap" and gap.decide(RouteRequest.from_prompt("prove the riemann lemma")).model == "small"
    # ...until thresholds are configured (what `tierwise calibrate` writes): then the difficulty rule
    moved = build_router("learned", settings(), artifact=str(p), thresholds=[0.5, 0.2], rungs=["fast", "balanced", "deep"])
    assert moved.rule == "difficulty"
    with pytest.raises(ConfigError, match="needs 2 threshold"):
        build_router("learned", settings(), artifact=str(p), rule="difficulty")
    with pytest.raises(ConfigError, match="non-increasing"):
        build_router("learned", settings(), artifact=str(p), thresholds=[0.2, 0.5])
    bad = dict(art.to_json(), thresholds=[0.5])
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="needs 2 threshold"):
        load_artifact(p)


def test_shipped_artifact_is_trained_as_served() -> None:
    art: Artifact = load_artifact()
    assert art.version == 3 and art.rule == "difficulty" and len(art.thresholds) == len(art.ladder) - 1
    assert not art.spec.uses_category and "no category-dependent feature" in art.provenance["features"]
    assert art.provenance["ladder_order"].startswith("by price")
    assert art.rung_price == sorted(art.rung_price) and art.order == list(range(len(art.ladder)))
