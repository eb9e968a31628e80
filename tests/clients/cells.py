"""What every client's cells must show: the same assertions whichever library made the call."""

from __future__ import annotations

from typing import Any

from .conftest import ClientRun

PREFIX = "[offline synthetic answer from claude-"
ROUTED = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5")


def create(run: ClientRun, name: str, *, text: str | None = None, model: str | None = None) -> dict[str, Any]:
    """A create cell: a synthetic answer, the model the ledger priced, the requested model kept."""
    got = run.cell(name)
    text = got.get("text") if text is None else text
    assert text and text.startswith(PREFIX), got
    (row,) = run.ok_rows(name)
    want = {"create_auto": "auto", "create_task": "tierwise/review_code", "create_explicit": "claude-haiku-5-5"}.get(name)
    if want is not None:
        assert row["requested_model"] == want, row
    if name == "create_auto":
        assert row["router"] != "passthrough" and row["model"] in ROUTED and row["tier"], row
    elif name == "create_task":
        assert row["task"] == "review_code" and row["tier"] == "balanced" and row["model"] == "claude-sonnet-5-5", row
    elif name == "create_explicit":
        assert row["router"] == "passthrough" and row["model"] == "claude-haiku-5-5", row
    assert text.startswith(f"[offline synthetic answer from {row['model']}]"), (text, row)
    if got.get("model") is not None:
        assert got["model"] == row["model"], (got, row)
    usage = got.get("usage")
    if usage:
        assert usage["input_tokens"] == row["input_tokens"] and usage["output_tokens"] == row["output_tokens"], (usage, row)
    if got.get("headers"):
        h = got["headers"]
        assert h["x-tierwise-model"] == row["model"] and float(h["x-tierwise-cost-usd"]) * 1e9 == __import__("pytest").approx(row["cost_nanos"]), h
    if model is not None:
        assert row["model"] == model
    return row


def stream(run: ClientRun, name: str = "stream") -> dict[str, Any]:
    got = run.cell(name)
    assert got["text"].startswith(PREFIX) and len(got["text"]) > 60, got
    if "chunks" in got:
        assert got["chunks"] > 1, got  # it really arrived in pieces
    (row,) = run.ok_rows(name)
    assert row["stream"] and row["ttft_ms"] is not None, row
    assert got["text"].startswith(f"[offline synthetic answer from {row['model']}]")
    if got.get("usage"):
        assert got["usage"]["output_tokens"] == row["output_tokens"], (got, row)
    return row


def tool_loop(run: ClientRun, name: str, *, tool: str = "run_command", streamed: bool | None = None) -> list[dict[str, Any]]:
    """The model asked for the tool, the client sent a tool_result turn, the model answered with text quoting it."""
    got = run.cell(name)
    if "tool_name" in got:
        assert got["tool_name"] == tool, got
    if "tool_input" in got:
        assert got["tool_input"] == {"command": f"echo tierwise-{name}"}, got
    if "stop_reason" in got:
        assert got["stop_reason"] in ("tool_use", "tool_calls"), got
    assert f"tool_result: \u00abtierwise-{name}\u00bb" in got["final_text"], got
    rows = run.ok_rows(name, 2)
    assert rows[0]["stop_reason"] == "tool_use" and rows[-1]["stop_reason"] in ("end_turn", "max_tokens"), rows
    if streamed is not None:
        assert rows[0]["stream"] is streamed, rows[0]
    if got.get("json_deltas") is not None:
        assert got["json_deltas"] >= 1
    return rows


def structured(run: ClientRun, name: str = "structured") -> dict[str, Any]:
    got = run.cell(name)
    obj = got["object"]
    assert isinstance(obj, dict) and set(obj) >= {"city", "population"}, got
    assert isinstance(obj["city"], str) and isinstance(obj["population"], int), got
    rows = run.ok_rows(name)
    assert rows[-1]["stop_reason"] in ("tool_use", "end_turn"), rows
    return rows[-1]


