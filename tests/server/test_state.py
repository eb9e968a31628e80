"""ProxyState is built whole in its constructor; the live registry is swapped, never edited in place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import tierwise
from tierwise.config import load_settings
from tierwise.server import create_app

SRC = Path(tierwise.__file__).parent
_ASSIGN = re.compile(r"\bstate\.([a-z_]\w*)\s*=(?!=)")


def test_no_module_adds_an_attribute_to_the_proxy_state():
    found = [f"{p.relative_to(SRC)}:{i}: {line.strip()}" for p in sorted(SRC.rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if _ASSIGN.search(line)]
    assert found == []


def test_the_state_has_every_attribute_before_the_first_request(tmp_path):
    s = load_settings(None, overrides={"ledger": {"url": f"sqlite:///{tmp_path}/l.db"}, "monitor": {"interval": 0}},
                      environ={})
    app = create_app(s)
    before = set(vars(app.state))
    assert {"guard", "metrics", "evidence", "shadow"} <= before
    with TestClient(app) as c:
        r = c.post("/v1/messages", json={"model": "auto", "max_tokens": 20,
                                         "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        assert c.get("/healthz").status_code == 200
    assert set(vars(app.state)) == before


def test_a_registry_reload_swaps_a_read_only_snapshot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text('[ledger]\nurl = "sqlite:///l.db"\n[monitor]\ninterval = 0\n[registry]\ndraft_email = "balanced"\n')
    s = load_settings(cfg, environ={})
    with pytest.raises(TypeError):
        s.registry["draft_email"] = "fast"  # type: ignore[index]
    app = create_app(s)
    old = s.registry
    cfg.write_text('[ledger]\nurl = "sqlite:///l.db"\n[monitor]\ninterval = 0\n[registry]\ndraft_email = "fast"\n')
    import os

    st = cfg.stat()
    os.utime(cfg, (st.st_atime, st.st_mtime + 5))
    assert app.state.evidence.reload_registry()
    assert s.registry["draft_email"] == "fast" and old["draft_email"] == "balanced"  # the old snapshot is intact
    assert s.registry is not old
    plan = app.state.dispatcher.plan({"model": "tierwise/draft_email", "max_tokens": 10,
                                      "messages": [{"role": "user", "content": "x"}]})
    assert plan.tier == "fast"
    app.state.ledger.close()
