"""The router interface: ``decide(request) -> Decision``, strategies registered by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, cast

if TYPE_CHECKING:
    from ..config import Settings
    from .signals import Signals

__all__ = ["Decision", "decision", "RouteRequest", "Router", "build_router", "available", "add_strategy", "check_options",
           "strategy_options", "STRATEGIES"]


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


class _Built:
    """A :class:`Decision` built for the hot path (see :func:`decision`): the same slots, set directly."""

    __slots__ = ("tier", "confidence", "reasons", "router", "model", "task", "scores", "cascade")

    def __init__(self, tier: str | None, confidence: float, reasons: tuple[str, ...], router: str, model: str | None,
                 task: str | None, scores: dict[str, float] | None, cascade: Any) -> None:
        self.tier = tier
        self.confidence = confidence
        self.reasons = reasons
        self.router = router
        self.model = model
        self.task = task
        self.scores = scores
        self.cascade = cascade


def decision(tier: str | None, confidence: float, reasons: tuple[str, ...], router: str, model: str | None = None,
             task: str | None = None, scores: dict[str, float] | None = None, cascade: Any = None) -> Decision:
    """``Decision(...)`` for the hot path: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__`` (several times the cost of this); the instance is built with the same slots
    and then becomes a Decision (``__class__`` assignment: the layouts match, see the test)."""
    d = _Built(tier, confidence, reasons, router, model, task, scores, cascade)
    d.__class__ = Decision  # type: ignore[assignment]
    return d  # type: ignore[return-value]


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
        return cast(str, self._text)

    @property
    def last_user_text(self) -> str:
        if self._last is None:
            self._collect()
        return cast(str, self._last)

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


# The strategies, by name: the ``module:attribute`` of each factory, imported only when first asked
# for (heavy strategies cost nothing at start-up unless configured). This table is the one place a
# strategy is registered; ``add_strategy`` adds one at run time (a plugin, a test). A factory is
# called as ``factory(settings, **options)``; its keyword parameters are its options, checked
# before the call (one taking ``**options`` lists them in its module's ``OPTIONS`` mapping).
STRATEGIES: dict[str, str | Callable[..., Router]] = {
    "registry": "tierwise.routing.basic:RegistryRouter",
    "fixed": "tierwise.routing.basic:FixedRouter",
    "random": "tierwise.routing.basic:RandomRouter",
    "heuristic": "tierwise.routing.heuristic:HeuristicRouter",
    "learned": "tierwise.routing.learned:LearnedRouter",
    "llm": "tierwise.routing.llm:LLMRouter",
    "cascade": "tierwise.cascade.router:CascadeRouter",
    "prior": "tierwise.routing.prior:PriorRouter",
}

# keyword arguments the caller supplies, not options a user writes: given only to factories that take them
CONTEXT = ("upstream",)


def add_strategy(name: str, factory: "str | Callable[..., Router]") -> None:
    """Make a strategy available under ``name``: a factory, or its ``"module:attribute"``."""
    STRATEGIES[name] = factory


def available() -> list[str]:
    return sorted(STRATEGIES)


def strategy_factory(name: str) -> Callable[..., Router]:
    """The factory of strategy ``name``, imported on first use."""
    from ..errors import ConfigError

    target = STRATEGIES.get(name)
    if target is None:
        raise ConfigError(f"unknown routing strategy {name!r} (available: {', '.join(available())})")
    if isinstance(target, str):
        import importlib

        module, _, attr = target.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"routing strategy {name!r} is not available: {exc}") from None
        STRATEGIES[name] = target = factory
    return target


def strategy_options(name: str) -> frozenset[str] | None:
    """The options strategy ``name`` takes (None: it does not say)."""
    import inspect
    import sys

    factory = strategy_factory(name)
    params = list(inspect.signature(factory).parameters.values())[1:]  # after ``settings``
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - set(CONTEXT)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        declared = getattr(factory, "OPTIONS", None) or getattr(sys.modules.get(factory.__module__), "OPTIONS", None)
        if declared is None:
            return None
        names |= set(declared)
    return frozenset(names)


def check_options(name: str, options: Any, where: str | None = None) -> None:
    """Refuse an option strategy ``name`` does not take, naming the key and the valid ones."""
    from collections.abc import Mapping

    from ..errors import ConfigError

    where = where or f"routing.options.{name}"
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: expected a table of options, got {options!r}")
    valid = strategy_options(name)
    if valid is None:
        return
    for key in options:
        if key not in valid:
            raise ConfigError(f"{where}.{key}: unknown option of strategy {name!r} "
                              f"(valid: {', '.join(sorted(valid)) or '(none)'})")


def build_router(name: str, settings: "Settings", *, upstream: Any = None, where: str | None = None,
                 **options: Any) -> Router:
    """Instantiate the strategy ``name`` (``heuristic``, ``registry``, ``learned``...).

    ``options`` come from ``[routing.options.<name>]`` (``where`` names them in errors); an option the
    strategy does not take is a ``ConfigError``. Strategies that call a model also get ``upstream``
    (the same seam as the proxy's)."""
    import inspect

    factory = strategy_factory(name)
    check_options(name, options, where)
    if "upstream" in inspect.signature(factory).parameters:
        options["upstream"] = upstream
    return factory(settings, **options)
