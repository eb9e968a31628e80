"""Human grading: a blind sheet out (CSV or HTML), the grades back in.

The sheet lists every answer of a run under a random code, in shuffled order, with model and
tier names redacted from the text; nothing on it says which tier wrote what. The codes map
back to (input, tier) only in the ledger DB. A person's grade overrides the automated one.
"""

from __future__ import annotations

import csv
import io
import os
import random
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .judge import redact
from .store import EvalStore

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["export_sheet", "import_grades", "parse_grade", "COLUMNS"]

COLUMNS = ["code", "task", "input", "reference", "answer", "grade", "note"]
_PASS = {"pass", "ok", "good", "yes", "y", "1", "true", "t", "+"}
_FAIL = {"fail", "bad", "no", "n", "0", "false", "f", "-"}


def parse_grade(value: str) -> bool | None:
    v = (value or "").strip().lower()
    if not v:
        return None
    if v in _PASS:
        return True
    if v in _FAIL:
        return False
    raise ValueError(f"grade {value!r}: use pass or fail (also ok/bad, yes/no, 1/0)")


def _sheet_rows(store: EvalStore, run_id: str, catalog: "Catalog", prompts: dict[str, tuple[str, str | None]]) -> list[dict[str, str]]:
    rows = [r for r in store.results(run_id) if r["status"] == 200 and r["output"] is not None]
    out = []
    for r in rows:
        code = r["blind_code"]
        if not code:
            code = os.urandom(4).hex()
            store.set_grade(run_id, r["item_id"], r["tier"], passed=None, score=None, blind_code=code)
        prompt, ref = prompts.get(r["item_id"], ("", None))
        out.append({"code": code, "task": r["task"], "input": prompt, "reference": ref or "",
                    "answer": redact(r["output"], catalog), "grade": "", "note": ""})
    random.SystemRandom().shuffle(out)
    return out


def export_sheet(store: EvalStore, run_id: str, path: str | Path, catalog: "Catalog",
                 prompts: dict[str, tuple[str, str | None]] | None = None) -> int:
    """Write a blind grading sheet (``.csv`` or ``.html`` by extension); returns the number of answers."""
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".html", ".htm"):
        raise ConfigError(f"{p}: the sheet is .csv or .html")
    rows = _sheet_rows(store, run_id, catalog, prompts or {})
    try:
        if p.suffix.lower() == ".csv":
            with p.open("w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=COLUMNS)
                w.writeheader()
                w.writerows(rows)
        else:
            p.write_text(_html(rows, run_id), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot write the sheet: {exc.strerror}") from None
    return len(rows)


def _html(rows: list[dict[str, str]], run_id: str) -> str:
    trs = []
    for r in rows:
        trs.append(f"<tr data-code='{escape(r['code'])}'><td><code>{escape(r['code'])}</code><br><small>{escape(r['task'])}</small></td>"
                   f"<td><div class='t'>{escape(r['input'])}</div>"
                   + (f"<div class='ref'>reference: {escape(r['reference'])}</div>" if r["reference"] else "")
                   + f"</td><td><div class='t'>{escape(r['answer'])}</div></td><td><select><option></option>"
                   "<option>pass</option><option>fail</option></select><input placeholder='note'></td></tr>")
    script = ("function dl(){var l=[['code','grade','note']];document.querySelectorAll('tr[data-code]').forEach(function(t){"
              "l.push([t.dataset.code,t.querySelector('select').value,t.querySelector('input').value]);});"
              "var c=l.map(function(r){return r.map(function(v){return '\"'+String(v).replace(/\"/g,'\"\"')+'\"';}).join(',');})"
              ".join('\\n');var a=document.createElement('a');a.href=URL.createObjectURL(new Blob([c],{type:'text/csv'}));"
              f"a.download='grades-{run_id}.csv';a.click();}}")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>blind grading sheet</title><style>"
            "body{font-family:system-ui,sans-serif;margin:24px;color:#111827}table{border-collapse:collapse;width:100%}"
            "td{border-top:1px solid #e5e7eb;padding:8px;vertical-align:top;font-size:14px}.t{white-space:pre-wrap;max-width:460px}"
            ".ref{color:#6b7280;margin-top:6px}button{font-size:15px;padding:6px 14px}</style></head><body>"
            f"<h1>Blind grading sheet</h1><p>{len(rows)} answers in random order; nothing here says which model wrote which. "
            "Grade each pass or fail, then download the grades and run <code>tierwise eval import-grades RUN grades.csv</code>.</p>"
            "<p><button onclick='dl()'>Download grades (CSV)</button></p><table>" + "".join(trs) + "</table>"
            f"<script>{script}</script></body></html>")


def import_grades(store: EvalStore, run_id: str, path: str | Path) -> dict[str, int]:
    """Read a filled sheet (CSV with ``code`` and ``grade`` columns); returns counts."""
    from ..files import read_user_text

    p = Path(path)
    text = read_user_text(p, "the graded CSV", encoding="utf-8-sig")
    by_code = {r["blind_code"]: r for r in store.results(run_id) if r["blind_code"]}
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "code" not in reader.fieldnames or "grade" not in reader.fieldnames:
        raise ConfigError(f"{p}: expected a CSV with 'code' and 'grade' columns (from tierwise eval export-sheet)")
    counts = {"graded": 0, "blank": 0}
    updates: list[tuple[dict[str, Any], bool]] = []
    for n, row in enumerate(reader, 2):
        code = (row.get("code") or "").strip()
        try:
            grade = parse_grade(row.get("grade") or "")
        except ValueError as exc:
            raise ConfigError(f"{p}:{n}: {exc}") from None
        if grade is None:
            counts["blank"] += 1
            continue
        if code not in by_code:
            raise ConfigError(f"{p}:{n}: code {code!r} is not an answer of run {run_id}")
        updates.append((by_code[code], grade))
    for r, grade in updates:
        store.set_grade(run_id, r["item_id"], r["tier"], passed=None, score=None, human=grade)
        counts["graded"] += 1
    return counts
