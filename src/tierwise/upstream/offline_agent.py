"""Agent turns for the offline upstream: when to answer with a ``tool_use`` of an offered tool.

Agents (Claude Code, SDK tool loops) need the model to call a tool now and then. The offline upstream
does so under one small, deterministic convention, so that a test or a demo can drive a whole loop:

- Only when the request offers tools and ``tool_choice`` is absent, ``auto`` (forced choices are
  handled by ``offline._forced_tool``; ``none`` never gets a tool call).
- Only when the last message is a user turn that is not a ``tool_result`` turn: after a tool result
  the answer is text, which quotes the start of the result (``tool_result: «...»``) so a client can
  see the loop closed.
- The last user turn's text asks for it, in one of two forms (the last match wins):

  * an explicit marker ``[[tool:NAME]]`` or ``[[tool:NAME {"json": "input"}]]``, for a tool named NAME
    that is offered (missing required fields are filled from its ``input_schema``);
  * a verb and a back-quoted argument: ``run `CMD``` / ``execute `CMD``` -> an offered tool whose
    schema has a ``command`` property; ``read `PATH``` / ``open `PATH``` -> one with ``file_path`` or
    ``path``; ``list `PATH``` -> one with ``path`` (else a command tool running ``ls PATH``). Among
    fitting tools: the one named after the verb (``Read`` for read), else the one with the fewest
    required fields, else the first offered.

Anything else gets the ordinary synthetic text answer.
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable, Mapping

import orjson

__all__ = ["agent_tool_call", "tool_result_text"]

_MARKER = re.compile(r"\[\[tool:([A-Za-z0-9_.\-]+)(\s+\{.*?\})?\]\]", re.S)
_VERB = re.compile(r"\b(run|execute|read|open|list)\s+`([^`\n]+)`", re.I)


def _last_user(params: Mapping[str, Any]) -> Any:
    msgs = [m for m in params.get("messages") or () if isinstance(m, dict) and m.get("role") != "system"]
    if not msgs or msgs[-1].get("role") != "user":
        return None
    return msgs[-1].get("content")


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [str(b.get("text") or "") for b in content or () if isinstance(b, dict) and b.get("type") == "text"]


def tool_result_text(params: Mapping[str, Any]) -> str | None:
    """The text of the last turn's tool results when the last message is a tool_result turn, else None."""
    content = _last_user(params)
    if not isinstance(content, list):
        return None
    parts: list[str] = []
    found = False
    for b in content:
        if isinstance(b, dict) and b.get("type") == "tool_result":
            found = True
            c = b.get("content")
            parts.extend([c] if isinstance(c, str) else _texts(c))
    return " ".join(p.strip() for p in parts).strip() if found else None


def _props(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    schema = tool.get("input_schema")
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _required(tool: Mapping[str, Any]) -> list[str]:
    schema = tool.get("input_schema")
    req = schema.get("required") if isinstance(schema, dict) else None
    return list(req) if isinstance(req, list) else []


def _fill(tool: Mapping[str, Any], given: dict[str, Any], from_schema: Callable[..., Any], rng: random.Random) -> dict[str, Any]:
    out = dict(given)
    for name in _required(tool):
        if name not in out and name in _props(tool):
            out[name] = from_schema(_props(tool)[name], rng)
    return out


def agent_tool_call(params: Mapping[str, Any], from_schema: Callable[..., Any], rng: random.Random) -> dict[str, Any] | None:
    """``{"name": ..., "input": {...}}`` when the convention above asks for a tool call, else None."""
    tools = [t for t in params.get("tools") or () if isinstance(t, dict) and t.get("name")]
    choice = params.get("tool_choice")
    if not tools or (isinstance(choice, dict) and choice.get("type") != "auto"):
        return None
    content = _last_user(params)
    if content is None or tool_result_text(params) is not None:
        return None
    by_name = {t["name"]: t for t in tools}
    found: list[tuple[int, int, dict[str, Any], dict[str, Any]]] = []  # (text index, position, tool, given input)
    for i, text in enumerate(_texts(content)):
        for m in _MARKER.finditer(text):
            tool = by_name.get(m.group(1))
            if tool is None:
                continue
            try:
                given = orjson.loads(m.group(2)) if m.group(2) else {}
            except orjson.JSONDecodeError:
                given = {}
            found.append((i, m.start(), tool, given if isinstance(given, dict) else {}))
        for m in _VERB.finditer(text):
            call = _verb_call(m.group(1).lower(), m.group(2), tools)
            if call is not None:
                found.append((i, m.start(), call[0], call[1]))
    if not found:
        return None
    _, _, tool, given = max(found, key=lambda f: (f[0], f[1]))
    return {"name": tool["name"], "input": _fill(tool, given, from_schema, rng)}


def _verb_call(verb: str, arg: str, tools: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    def first(*keys: str) -> tuple[dict[str, Any], str] | None:
        # the tool named after the verb, else the one asking for least (Read before Edit for "read")
        for key in keys:
            fits = [(verb not in str(t["name"]).lower(), len(_required(t)), i, t) for i, t in enumerate(tools) if key in _props(t)]
            if fits:
                return min(fits, key=lambda f: f[:3])[3], key
        return None

    if verb in ("run", "execute"):
        found = first("command")
        return (found[0], {found[1]: arg}) if found else None
    if verb in ("read", "open"):
        found = first("file_path", "path")
        return (found[0], {found[1]: arg}) if found else None
    found = first("path")  # list
    if found:
        return found[0], {found[1]: arg}
    found = first("command")
    return (found[0], {found[1]: f"ls {arg}"}) if found else None
