"""The team's realistic evaluation set: production-style requests labelled with the seeds' tier.

``data/eval/realistic.jsonl`` holds hand-written requests (chat prompts, coding-agent turns shaped
like Claude Code's, and the harness's side requests), each with its task type, the tier the seeds'
guidance picks and a one-line why; ``data/eval/README.md`` describes them. Items are split by a
stable hash of their id into ``dev`` (for building and tuning routers) and ``test`` (for reporting
only). The rule is enforced here: :func:`load` refuses the test split unless the caller says it is
reporting (``for_report``), and ``tests/test_evaldata.py`` checks that only the reporting
benchmark passes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

__all__ = ["Item", "load", "split_of", "harness", "agent_body", "SPLITS"]

SPLITS = ("dev", "test")


def split_of(item_id: str) -> str:
    """``dev`` or ``test``: a stable hash of the id, about half each."""
    h = hashlib.blake2b(f"tierwise-eval-split:{item_id}".encode(), digest_size=4).digest()
    return "test" if h[0] & 1 else "dev"


@dataclass(frozen=True)
class Item:
    id: str
    kind: str            # chat | agent | side
    task_type: str
    tier: str
    why: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def split(self) -> str:
        return split_of(self.id)

    def body(self, **harness_opts: Any) -> dict[str, Any]:
        """The Messages API request body this item stands for (``model: auto``)."""
        r = self.raw
        if self.kind == "chat":
            return {"model": "auto", "max_tokens": int(r.get("max_tokens") or 1024),
                    "messages": [{"role": "user", "content": r["prompt"]}]}
        if self.kind == "side":
            body: dict[str, Any] = {"model": "auto", "max_tokens": int(r.get("max_tokens") or 512),
                                    "messages": [{"role": "user", "content": r["prompt"]}]}
            if r.get("system"):
                body["system"] = [{"type": "text", "text": "You are a coding agent's helper."},
                                  {"type": "text", "text": r["system"]}]
            return body
        return agent_body(r["turns"], **harness_opts)


@lru_cache(maxsize=1)
def harness() -> dict[str, Any]:
    """The coding-agent harness (system blocks and 25 tools) agent items are sent with."""
    text = resources.files("tierwise").joinpath("data/eval/harness.json").read_text(encoding="utf-8")
    return json.loads(text)


def _pad(tokens: int) -> str:
    """A project file tree of about ``tokens`` tokens (for large-system-prompt benchmarks)."""
    lines, n, i = [], 0, 0
    dirs = ("src/api", "src/auth", "src/billing", "src/export", "src/search", "web/src/components", "tests/api", "docs")
    while n < tokens * 4:
        line = f"{dirs[i % len(dirs)]}/module_{i:05d}.py  # {('handlers', 'models', 'schemas', 'views')[i % 4]}"
        lines.append(line)
        n += len(line) + 1
        i += 1
    return "Repository map (generated):\n" + "\n".join(lines)


def agent_body(turns: Iterable[dict[str, Any]], *, system_tokens: int = 0, session: str = "0") -> dict[str, Any]:
    """A Claude Code-shaped request: 3 cached system blocks, 25 tools, the conversation's turns
    (user text, assistant text + tool_use, tool_result), cache breakpoints on the system prompt
    and on the last message, stream, effort and a large ``max_tokens``."""
    h = harness()
    system = [dict(b) for b in h["system"]]
    if system_tokens:
        system[2] = {"type": "text", "text": system[2]["text"] + "\n" + _pad(system_tokens)}
    system[1]["cache_control"] = {"type": "ephemeral"}
    system[2]["cache_control"] = {"type": "ephemeral"}
    messages: list[dict[str, Any]] = []
    n = 0
    for t in turns:
        role = t["role"]
        if role == "user":
            messages.append({"role": "user", "content": [{"type": "text", "text": t["text"]}]})
        elif role == "assistant":
            content: list[dict[str, Any]] = [{"type": "text", "text": t.get("text") or ""}]
            if t.get("tool"):
                n += 1
                content.append({"type": "tool_use", "id": f"toolu_{session}_{n:03d}", "name": t["tool"],
                                "input": t.get("input") or {}})
            messages.append({"role": "assistant", "content": content})
        elif role == "tool_result":
            messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{session}_{n:03d}",
                                                          "content": t["text"]}]})
    if messages and isinstance(messages[-1]["content"], list):
        last = dict(messages[-1]["content"][-1])
        last["cache_control"] = {"type": "ephemeral"}
        messages[-1]["content"] = messages[-1]["content"][:-1] + [last]
    return {"model": "auto", "max_tokens": 32000, "stream": True, "system": system, "tools": h["tools"],
            "messages": messages, "metadata": {"user_id": f"user_eval_account__session_{session}"},
            "output_config": {"effort": "high"}}


@lru_cache(maxsize=1)
def _all() -> tuple[Item, ...]:
    text = resources.files("tierwise").joinpath("data/eval/realistic.jsonl").read_text(encoding="utf-8")
    items = []
    for line in text.splitlines():
        if line.strip():
            r = json.loads(line)
            items.append(Item(r["id"], r["kind"], r["task_type"], r["tier"], r["why"], r))
    return tuple(items)


def load(split: str = "dev", *, for_report: bool = False) -> list[Item]:
    """Items of ``split``. The test split is for reporting figures only: nothing that builds or
    tunes a router may read it, so asking for it needs ``for_report``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "test" and not for_report:
        raise PermissionError("the test split of the realistic set is for reporting only "
                              "(only a reporting benchmark passes for_report)")
    return [i for i in _all() if i.split == split]
