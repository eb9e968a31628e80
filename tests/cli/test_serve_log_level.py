"""``server.log_level`` reaches logging and uvicorn; ``--log-level`` wins over it."""

from __future__ import annotations

import gc
import logging

import pytest


@pytest.fixture
def captured(monkeypatch):
    import uvicorn

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(uvicorn=kw["log_level"]))
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.update(logging=kw["level"]))
    monkeypatch.setattr(gc, "freeze", lambda: None)
    monkeypatch.setattr(gc, "set_threshold", lambda *a: None)
    return seen


def test_server_log_level_from_the_config(cli, tmp_path, captured):
    (tmp_path / "tierwise.toml").write_text('[server]\nlog_level = "warning"\n[ledger]\nurl = "sqlite://"\n')
    r = cli("serve", "--offline")
    assert r.exit_code == 0, r.output
    assert captured == {"uvicorn": "warning", "logging": "WARNING"}


def test_the_flag_wins(cli, tmp_path, captured):
    (tmp_path / "tierwise.toml").write_text('[server]\nlog_level = "warning"\n[ledger]\nurl = "sqlite://"\n')
    r = cli("serve", "--offline", "--log-level", "debug")
    assert r.exit_code == 0, r.output
    assert captured == {"uvicorn": "debug", "logging": "DEBUG"}


def test_a_bad_level_is_a_config_error(cli, tmp_path):
    (tmp_path / "tierwise.toml").write_text('[server]\nlog_level = "loud"\n')
    r = cli("serve", "--offline")
    assert r.exit_code != 0 and "server.log_level" in (r.output + str(r.exception))
