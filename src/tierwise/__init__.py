"""tierwise: route every Claude request to the cheapest tier that does it well.

The public API is small and imported lazily, so ``import tierwise`` does no work::

    import tierwise
    client = tierwise.Client()                  # wraps anthropic.Anthropic
    msg = client.messages.create(task="classify_intent", max_tokens=50,
                                 messages=[{"role": "user", "content": "refund please"}])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "Decision",
    "RouteRequest",
    "Settings",
    "load_settings",
    "load_catalog",
    "create_app",
    "TierwiseError",
]

_LAZY = {
    "Client": "tierwise.client",
    "AsyncClient": "tierwise.client",
    "Decision": "tierwise.routing.base",
    "RouteRequest": "tierwise.routing.base",
    "Settings": "tierwise.config",
    "load_settings": "tierwise.config",
    "load_catalog": "tierwise.catalog",
    "create_app": "tierwise.server.app",
    "TierwiseError": "tierwise.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tierwise' has no attribute {name!r}")
