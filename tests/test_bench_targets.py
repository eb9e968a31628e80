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


def test_floor_figures_are_shown_beside_not_judged():
    """--floor (the same proxy asked for a model id: no routing) is printed beside each target; the
    targets are still judged on ``auto``."""
    rows = _bench().targets(figures(**{"rps ratio non-stream floor": 0.36, "added non-stream floor": 0.44,
                                       "ttfb floor": 0.48}), 64, 2 / 3, 1.5)
    assert "(model id, no routing: 0.36 x)" in rows[0][0]
    assert "(model id, no routing: +0.440 ms = 1.10 x)" in rows[2][0]
    assert "(model id, no routing: +0.480 ms = 1.20 x)" in rows[3][0]
    assert [m for _, m in rows] == [True, False, True, False, True]


def test_cpu_is_read_per_thread_and_the_busiest_one_is_the_loop():
    import os
    import threading

    bench = _bench()
    first = bench.cpu_threads(os.getpid())
    if first is None:
        import pytest

        pytest.skip("no /proc on this system: the benchmark prints CPU n/a")
    assert threading.get_native_id() in first
    sum(i * i for i in range(2_000_000))  # some CPU on this thread
    whole, busiest = bench.cpu_used(first, bench.cpu_threads(os.getpid()))
    assert whole >= busiest > 0  # at 100 ticks a second, 2M squares take a few
    assert bench.cpu_used({1: 5, 2: 7}, {1: 9, 2: 8, 3: 2}) == (7.0, 4.0)  # thread 3 started meanwhile
    nan = bench.cpu_used(None, {1: 1})
    assert nan[0] != nan[0] and nan[1] != nan[1]
