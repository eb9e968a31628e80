"""Upstreams: the one seam through which tierwise reaches a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from .base import Upstream, UpstreamResponse, call_json

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Upstream", "UpstreamResponse", "call_json", "build_upstream"]


def build_upstream(settings: "Settings", environ: Mapping[str, str] | None = None) -> Upstream:
    """The upstream the settings ask for: the Anthropic API (or a gateway at ``upstream.url``),
    or the offline upstream when no API key is set and ``upstream.kind`` is ``auto``."""
    import os

    env = os.environ if environ is None else environ
    up = settings.upstream
    kind = settings.upstream_kind(env)
    if kind == "offline":
        from .offline import OfflineUpstream

        o = up["offline"]
        return OfflineUpstream(latency_scale=float(o.get("latency_scale", 1.0)), seed=int(o.get("seed", 0)),
                               fault_rate=float(o.get("fault_rate", 0.0)), fault_status=int(o.get("fault_status", 529)))
    from .anthropic import AnthropicUpstream

    return AnthropicUpstream(up["url"], env.get(up["api_key_env"]) or None, timeout=float(up["timeout"]),
                             connect_timeout=float(up["connect_timeout"]), max_connections=int(up["max_connections"]))
