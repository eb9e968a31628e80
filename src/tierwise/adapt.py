"""Adapting a request to the model the router chose.

A request written for one model and sent to another must still be valid there:

- Sonnet 5 and later (and the models flagged in the catalog) reject non-default ``temperature``,
  ``top_p`` and ``top_k``: they are dropped.
- They also reject manual extended thinking (``thinking: {type: enabled, budget_tokens}``): it
  becomes adaptive thinking (``{type: adaptive}``).
- Thinking blocks are bound to the model and conversation that produced them: earlier assistant
  ``thinking``/``redacted_thinking`` blocks are not carried to another model. Blocks known to have
  been written by the target model (``keep_thinking``, from :mod:`tierwise.affinity`) stay.
- ``max_tokens`` above the target's maximum output is lowered to it.
- What cannot be adapted (forced tool use on a model that rejects it) raises ``AdaptationError``,
  a clear 400, instead of a surprise from upstream.

Every change is listed; the proxy returns the list in ``x-tierwise-adapted``.
"""

from __future__ import annotations

from typing import Any, Callable

from .catalog import Model
from .errors import AdaptationError

__all__ = ["adapt_request"]

_THINKING_BLOCKS = ("thinking", "redacted_thinking")


def _block_type(block: Any) -> Any:
    """A content block's type: a dict on the wire, an SDK object when ``tierwise.Client`` passes
    a previous answer's ``content`` back."""
    return block.get("type") if isinstance(block, dict) else getattr(block, "type", None)


def adapt_request(body: dict[str, Any], target: Model, *, tier: str | None = None,
                  keep_thinking: Callable[[Any], bool] | None = None) -> list[str]:
    """Change ``body`` in place to suit ``target``; return what was changed (short tokens).

    ``keep_thinking(block)`` says whether a thinking block was written by ``target`` itself (then
    it stays); without it every earlier thinking block is stripped."""
    changes: list[str] = []
    if target.rejects_sampling_params:
        temp = body.get("temperature")
        if temp is not None and temp != 1 and temp != 1.0:
            del body["temperature"]
            changes.append("dropped:temperature")
        elif "temperature" in body:
            del body["temperature"]
        for key in ("top_p", "top_k"):
            if key in body:
                del body[key]
                changes.append(f"dropped:{key}")
    thinking = body.get("thinking")
    if target.rejects_manual_thinking and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        body["thinking"] = {"type": "adaptive"}
        changes.append("thinking:enabled->adaptive")
    messages = body.get("messages")
    if isinstance(messages, list):
        stripped = 0
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") != "assistant":
                continue
            content = msg.get("content")
            if isinstance(content, list) and any(_block_type(b) in _THINKING_BLOCKS for b in content):
                kept = [b for b in content if _block_type(b) not in _THINKING_BLOCKS
                        or (keep_thinking is not None and keep_thinking(b))]
                if len(kept) == len(content):
                    continue
                stripped += len(content) - len(kept)
                messages[i] = dict(msg, content=kept or [{"type": "text", "text": ""}])
        if stripped:
            changes.append(f"stripped:thinking_blocks={stripped}")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > target.max_output:
        body["max_tokens"] = target.max_output
        changes.append(f"max_tokens:{max_tokens}->{target.max_output}")
    choice = body.get("tool_choice")
    if target.rejects_forced_tool_use and isinstance(choice, dict) and choice.get("type") == "tool":
        where = f" (tier {tier})" if tier else ""
        raise AdaptationError(
            f"the router chose {target.id}{where}, which rejects forced tool use (tool_choice.type="
            f"{choice.get('type')!r}); send tool_choice {{\"type\": \"auto\"}}, name another task type, or pin a model"
        )
    return changes
