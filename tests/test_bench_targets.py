"""bench/proxy_overhead.py judges tierwise against the bare pass-through of the same run: the ratios and
the MET / MISSED of the issue-12 targets follow from the figures (made up here: no timing in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "proxy_overhead.py"


def _bench():
    spec = importlib.util.spec_from_file_location("proxy_overhead", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def figures(**over):
    r = {"kind": "plain", "rps ratio non-stream": 0.7, "rps non-stream": 700, "rps non-stream bare": 1000,
         "rps ratio stream": 0.5, "rps stream": 500, "rps stream bare": 1000, "added non-stream proxy": 0.5,
         "added non-stream bare": 0.4, "ttfb proxy": 0.9, "ttfb bare": 0.4, "ledger_ok": True, "priced": True}
    r.update(over)
    return r


def test_targets_follow_the_ratios_to_the_bare_pass_through():
    rows = _bench().targets(figures(), 64, 2 / 3, 1.5)
    met = [m for _, m in rows]
    assert met == [True, False, True, False, True]  # 0.70 >= 2/3; 0.50 < 2/3; 1.25x <= 1.5x; 2.25x > 1.5x; ledger
    assert "0.70 x" in rows[0][0] and "1.25 x" in rows[2][0] and "2.25 x" in rows[3][0]


def test_before_figures_are_shown_beside_not_judged():
    rows = _bench().targets(figures(**{"rps ratio stream before": 0.3, "ttfb before": 1.0}), 64, 2 / 3, 1.5)
    assert "(--before: 0.30 x)" in rows[1][0] and "(--before: +1.000 ms = 2.50 x)" in rows[3][0]
    assert [m for _, m in rows] == [True, False, True, False, True]


def test_a_missing_ledger_row_misses():
    rows = _bench().targets(figures(ledger_ok=False), 64, 2 / 3, 1.5)
    assert rows[-1][1] is False