def thinking(run: ClientRun, name: str = "thinking") -> dict[str, Any]:
    got = run.cell(name)
    assert got.get("types", ["thinking"])[0] == "thinking" or got.get("reasoning"), got
    if "types" in got:
        assert "text" in got["types"], got
    if got.get("reasoning") is not None:
        assert "[offline synthetic reasoning]" in got["reasoning"], got
    rows = run.ok_rows(name)
    return rows[-1]


def count_tokens(run: ClientRun, name: str = "count_tokens") -> None:
    """Counted by the API (the proxy's /v1/messages/count_tokens), not by a local tokenizer."""
    got = run.cell(name)
    assert got["input_tokens"] > 0, got
    if "small" in got:
        assert got["input_tokens"] > got["small"] > 0, got  # 50 words count more than one
    if run.mode == "forwarding":
        assert any(p.startswith("/v1/messages/count_tokens") for p, _, _ in run.fake.requests), "no count_tokens upstream"


def models(run: ClientRun, name: str = "models") -> None:
    got = run.cell(name)
    ids = got["ids"]
    for m in ROUTED:
        assert m in ids, ids
    assert len(ids) == len(set(ids)), ids
    if "retrieved" in got:
        assert got["retrieved"] == "claude-haiku-5-5", got


def batches(run: ClientRun, name: str = "batches") -> None:
    got = run.cell(name)
    assert got["status"] == "ended", got
    assert {k: v[0] for k, v in got["results"].items()} == {"r0": "succeeded", "r1": "succeeded"}, got
    assert got["results"]["r1"][1] == "claude-haiku-5-5" and got["results"]["r0"][1] in ROUTED, got
    # one ledger row per result (request id "<batch id>:<custom id>"), priced at the batch discount
    rows = {r["request_id"].split(":", 1)[1]: r for r in run.rows() if r["request_id"].startswith(got["id"] + ":")}
    assert set(rows) == {"r0", "r1"}, run.rows()
    assert rows["r0"]["requested_model"] == "auto" and rows["r0"]["model"] in ROUTED, rows
    assert rows["r1"]["requested_model"] == "claude-haiku-5-5" and rows["r1"]["model"] == "claude-haiku-5-5", rows
    for r in rows.values():
        assert r["batch"] and r["status"] == 200 and r["cost_nanos"] > 0 and r["output_tokens"] > 0, r
    assert got["listed"], got


def errors(run: ClientRun, name: str = "errors", *, request_ids: bool = True,
           statuses: dict[str, tuple[int, str]] | None = None) -> None:
    """Typed errors, the API's status and type, and a request id the user can quote."""
    got = run.cell(name)
    want = {"bad_request": (400, "invalid_request_error"), "not_found": (404, "not_found_error"),
            "overloaded": (529, "overloaded_error"), **(statuses or {})}
    for key, (status, kind) in want.items():
        if key not in got:
            continue
        e = got[key]
        assert e.get("raised"), (key, e)
        assert e["status"] == status, (key, e)
        if e.get("type") is not None:
            assert e["type"] == kind, (key, e)
        if request_ids:
            assert e.get("request_id"), (key, e)
    assert "unknown task type 'no_such_task'" in got["bad_request"]["message"], got


def upstream(run: ClientRun) -> None:
    """The rows name the upstream that answered; forwarding went through the HTTP fake, compressed."""
    rows = [r for r in run.rows() if r["status"] == 200]
    assert rows, run.rows()
    if run.mode == "offline":
        assert {r["upstream"] for r in rows} == {"offline"}, {r["upstream"] for r in rows}
        return
    assert run.fake is not None and run.fake.requests, "the fake upstream saw nothing"
    assert {r["upstream"] for r in rows} != {"offline"}, rows
    encodings = getattr(run.fake, "encodings", None)
    assert encodings is not None, "FakeAnthropic has no .encodings (compression not in the fake yet)"
    assert any(e for e in encodings), f"no compressed answer from the fake: {encodings[:10]}"
