"""Dispatcher details that the proxy's hot path relies on."""

from __future__ import annotations

import pytest

from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher
from tierwise.routing import signals


def test_strategies_that_do_not_read_signals_never_pay_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(request):  # type: ignore[no-untyped-def]
        raise AssertionError("signals extracted")

    d = Dispatcher(load_settings(None, environ={}))
    monkeypatch.setattr(signals, "extract", boom)
    body = {"model": "tierwise/classify_intent", "max_tokens": 100, "messages": [{"role": "user", "content": "label: hi"}]}
    plan = d.plan(body)
    assert plan.routed and plan.task == "classify_intent" and plan.decision.router == "registry"
