"""No self-loop: the proxy refuses to start when its upstream is itself, and says which setting chose the upstream."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from tierwise.cli import _load_commands, app
from tierwise.config import load_settings
from tierwise.upstream import points_at


@pytest.mark.parametrize("url,host,port,loops", [
    ("http://127.0.0.1:8787", "127.0.0.1", 8787, True),
    ("http://localhost:8787/", "127.0.0.1", 8787, True),
    ("http://[::1]:8787", "127.0.0.1", 8787, True),
    ("http://127.0.0.1:8787", "localhost", 8787, True),
    ("http://0.0.0.0:8787", "127.0.0.1", 8787, True),
    ("http://127.0.0.1:8787", "0.0.0.0", 8787, True),
    ("http://localhost:8787", "::", 8787, True),
    (f"http://{socket.gethostname()}:8787", "0.0.0.0", 8787, True),
    ("http://localhost:80", "127.0.0.1", 80, True),          # default port of the scheme
    ("http://localhost", "127.0.0.1", 80, True),
    ("https://localhost", "127.0.0.1", 443, True),
    ("http://127.0.0.1:8788", "127.0.0.1", 8787, False),     # another port: another server
    ("https://api.anthropic.com", "0.0.0.0", 443, False),     # remote names are never looked up here
    ("http://10.1.2.3:8787", "127.0.0.1", 8787, False),       # listening on loopback only
    ("not a url", "127.0.0.1", 8787, False),
])
def test_points_at(url, host, port, loops):
    assert points_at(url, host, port) is loops


def test_upstream_url_precedence_and_where_it_came_from(tmp_path):
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8787"}
    s = load_settings(None, environ=env)
    assert s.upstream["url"] == "http://127.0.0.1:8787" and s.upstream_from == "$ANTHROPIC_BASE_URL"
    s = load_settings(None, environ={**env, "TIERWISE_UPSTREAM_URL": "https://gw.example"})
    assert s.upstream["url"] == "https://gw.example" and s.upstream_from == "$TIERWISE_UPSTREAM_URL"
    toml = tmp_path / "tierwise.toml"
    toml.write_text('[upstream]\nurl = "https://from-file.example"\n')
    s = load_settings(toml, environ={**env, "TIERWISE_UPSTREAM_URL": "https://gw.example"})
    assert s.upstream["url"] == "https://from-file.example" and s.upstream_from == f"{toml} [upstream] url"
    s = load_settings(toml, environ=env, overrides={"upstream": {"url": "https://arg.example"}})
    assert s.upstream["url"] == "https://arg.example" and s.upstream_from == "arguments"
    assert load_settings(None, environ={}).upstream_from == "default"


@pytest.fixture
def serve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("TIERWISE_CONFIG", "TIERWISE_LEDGER_URL", "TIERWISE_UPSTREAM_URL", "ANTHROPIC_BASE_URL", "TIERWISE_PORT",
                "TIERWISE_HOST", "TIERWISE_UPSTREAM"):
        monkeypatch.delenv(var, raising=False)
    import uvicorn

    started: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))  # never really listen
    monkeypatch.setattr("gc.freeze", lambda: None)  # serve tunes the collector for a long-lived process: not ours
    monkeypatch.setattr("gc.set_threshold", lambda *a: None)
    _load_commands()
    runner = CliRunner()

    def invoke(*args):
        monkeypatch.setenv("COLUMNS", "250")
        return runner.invoke(app, ["serve", *args]), started

    return invoke


def test_serve_refuses_to_start_on_its_own_address(serve, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:8787")  # what a user exports for the clients
    result, started = serve("--port", "8787")
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "$ANTHROPIC_BASE_URL" in out and "TIERWISE_UPSTREAM_URL" in out and "own address" in out
    assert not started and "Traceback" not in result.output


def test_serve_refuses_an_upstream_url_argument_pointing_at_itself(serve):
    result, started = serve("--host", "0.0.0.0", "--port", "9931", "--upstream-url", "http://127.0.0.1:9931")
    assert result.exit_code == 2 and not started
    assert "arguments" in " ".join(result.output.split())


def test_serve_banner_names_the_setting_that_chose_the_upstream(serve, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:8787")
    monkeypatch.setenv("TIERWISE_UPSTREAM_URL", "http://127.0.0.1:9")  # wins: the loop is gone
    result, started = serve("--port", "8787")
    assert result.exit_code == 0, result.output
    assert started and "(from $TIERWISE_UPSTREAM_URL)" in " ".join(result.output.split())


def test_offline_serve_ignores_a_self_pointing_base_url(serve, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:8787")  # no key: the offline upstream, no loop
    result, started = serve("--port", "8787")
    assert result.exit_code == 0, result.output
    assert started
