"""Claude Code (`claude -p`) with ANTHROPIC_BASE_URL at the proxy: print mode with its default model,
`--model auto`, `--model tierwise/<task>`, the small/fast model set to auto, and tool loops (Bash, Read)."""

from __future__ import annotations

from . import cells

DRIVER = ("claude", "claude_code.py")


def session_rows(run, name):
    """The session's rows: every one answered and priced; none refused (see test_sessions_have_no_refused_request)."""
    rows = run.rows(name)
    assert rows, f"no ledger rows for {name}"
    refused = [r for r in rows if r["status"] != 200]
    assert not refused, [(r["requested_model"], r["status"], r["error_type"]) for r in refused]
    return run.ok_rows(name)


def test_print_default_model(run):
    got = run.cell("cc_default")
    rows = session_rows(run, "cc_default")
    assert got["text"].startswith(cells.PREFIX) and got["num_turns"] == 1
    default = got["init_model"]
    assert default and default.startswith("claude-"), got
    assert all(r["requested_model"] == default and r["router"] == "passthrough" and r["model"] == default for r in rows), rows
    assert got["model_usage"] == [default] and got["usage"]["output_tokens"] == rows[-1]["output_tokens"]


def test_print_auto(run):
    got = run.cell("cc_auto")
    rows = session_rows(run, "cc_auto")
    assert all(r["requested_model"] == "auto" and r["router"] != "passthrough" and r["model"] in cells.ROUTED
               for r in rows), rows
    assert got["text"].startswith(f"[offline synthetic answer from {rows[-1]['model']}]"), got
    assert rows[-1]["stream"] and rows[-1]["tier"]


def test_print_task(run):
    got = run.cell("cc_task")
    rows = session_rows(run, "cc_task")
    assert all(r["requested_model"] == "tierwise/review_code" and r["task"] == "review_code"
               and r["model"] == "claude-sonnet-5-5" for r in rows), rows
    assert got["text"].startswith("[offline synthetic answer from claude-sonnet-5-5]")


def test_small_fast_model_auto(run):
    """ANTHROPIC_SMALL_FAST_MODEL / ANTHROPIC_DEFAULT_HAIKU_MODEL=auto with `--model haiku`: the haiku alias
    becomes auto. (In print mode Claude Code 2.1.332 makes no background small-model call of its own:
    with only ANTHROPIC_SMALL_FAST_MODEL=auto every request still carries the main model.)"""
    got = run.cell("cc_small_fast")
    rows = session_rows(run, "cc_small_fast")
    assert all(r["requested_model"] == "auto" and r["model"] in cells.ROUTED for r in rows), rows
    assert got["text"].startswith(cells.PREFIX)


def test_bash_tool_loop_under_auto(run):
    got = run.cell("cc_tools")
    uses = [t for t in got["turns"] if "tool_use" in t]
    results = [t for t in got["turns"] if "tool_result" in t]
    assert uses and uses[0]["tool_use"] == "Bash" and uses[0]["input"]["command"] == "echo tierwise-cc_tools", got
    assert results and results[0]["tool_result"].strip() == "tierwise-cc_tools" and not results[0]["is_error"], got
    assert "tool_result: \u00abtierwise-cc_tools\u00bb" in got["text"] and got["num_turns"] >= 2, got
    rows = session_rows(run, "cc_tools")
    assert [r["stop_reason"] for r in rows][-2:] == ["tool_use", "end_turn"], rows
    assert all(r["requested_model"] == "auto" for r in rows), rows


def test_read_tool_loop_under_auto(run):
    got = run.cell("cc_read")
    uses = [t for t in got["turns"] if "tool_use" in t]
    results = [t for t in got["turns"] if "tool_result" in t]
    assert uses and uses[0]["tool_use"] == "Read" and uses[0]["input"]["file_path"].endswith("notes.txt"), got
    assert results and "tierwise-cc_read-contents" in results[0]["tool_result"], got
    assert "tierwise-cc_read-contents" in got["text"], got
    rows = session_rows(run, "cc_read")
    assert rows[-2]["stop_reason"] == "tool_use" and rows[-1]["stop_reason"] == "end_turn", rows


def test_upstream(run):
    cells.upstream(run)


def test_sessions_have_no_refused_request(run):
    """Claude Code is built against the real API: no request of any session is refused. With its default
    model the first request carries its mid-conversation system message under beta per-turn-control-2026-07-01;
    with a model id it does not know (`auto`, `tierwise/<task>`) Claude Code 2.1.332 sends the system message
    with no enabling beta, and tierwise, which chose the model, adds mid-conversation-system-2026-04-07
    (x-tierwise-adapted: beta+...)."""
    refused = [r for r in run.rows() if r["status"] != 200]
    assert not refused, [(r["requested_model"], r["status"], r["error_type"]) for r in refused]
    adapted = [r for r in run.rows() if r["requested_model"] in ("auto",) or str(r["requested_model"]).startswith("tierwise/")]
    assert adapted and any("beta+mid-conversation-system-2026-04-07" in (r.get("adapted") or "") for r in adapted), adapted
