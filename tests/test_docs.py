"""Docs coverage, in the style of datasette's ``test_docs.py``: every config key (from the defaults,
in one place), every CLI command, every routing strategy and every HTTP route is documented in
``docs/`` or ``README.md``. A test fails naming what is missing.

What counts as documented:
- a config key: its dotted path (``resilience.redis.pool_timeout``) anywhere, or a ``key = ...`` line
  under its ``[table]`` in a TOML block, or ``[table] key`` in prose (a table: ```[table]``` in prose). Keys under free tables
  (``registry``, ``routing.options``, ...) are data, not settings: the table itself must be documented;
- a CLI command: ``tierwise <command>`` (``tierwise keys create``);
- a strategy: a row of a strategies table, ``| `name` |`` (docs/reference.md);
- a route: ``METHOD /path`` or the path in backticks (path parameters written any way, ``{id}``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tierwise.config import FREE_TABLES, defaults

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)

_FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
_HEADER = re.compile(r"^\s*\[([A-Za-z0-9_.\"*-]+)\]\s*(?:#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\"-]+)\s*=")
_PROSE = re.compile(r"\[([a-z0-9_.]+)\]`?\s+`?([a-z0-9_]+)")
_DOTTED = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\b")


def _documented_keys() -> set[str]:
    found = set(_DOTTED.findall(TEXT))
    for block in _FENCE.findall(TEXT):
        table = ""
        for line in block.splitlines():
            if (m := _HEADER.match(line)) is not None:
                table = m.group(1).replace('"', "")
                found.add(table)
            elif table and (m := _ASSIGN.match(line)) is not None:
                found.add(f"{table}.{m.group(1).strip(chr(34))}")
    found.update(f"{t}.{k}" for t, k in _PROSE.findall(TEXT))
    found.update(t for t, _ in _PROSE.findall(TEXT))
    found.update(re.findall(r"`\[([a-z0-9_.]+)\]", TEXT))  # a table named in prose: `[catalog]`
    return found


def _config_keys() -> list[str]:
    out: list[str] = []

    def walk(node: dict, path: str) -> None:
        for key, value in node.items():
            p = f"{path}.{key}" if path else key
            if isinstance(value, dict) and key not in FREE_TABLES:
                walk(value, p)
            else:
                out.append(p)

    walk(defaults(), "")
    return out


DOCUMENTED = _documented_keys()


@pytest.mark.parametrize("key", _config_keys())
def test_config_key_is_documented(key):
    assert key in DOCUMENTED, f"config key {key} is not documented in docs/ or README.md"


def _commands() -> list[str]:
    from tierwise.cli import _load_commands, app

    _load_commands()
    names = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]
    for g in app.registered_groups:
        names += [f"{g.name} {c.name or c.callback.__name__.replace('_', '-')}" for c in g.typer_instance.registered_commands]
    return sorted(names)


@pytest.mark.parametrize("command", _commands())
def test_cli_command_is_documented(command):
    assert re.search(rf"tierwise {re.escape(command)}\b", TEXT), f"`tierwise {command}` is not documented"


def _strategies() -> list[str]:
    from tierwise.routing.base import available

    return available()


@pytest.mark.parametrize("strategy", _strategies())
def test_routing_strategy_is_documented(strategy):
    assert re.search(rf"^\|\s*`{re.escape(strategy)}`\s*\|", TEXT, re.M), \
        f"routing strategy {strategy!r} has no row in a strategies table (docs/reference.md)"


def _routes() -> list[tuple[str, str]]:
    from tierwise.config import load_settings
    from tierwise.server import create_app

    app = create_app(load_settings(None, environ={}), ledger=False)
    out = {("POST", "/v1/messages")}
    for r in app.inner.routes:
        for m in sorted(set(getattr(r, "methods", None) or ()) - {"HEAD"}):
            out.add((m, r.path))
    return sorted(out, key=lambda x: (x[1], x[0]))


def _route_pattern(path: str) -> str:
    parts = re.split(r"\{[^}]+\}", path)
    return r"\{[^}\s]+\}".join(re.escape(p) for p in parts)


@pytest.mark.parametrize("method,path", _routes())
def test_http_route_is_documented(method, path):
    pat = _route_pattern(path)
    assert re.search(rf"{method} `?{pat}(?![\w/])", TEXT), f"{method} {path} is not documented"
