"""tierwise ab start / report / stop: the experiment in tierwise.toml, the verdict from the ledger."""

from __future__ import annotations

from typer.testing import CliRunner

from tierwise.cli import _load_commands, app, main
from tierwise.config import load_settings
from tierwise.server import create_app

from ..conftest import RunningProxy, free_port
from ..evidence_helpers import feedback, flushed, send


def test_ab_start_traffic_report_stop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text(f'# prod\n[ledger]\nurl = "sqlite:///{tmp_path}/l.db"\nflush_interval = 0.05\n[upstream]\nkind = "offline"\n'
                   '[upstream.offline]\nlatency_scale = 0.0\n[monitor]\ninterval = 0.0\n')
    _load_commands()
    run = CliRunner().invoke
    r = run(app, ["ab", "start", "drafts", "--arm", "A", "--arm", "B", "--set", "B.registry.draft_email=fast",
                  "--key", "user"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    text = cfg.read_text()
    assert text.startswith("# prod") and "[ab]" in text and 'draft_email = "fast"' in text
    settings = load_settings(cfg, environ={})
    with RunningProxy(create_app(settings), free_port()) as proxy:
        for r in send(proxy, "draft_email", n=40, user="u"):
            feedback(proxy, r.headers["x-tierwise-request-id"], outcome="ok")
        flushed(proxy)
    r = run(app, ["ab", "report", "drafts"], catch_exceptions=False)
    assert r.exit_code == 0
    assert "B saves" in r.output and "no detectable quality loss at n=40" in r.output
    r = run(app, ["ab", "stop"], catch_exceptions=False)
    assert "stopped" in r.output and "enabled = false" in cfg.read_text()


def test_ab_start_refuses_bad_arms(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.toml").write_text(f'[ledger]\nurl = "sqlite:///{tmp_path}/l.db"\n')
    assert main(["ab", "start", "x", "--arm", "A", "--arm", "B", "--set", "B.registry.draft_email=tiny"]) == 2
    assert "unknown tier" in capsys.readouterr().err
    assert "[ab]" not in (tmp_path / "tierwise.toml").read_text()
    assert main(["ab", "start", "x", "--arm", "A"]) == 2
    assert "two arms" in capsys.readouterr().err
    assert main(["ab", "report"]) == 2
    assert "no A/B experiment yet" in capsys.readouterr().err


def test_ab_start_refuses_malformed_sets_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.toml").write_text(f'[ledger]\nurl = "sqlite:///{tmp_path}/l.db"\n')
    assert main(["ab", "start", "x", "--arm", "A", "--arm", "B", "--set", "B.registry=fast"]) == 2
    assert "ab.arms.B.registry" in capsys.readouterr().err
    assert main(["ab", "start", "x", "--arm", "A", "--arm", "B", "--set", "B.registry.draft_email.x=fast"]) == 2
    assert "unknown tier" in capsys.readouterr().err
    assert "[ab]" not in (tmp_path / "tierwise.toml").read_text()
