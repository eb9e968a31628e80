"""A/B tests: stable assignment by key and the experiment's config checked (the arms live in
tierwise.routing.arms; the report is tested in tests/reports/test_ab.py)."""

from __future__ import annotations

import pytest

from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher
from tierwise.errors import ConfigError
from tierwise.routing.arms import build_ab

AB = {"enabled": True, "name": "drafts", "key": "user",
      "arms": {"A": {}, "B": {"registry": {"draft_email": "fast"}}}}


def _settings(tmp_path, ab=AB):
    return load_settings(None, overrides={"ab": ab, "ledger": {"url": f"sqlite:///{tmp_path}/l.db"}}, environ={})


def test_assignment_is_stable_per_user_and_splits_by_weight(tmp_path):
    d = Dispatcher(_settings(tmp_path))
    arms = {}
    for i in range(400):
        body = {"model": "tierwise/draft_email", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"user_id": f"user-{i}"}}
        plan = d.plan(dict(body))
        again = d.plan(dict(body))
        assert plan.arm == again.arm, "a user stays in one arm"
        assert plan.tier == ("fast" if plan.arm == "drafts/B" else "balanced")
        arms[plan.arm] = arms.get(plan.arm, 0) + 1
    assert set(arms) == {"drafts/A", "drafts/B"} and 140 < arms["drafts/A"] < 260
    weighted = Dispatcher(_settings(tmp_path, dict(AB, arms={"A": {"weight": 9}, "B": {"weight": 1, "auto": "fixed"}})))
    n_b = sum(weighted.plan({"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                             "metadata": {"user_id": f"u{i}"}}).arm == "drafts/B" for i in range(400))
    assert 15 < n_b < 70
    # an explicit model is not routed, so it is in no arm
    assert d.plan({"model": "claude-opus-5-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).arm is None


@pytest.mark.parametrize("ab, message", [
    (dict(AB, name=""), "needs a name"),
    (dict(AB, key="ip"), "ab.key"),
    (dict(AB, arms={"A": {}}), "at least two arms"),
    (dict(AB, arms={"A": {}, "B": {"registry": {"x": "tiny"}}}), "unknown tier"),
    (dict(AB, arms={"A": {}, "B": {"weight": 0}}), "weight"),
    (dict(AB, arms={"A": {}, "B": {"auto": "nope"}}), "unknown routing strategy"),
    (dict(AB, arms={"A": {}, "B": {"colour": 1}}), "unknown key"),
    (dict(AB, arms={"A": {}, "B": {"registry": "fast"}}), "registry: expected a table"),
    (dict(AB, arms={"A": {}, "B": {"registry": {"draft_email": {"x": "fast"}}}}), "unknown tier"),
    (dict(AB, arms={"A": {}, "B": {"options": 3}}), "options: expected a table"),
])
def test_bad_experiment_config_is_refused(tmp_path, ab, message):
    with pytest.raises(ConfigError, match=message):
        build_ab(_settings(tmp_path, ab), None)
