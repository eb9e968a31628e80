"""The outcomes format: reading, validation, costs, hashing, folds and the writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierwise.outcomes import (
    Outcome,
    OutcomeError,
    OutcomeWriter,
    fold_of,
    load_prices,
    models_in,
    outcome_cost,
    read_outcomes,
    records_hash,
    with_ladder,
    write_outcomes,
)

LINE = {"id": "ds-1", "dataset": "ds", "category": "algebra", "prompt": "What is 2+2?",
        "outcomes": {"a": {"score": 1.0, "input_tokens": 10, "output_tokens": 20, "tokens_estimated": True,
                           "response": "#### 4"},
                     "b": {"score": 0.0, "input_tokens": 10, "output_tokens": 5, "tokens_estimated": False}}}


def _write(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_read_valid_file(tmp_path: Path) -> None:
    p = _write(tmp_path / "o.jsonl", [LINE, "", {**LINE, "id": "ds-2", "category": None, "extra": 7}])
    recs = read_outcomes(p)
    assert [r.id for r in recs] == ["ds-1", "ds-2"]
    r = recs[0]
    assert r.category == "algebra" and r.dataset == "ds"
    assert r.outcomes["a"] == Outcome(1.0, 10, 20, True, "#### 4")
    assert r.outcomes["b"].response is None and r.outcomes["b"].tokens_estimated is False
    assert recs[1].category is None and recs[1].extra == {"extra": 7}
    assert models_in(recs) == {"a": 2, "b": 2}


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ({**LINE, "id": ""}, "'id' must be"),
    ({**LINE, "prompt": 3}, "'prompt' must be a string"),
    ({**LINE, "outcomes": {"a": {"score": 1.5}}}, "outside [0, 1]"),
    ({**LINE, "outcomes": {"a": {"input_tokens": 1}}}, "missing 'score'"),
    ({**LINE, "outcomes": {"a": {"score": 1, "input_tokens": -2}}}, "whole number"),
    ({**LINE, "outcomes": {"a": {"score": True}}}, "expected a number"),
    ({**LINE, "outcomes": {}}, "no outcomes"),
])
def test_validation_errors_name_file_and_line(tmp_path: Path, bad, message: str) -> None:
    p = _write(tmp_path / "bad.jsonl", [LINE | {"id": "ok"}, bad])
    with pytest.raises(OutcomeError) as exc:
        read_outcomes(p)
    assert message in str(exc.value) and "bad.jsonl:2" in str(exc.value)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [LINE])
    b = _write(tmp_path / "b.jsonl", [LINE])
    with pytest.raises(OutcomeError, match="duplicate id"):
        read_outcomes([a, b])
    assert len(read_outcomes([a, b], unique=False)) == 2


def test_prompts_only_file(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.jsonl", [{"id": 5, "prompt": "hi", "whatever": 1}])
    (r,) = read_outcomes(p, require_outcomes=False)
    assert r.id == "5" and r.outcomes == {}


def test_cost_from_prices(tmp_path: Path) -> None:
    pp = tmp_path / "prices.json"
    pp.write_text(json.dumps({"a": {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "source": "x"}}))
    prices = load_prices(pp)
    assert prices == {"a": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}
    # 10 * 3 / 1e6 + 20 * 15 / 1e6
    assert outcome_cost(Outcome(1.0, 10, 20), "a", prices) == pytest.approx(330e-6)
    with pytest.raises(OutcomeError, match="no price for model 'b'"):
        outcome_cost(Outcome(1.0, 1, 1), "b", prices)
    with pytest.raises(OutcomeError, match="missing 'output_per_mtok'"):
        load_prices({"a": {"input_per_mtok": 1}})


def test_writer_round_trip_and_hash(tmp_path: Path) -> None:
    src = _write(tmp_path / "o.jsonl", [LINE, {**LINE, "id": "ds-2"}])
    recs = read_outcomes(src)
    out = tmp_path / "copy.jsonl"
    assert write_outcomes(out, recs) == 2
    again = read_outcomes(out)
    assert again == recs
    assert records_hash(again) == records_hash(list(reversed(recs)))
    changed = [recs[0], read_outcomes(_write(tmp_path / "c.jsonl", [{**LINE, "id": "ds-2", "prompt": "x"}]))[0]]
    assert records_hash(changed) != records_hash(recs)
    with OutcomeWriter(tmp_path / "w.jsonl") as w:
        w.add("e-1", "prompt", {"m": Outcome(0.5, 1, 2, False, "ans")}, dataset="mine")
    (r,) = read_outcomes(tmp_path / "w.jsonl")
    assert r.dataset == "mine" and r.outcomes["m"].response == "ans" and r.outcomes["m"].score == 0.5


def test_ladder_filter_and_folds(tmp_path: Path) -> None:
    recs = read_outcomes(_write(tmp_path / "o.jsonl", [LINE, {**LINE, "id": "x", "outcomes": {"a": LINE["outcomes"]["a"]}}]))
    assert [r.id for r in with_ladder(recs, ["a", "b"])] == ["ds-1"]
    folds = [fold_of(f"id-{i}", 5) for i in range(500)]
    assert set(folds) == {0, 1, 2, 3, 4}
    assert all(80 <= folds.count(k) <= 120 for k in range(5))
    assert fold_of("id-1", 5) == fold_of("id-1", 5)
