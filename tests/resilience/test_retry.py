"""The retry policy as a pure function."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.resilience.retry import RetryPolicy, is_retryable_status, parse_retry_after, retry_delay

P = RetryPolicy(backoff_base=0.5, backoff_max=8.0, max_retry_after=10.0, jitter=0.25)


@pytest.mark.parametrize("status", [None, 408, 409, 429, 500, 502, 503, 504, 529, 599])
def test_retryable(status):
    assert is_retryable_status(status)
    assert retry_delay(status, {}, 0, P, rand=lambda: 0.0) == 0.5


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 405, 413, 422, 431, 499])
def test_other_4xx_never_retried(status):
    assert not is_retryable_status(status)
    assert retry_delay(status, {}, 0, P) is None


def test_exponential_backoff_with_cap_and_jitter():
    assert [retry_delay(529, {}, n, P, rand=lambda: 0.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert retry_delay(529, {}, 1, P, rand=lambda: 1.0) == pytest.approx(0.75)


def test_retry_after_forms():
    assert retry_delay(429, {"retry-after": "3"}, 0, P) == 3.0
    assert retry_delay(429, {"retry-after-ms": "250", "retry-after": "9"}, 0, P) == 0.25  # ms wins
    date = email.utils.formatdate(1_000_005.0, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=lambda: 1_000_000.0) == pytest.approx(5.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    # past the cap: not retried here (the caller falls back or hands it to the client)
    assert retry_delay(429, {"retry-after": "30"}, 0, P) is None


def test_x_should_retry_overrides():
    assert retry_delay(400, {"x-should-retry": "true"}, 0, P, rand=lambda: 0.0) == 0.5
    assert retry_delay(529, {"x-should-retry": "false"}, 0, P) is None


@given(status=st.one_of(st.none(), st.integers(100, 999)), retry=st.integers(0, 50),
       ra=st.one_of(st.none(), st.text(max_size=40)), rand=st.floats(0, 1))
def test_property_never_negative_never_past_caps(status, retry, ra, rand):
    headers = {"retry-after": ra} if ra is not None else {}
    d = retry_delay(status, headers, retry, P, rand=lambda: rand)
    if d is not None:
        assert 0.0 <= d <= max(P.backoff_max, P.max_retry_after)
    if status is not None and 400 <= status < 500 and status not in (408, 409, 429):
        assert d is None
