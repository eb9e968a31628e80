"""What the real Messages API refuses, as the fakes apply it (the offline upstream, so the HTTP fake too).

The facts are those of ``shared/reference/claude-platform.md`` (2026-11-21 and 2026-12-02 sections).
They are kept here, by model id, on purpose apart from the catalog's ``rejects_*`` flags: a fake that
read tierwise's own catalog could never catch a wrong flag in it. Each refusal is the API's: HTTP 400,
``invalid_request_error``, and the wording below (the one place tests and other modules take it from).
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["refusal", "betas_of", "MID_CONVERSATION_SYSTEM_BETA", "SYSTEM_MESSAGE_BETAS", "UNEXPECTED_SYSTEM_ROLE", "PREFILL_REFUSED",
           "SAMPLING_REFUSED", "THINKING_BUDGET_REFUSED", "FORCED_TOOL_REFUSED", "THINKING_DISABLED_REFUSED"]

MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"
# Either beta lets ``role: "system"`` entries into ``messages``: the reference names the first; the real
# Claude Code 2.1.332 sends such entries under the second alone (its first request of every session), and a
# client built against the real API would not open every session with a refused request.
SYSTEM_MESSAGE_BETAS = frozenset({MID_CONVERSATION_SYSTEM_BETA, "per-turn-control-2026-07-01"})

# The API's wording for a "system" entry in ``messages`` (Claude Code keys its retry on "Unexpected role"
# and "input message role").
UNEXPECTED_SYSTEM_ROLE = ('messages.{i}.role: Unexpected role "system". The Messages API accepts a top-level `system` '
                          'parameter, not "system" as an input message role.')
# The reference says the 5.5 models reject a final assistant turn but does not quote the message;
# this is the wording tierwise uses for it, everywhere.
PREFILL_REFUSED = ("messages: This model does not support assistant message prefill. "
                   "The conversation must end with a user message.")
SAMPLING_REFUSED = "{param}: This model does not support setting `{param}`; omit it to use the default."
THINKING_BUDGET_REFUSED = ('thinking.type: "enabled" with budget_tokens is not supported for this model; '
                           'use thinking.type "adaptive" and output_config.effort instead.')
FORCED_TOOL_REFUSED = ('tool_choice.type: forcing a tool ("{kind}") is not supported for this model; '
                       'use tool_choice {{"type": "auto"}}.')
THINKING_DISABLED_REFUSED = ('thinking.type: "disabled" is not supported for this model; '
                             'omit `thinking` and lower output_config.effort instead.')

# model ids (and their dated/suffixed forms) by what the API refuses of them
_FIVE_FIVE = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5")
_SAMPLING_AND_BUDGETS = ("claude-sonnet-5", *_FIVE_FIVE)   # "Sonnet 5 and later" + "all three 5.5 models"
_NO_FORCED_TOOL = ("claude-sonnet-5-5",)
_NO_THINKING_DISABLED = ("claude-opus-5-5",)


def _is(model: str, family: tuple[str, ...]) -> bool:
    for base in family:  # the id itself or a dated form (claude-sonnet-5-20260101); claude-sonnet-5-5 is not -5
        if model == base or (model.startswith(base + "-") and len(model) == len(base) + 9 and model[-8:].isdigit()):
            return True
    return False


def betas_of(headers: Mapping[str, str]) -> frozenset[str]:
    return frozenset(b.strip() for b in (headers.get("anthropic-beta") or "").split(",") if b.strip())


def _text_not_a_string(system: Any, messages: list[Any]) -> str | None:
    """A text block whose ``text`` is not a string: the API's schema check (pydantic wording)."""
    places = [("system", system)] + [(f"messages.{i}.content", m.get("content")) for i, m in enumerate(messages)
                                     if isinstance(m, dict)]
    for where, blocks in places:
        for j, b in enumerate(blocks if isinstance(blocks, list) else ()):
            if isinstance(b, dict) and b.get("type") == "text" and not isinstance(b.get("text"), str):
                return f"{where}.{j}.text: Input should be a valid string"
    return None


def refusal(path: str, params: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The message of the 400 the real API would answer ``params`` with, or None."""
    route = path.split("?", 1)[0]
    if route not in ("/v1/messages", "/v1/messages/count_tokens"):
        return None
    model = params.get("model")
    model = model if isinstance(model, str) else ""
    messages = params.get("messages")
    messages = messages if isinstance(messages, list) else []
    bad_text = _text_not_a_string(params.get("system"), messages)
    if bad_text is not None:
        return bad_text
    if not SYSTEM_MESSAGE_BETAS & betas_of(headers):
        for i, m in enumerate(messages):
            if isinstance(m, dict) and m.get("role") == "system":
                return UNEXPECTED_SYSTEM_ROLE.format(i=i)
    if route.endswith("/count_tokens"):
        return None  # counting tokens does not run the model: only the shape of messages is checked
    if _is(model, _FIVE_FIVE) and messages:
        last = messages[-1]
        if isinstance(last, dict) and last.get("role") == "assistant":
            return PREFILL_REFUSED
    if _is(model, _SAMPLING_AND_BUDGETS):
        temp = params.get("temperature")
        if temp is not None and temp != 1:
            return SAMPLING_REFUSED.format(param="temperature")
        for p in ("top_p", "top_k"):
            if params.get(p) is not None:
                return SAMPLING_REFUSED.format(param=p)
        thinking = params.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            return THINKING_BUDGET_REFUSED
    choice = params.get("tool_choice")
    if _is(model, _NO_FORCED_TOOL) and isinstance(choice, dict) and choice.get("type") == "tool":
        return FORCED_TOOL_REFUSED.format(kind="tool")
    thinking = params.get("thinking")
    if _is(model, _NO_THINKING_DISABLED) and isinstance(thinking, dict) and thinking.get("type") == "disabled":
        return THINKING_DISABLED_REFUSED
    return None
