"""langchain-anthropic (ChatAnthropic) as a client of a running proxy. It offers no models list and no batches."""

from __future__ import annotations

import pytest

from . import cells

DRIVER = ("python", ("main", "langchain.py"))


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


def test_count_tokens(run):
    cells.count_tokens(run)


def test_errors(run):
    cells.errors(run)


def test_upstream(run):
    cells.upstream(run)
