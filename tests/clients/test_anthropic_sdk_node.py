"""The official @anthropic-ai/sdk on node as a client of a running proxy."""

from __future__ import annotations

import pytest

from . import cells

DRIVER = ("node", "anthropic_sdk.mjs")


@pytest.mark.parametrize("name", ["create_auto", "create_task", "create_explicit"])
def test_create(run, name):
    row = cells.create(run, name)
    got = run.cell(name)
    assert got["request_id"] and got["headers"]["x-tierwise-model"] == row["model"]


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
    assert run.cell("thinking")["signature"]


def test_count_tokens(run):
    cells.count_tokens(run)


def test_models(run):
    cells.models(run)


def test_batches(run):
    cells.batches(run)


def test_errors(run):
    cells.errors(run)


def test_upstream(run):
    cells.upstream(run)
