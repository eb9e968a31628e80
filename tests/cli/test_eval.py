"""The walk-through's eval steps on the offline upstream: example, run, report, apply, sheets."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from tierwise.cli import _load_commands, app, main


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    (tmp_path / "tierwise.toml").write_text(
        f'# my team\n[ledger]\nurl = "sqlite:///{tmp_path}/ledger.db"\n\n[upstream]\nkind = "offline"\n'
        '[upstream.offline]\nlatency_scale = 0.0\n')
    _load_commands()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_eval_walkthrough(cli, tmp_path):
    r = cli("eval", "example")
    assert r.exit_code == 0 and (tmp_path / "eval_example.jsonl").exists()
    r = cli("eval", "run", "eval_example.jsonl", "--no-progress", "--out", "out")
    assert r.exit_code == 0, r.output
    assert "new calls, 0 reused" in r.output and "offline upstream" in r.output
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    recs = {x["task"]: x for x in rep["recommendations"]}
    assert recs["detect_language"]["recommended"] == "fast" and recs["detect_language"]["change"]
    assert '+detect_language = "fast"' in (tmp_path / "out" / "registry.diff").read_text()
    assert "<svg" in (tmp_path / "out" / "report.html").read_text()
    assert sum(1 for _ in (tmp_path / "out" / "outcomes.jsonl").open()) == 46
    # re-running resumes: nothing paid twice
    r = cli("eval", "run", "eval_example.jsonl", "--no-progress", "--out", "out")
    assert "resuming run" in r.output and "0 new calls, 138 reused" in r.output
    r = cli("eval", "report", "--json")
    assert json.loads(r.output)["run_id"] == rep["run_id"]
    r = cli("eval", "apply")
    assert r.exit_code == 0 and "detect_language: (not set) -> fast" in r.output
    text = (tmp_path / "tierwise.toml").read_text()
    assert text.startswith("# my team") and 'detect_language = "fast"' in text
    r = cli("registry", "history")
    assert "eval apply" in r.output and rep["run_id"] in r.output
    # blind sheet out and back
    r = cli("eval", "export-sheet", "sheet.csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader((tmp_path / "sheet.csv").open()))
    for x in rows:
        x["grade"] = "pass"
    with (tmp_path / "sheet.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = cli("eval", "import-grades", "sheet.csv")
    assert f"imported {len(rows)} grades" in r.output
    r = cli("eval", "list")
    assert rep["run_id"] in r.output


def test_bad_input_is_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "regex"}]}\n')
    assert main(["eval", "run", "bad.jsonl", "--offline", "--ledger-url", f"sqlite:///{tmp_path}/l.db"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1" in err and "needs \"pattern\"" in err and "Traceback" not in err
    assert main(["eval", "run", "missing.jsonl", "--offline"]) == 2
    assert "inputs file not found" in capsys.readouterr().err
    assert main(["eval", "run", "bad.jsonl", "--offline", "--tiers", "fast,tiny"]) == 2
    assert "unknown tier" in capsys.readouterr().err


def test_bad_paths_and_values_are_messages_not_tracebacks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    (tmp_path / "tierwise.toml").write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path}/ledger.db"\n[upstream]\nkind = "offline"\n'
        '[upstream.offline]\nlatency_scale = 0.0\n')
    assert main(["eval", "example", "nodir/x.jsonl"]) == 2
    assert "nodir/x.jsonl" in capsys.readouterr().err
    assert main(["eval", "run", str(tmp_path), "--no-progress"]) == 2
    assert "not a file" in capsys.readouterr().err
    (tmp_path / "one.jsonl").write_text('{"id": "a", "task": "detect_language", "prompt": "Bonjour", "reference": "fr"}\n')
    assert main(["eval", "run", "one.jsonl", "--tiers", "fast", "--no-progress", "--out", "tierwise.toml"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err
    assert main(["eval", "run", "one.jsonl", "--tiers", "fast", "--no-progress", "--out", "out"]) == 0
    capsys.readouterr()
    assert main(["eval", "report", "--html", "nodir/r.html"]) == 2
    assert "nodir/r.html" in capsys.readouterr().err
    assert main(["eval", "export-sheet", "nodir/s.csv"]) == 2
    assert "nodir/s.csv" in capsys.readouterr().err
    # a threshold out of range is refused, as by eval run, instead of recommending the cheapest tier for everything
    assert main(["eval", "report", "--threshold", "5"]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_bad_ledger_url_is_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "list", "--ledger-url", "nonsense://x"]) == 2
    err = capsys.readouterr().err
    assert "ledger.url" in err and "Traceback" not in err
