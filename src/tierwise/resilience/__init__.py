"""Keeping the proxy working when the upstream is not: retries, fallbacks, circuit breaking,
plus the wiring of the per-request guards (keys, budgets, limits: ``tierwise.admission``).

``Runtime`` is what the proxy holds (``state.guard``); with nothing configured it costs a few
attribute reads per request.
"""

from .retry import RetryPolicy, is_retryable_status, parse_retry_after, retry_delay
from .runtime import Runtime

__all__ = ["RetryPolicy", "retry_delay", "is_retryable_status", "parse_retry_after", "Runtime"]
