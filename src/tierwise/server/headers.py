"""Response headers of the proxy: header-safe values, the ``x-tierwise-*`` headers of a plan, the
upstream headers passed on, and those of an error answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..errors import APIError
from ..upstream.base import FORWARD_RESPONSE_HEADERS, RATELIMIT_PREFIX

if TYPE_CHECKING:
    from ..dispatch import Plan

__all__ = ["Headers", "JSON", "SSE", "header_value", "plan_headers", "forward_headers", "error_headers"]

Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
SSE: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

# control characters (a header value may not hold them: uvicorn refuses the response) -> space
_NO_CTL = bytes(32 if b < 32 and b != 9 or b == 127 else b for b in range(256))


def header_value(value: str, limit: int = 512) -> bytes:
    """``value`` as a header value: cut to ``limit`` characters, latin-1, control characters as spaces."""
    return value[:limit].encode("latin-1", "replace").translate(_NO_CTL)


_NAMES: dict[str, bytes] = {}


def _name(value: str) -> bytes:
    """``header_value`` for the few names a response repeats (model ids, tiers, router, upstream, task), remembered."""
    out = _NAMES.get(value)
    if out is None:
        out = header_value(value)
        if len(_NAMES) < 4096:  # task names and passed-through model ids come from callers: keep it bounded
            _NAMES[value] = out
    return out


def plan_headers(plan: "Plan", upstream: str, model_id: str | None = None, tier: str | None = None) -> Headers:
    d = plan.decision
    out = [
        (b"x-tierwise-model", _name(model_id or plan.model_id)),
        (b"x-tierwise-router", _name(d.router)),
        (b"x-tierwise-reason", header_value(d.reason_text())),
        (b"x-tierwise-upstream", _name(upstream)),
    ]
    tier = tier or d.tier
    if tier:
        out.append((b"x-tierwise-tier", _name(tier)))
    if plan.task:
        out.append((b"x-tierwise-task", _name(plan.task)))
    if plan.routed:
        out.append((b"x-tierwise-confidence", b"%.2f" % d.confidence))
    if plan.adapted:
        out.append((b"x-tierwise-adapted", header_value(",".join(plan.adapted))))
    return out


def forward_headers(headers: Mapping[str, str]) -> Headers:
    """The upstream's headers a client reads (``request-id``, ``anthropic-ratelimit-*``...)."""
    out = []
    for k, v in headers.items():
        if k in FORWARD_RESPONSE_HEADERS or k.startswith(RATELIMIT_PREFIX):
            out.append((k.encode("latin-1"), header_value(v)))
    return out


def error_headers(exc: APIError, request_id: str, *, may_retry: bool = True) -> Headers:
    """The headers of an error answer, besides content-type and length.

    An upstream's error keeps its own headers (``request-id``, ``anthropic-ratelimit-*``, ``retry-after``,
    ``retry-after-ms``, ``anthropic-organization-id``, ``x-should-retry``); tierwise's own errors get
    ``request-id`` = tierwise's id, so the SDKs' ``request_id`` / ``requestID`` are set either way.
    ``x-tierwise-request-id`` is always tierwise's id. ``may_retry=False`` answers ``x-should-retry: false``
    (tierwise already retried: see ``resilience.retry.client_may_retry``)."""
    out = [(b"x-tierwise-request-id", request_id.encode())]
    hdrs = exc.headers
    if "request-id" not in hdrs:
        out.append((b"request-id", request_id.encode()))
    for k, v in hdrs.items():
        if (k in FORWARD_RESPONSE_HEADERS and k != "x-should-retry") or k.startswith(RATELIMIT_PREFIX):
            out.append((k.encode("latin-1"), header_value(str(v))))
    if not may_retry:
        out.append((b"x-should-retry", b"false"))
    elif "x-should-retry" in hdrs:
        out.append((b"x-should-retry", header_value(str(hdrs["x-should-retry"]))))
    return out
