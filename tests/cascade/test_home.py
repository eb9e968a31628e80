"""Cascades have one home: ``tierwise.cascade`` (the strategy, verifiers, running, offline evaluation)."""

from __future__ import annotations

from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "src" / "tierwise"


@pytest.mark.parametrize("old", ["cascade.py", "routing/cascade.py", "verify.py", "replay/cascade_eval.py"])
def test_no_second_home(old):
    assert not (PKG / old).exists(), f"src/tierwise/{old} moved into src/tierwise/cascade/"


def test_the_strategy_is_registered_from_its_home():
    from tierwise.routing.base import STRATEGIES, strategy_factory

    # an entry is "module:attribute" until first use, then the factory itself (earlier tests may have built one)
    entry = STRATEGIES["cascade"]
    home = entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"
    assert home.startswith("tierwise.cascade.router")
    assert strategy_factory("cascade").__module__ == "tierwise.cascade.router"


def test_the_proxy_runs_cascades_through_the_package():
    server = "".join(p.read_text(encoding="utf-8") for p in (PKG / "server").glob("*.py"))
    assert "run_cascade" not in server and "cascade_through" in server
