"""A bounded view of a request: what the task at hand is, read in time that does not grow with the
system prompt, the tool list or the length of the conversation's text.

An agent harness (Claude Code and the like) sends a long cached system prompt and many tools on
every turn; they describe the harness, not the work. So when a request looks like a harness (tools,
or a long system prompt), the view takes the task from the latest user turn that has text, and
counts the tool results that followed it; the system prompt and tools are only measured (``len``),
never read. A short system prompt of an ordinary app ("You are an intent classifier...") is part of
the task and is read (its head). Harness side requests (a title, a one-line summary, a quick
classification: no tools, a small ``max_tokens``, a system prompt that asks for that) are recognised
by shape.

Text is cut to ``HEAD + TAIL`` characters; token counts are estimated from lengths (4 characters a
token), summed over at most ``MAX_MESSAGES`` messages (extrapolated beyond).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["View", "view_of", "HEAD", "TAIL"]

HEAD, TAIL = 2400, 600         # characters of the task text kept (start and end)
SYSTEM_HEAD = 1200             # characters of a non-harness system prompt read as part of the task
HARNESS_TOOLS = 4              # this many tools or more: the system prompt describes a harness
HARNESS_SYSTEM_CHARS = 6000    # or a system prompt this long
MAX_MESSAGES = 400             # messages measured at most (the rest extrapolated)
SIDE_MAX_TOKENS = 1024         # side requests ask for little

_SIDE = (
    ("title", re.compile(r"\btitle\b|new conversation topic|\bisnewtopic\b")),
    ("summary", re.compile(r"\bsummar(?:y|ize|ise)\b|\brecap\b|one-sentence summary|status line|progress display")),
    ("classification", re.compile(r"command prefix|\bclassify\b|\byes or no\b|\byes/no\b|answer [a-z]+ or [a-z]+|"
                                  r"reply [a-z]+ or [a-z]+|\bquestion or instruction\b")),
)


@dataclass(slots=True)
class View:
    task: str                 # the task text (bounded): system head (non-harness) + the latest user text
    user: str                 # the latest user text alone (bounded)
    harness: bool             # a harness's system prompt / tools were set aside
    side: str | None          # harness side request: "title" | "summary" | "classification" | "quota"
    tools: int
    tool_results: int         # tool results since the latest user text
    turns: int                # messages
    continuation: bool        # the latest user message carries only tool results
    max_tokens: int
    images: int
    documents: int
    thinking: bool            # an assistant turn carries thinking blocks
    odd_roles: tuple[str, ...]  # roles other than user/assistant met in messages (e.g. "system")
    cache_ttl: float          # lifetime (s) of the request's cache breakpoints: 300, 3600, or 0 (none)
    body: Any = None
    fixed_chars: int = 0      # system prompt + tools (estimated)
    _tokens: int | None = None

    @property
    def prompt_tokens(self) -> int:
        """Estimated tokens the model will read (system + tools + messages), measured on first use
        (lengths only, at most ``MAX_MESSAGES`` messages, extrapolated beyond)."""
        if self._tokens is None:
            self._tokens = (self.fixed_chars + _messages_chars(self.body) + 3) // 4
        return self._tokens


def _ttl(block: Any) -> float:
    cc = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(cc, dict):
        return 0.0
    return 3600.0 if cc.get("ttl") == "1h" else 300.0


def _cut(text: str) -> str:
    if len(text) <= HEAD + TAIL:
        return text
    return text[:HEAD] + "\n…\n" + text[-TAIL:]


def _block_chars(block: Any) -> int:
    if not isinstance(block, dict):
        return 0
    t = block.get("text")
    if isinstance(t, str):
        return len(t)
    c = block.get("content")
    if isinstance(c, str):
        return len(c)
    if isinstance(c, list):
        return sum(len(b.get("text") or "") if isinstance(b, dict) and isinstance(b.get("text"), str) else 0
                   for b in c[:32])
    if block.get("type") == "tool_use":
        inp = block.get("input")
        return 64 + 8 * (len(inp) if isinstance(inp, (dict, list, str)) else 0)
    if block.get("type") in ("thinking", "redacted_thinking"):
        s = block.get("thinking") or block.get("data") or ""
        return len(s) if isinstance(s, str) else 0
    return 0


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(_block_chars(b) for b in content[:64])
    return 0


def _messages_chars(body: Any) -> int:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return 0
    n = len(messages)
    chars = 0
    for msg in messages[-MAX_MESSAGES:]:
        if isinstance(msg, dict):
            chars += _content_chars(msg.get("content"))
    return chars * n // MAX_MESSAGES if n > MAX_MESSAGES else chars


def view_of(body: dict[str, Any]) -> View:
    raw_messages = body.get("messages")
    messages = raw_messages if isinstance(raw_messages, list) else []
    tools_raw = body.get("tools")
    n_tools = len(tools_raw) if isinstance(tools_raw, list) else 0
    system = body.get("system")
    if isinstance(system, str):
        sys_chars, sys_blocks = len(system), [system]
    ttl = 0.0
    if isinstance(system, list):  # its first 16 blocks: their text (measured) and cache breakpoints
        sys_blocks = []
        sys_chars = 0
        for b in system[:16]:
            if isinstance(b, dict):
                t = b.get("text")
                if isinstance(t, str):
                    sys_blocks.append(t)
                    sys_chars += len(t)
                cc = b.get("cache_control")
                if isinstance(cc, dict):
                    ttl = max(ttl, 3600.0 if cc.get("ttl") == "1h" else 300.0)
    elif not isinstance(system, str):
        sys_chars, sys_blocks = 0, []
    harness = n_tools >= HARNESS_TOOLS or sys_chars >= HARNESS_SYSTEM_CHARS
    tool_chars = 0
    if n_tools:  # measured from a sample of 8: the tool list is never read whole
        sample = tools_raw[:8]  # type: ignore[index]
        total = 0
        for t in sample:
            if isinstance(t, dict):
                d = t.get("description")
                total += (len(d) if isinstance(d, (str, list, dict)) else 0) + 160
        tool_chars = int(total / len(sample) * n_tools)

    # the latest user text, walking back from the end (bounded), and what followed it
    user_text = ""
    tool_results = 0
    continuation = False
    images = documents = 0
    odd: list[str] = []
    thinking = False
    n = len(messages)
    for idx in range(n - 1, max(-1, n - 1 - 64), -1):
        msg = messages[idx]
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        content = msg.get("content")
        if role == "user":
            # its text blocks, tool results, images and documents, in one pass over its blocks
            results = 0
            if isinstance(content, str):
                texts = [content]
            else:
                texts = []
                if isinstance(content, list):
                    for b in content[:64]:
                        if isinstance(b, dict):
                            kind = b.get("type")
                            if kind == "text":
                                t = b.get("text")
                                if isinstance(t, str):
                                    texts.append(t)
                            elif kind == "tool_result":
                                results += 1
                            elif kind == "image":
                                images += 1
                            elif kind == "document":
                                documents += 1
            tool_results += results
            has_text = any(t.strip() for t in texts)
            if idx == n - 1 and results and not has_text:
                continuation = True
            if has_text:
                user_text = "\n".join(texts)
                break
        elif role == "assistant":
            if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
                                                 for b in content[:8]):
                thinking = True
        elif isinstance(role, str):
            if role not in odd:
                odd.append(role)
        else:
            if "?" not in odd:
                odd.append("?")

    user = _cut(user_text)
    if harness or not sys_blocks:
        task = user
    else:
        head = "\n".join(sys_blocks)[:SYSTEM_HEAD]
        task = head + "\n" + user

    if messages and isinstance(messages[-1], dict) and isinstance(messages[-1].get("content"), list):
        for b in messages[-1]["content"][-8:]:
            ttl = max(ttl, _ttl(b))
    if n_tools and isinstance(tools_raw[-1], dict):  # type: ignore[index]
        ttl = max(ttl, _ttl(tools_raw[-1]))  # type: ignore[index]
    mt = body.get("max_tokens")
    max_tokens = mt if isinstance(mt, int) and not isinstance(mt, bool) else 0
    side = None
    if n_tools == 0 and 0 < max_tokens <= SIDE_MAX_TOKENS and n <= 2:
        if user_text.strip().lower() == "quota" and max_tokens <= 8:
            side = "quota"
        elif sys_blocks:
            low = "\n".join(sys_blocks)[:SYSTEM_HEAD].lower()
            for name, rx in _SIDE:
                if rx.search(low):
                    side = name
                    break
    return View(task=task, user=user, harness=harness, side=side, tools=n_tools, tool_results=tool_results,
                turns=n, continuation=continuation, max_tokens=max_tokens,
                images=images, documents=documents, thinking=thinking, odd_roles=tuple(odd), cache_ttl=ttl,
                body=body, fixed_chars=sys_chars + tool_chars)
