"""``tierwise report`` on temporary ledgers: tables, JSON, windows, empty ledgers, bad input."""

from __future__ import annotations

import json

import pytest

from tierwise.ledger import Ledger
from tierwise.reports.spend import totals

from ..reports.test_spend import DAY1, DAY2, golden_rows, insert, make_row


@pytest.fixture
def run(cli):
    return lambda *args, columns=200: cli("report", *args, columns=columns)


@pytest.fixture
def ledger_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    led = Ledger(url)
    insert(led.engine, golden_rows())
    led.close()
    return url


def test_json_totals_match_the_aggregation(run, ledger_url):
    result = run("--ledger-url", ledger_url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expect = totals(ledger_url)
    assert data["total"]["calls"] == expect["calls"] == 16
    assert data["total"]["cost_nanos"] == expect["cost_nanos"]
    assert [r["tier"] for r in data["by"]["tier"]] == ["fast", "balanced", "deep"]  # catalog order
    assert [r["day"] for r in data["by"]["day"]] == ["2026-11-20", "2026-11-21"]
    saved = expect["savings_usd"]
    assert data["summary"] == (f"Routing saved ${saved:,.2f} ({expect['savings_pct']:.1f}%) against sending everything "
                               "to balanced/claude-sonnet-5-5.")


@pytest.mark.parametrize("columns", [200, 80])
def test_tables_show_groups_totals_and_the_summary(run, ledger_url, columns):
    result = run("--ledger-url", ledger_url, columns=columns)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for title in ("Spend by tier", "Spend by task", "Spend by day"):
        assert title in out
    for name in ("fast", "balanced", "deep", "classify_intent", "security_review", "2026-11-20", "Total"):
        assert name in out
    total = totals(ledger_url)
    assert f"({total['savings_pct']:.1f}%)" in out
    assert "Routing saved" in " ".join(out.split())
    # money in USD: these sums are fractions of a cent, so shown to six places
    assert f"${total['cost_usd']:.6f}" in out
    assert "balanced/claude-sonnet-5-5" in " ".join(out.split())


def test_by_and_since(run, ledger_url):
    result = run("--ledger-url", ledger_url, "--by", "model", "--since", "2026-11-21", "--json")
    data = json.loads(result.stdout)
    assert list(data["by"]) == ["model"]
    assert data["total"]["calls"] == 6
    assert {r["model"] for r in data["by"]["model"]} == {"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"}


def test_empty_and_missing_ledgers_are_friendly(run, tmp_path):
    missing = run("--ledger-url", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.exit_code == 0 and "No calls to report" in missing.stdout
    assert not (tmp_path / "nope.db").exists()  # a report never creates a ledger
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Ledger(url).close()
    empty = run("--ledger-url", url)
    assert empty.exit_code == 0 and "the ledger is empty" in empty.stdout
    assert "tierwise demo" in empty.stdout


def test_window_with_no_calls(run, ledger_url):
    result = run("--ledger-url", ledger_url, "--since", "2030-01-01")
    assert result.exit_code == 0 and "empty for that period" in result.stdout


def test_ledger_url_comes_from_the_config_file(run, tmp_path, ledger_url):
    (tmp_path / "tierwise.toml").write_text(f'[ledger]\nurl = "{ledger_url}"\n')
    result = run("--json")
    assert json.loads(result.stdout)["total"]["calls"] == 16


@pytest.mark.parametrize("args,message", [
    (["--by", "colour"], "--by 'colour': choose from tier, task, day, model"),
    (["--since", "last week"], "--since 'last week': expected a date like"),
    (["--ledger-url", "not a url"], "not a database URL"),
    (["--since", "2026-11-21", "--until", "2026-11-20"], "--until is before --since"),
])
def test_bad_input_exits_2(run, ledger_url, args, message):
    if "--ledger-url" not in args:
        args = ["--ledger-url", ledger_url, *args]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_password_never_printed(run):
    result = run("--ledger-url", "postgresql://tw:s3cret-pw@127.0.0.1:1/none", "--json")
    assert result.exit_code == 2 and "cannot read the ledger" in result.stderr
    assert "s3cret-pw" not in result.output


def test_report_on_postgres(run, pg_url):
    led = Ledger(pg_url)
    try:
        insert(led.engine, golden_rows() + [make_row(DAY1, task="classify_intent")])
    finally:
        led.close()
    result = run("--ledger-url", pg_url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total"]["calls"] == 17
    assert data["by"]["tier"][0]["tier"] == "fast" and data["by"]["tier"][0]["calls"] == 12
    assert DAY2.strftime("%Y-%m-%d") in {r["day"] for r in data["by"]["day"]}


def test_batch_spend_is_shown(run, tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    led = Ledger(url)
    insert(led.engine, [make_row(cost=4_000), make_row(cost=1_500, batch=True), make_row(cost=2_500, batch=True)])
    led.close()
    result = run("--ledger-url", url)
    assert result.exit_code == 0, result.output
    assert "Message Batches: 2 result(s), $0.000004" in result.stdout
    data = json.loads(run("--ledger-url", url, "--json").stdout)
    assert data["batch"]["calls"] == 2 and data["batch"]["cost_nanos"] == 4_000
    table = run("--ledger-url", url, "--by", "batch")
    assert "Message Batches" in table.stdout and "live calls" in table.stdout
