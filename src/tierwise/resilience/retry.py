"""The retry policy as one pure function: may this failure be retried, and after how long?

Mirrors the official SDK's semantics (see shared/reference/claude-platform.md) so a client
behind tierwise sees the same behaviour it would see talking to the API:

- retried: connection errors and timeouts (``status=None`` or 408/504), 408, 409, 429, every
  500-class status and 529 (``overloaded_error``); never another 4xx;
- ``x-should-retry: true|false`` from the upstream overrides the status rule;
- the wait honours ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date), up to
  ``max_retry_after``; an upstream asking for longer is not retried on the same target (the
  caller falls back or returns the error, with its ``retry-after``, at once);
- otherwise exponential backoff ``base * 2**retry`` capped at ``max_backoff``, with up to 25%
  jitter taken off (the SDK's jitter), so retries from many clients spread out.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import random
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["RetryPolicy", "retry_delay", "is_retryable_status", "parse_retry_after", "call_budget", "client_may_retry"]

RETRYABLE_4XX = frozenset((408, 409, 429))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 2.0
    jitter: float = 0.25


def is_retryable_status(status: int | None) -> bool:
    """``None`` is a transport failure (connection refused/reset, timeout before an answer)."""
    return status is None or status in RETRYABLE_4XX or status >= 500


def parse_retry_after(headers: Mapping[str, str], now: Callable[[], float] | None = None) -> float | None:
    """Seconds the upstream asked us to wait, from ``retry-after-ms`` or ``retry-after``; None if absent/bad."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            v = float(ms) / 1000.0
            if v >= 0 and v == v:
                return v
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        v = float(ra)
        return v if v >= 0 and v == v else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    t = now() if now is not None else _dt.datetime.now(_dt.UTC).timestamp()
    return max(0.0, when.timestamp() - t)


def retry_delay(status: int | None, headers: Mapping[str, str] | None, retry: int, policy: RetryPolicy = RetryPolicy(),
                *, rand: Callable[[], float] = random.random, now: Callable[[], float] | None = None) -> float | None:
    """Seconds to wait before retry number ``retry`` (0 = the first retry), or None: do not retry.

    ``status`` is the upstream's HTTP status, None for a transport failure; ``headers`` its
    response headers (lower-case names). Pure apart from ``rand``/``now``, which tests pin.
    """
    headers = headers or {}
    should = (headers.get("x-should-retry") or "").strip().lower()
    if should == "false":
        return None
    if should != "true" and not is_retryable_status(status):
        return None
    asked = parse_retry_after(headers, now)
    if asked is not None:
        if asked > policy.max_retry_after:
            return None
        return asked
    backoff = min(policy.backoff_base * (2.0 ** max(retry, 0)), policy.backoff_max)
    return backoff * (1.0 - policy.jitter * rand())


def call_budget(max_attempts: int, client_retries: int) -> int:
    """Upstream calls tierwise may spend on this attempt of one logical client call.

    ``client_retries`` is the client's own retry number (the SDKs send ``x-stainless-retry-count``;
    0 for other clients). Each earlier attempt cost one upstream call (tierwise let the client retry
    only then, see ``client_may_retry``), so the whole logical call stays within ``max_attempts``;
    at least one call is always made (a client that retries past the budget is not refused)."""
    return max(1, max_attempts - max(0, client_retries))


def client_may_retry(calls: int, client_retries: int, max_attempts: int) -> bool:
    """May the client retry the error tierwise is answering with? (False -> ``x-should-retry: false``.)

    No when tierwise already retried (``calls`` > 1: the client's retry would start the retries over)
    or when the logical call's budget is spent (earlier attempts + this one's calls >= ``max_attempts``).
    Otherwise the client's own rule applies: one upstream call, nothing retried here, let the SDK retry."""
    if calls > 1:
        return False
    return calls == 0 or max(0, client_retries) + calls < max_attempts
