"""Golden tests of the routing metrics on tiny hand-computable fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.cascade.evaluate import cascade_curve, cascade_point
from tierwise.outcomes import parse_record
from tierwise.replay import scores as M
from tierwise.replay.curves import build_matrix, metric_row, oracle_curve, random_curve, sweep_by_score


def test_pgr_and_apgr_of_the_random_line_is_one_half() -> None:
    assert M.pgr(0.7, 0.6, 0.8) == pytest.approx(0.5)
    # random mixing: quality linear from weak to strong
    assert M.apgr([0, 0.5, 1], [0.6, 0.7, 0.8], 0.6, 0.8) == pytest.approx(0.5)


def test_apgr_of_a_hand_drawn_curve() -> None:
    # PGR 0 at x=0, 1 at x=0.5, 1 at x=1: area = 0.5*0.5*1 + 0.5*1 = 0.75
    assert M.apgr([0, 0.5, 1], [0.0, 1.0, 1.0], 0.0, 1.0) == pytest.approx(0.75)
    # a single operating point is completed with the always-weak and always-strong ends
    assert M.apgr([0.5], [1.0], 0.0, 1.0) == pytest.approx(0.75)
    # points past x=1 (a cascade paying failed attempts) are clipped at 1 by interpolation
    assert M.apgr([0, 2.0], [0.0, 2.0], 0.0, 1.0) == pytest.approx(0.5)


def test_cpt_interpolates_and_reports_unreachable() -> None:
    x, q = [0, 0.2, 0.6, 1.0], [0.0, 0.4, 0.8, 1.0]
    assert M.cpt(x, q, 0.0, 1.0, 0.5) == pytest.approx(0.3)   # between 0.4@0.2 and 0.8@0.6
    assert M.cpt(x, q, 0.0, 1.0, 0.8) == pytest.approx(0.6)
    assert M.cpt([0, 0.5], [0.0, 0.5], 0.0, 1.0, 0.8) == pytest.approx(0.8)  # completed by (1, strong)
    assert M.cpt([0, 1], [0.0, 0.5], 0.0, 1.0, 0.8) is None  # reaches x=1 without recovering 80%
    assert M.cpt([0, 0.5], [0.0, 0.2], 0.0, 1.0, 1.5) is None


def test_upper_hull_and_aiq() -> None:
    cost = [0, 1, 2, 3]
    q = [0.0, 0.2, 0.9, 0.8]
    hc, hq = M.upper_hull(cost, q)
    # (1, 0.2) lies under the chord (0,0)-(2,0.9); (3, 0.8) is dominated by the cheaper (2, 0.9)
    assert hc.tolist() == [0, 2] and hq.tolist() == [0.0, 0.9]
    # area over [0, 3]: triangle 0.9 on [0,2] + flat 0.9 on [2,3] = 0.9 + 0.9 = 1.8 -> / 3
    assert M.aiq(cost, q, 0, 3) == pytest.approx(0.6)
    assert M.quality_at_cost(cost, q, 1.0) == pytest.approx(0.45)
    assert M.cost_for_quality(cost, q, 0.45) == pytest.approx(1.0)
    assert M.cost_for_quality(cost, q, 0.95) is None


def _rec(i: int, w: float, s: float, resp: str | None = None) -> dict:
    o_w = {"score": w, "input_tokens": 1_000_000, "output_tokens": 0}
    if resp is not None:
        o_w["response"] = resp
    return {"id": f"t-{i}", "prompt": f"p{i}", "outcomes": {"weak": o_w,
            "strong": {"score": s, "input_tokens": 1_000_000, "output_tokens": 0}}}


PRICES = {"weak": {"input_per_mtok": 1.0, "output_per_mtok": 0.0}, "strong": {"input_per_mtok": 10.0, "output_per_mtok": 0.0}}


def _matrix(pairs):
    return build_matrix([parse_record(_rec(i, w, s)) for i, (w, s) in enumerate(pairs)], [["weak"], ["strong"]], PRICES)


def test_oracle_and_router_sweep_on_four_prompts() -> None:
    # gains: +1, 0, 0, -1 ; weak mean 0.5, strong mean 0.5 -> use a case with a gap instead
    m = _matrix([(0, 1), (0, 1), (1, 1), (0, 0)])  # weak 0.25, strong 0.75
    oracle = oracle_curve(m)
    assert oracle.calls.tolist()[:3] == [0.0, 0.25, 0.5]
    assert oracle.quality.tolist()[:3] == [0.25, 0.5, 0.75]
    row = metric_row(oracle, m)
    # PGR: 0 ->0.5 ->1 at x=0,.25,.5 then flat 1 until 1: area = .0625+.1875+.5 = 0.75
    assert row["APGR"] == pytest.approx(0.75)
    assert row["CPT50"] == pytest.approx(0.25)
    assert row["CPT80"] == pytest.approx(0.4)
    # a router that ranks perfectly backwards: worst two first
    bad = sweep_by_score("bad", np.array([0.0, 0.1, 0.9, 1.0]), m)
    r = metric_row(bad, m)
    assert r["APGR"] == pytest.approx(0.25)   # mirror image of the oracle
    # ties form one group: a constant score is exactly the random line
    flat = metric_row(sweep_by_score("flat", np.zeros(4), m), m)
    assert flat["APGR"] == pytest.approx(0.5)
    rnd = metric_row(random_curve(m), m)
    assert rnd["APGR"] == pytest.approx(0.5) and rnd["AIQ"] == pytest.approx(0.5)


def test_cost_axis_and_budget_figures() -> None:
    m = _matrix([(0, 1), (0, 1), (1, 1), (0, 0)])
    # costs: weak $1, strong $10 per prompt
    assert m.C[:, 0].tolist() == [1.0] * 4 and m.C[:, 1].tolist() == [10.0] * 4
    row = metric_row(oracle_curve(m), m)
    assert row["APGR$"] == pytest.approx(0.75)  # same costs on every prompt: cost axis == calls axis
    # oracle points (1,.25) (3.25,.5) (5.5,.75) (7.75,.75) (10,.75); hull (1,.25)-(5.5,.75)
    # quality at half the strong cost ($5): .25 + .5 * 4/4.5, retained share of .75
    assert row["Q@50%$"] == pytest.approx((0.25 + 0.5 * 4 / 4.5) / 0.75)
    # 95% of .75 = .7125 on that segment: 1 + 4.5 * (.4625 / .5), as a share of $10
    assert row["$@95%Q"] == pytest.approx((1 + 4.5 * 0.925) / 10)


def test_cascade_pays_for_failed_attempts() -> None:
    m = _matrix([(0, 1), (1, 1), (1, 1), (0, 0)])
    V = np.array([[0.1], [0.9], [0.8], [0.2]])
    cost, q, calls = cascade_point(V, m, 0.5)     # escalates prompts 0 and 3
    assert cost == pytest.approx((1 * 4 + 10 * 2) / 4)
    assert q == pytest.approx((1 + 1 + 1 + 0) / 4)
    assert calls == pytest.approx(0.5)
    curve = cascade_curve("c", V, m)
    assert curve.cost[0] == pytest.approx(1.0) and curve.quality[0] == pytest.approx(0.5)   # accept all
    assert curve.cost[-1] == pytest.approx(11.0) and curve.quality[-1] == pytest.approx(0.75)  # escalate all
    row = metric_row(curve, m)
    assert row["APGR"] is None  # cascades: cost axis only
    # thresholds sorted: escalate prompt 0 first (gain +1, cost 1+10/4): x = (3.5-1)/9, PGR 1 (gap .25)
    # so PGR .5 is reached halfway: x = 2.5/9/2
    assert row["CPT50$"] == pytest.approx(2.5 / 9 / 2)
