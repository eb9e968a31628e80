"""The cascade verifier's features (tierwise.cascade.training) and verifiers fitted on fewer of them."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.cascade.training import (
    ANSWER_NAMES,
    CHECK_NAMES,
    VERIFIER_NAMES,
    check_features,
    fit_verifier,
    verifier_features,
)
from tierwise.errors import ConfigError
from tierwise.outcomes import parse_record
from tierwise.routing.features import DENSE_NAMES
from tierwise.routing.learned import Verifier


def test_written_out_arithmetic_is_checked() -> None:
    right = dict(zip(CHECK_NAMES, check_features("There are 20 - 12 - 4 = 4 cars, so 4/20 = 0.2.\n#### 20")))
    wrong = dict(zip(CHECK_NAMES, check_features("There are 20 - 12 - 4 = 5 cars.\n#### 5")))
    assert right["plain_calc_count"] > 0 and right["plain_calc_errors"] == 0 and right["plain_calc_error_any"] == 0
    assert wrong["plain_calc_error_any"] == 1 and wrong["plain_calc_errors"] > 0
    # GSM8K's <<a*b=c>> annotations are answer_features' business, not counted twice
    annotated = dict(zip(CHECK_NAMES, check_features("He ran <<3*60=170>>170 meters\n#### 170")))
    assert annotated["plain_calc_error_any"] == 0
    rounded = dict(zip(CHECK_NAMES, check_features("200 / 3 ≈ 66.67, rounded up 67\n#### -3")))
    assert rounded["approximation"] > 0 and rounded["negative_final"] == 1
    assert check_features(None).tolist() == [0.0] * len(CHECK_NAMES)


def test_verifier_features_order_and_prefix() -> None:
    x = verifier_features("2 + 2 = 4\n#### 4", "What is 2 + 2?")
    assert x.shape == (len(VERIFIER_NAMES),) and VERIFIER_NAMES == ANSWER_NAMES + DENSE_NAMES + CHECK_NAMES
    n_old = len(ANSWER_NAMES) + len(DENSE_NAMES)
    assert np.array_equal(verifier_features("2 + 2 = 4\n#### 4", "What is 2 + 2?", n_old), x[:n_old])


def test_a_verifier_fitted_before_the_checks_still_reads_its_features() -> None:
    n_old = len(ANSWER_NAMES) + len(DENSE_NAMES)
    rng = np.random.default_rng(0)
    old = {"rung": 0, "model": "small", "names": list(VERIFIER_NAMES[:n_old]), "w": rng.normal(size=n_old).tolist(),
           "b": 0.1}
    v = Verifier.from_json(old)
    a, p = "20 - 12 - 4 = 5\n#### 5", "How many cars are semi-automatic?"
    z = float(verifier_features(a, p)[:n_old] @ np.array(old["w"]) + 0.1)
    assert v.prob(a, p) == pytest.approx(1 / (1 + np.exp(-z)))
    assert v.to_json()["names"] == old["names"]
    with pytest.raises(ConfigError):
        Verifier.from_json({**old, "names": list(reversed(old["names"]))})


def test_fit_verifier_uses_every_feature() -> None:
    recs = []
    for i in range(40):
        good = i % 2 == 0
        answer = f"{i} + 1 = {i + 1 if good else i + 3}\n#### {i + 1 if good else i + 3}"
        recs.append(parse_record({"id": f"r{i}", "prompt": f"What is {i} + 1?", "outcomes": {
            "small": {"score": 1.0 if good else 0.0, "input_tokens": 5, "output_tokens": 5, "response": answer},
            "big": {"score": 1.0, "input_tokens": 5, "output_tokens": 5, "response": f"#### {i + 1}"}}}))
    v = fit_verifier(recs, [["small"], ["big"]])
    assert v is not None and len(v.w) == len(VERIFIER_NAMES)
    assert v.prob("3 + 1 = 4\n#### 4", "What is 3 + 1?") > v.prob("3 + 1 = 6\n#### 6", "What is 3 + 1?")
