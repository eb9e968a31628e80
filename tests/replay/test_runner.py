"""Replay without leakage: nested choice of the ridge strength sees only each training part."""

from __future__ import annotations

import pytest

from tests.routing.test_learned import PRICES, synthetic
from tierwise.replay import runner
from tierwise.replay.runner import LearnedConfig, replay


def test_nested_lambda_choice_never_sees_the_rows_it_is_tested_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[set[str]] = []
    real = runner.inner_cv_apgr

    def spy(m, *args, **kwargs):
        seen.append(set(m.ids))
        return real(m, *args, **kwargs)

    monkeypatch.setattr(runner, "inner_cv_apgr", spy)
    recs = synthetic(n=60)
    train, test = recs[:40], recs[40:]
    result = replay(train, [["small"], ["big"]], PRICES, test_records=test,
                    learned=[LearnedConfig(name="nested", lambdas=(0.3, 3.0), cascade=False)])
    assert len(seen) == 1 and seen[0] == {r.id for r in train}
    # easy/hard is learnable: the nested router matches the oracle
    assert result.rows["nested"]["APGR"] == pytest.approx(result.rows["oracle"]["APGR"], abs=0.02)

    seen.clear()
    replay(recs, [["small"], ["big"]], PRICES, learned=[LearnedConfig(name="nested", lambdas=(0.3, 3.0), cascade=False)],
           folds=4)
    assert len(seen) == 4  # one inner choice per outer fold, each on that fold's training rows only
    all_ids = {r.id for r in recs}
    held_out = [all_ids - s for s in seen]
    assert all(h for h in held_out) and set().union(*held_out) == all_ids


def test_a_single_lambda_skips_the_inner_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "inner_cv_apgr", lambda *a, **k: pytest.fail("no inner search without lambdas"))
    recs = synthetic(n=40)
    result = replay(recs[:30], [["small"], ["big"]], PRICES, test_records=recs[30:],
                    learned=[LearnedConfig(name="plain", lam=1.0, cascade=False)])
    assert "plain" in result.rows
