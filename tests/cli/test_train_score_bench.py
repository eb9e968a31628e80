"""``tierwise train``, ``score``, ``bench replay`` and ``calibrate`` end to end on tiny fixtures."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tierwise.cli import _load_commands, app, main

EASY = ["capital of france", "color of the sky", "spell cat", "say hello"]
HARD = ["prove the riemann lemma rigorously", "derive the optimal tax integral", "renormalization proof sketch"]


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    rows = []
    for i in range(80):
        hard = i % 2 == 1
        text = f"{(HARD if hard else EASY)[i % 3]} item {i}"
        rows.append({"id": f"x-{i}", "dataset": "x", "category": None, "prompt": text, "outcomes": {
            "weak": {"score": 0.0 if hard else 1.0, "input_tokens": 100, "output_tokens": 100,
                     "response": "hmm, perhaps 7?" if hard else "<<1+1=2>>2\n#### 2"},
            "strong": {"score": 1.0, "input_tokens": 100, "output_tokens": 100}}})
    out = tmp_path / "outcomes.jsonl"
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"weak": {"input_per_mtok": 1, "output_per_mtok": 1},
                                  "strong": {"input_per_mtok": 10, "output_per_mtok": 10}}))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "p1", "prompt": "prove the riemann lemma rigorously item 99", "x": 1}) + "\n"
                       + json.dumps({"id": "p2", "prompt": "capital of france item 98"}) + "\n")
    return {"outcomes": out, "prices": prices, "prompts": prompts, "dir": tmp_path}


def _train(files: dict[str, Path]) -> Path:
    router = files["dir"] / "router.json"
    code = main(["train", str(files["outcomes"]), "--ladder", "weak,strong", "--prices", str(files["prices"]),
                 "--out", str(router), "--lambda", "1"])
    assert code == 0 and router.exists()
    return router


def test_train_then_score(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    router = _train(files)
    art = json.loads(router.read_text())
    assert art["ladder"] == ["weak", "strong"] and art["training"]["records"] == 80
    capsys.readouterr()
    assert main(["score", "--router", str(router), str(files["prompts"])]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [x["id"] for x in lines] == ["p1", "p2"]
    hard, easy = lines[0]["predicted"], lines[1]["predicted"]
    assert set(hard) == {"weak", "strong"}
    assert hard["weak"] < 0.3 < 0.7 < easy["weak"] and hard["strong"] > 0.7
    out = files["dir"] / "scores.jsonl"
    assert main(["score", "--router", str(router), str(files["prompts"]), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2


def test_train_reports_user_errors(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", str(files["outcomes"]), "--ladder", "weak,missing", "--prices", str(files["prices"]),
                 "--out", str(files["dir"] / "r.json")])
    assert code == 2
    assert "no price for missing" in capsys.readouterr().err


def test_bench_replay_kfold(files: dict[str, Path]) -> None:
    _load_commands()
    router = _train(files)
    plot = files["dir"] / "curve.png"
    js = files["dir"] / "figures.json"
    res = CliRunner().invoke(app, ["bench", "replay", "--router", str(router), str(files["outcomes"]),
                                   "--strategy", "heuristic", "--folds", "4", "--plot", str(plot), "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert "4-fold cross-fitting by id" in res.output
    for name in ("always weak", "always strong", "random mix", "oracle", "learned", "cascade", "heuristic"):
        assert name in res.output
    figures = json.loads(js.read_text())["metrics"]
    # 40 hard prompts only the strong rung solves: the oracle recovers the gap at 50% of the calls
    assert figures["oracle"]["CPT50"] == pytest.approx(0.25) and figures["oracle"]["APGR"] == pytest.approx(0.75)
    assert figures["random mix"]["APGR"] == pytest.approx(0.5)
    # the difficulty is learnable out of fold: the learned router is close to the oracle, far above random
    assert figures["learned"]["APGR"] > 0.7
    assert figures["cascade (learned verifier)"]["APGR$"] > 0.7
    assert figures["cascade (learned verifier)"]["APGR"] is None


def test_bench_replay_separate_test_file(files: dict[str, Path], tmp_path: Path) -> None:
    lines = files["outcomes"].read_text().splitlines()
    tr, te = tmp_path / "tr.jsonl", tmp_path / "te.jsonl"
    tr.write_text("\n".join(lines[:60]) + "\n")
    te.write_text("\n".join(lines[60:]) + "\n")
    js = tmp_path / "f.json"
    code = main(["bench", "replay", str(tr), "--test", str(te), "--ladder", "weak,strong", "--prices",
                 str(files["prices"]), "--no-cascade", "--json", str(js)])
    assert code == 0
    data = json.loads(js.read_text())
    assert data["n_test"] == 20 and data["mode"] == "separate test file"
    assert "cascade (learned verifier)" not in data["metrics"]


def test_calibrate_writes_the_knob(files: dict[str, Path]) -> None:
    router = _train(files)
    cfg = files["dir"] / "tierwise.toml"
    cfg.write_text('[routing]\nauto = "learned"\n\n[routing.options.learned]\ntolerance = 0.9\n\n[server]\nport = 9000\n')
    assert main(["calibrate", str(files["outcomes"]), "--router", str(router), "--mix", "50/50", "--config", str(cfg)]) == 0
    data = tomllib.loads(cfg.read_text())
    assert data["server"]["port"] == 9000 and data["routing"]["auto"] == "learned"
    opts = data["routing"]["options"]["learned"]
    assert opts["artifact"] == str(router.resolve()) and opts["rule"] == "difficulty" and "tolerance" not in opts
    # half the prompts are hard: a 50/50 mix puts the threshold between the hard and the easy prompts'
    # predicted weak-rung scores (hard = low = escalated)
    from tierwise.routing.learned import load_artifact

    art = load_artifact(router)
    P = art.predict([json.loads(x)["prompt"] for x in files["outcomes"].read_text().splitlines()])
    (thr,) = opts["thresholds"]
    assert (P[:, 0] < thr).mean() == pytest.approx(0.5)
    hard = np.array(["prove" in json.loads(x)["prompt"] or "derive" in json.loads(x)["prompt"]
                     or "renormalization" in json.loads(x)["prompt"] for x in files["outcomes"].read_text().splitlines()])
    assert np.array_equal(P[:, 0] < thr, hard)
    # the configured thresholds are what the router then uses
    from tierwise.cli._common import settings_from
    from tierwise.routing.base import RouteRequest, build_router

    settings = settings_from(str(cfg))
    r = build_router("learned", settings, **settings.routing["options"]["learned"])
    assert r.rule == "difficulty" and r.thresholds == [thr]
    assert r.decide(RouteRequest.from_prompt("prove the riemann lemma rigorously item 99")).model == "strong"
    # a tiny budget drives the threshold down to "always the cheap rung"
    assert main(["calibrate", str(files["outcomes"]), "--router", str(router), "--budget", "0.0000001",
                 "--config", str(cfg)]) == 0
    (thr,) = tomllib.loads(cfg.read_text())["routing"]["options"]["learned"]["thresholds"]
    assert (P[:, 0] < thr).mean() == 0.0
    # a generous budget escalates everything the mix allows (all of it here: nothing stays cheap)
    assert main(["calibrate", str(files["outcomes"]), "--router", str(router), "--budget", "1", "--config", str(cfg)]) == 0
    (thr,) = tomllib.loads(cfg.read_text())["routing"]["options"]["learned"]["thresholds"]
    assert (P[:, 0] < thr).mean() == 1.0
    assert main(["calibrate", str(files["outcomes"]), "--router", str(router), "--config", str(cfg)]) == 2
