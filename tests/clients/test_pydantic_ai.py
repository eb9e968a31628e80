"""pydantic-ai (Agent + AnthropicModel, provider base_url at the proxy). No models list or batches here."""

from __future__ import annotations

import pytest

from . import cells

DRIVER = ("python", ("main", "pydantic_ai_client.py"))


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
    cells.thinking(run)


def test_errors(run):
    cells.errors(run)


def test_upstream(run):
    cells.upstream(run)


def test_count_tokens(run):
    cells.count_tokens(run)
    assert "input_tokens_limit of 5" in (run.cell("count_tokens")["stopped"] or ""), run.cell("count_tokens")
