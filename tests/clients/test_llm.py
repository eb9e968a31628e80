"""simonw's llm + llm-anthropic (Python API). No batches; its models list is what `llm anthropic refresh` reads."""

from __future__ import annotations

import pytest

from . import cells

DRIVER = ("python", ("llm", "llm_client.py"))


@pytest.mark.parametrize("name", ["create_auto", "create_task", "create_explicit"])
def test_create(run, name):
    cells.create(run, name)


def test_stream(run):
    cells.stream(run)


def test_tools(run):
    cells.tool_loop(run, "tools", streamed=True)  # llm-anthropic always streams on the wire


def test_stream_tools(run):
    cells.tool_loop(run, "stream_tools", streamed=True)


def test_structured(run):
    cells.structured(run)


def test_thinking(run):
    cells.thinking(run)


def test_count_tokens(run):
    cells.count_tokens(run)


def test_models(run):
    cells.models(run)


def test_errors(run):
    cells.errors(run)


def test_upstream(run):
    cells.upstream(run)
