"""The monitor watches a task type after a registry change and reverts a bad change."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tierwise.monitor import Monitor, list_alerts
from tierwise.registry_history import RegistryHistory

from .evidence_helpers import feedback, flushed, send


class Hook:
    """A local webhook receiver."""

    def __init__(self) -> None:
        received = self.received = []

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def _traffic(proxy, task, n, bad_every=0):
    tiers = []
    for i, r in enumerate(send(proxy, task, n=n, prompt=f"{task} {id(tiers)}")):
        tiers.append(r.headers["x-tierwise-tier"])
        bad = bad_every and i % bad_every == 0
        assert feedback(proxy, r.headers["x-tierwise-request-id"], outcome="bad" if bad else "ok").status_code == 200
    flushed(proxy)
    return tiers


def test_bad_change_is_detected_and_reverted(proxy_factory, tmp_path, hook):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text("# team config\n[registry]\ndraft_email = \"balanced\"  # reviewed in March\n")
    proxy = proxy_factory(monitor={"interval": 0, "min_samples": 20, "margin": 0.05, "auto_revert": True,
                                   "webhook": hook.url})
    ev = proxy.state.evidence
    assert _traffic(proxy, "draft_email", 20, bad_every=20) == ["balanced"] * 20      # 1 bad in 20 before
    history = RegistryHistory(proxy.state.settings, proxy.state.ledger.engine)
    change = history.set("draft_email", "fast", reason="deliberately bad: try Haiku for drafts", actor="test")
    assert ev.reload_registry(), "the proxy picks up the edited tierwise.toml"
    assert _traffic(proxy, "draft_email", 20, bad_every=3) == ["fast"] * 20           # 7 bad in 20 after
    health = {h.task: h for h in ev.monitor.evaluate()}["draft_email"]
    assert (health.n_before, health.bad_before, health.n_after, health.bad_after) == (20, 1, 20, 7)
    assert health.alert and health.baseline_kind == "before"
    alerts = ev.tick()
    assert len(alerts) == 1 and alerts[0]["reverted"]
    # reverted: file, live routing and history
    assert 'draft_email = "balanced"' in cfg.read_text() and "# team config" in cfg.read_text()
    assert send(proxy, "draft_email")[0].headers["x-tierwise-tier"] == "balanced"
    last = history.list(limit=1)[0]
    assert last.actor == "monitor" and last.source == "monitor" and last.undoes == change.id
    assert "35.0%" in last.reason and "5.0%" in last.reason
    # once per change; metric and webhook
    assert ev.tick() == []
    assert list_alerts(proxy.state.ledger.engine)[0]["revert_id"] == last.id
    ev.monitor.last_webhook.join(5)
    assert hook.received and hook.received[0]["task"] == "draft_email" and hook.received[0]["reverted"] is True
    metrics = proxy.state.metrics.exposition()[0].decode()
    assert 'tierwise_monitor_alerts_total{task="draft_email"} 1.0' in metrics
    assert 'tierwise_registry_reverts_total{task="draft_email"} 1.0' in metrics


def test_no_alert_without_enough_samples_or_within_margin(settings, tmp_path):
    from tierwise.feedback import record_feedback
    from tierwise.ledger.schema import calls
    from tierwise.registry_history import open_db

    engine = open_db(settings)
    history = RegistryHistory(settings, engine, path=tmp_path / "tierwise.toml")
    ch = history.set("summarize_short", "balanced", reason="test", actor="t")

    def calls_after(n, bad):
        rows = [{"ts": ch.ts + 1 + i, "day": "2026-01-01", "request_id": f"r{i}-{bad}-{n}", "task": "summarize_short",
                 "status": 200} for i in range(n)]
        with engine.begin() as conn:
            conn.execute(calls.insert(), rows)
        for i, r in enumerate(rows):
            record_feedback(engine, {"request_id": r["request_id"], "outcome": "bad" if i < bad else "ok"})

    mon = Monitor(settings, engine, history=history)
    calls_after(10, 5)                     # 50% but only 10 samples (< 30)
    (h,) = mon.evaluate()
    assert not h.alert and "waiting for 30 samples" in h.message
    calls_after(40, 1)                     # 6/50 = 12% > the 8% ceiling (no history before)
    (h,) = mon.evaluate()
    assert h.alert and h.baseline_kind == "ceiling"
    assert mon.check(auto_revert=False)[0]["reverted"] is False
    assert history.current()["summarize_short"] == "balanced", "alert only: nothing reverted"


def test_registry_cli_set_history_undo(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tierwise.cli import _load_commands, app

    monkeypatch.chdir(tmp_path)
    _load_commands()
    (tmp_path / "tierwise.toml").write_text(f'[ledger]\nurl = "sqlite:///{tmp_path}/l.db"\n')
    run = CliRunner().invoke
    r = run(app, ["registry", "set", "draft_email", "fast", "--why", "eval ev_1 says so", "--actor", "ana"])
    assert r.exit_code == 0, r.output
    assert 'draft_email = "fast"' in (tmp_path / "tierwise.toml").read_text()
    r = run(app, ["registry", "history"])
    assert "draft_email: balanced -> fast" in r.output and "ana" in r.output and "eval ev_1 says so" in r.output
    r = run(app, ["registry", "undo", "1"])
    assert r.exit_code == 0 and "undoes #1" in r.output
    assert 'draft_email = "balanced"' in (tmp_path / "tierwise.toml").read_text()
    r = run(app, ["registry", "set", "draft_email", "tiny", "--why", "x"])
    assert r.exit_code != 0 and "unknown tier" in str(r.exception or r.output)


def test_monitor_cli_refuses_nonsense_thresholds(tmp_path, monkeypatch, capsys):
    from tierwise.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.toml").write_text(f'[ledger]\nurl = "sqlite:///{tmp_path}/l.db"\n')
    assert main(["monitor", "check", "--min-samples", "0"]) == 2
    assert "--min-samples" in capsys.readouterr().err
    assert main(["monitor", "status", "--margin", "-0.1"]) == 2
    assert "--margin" in capsys.readouterr().err


def _rows(engine, ts, task, arm, n, bad, tag):
    from tierwise.feedback import record_feedback
    from tierwise.ledger.schema import calls

    rows = [{"ts": ts + i * 1e-3, "day": "2026-01-01", "request_id": f"{tag}-{i}", "task": task, "status": 200,
             "arm": arm} for i in range(n)]
    with engine.begin() as conn:
        conn.execute(calls.insert(), rows)
    for i, r in enumerate(rows):
        record_feedback(engine, {"request_id": r["request_id"], "outcome": "bad" if i < bad else "ok"})


@pytest.mark.parametrize("source", ["config", "experiments table"])
def test_ab_arm_overriding_the_registry_is_not_blamed_on_the_registry_entry(tmp_path, source):
    """After a registry change, an A/B arm that pins the task elsewhere fails badly: the registry entry it
    did not serve is neither alerted on nor reverted; the control arm's (and arm-less) traffic counts."""
    from tierwise.registry_history import open_db
    from tierwise.reports.ab import record_experiment

    from .conftest import make_settings

    arms = {"A": {}, "B": {"registry": {"draft_email": "deep"}}}
    ab = {"enabled": True, "name": "pin", "key": "user", "arms": arms} if source == "config" else {}
    settings = make_settings(tmp_path, ab=ab, monitor={"min_samples": 20, "margin": 0.05})
    engine = open_db(settings)
    if source == "experiments table":  # an experiment since ended: no [ab] left in the config
        record_experiment(engine, "pin", "user", arms)
    history = RegistryHistory(settings, engine, path=tmp_path / "tierwise.toml")
    import time

    assert history.current()["draft_email"] == "balanced"
    _rows(engine, time.time() - 100, "draft_email", None, 30, 1, "before")
    change = history.set("draft_email", "fast", reason="try haiku", actor="t")
    _rows(engine, change.ts + 1, "draft_email", "pin/A", 15, 0, "ctl")
    _rows(engine, change.ts + 2, "draft_email", None, 15, 1, "plain")
    _rows(engine, change.ts + 3, "draft_email", "pin/B", 30, 20, "armb")   # the arm served on deep, 2 in 3 bad
    _rows(engine, change.ts + 4, "summarize_short", "pin/B", 5, 5, "other")  # B does not override this task
    mon = Monitor(settings, engine, history=history)
    h = {x.task: x for x in mon.evaluate()}["draft_email"]
    assert (h.n_before, h.bad_before, h.n_after, h.bad_after) == (30, 1, 30, 1)
    assert not h.alert
    assert mon.check(auto_revert=True) == []
    assert history.current()["draft_email"] == "fast", "nothing reverted"
    # the arm's failures on a task it does not override still count against that task's entry
    assert mon._counts("summarize_short", 0.0, change.ts) == (0, 0, 5, 5)
