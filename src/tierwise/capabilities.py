"""What a routed request needs from a model, and the cheapest configured tier that has it.

A request routed with ``auto`` or ``tierwise/<task>`` may need something the tier the router
chose lacks: forced tool use (Sonnet 5.5 rejects it), a final assistant turn (prefill, rejected
by the 5.5 models), ``thinking: {type: disabled}`` (Opus 5.5 rejects it), a context window or an
output limit, a beta or a content block type a model refuses, mid-conversation ``system``
messages. The facts come from the catalog (``data/models.toml`` flags), never from model names;
the request then goes to the cheapest configured tier (by price) that can serve it, and the
reason says so. Explicit model ids never come here: the API answers for itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from .catalog import Catalog, Model

__all__ = ["Needs", "needs_of", "lacks", "serving_tier", "display_name"]


@dataclass(frozen=True, slots=True)
class Needs:
    """The parts of a request that some models cannot serve."""

    prompt_tokens: int = 0            # estimated, about four characters a token
    max_tokens: int = 0
    forced_tool: str | None = None    # tool_choice {"type": "tool", "name": ...}: one named tool forced
    prefill: bool = False             # the last message is the assistant's
    thinking_disabled: bool = False
    system_messages: bool = False     # role "system" entries inside ``messages``
    betas: frozenset[str] = frozenset()
    block_types: frozenset[str] = frozenset()


class _Built:
    """:class:`Needs` built for the hot path: the same slots set directly, then the instance becomes a
    Needs (``__class__`` assignment; a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, several times the cost of the rest of :func:`needs_of`)."""

    __slots__ = ("prompt_tokens", "max_tokens", "forced_tool", "prefill", "thinking_disabled", "system_messages",
                 "betas", "block_types")

    def __init__(self, prompt_tokens: int, max_tokens: int, forced_tool: str | None, prefill: bool,
                 thinking_disabled: bool, system_messages: bool, betas: frozenset[str], block_types: frozenset[str]) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.forced_tool = forced_tool
        self.prefill = prefill
        self.thinking_disabled = thinking_disabled
        self.system_messages = system_messages
        self.betas = betas
        self.block_types = block_types


_NO_KINDS: frozenset[str] = frozenset()


# The betas under which the API takes role "system" entries inside ``messages``: the reference names the
# first; the real Claude Code 2.1.332 sends such entries under the second alone.
SYSTEM_MESSAGE_BETAS = frozenset({"mid-conversation-system-2026-04-07", "per-turn-control-2026-07-01"})
SYSTEM_MESSAGE_BETA = "mid-conversation-system-2026-04-07"


def missing_betas(body: dict[str, Any], betas: str | None) -> tuple[str, ...]:
    """Betas a ROUTED request needs added for what its body uses: tierwise chose the model, so enabling the
    feature the body relies on is its adaptation (Claude Code sends "system" entries without any enabling
    beta when it does not know the model id, e.g. ``auto``). Explicit model ids are never changed."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        return ()
    return () if SYSTEM_MESSAGE_BETAS & _betas(betas) else (SYSTEM_MESSAGE_BETA,)


def _betas(header: str | None) -> frozenset[str]:
    if not header:
        return frozenset()
    return frozenset(b.strip() for b in header.split(",") if b.strip())


