"""The drivers' shared bits: run each cell, keep what it saw or the error, print one JSON line."""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any, Callable

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8787"
TASK = "tierwise/review_code"
EXPLICIT = "claude-haiku-5-5"
CELLS: dict[str, Any] = {}
SECONDS: dict[str, float] = {}

# the tool every driver offers; the offline upstream calls it for "run `...`" (upstream/offline_agent.py)
TOOL = {"name": "run_command", "description": "Run a shell command and return its output",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
RECORD = {"name": "record_city", "description": "Record a city and its population",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
                           "required": ["city", "population"]}}


def ask(cell: str, text: str = "Say hello in one short sentence.") -> str:
    return f"[cell:{cell}] {text}"


def run_tool(command: str) -> str:
    """What the drivers' run_command tool 'runs': a fixed echo, so the answer can be checked."""
    return command.removeprefix("echo ").strip() + "\n"


def cell(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def wrap(fn: Callable[[], Any]) -> Callable[[], Any]:
        t0 = time.monotonic()
        try:
            CELLS[name] = fn()
        except BaseException as exc:  # noqa: BLE001 - every failure is a cell's result
            CELLS[name] = {"error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:1500],
                           "trace": traceback.format_exc()[-2000:]}
        SECONDS[name] = round(time.monotonic() - t0, 2)
        return fn
    return wrap


COLLECT: list[dict[str, Any]] | None = None  # set by _run.py, which runs a driver once per proxy URL


def done() -> None:
    result = dict(CELLS, _seconds=SECONDS)
    if COLLECT is not None:
        COLLECT.append(result)
    else:
        print(json.dumps(result, default=str))
