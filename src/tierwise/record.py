"""One call's ledger row and its attempts, typed: ``CallRecord`` owns the ``calls`` row.

A ``CallRecord`` has one field per column of the ``calls`` table (``tierwise.ledger.schema``; a test
keeps them equal), filled by concern: who asked and where it was routed (``route``), what answered
and what it cost (``answer``, priced with ``tierwise.cost.price`` on the call's UTC day), what the
failed attempts cost (``add_failed``), how it ended (``finish``). ``row()`` is the dict the ledger
writes. ``Attempt`` is one upstream call of a request (the attempt loop appends one per call, a
cascade annotates its rungs); the row's ``attempts`` column is their JSON list.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import orjson

from .cost import Usage, price, utc_day

if TYPE_CHECKING:
    from .catalog import Catalog
    from .dispatch import Plan

__all__ = ["Attempt", "CallRecord", "Book", "attempts_json", "failed_cost"]


@dataclass(slots=True)
class Attempt:
    """One upstream call: ``status`` None when no HTTP answer came (a connection error, a skipped
    open circuit); ``cost_nanos`` what it was billed (0 when unpriced or unanswered). A cascade rung
    also carries its tokens and its verification (``verified``, ``failed_check``)."""

    model: str
    upstream: str
    status: int | None
    error_type: str | None
    latency_ms: float
    cost_nanos: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    verified: bool | None = None
    failed_check: str | None = None

    @property
    def failed(self) -> bool:
        """Not an answer the client got: an error status or an error type (a stream that failed)."""
        return self.status not in (200, None) or self.error_type is not None

    def verified_as(self, rung: "Attempt") -> None:
        """Take a cascade rung's pricing and verdict (the rung is this HTTP call, verified)."""
        self.cost_nanos = rung.cost_nanos
        self.input_tokens = rung.input_tokens
        self.output_tokens = rung.output_tokens
        self.verified = rung.verified
        self.failed_check = rung.failed_check

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "upstream": self.upstream, "status": self.status,
                               "error_type": self.error_type, "latency_ms": self.latency_ms,
                               "cost_nanos": self.cost_nanos}
        if self.verified is not None:
            out.update(input_tokens=self.input_tokens, output_tokens=self.output_tokens, verified=self.verified,
                       failed_check=self.failed_check)
        return out


def attempts_json(attempts: Sequence[Attempt]) -> str | None:
    return orjson.dumps([a.as_json() for a in attempts]).decode() if attempts else None


def failed_cost(attempts: Sequence[Attempt]) -> int:
    """What the failed attempts among ``attempts`` were billed."""
    return sum(a.cost_nanos for a in attempts if a.failed)


class Book:
    """What pricing a row needs: the catalog, the default tier's model (the savings baseline) and
    a bounded model id -> tier memo (answered ids come from upstreams)."""

    __slots__ = ("catalog", "default_model_id", "_tiers")

    def __init__(self, catalog: "Catalog", default_model_id: str) -> None:
        self.catalog = catalog
        self.default_model_id = default_model_id
        self._tiers: dict[str, str | None] = {}

    def tier_of(self, model_id: str) -> str | None:
        try:
            return self._tiers[model_id]
        except KeyError:
            tier = self.catalog.tier_of(model_id)
            if len(self._tiers) < 4096:
                self._tiers[model_id] = tier
            return tier