def needs_of(body: dict[str, Any], text_chars: int, betas: str | None = None, *, block_types: bool = True,
             system_roles: bool = True) -> Needs:
    """What ``body`` needs; ``text_chars`` is the length of its text (as the router reads it).
    ``block_types=False`` / ``system_roles=False`` skip scanning the messages for content block types /
    role "system" entries (when no model tierwise routes to refuses any: the hot path stays short)."""
    choice = body.get("tool_choice")
    # forced tool use as the API refuses it (reference: Sonnet 5.5 rejects tool_choice type "tool")
    forced = "tool" if isinstance(choice, dict) and choice.get("type") == "tool" else None
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    last = messages[-1] if messages else None
    thinking = body.get("thinking")
    system_messages = system_roles and any(isinstance(m, dict) and m.get("role") == "system" for m in messages)
    kinds: set[str] = set()
    if block_types:
        for m in messages:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):
                for b in content:
                    t = b.get("type") if isinstance(b, dict) else getattr(b, "type", None)
                    if isinstance(t, str):
                        kinds.add(t)
        system = body.get("system")
        if isinstance(system, list):
            kinds.update(b["type"] for b in system if isinstance(b, dict) and isinstance(b.get("type"), str))
    mt = body.get("max_tokens")
    needs = _Built((text_chars + 3) // 4, mt if isinstance(mt, int) and not isinstance(mt, bool) else 0, forced,
                   isinstance(last, dict) and last.get("role") == "assistant",                 # prefill
                   isinstance(thinking, dict) and thinking.get("type") == "disabled",          # thinking_disabled
                   system_messages, _betas(betas), frozenset(kinds) if kinds else _NO_KINDS)
    needs.__class__ = Needs  # type: ignore[assignment]
    return needs  # type: ignore[return-value]


def display_name(model: "Model") -> str:
    """``claude-sonnet-5-5`` -> ``Sonnet 5.5`` (the catalog's ``display_name`` when it has one)."""
    if model.display_name:
        return model.display_name
    parts = model.id.removeprefix("claude-").split("-")
    if parts and parts[0].isalpha() and all(p.isdigit() for p in parts[1:]):
        return parts[0].capitalize() + (" " + ".".join(parts[1:]) if parts[1:] else "")
    return model.id


def lacks(model: "Model", needs: Needs, *, limits: bool = True) -> str | None:
    """Why ``model`` cannot serve ``needs`` (a short phrase for ``x-tierwise-reason``), or None.

    ``limits=False`` leaves out the output limit (``max_tokens`` above it can be lowered instead)."""
    if needs.forced_tool and model.rejects_forced_tool_use:
        return f"forced tool use: {display_name(model)} rejects it"
    if needs.prefill and model.rejects_prefill:
        return f"prefill (a final assistant turn): {display_name(model)} rejects it"
    if needs.thinking_disabled and model.rejects_thinking_disabled:
        return f"thinking disabled: {display_name(model)} rejects it"
    if needs.system_messages and model.rejects_system_messages:
        return f"mid-conversation system messages: {display_name(model)} rejects them"
    if needs.betas and model.rejects_betas:
        for beta in sorted(needs.betas.intersection(model.rejects_betas)):
            return f"beta {beta}: {display_name(model)} rejects it"
    if needs.block_types and model.rejects_block_types:
        for kind in sorted(needs.block_types.intersection(model.rejects_block_types)):
            return f"{kind} blocks: {display_name(model)} rejects them"
    if needs.prompt_tokens + needs.max_tokens > model.context_window:
        return (f"context window: the prompt (~{needs.prompt_tokens:,} tokens) and max_tokens ({needs.max_tokens:,}) "
                f"exceed {display_name(model)}'s {model.context_window:,}")
    if limits and needs.max_tokens > model.max_output:
        return f"max_tokens {needs.max_tokens:,}: {display_name(model)} writes at most {model.max_output:,}"
    return None


def _price_key(model: "Model") -> tuple[Any, ...]:
    r = model.price_at().rates
    return (r.input + r.output, r.input, model.id)


def serving_tier(catalog: "Catalog", needs: Needs, tiers: Iterable[str] | None = None,
                 allowed: Callable[[str], bool] | None = None, *, limits: bool = True) -> str | None:
    """The cheapest tier (by price) among ``tiers`` (default: every configured tier), and ``allowed``,
    whose model serves ``needs`` (``limits=False``: the output limit aside); None when none does."""
    pool = [t for t in (catalog.tier_order if tiers is None else tiers) if t in catalog.tiers
            and (allowed is None or allowed(t))]
    pool.sort(key=lambda t: _price_key(catalog.model_for_tier(t)))
    return next((t for t in pool if lacks(catalog.model_for_tier(t), needs, limits=limits) is None), None)
