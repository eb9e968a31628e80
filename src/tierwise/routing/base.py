"""The router interface: ``decide(request) -> Decision``, strategies registered by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from ..config import Settings
    from .signals import Signals

__all__ = ["Decision", "RouteRequest", "Router", "register", "build_router", "available", "STRATEGY_MODULES"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request goes and why.

    ``tier`` is a capability tier (``fast``/``balanced``/``deep``/...); ``model`` is set
    when the decision names a model directly (explicit pass-through, or a router trained on
    an arbitrary ladder). ``reasons`` are short sentences a person understands.
    """

    tier: str | None
    confidence: float = 1.0
    reasons: tuple[str, ...] = ()
    router: str = ""
    model: str | None = None
    task: str | None = None
    scores: dict[str, float] | None = field(default=None, compare=False)
    # set by the ``cascade`` strategy: the tiers to escalate through and the verifiers to pass
    cascade: Any = field(default=None, compare=False)

    def reason_text(self) -> str:
        return "; ".join(self.reasons)


def _block_text(block: Any) -> str:
    text = block.get("text") if isinstance(block, dict) else None
    return text if isinstance(text, str) else ""


class RouteRequest:
    """A Messages API request body as a router sees it; text and signals computed once, lazily."""

    __slots__ = ("body", "task", "_text", "_signals", "_last")

    def __init__(self, body: dict[str, Any], task: str | None = None) -> None:
        self.body = body
        self.task = task
        self._text: str | None = None
        self._last: str | None = None
        self._signals: "Signals | None" = None

    @classmethod
    def from_prompt(cls, prompt: str, task: str | None = None, **extra: Any) -> "RouteRequest":
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 1024, **extra}
        return cls(body, task)

    def _collect(self) -> None:
        # any body the API might accept (or refuse for itself) is read without an exception: system
        # prompts as a string or blocks, role "system" messages, block types routing has never seen
        parts: list[str] = []
        system = self.body.get("system")
        if isinstance(system, str):
            parts.append(system)
        elif isinstance(system, list):
            parts.extend(_block_text(b) for b in system)
        last = ""
        messages = self.body.get("messages")
        for msg in messages if isinstance(messages, list) else ():
            if not isinstance(msg, dict):
                continue
            content = msg.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = "\n".join(t for b in content if isinstance(b, dict) and b.get("type") == "text"
                                  and isinstance(t := b.get("text"), str))
            else:
                text = ""
            parts.append(text)
            if msg.get("role") == "user":
                last = text
        self._text = "\n".join(parts)
        self._last = last

    @property
    def text(self) -> str:
        """All text the model would read: system prompt and every message."""
        if self._text is None:
            self._collect()
        return self._text  # type: ignore[return-value]

    @property
    def last_user_text(self) -> str:
        if self._last is None:
            self._collect()
        return self._last  # type: ignore[return-value]

    @property
    def signals(self) -> "Signals":
        if self._signals is None:
            from .signals import extract

            self._signals = extract(self)
        return self._signals


class Router(Protocol):
    """A routing strategy. Strategies that must call a model to decide (``llm``) also offer
    ``async adecide(request)``; the proxy awaits it when present."""

    name: str

    def decide(self, request: RouteRequest) -> Decision: ...


_REGISTRY: dict[str, Callable[..., Router]] = {}

# Strategies that live in their own module, imported only when first asked for (so heavy
# strategies cost nothing at start-up unless configured).
STRATEGY_MODULES: dict[str, str] = {
    "registry": "tierwise.routing.basic",
    "fixed": "tierwise.routing.basic",
    "random": "tierwise.routing.basic",
    "heuristic": "tierwise.routing.heuristic",
    "learned": "tierwise.routing.learned",
    "llm": "tierwise.routing.llm",
    "cascade": "tierwise.cascade.router",
    "prior": "tierwise.routing.prior",
}


def register(name: str) -> Callable[[Callable[..., Router]], Callable[..., Router]]:
    """Class decorator: make a strategy available under ``name``.

    The factory is called as ``factory(settings, **options)``.
    """

    def deco(factory: Callable[..., Router]) -> Callable[..., Router]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    return sorted(set(_REGISTRY) | set(STRATEGY_MODULES))


def build_router(name: str, settings: "Settings", **options: Any) -> Router:
    """Instantiate the strategy ``name`` (``heuristic``, ``registry``, ``learned``...).

    ``options`` come from ``[routing.options.<name>]``; strategies that call a model also get
    ``upstream=`` (the same seam as the proxy's) and ignore what they do not use."""
    if name not in _REGISTRY and name in STRATEGY_MODULES:
        import importlib

        try:
            importlib.import_module(STRATEGY_MODULES[name])
        except ModuleNotFoundError as exc:
            from ..errors import ConfigError

            raise ConfigError(f"routing strategy {name!r} is not available: {exc}") from None
    if name not in _REGISTRY:
        from ..errors import ConfigError

        raise ConfigError(f"unknown routing strategy {name!r} (available: {', '.join(available())})")
    return _REGISTRY[name](settings, **options)
