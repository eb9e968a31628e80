"""The attempt loop: send to the first target, retry by the policy, fall back along the chain.

Rules (the issue's "three failed attempts on every request" complaint is the reason for most):

- at most ``max_attempts`` upstream calls per request, and at most ``max_retry_time`` seconds
  spent waiting between them;
- ``retries_per_target`` retries on one target, then the next target in the chain;
- a target whose circuit is open is skipped without a call (recorded as ``circuit_open``); when
  every target is skipped the caller gets a 529 with ``retry-after`` = the time to the half-open probe;
- a non-retryable error (any 4xx but 408/409/429) from the primary ends the loop at once: the
  request is invalid and would fail anywhere. From a fallback it is about that fallback (Bedrock
  access denied, a model not enabled in the region, its credentials): it ends that target only;
- when every target fails, the caller gets the first retryable (server-side) error an upstream
  returned, normally the primary's 529/5xx, so a client told to retry is never shown a fallback's
  403/404/400 instead; with none (the primary skipped for its open circuit, the fallbacks refusing)
  the circuit-open 529. The fallbacks' failures are in ``attempts``;
- a stream is retried only before its first byte reaches the client: the loop reads the first
  chunk itself; once it has been handed over, nothing is ever replayed.

Every attempt, failed or not, is appended to ``attempts`` (kept by the caller, so it survives a
cancellation) with its model, upstream, status, error type, latency and cost.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping

from ..cost import price
from ..errors import APIError, OverloadedError, UpstreamConnectionError
from ..record import Attempt
from ..upstream.sse import StreamMeter
from .breaker import CircuitBreaker, counts_as_failure
from .retry import RetryPolicy, retry_delay

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..upstream.base import UpstreamResponse
    from .fallback import Target

__all__ = ["AttemptLoop", "Outcome"]

_STREAM_ERROR_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "timeout_error": 504, "api_error": 500}


@dataclass(slots=True)
class Outcome:
    resp: "UpstreamResponse"
    target: "Target"
    index: int                     # position of the answering target in the chain (0 = primary)
    first: bytes | None = None     # streams: the first chunk, already read
    meter: StreamMeter | None = None
    # streams: the first chunk is fed to ``meter`` by whoever sends it on, after sending it (``feed_first``);
    # a first chunk that may hold an ``error`` event is fed here, before anything reaches the client
    unfed: bool = False
    first_at: float = 0.0          # perf_counter() when the first chunk arrived

    def feed_first(self) -> None:
        """Meter the first chunk if the loop left it unfed (its first token dated to its arrival)."""
        meter = self.meter
        if self.unfed and meter is not None:
            self.unfed = False
            meter.feed(self.first or b"")
            if meter.first_token_at is not None:
                meter.first_token_at = self.first_at


class AttemptLoop:
    def __init__(self, *, policy: RetryPolicy, breaker: CircuitBreaker | None, catalog: "Catalog", max_attempts: int = 3,
                 max_retry_time: float = 15.0, retries_per_target: int = 1,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.policy = policy
        self.breaker = breaker
        self.catalog = catalog
        self.max_attempts = max(1, int(max_attempts))
        self.max_retry_time = float(max_retry_time)
        self.retries_per_target = max(0, int(retries_per_target))
        self.sleep = sleep

    async def run(self, chain: list["Target"], *, path: str, headers: Mapping[str, str], stream: bool,
                  attempts: list[Attempt], max_calls: int | None = None, day: _dt.date | None = None) -> Outcome:
        """``max_calls`` lowers ``max_attempts`` for this request (what is left of a client's retry budget);
        ``day`` is the call's UTC day (a paid failure is priced on it)."""
        breaker = self.breaker
        limit = self.max_attempts if max_calls is None else max(1, min(self.max_attempts, max_calls))
        calls = 0
        waited = 0.0
        reported: APIError | None = None  # the first retryable failure: what the caller gets if all fail
        skipped_retry_in: float | None = None
        for index, target in enumerate(chain):
            key = target.key
            if breaker is not None and not breaker.allow(key):
                wait = breaker.retry_in(key)
                skipped_retry_in = wait if skipped_retry_in is None else min(skipped_retry_in, wait)
                attempts.append(_row(target, None, "circuit_open", 0.0, 0))
                continue
            retries = 0
            while True:
                calls += 1
                t0 = time.perf_counter()
                status: int | None
                try:
                    resp = await target.upstream.send(path, target.body, headers=headers, stream=stream, model=target.model_id)
                    first, meter, unfed = None, None, False
                    if stream:
                        first, meter = await _first_chunk(resp), StreamMeter()
                        # only a chunk naming "error" can hold an error event (the meter parses no other
                        # line for one): that one is read now; any other is metered once it is sent on
                        unfed = b'"error"' not in first
                        if not unfed:
                            meter.feed(first)
                    if meter is None or meter.error_type is None:  # an answer (a stream: its first chunk is no error)
                        now = time.perf_counter()
                        attempts.append(_row(target, 200 if stream else resp.status, None, (now - t0) * 1000.0, 0))
                        if breaker is not None:
                            breaker.record(key, True)
                        return Outcome(resp, target, index, first=first, meter=meter, unfed=unfed, first_at=now)
                    await resp.aclose()
                    status = _STREAM_ERROR_STATUS.get(meter.error_type, 500)
                    err: APIError = _stream_error(status, meter, resp.headers)
                    cost = price(self.catalog, meter.priced_model or target.model_id, meter.usage, day=day) or 0
                except asyncio.CancelledError:
                    attempts.append(_row(target, 499, "client_disconnected", (time.perf_counter() - t0) * 1000.0, 0))
                    if breaker is not None:
                        breaker.release(key)
                    raise
                except APIError as exc:
                    err, cost = exc, 0
                    status = None if isinstance(exc, UpstreamConnectionError) else exc.status
                except Exception:
                    # not an upstream answer (a bug, a signer or SDK error): list the call, free a
                    # half-open probe slot (else the circuit stays half-open refusing every call), re-raise
                    attempts.append(_row(target, None, "api_error", (time.perf_counter() - t0) * 1000.0, 0))
                    if breaker is not None:
                        breaker.release(key)
                    raise
                attempts.append(_row(target, err.status, err.error_type, (time.perf_counter() - t0) * 1000.0, cost))
                if breaker is not None:
                    if counts_as_failure(status):
                        breaker.record(key, False)
                    else:
                        breaker.release(key)  # a 4xx/429 says nothing about the upstream's health
                delay = retry_delay(status, err.headers, retries, self.policy)
                if delay is None and err.headers.get("x-should-retry", "").lower() != "false" and \
                        (status is None or status >= 500 or status in (408, 409, 429)):
                    delay = -1.0  # retryable, but not here (e.g. retry-after past the cap): next target only
                if delay is None:
                    if index == 0:
                        raise err  # the request itself was refused: it would fail anywhere
                    if calls >= limit:
                        raise _all_failed(reported, skipped_retry_in, chain)
                    break  # a fallback refusing for its own reasons: the next target, the primary's error kept
                reported = reported or err
                if calls >= limit:
                    raise reported
                if delay >= 0 and retries < self.retries_per_target and waited + delay <= self.max_retry_time \
                        and (breaker is None or breaker.allow(key)):
                    retries += 1
                    waited += delay
                    if delay > 0:
                        await self.sleep(delay)
                    continue
                break  # next target
        raise _all_failed(reported, skipped_retry_in, chain)


def _all_failed(reported: APIError | None, skipped_retry_in: float | None, chain: list["Target"]) -> APIError:
    """What the caller gets when no target answered: the first retryable error, else the open circuit's 529."""
    if reported is not None:
        return reported
    wait = skipped_retry_in or 0.0
    model = chain[0].model_id
    return OverloadedError(f"upstream {chain[0].upstream.name} for {model} is failing: circuit open, next probe in "
                           f"{wait:.1f}s", headers={"retry-after": str(max(1, math.ceil(wait)))})


async def _first_chunk(resp: "UpstreamResponse") -> bytes:
    assert resp.chunks is not None
    try:
        first = await resp.chunks.__anext__()
    except StopAsyncIteration:
        await resp.aclose()
        raise UpstreamConnectionError("upstream closed the stream before the first event") from None
    except BaseException:
        await resp.aclose()
        raise
    return first


def _stream_error(status: int, meter: StreamMeter, headers: Mapping[str, str] | None = None) -> APIError:
    """A stream that opened with an ``error`` event: the error, with the stream's headers (its request-id)."""
    from ..errors import error_body, error_for_status

    return error_for_status(status, error_body(meter.error_type or "api_error", meter.error_message or "stream error"),
                            headers)


def _row(target: "Target", status: int | None, error_type: str | None, latency_ms: float, cost: int) -> Attempt:
    return Attempt(target.model_id, target.upstream.name, status, error_type, round(latency_ms, 3), cost)