@dataclass(slots=True)
class CallRecord:
    """A row of the ``calls`` table (column for column, in order; ``id`` is the database's)."""

    ts: float
    day: str
    request_id: str
    task: str | None = None
    router: str | None = None
    reasons: str | None = None
    confidence: float | None = None
    tier: str | None = None
    model: str | None = None
    requested_model: str | None = None
    upstream: str = ""
    stream: bool = False
    batch: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    cost_nanos: int | None = None
    default_cost_nanos: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status: int = 200
    error_type: str | None = None
    stop_reason: str | None = None
    escalations: int = 0
    fallbacks: int = 0
    attempts: str | None = None
    adapted: str | None = None
    arm: str | None = None
    key_id: str | None = None
    client_disconnected: bool = False
    prompt: str | None = None

    @classmethod
    def new(cls, request_id: str, wall: float, *, requested: str | None = None, upstream: str = "",
            stream: bool = False, batch: bool = False, key_id: str | None = None,
            prompt: str | None = None) -> "CallRecord":
        """A call that arrived at ``wall`` (``time.time()``); ``requested`` is the model the client named."""
        # caller- and upstream-supplied text is cut to its column's size: one over-long value would
        # otherwise fail the whole ledger batch on a database that enforces lengths
        return cls(ts=wall, day=utc_day(wall)[1], request_id=request_id,
                   requested_model=requested[:128] if requested else requested, upstream=upstream[:32],
                   stream=stream, batch=batch, key_id=key_id, prompt=prompt)

    @property
    def date(self) -> _dt.date:
        """The call's UTC day as a ``date``: the day it is priced on."""
        return utc_day(self.ts)[0]

    def route(self, plan: "Plan | None") -> "CallRecord":
        """Where it was routed and why."""
        if plan is not None:
            d = plan.decision
            self.task = plan.task
            self.router = d.router
            self.reasons = d.reason_text()[:2000]
            self.confidence = d.confidence
            self.tier = d.tier
            self.model = plan.model_id[:128]
            self.adapted = ",".join(plan.adapted) if plan.adapted else None
            self.arm = plan.arm
        return self

    def answer(self, book: Book, model_id: str | None, usage: Usage | None, *, prior_usage: Usage | None = None) -> "CallRecord":
        """What answered (``model_id``; None keeps the routed model) and its tokens, priced on the call's day:
        ``cost_nanos`` None when the model is unpriced; ``default_cost_nanos`` the same usage on the
        default tier (one call: ``prior_usage``, earlier cascade rungs, is added to the token columns only)."""
        usage = usage or Usage()
        day = self.date
        model_id = model_id or self.model
        if model_id:
            self.model = model_id[:128]
            self.tier = book.tier_of(model_id) or self.tier
        self.cost_nanos = price(book.catalog, model_id, usage, day=day, batch=self.batch)
        self.default_cost_nanos = (self.cost_nanos if model_id == book.default_model_id  # the same price, once
                                   else price(book.catalog, book.default_model_id, usage, day=day, batch=self.batch))
        total = usage + prior_usage if prior_usage is not None else usage
        self.input_tokens = total.input_tokens
        self.output_tokens = total.output_tokens
        self.cache_write_5m_tokens = total.cache_write_5m_tokens
        self.cache_write_1h_tokens = total.cache_write_1h_tokens
        self.cache_read_tokens = total.cache_read_tokens
        return self

    def add_failed(self, nanos: int) -> "CallRecord":
        """Every attempt is paid for: the row's cost is the whole request's, failed attempts (and
        escalated cascade rungs) included; an unpriced answer with paid failures costs those."""
        if nanos:
            self.cost_nanos = (self.cost_nanos or 0) + nanos
        return self

    def finish(self, status: int, *, started: float | None, error_type: str | None = None, stop_reason: Any = None,
               ttft: float | None = None, attempts: Sequence[Attempt] = (), escalations: int = 0, fallbacks: int = 0,
               disconnected: bool = False) -> "CallRecord":
        """How it ended; ``started``/``ttft`` are ``perf_counter()`` readings (``started`` None: no latency)."""
        if started is not None:
            self.latency_ms = (time.perf_counter() - started) * 1000.0
            self.ttft_ms = (ttft - started) * 1000.0 if ttft is not None else None
        self.status = status
        self.error_type = error_type[:64] if error_type else error_type
        self.stop_reason = str(stop_reason)[:32] if stop_reason is not None else None
        self.attempts = attempts_json(attempts)
        self.escalations = escalations
        self.fallbacks = fallbacks
        self.client_disconnected = disconnected
        return self

    def row(self) -> dict[str, Any]:
        """The dict the ledger writes (``calls.insert()``)."""
        # written out (a dict display is the cheapest way to build it); tests/test_record.py keeps the
        # keys equal to the fields, and the fields to the table's columns
        return {"ts": self.ts, "day": self.day, "request_id": self.request_id, "task": self.task,
                "router": self.router, "reasons": self.reasons, "confidence": self.confidence, "tier": self.tier,
                "model": self.model, "requested_model": self.requested_model, "upstream": self.upstream,
                "stream": self.stream, "batch": self.batch, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cache_write_5m_tokens": self.cache_write_5m_tokens,
                "cache_write_1h_tokens": self.cache_write_1h_tokens, "cache_read_tokens": self.cache_read_tokens,
                "cost_nanos": self.cost_nanos, "default_cost_nanos": self.default_cost_nanos,
                "latency_ms": self.latency_ms, "ttft_ms": self.ttft_ms, "status": self.status,
                "error_type": self.error_type, "stop_reason": self.stop_reason, "escalations": self.escalations,
                "fallbacks": self.fallbacks, "attempts": self.attempts, "adapted": self.adapted, "arm": self.arm,
                "key_id": self.key_id, "client_disconnected": self.client_disconnected, "prompt": self.prompt}
