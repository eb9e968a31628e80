"""litellm as a client (its anthropic provider, api_base at the proxy, OpenAI-shaped calls). It has no Anthropic models list or batches through this provider."""

from __future__ import annotations

import pytest

from . import cells

DRIVER = ("python", ("main", "litellm_client.py"))


@pytest.mark.parametrize("name", ["create_auto", "create_task", "create_explicit"])
def test_create(run, name):
    cells.create(run, name)


def test_stream(run):
    cells.stream(run)


def test_tools(run):
    cells.tool_loop(run, "tools", streamed=False)


def test_stream_tools(run):
    cells.tool_loop(run, "stream_tools", streamed=True)


def test_structured(run):
    cells.structured(run)


def test_thinking(run):
    row = cells.thinking(run)
    # litellm does not know "auto" and sends a budget (thinking.type enabled); the routed 5.5 model takes
    # adaptive thinking only, so the proxy adapted the request and says so
    assert "thinking:enabled->adaptive" in (row["adapted"] or ""), row


def test_errors(run):
    # litellm maps the API's 529 to its InternalServerError with status 500 (its own mapping, the body
    # still says overloaded_error and carries the request id)
    cells.errors(run, statuses={"overloaded": (500, "overloaded_error")})
    assert "overloaded_error" in run.cell("errors")["overloaded"]["message"]


def test_upstream(run):
    cells.upstream(run)


def test_count_tokens(run):
    cells.count_tokens(run)
    got = run.cell("count_tokens")
    assert got["original"] and got["original"].get("input_tokens") == got["input_tokens"], got
