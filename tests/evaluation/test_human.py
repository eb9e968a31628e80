"""Human grading: a blind sheet out, grades back in, overriding the automated grades."""

from __future__ import annotations

import asyncio
import csv
from importlib import resources
from pathlib import Path

import pytest

from tierwise.errors import ConfigError
from tierwise.evaluation.graders import load_items
from tierwise.evaluation.human import export_sheet, import_grades
from tierwise.evaluation.runner import EvalRunner, RunOptions, make_judge
from tierwise.evaluation.store import EvalStore
from tierwise.registry_history import open_db
from tierwise.reports.evaluation import build_report
from tierwise.upstream.offline import OfflineUpstream

EXAMPLE = Path(str(resources.files("tierwise").joinpath("data/eval_example.jsonl")))


def test_blind_sheet_roundtrip(settings, tmp_path):
    items = [it for it in load_items(EXAMPLE) if it.task == "detect_language"][:4]
    up = OfflineUpstream(latency_scale=0.0)
    runner = EvalRunner(settings, up, open_db(settings))
    asyncio.run(runner.run(items, "ev_h", RunOptions(tiers=["fast", "deep"], judge=make_judge(settings, up))))
    sheet = tmp_path / "sheet.csv"
    n = export_sheet(runner.store, "ev_h", sheet, settings.catalog, {it.id: (it.prompt, it.reference) for it in items})
    assert n == 8
    text = sheet.read_text()
    for leak in ("haiku", "opus", "claude-", "fast", "deep", "offline synthetic"):
        assert leak not in text.lower()
    rows = list(csv.DictReader(sheet.open()))
    assert len({r["code"] for r in rows}) == 8 and all(r["input"] for r in rows)
    # a person fails every answer of one item... whichever tier wrote them
    for r in rows:
        r["grade"] = "fail" if r["input"] == items[0].prompt else "pass"
    with sheet.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert import_grades(runner.store, "ev_h", sheet) == {"graded": 8, "blank": 0}
    rep = build_report(settings, runner.store, "ev_h", config_path=tmp_path / "t.toml")
    for c in rep["cells"]:
        assert c["errors"] == 1 and c["human_graded"] == 4
    html = tmp_path / "sheet.html"
    export_sheet(runner.store, "ev_h", html, settings.catalog)
    assert "Download grades" in html.read_text() and "haiku" not in html.read_text().lower()


def test_import_rejects_unknown_codes_and_bad_grades(settings, tmp_path):
    items = load_items(EXAMPLE)[:1]
    up = OfflineUpstream(latency_scale=0.0)
    runner = EvalRunner(settings, up, open_db(settings))
    asyncio.run(runner.run(items, "ev_h2", RunOptions(tiers=["fast"], judge=make_judge(settings, up))))
    export_sheet(runner.store, "ev_h2", tmp_path / "s.csv", settings.catalog)
    bad = tmp_path / "bad.csv"
    bad.write_text("code,grade\nzzzz,pass\n")
    with pytest.raises(ConfigError, match="not an answer of run"):
        import_grades(runner.store, "ev_h2", bad)
    code = next(csv.DictReader((tmp_path / "s.csv").open()))["code"]
    bad.write_text(f"code,grade\n{code},maybe\n")
    with pytest.raises(ConfigError, match="bad.csv:2"):
        import_grades(runner.store, "ev_h2", bad)


def test_import_of_a_directory_or_binary_file_is_a_config_error(settings, tmp_path):
    store = EvalStore(open_db(settings))
    with pytest.raises(ConfigError, match="not a file"):
        import_grades(store, "ev_x", tmp_path)
    p = tmp_path / "g.csv"
    p.write_bytes(b"\xff\xfe\x00code,grade\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        import_grades(store, "ev_x", p)
