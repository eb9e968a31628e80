"""What one ``/v1/messages`` request carries through its phases (``Call``), and the one answer
that executing it produces (``Answer``), whether a single call, a stream or a cascade."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..cost import Usage, utc_day
from ..record import Attempt
from .wire import new_request_id

if TYPE_CHECKING:
    import datetime as _dt

    from ..dispatch import Plan
    from ..resilience.attempts import Outcome

__all__ = ["Call", "Answer"]


class Call:
    """One request on its way: filled by admit (headers, key, body) and plan (plan, body to send,
    budget reservation); execute appends its ``attempts``; account turns it into the ledger row."""

    __slots__ = ("started", "wall", "day", "request_id", "path", "retries", "headers", "key", "key_id", "raw", "body",
                 "requested", "stream", "prompt", "plan", "out_body", "reservation", "attempts", "fallbacks",
                 "escalations")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.wall = time.time()
        self.day: "_dt.date" = utc_day(self.wall)[0]   # the day every cost of this call is priced on
        self.request_id = new_request_id()
        self.path = "/v1/messages"  # with the client's query string (``?beta=true``), forwarded as sent
        self.retries = 0            # the client's own retry number (x-stainless-retry-count)
        self.headers: dict[str, str] = {}
        self.key: Any = None        # the caller's proxy key (KeyRecord) when keys are enforced
        self.key_id: str | None = None
        self.raw = b""
        self.body: dict[str, Any] | None = None
        self.requested: str | None = None
        self.stream = False
        self.prompt: str | None = None
        self.plan: "Plan | None" = None
        self.out_body = b""
        self.reservation: Any = None
        self.attempts: list[Attempt] = []
        self.fallbacks = 0
        self.escalations = 0

    def calls(self) -> int:
        """Upstream calls made (a target skipped for its open circuit is no call)."""
        n = 0
        for a in self.attempts:
            if a.error_type != "circuit_open":
                n += 1
        return n

    def attempt_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-tierwise-attempts", b"%d" % self.calls()), (b"x-tierwise-fallbacks", b"%d" % self.fallbacks)]

    def count_moves(self) -> None:
        """Fallbacks: moves to another target (upstream or model) along the attempts."""
        if len(self.attempts) < 2:  # the common case: one call, no move
            self.fallbacks = 0
            return
        seen: list[tuple[str, str]] = []
        for a in self.attempts:
            k = (a.upstream, a.model)
            if not seen or seen[-1] != k:
                seen.append(k)
        self.fallbacks = max(0, len(seen) - 1)


@dataclass(slots=True)
class Answer:
    """What execute hands to respond and account: the answering upstream and model, and either the
    bytes to send (``data``: JSON, or with ``events`` a whole SSE stream) or a live stream (``live``).
    A stream fills ``usage``/``answered``/``status``... as it ends."""

    upstream: str
    model_id: str                    # the target it was sent to (headers)
    tier: str | None
    answered: str                    # the model that answered: the one priced
    headers: Mapping[str, str] = field(default_factory=dict)  # the upstream's (some are passed on)
    status: int = 200
    error_type: str | None = None
    usage: Usage = field(default_factory=Usage)
    prior_usage: Usage | None = None  # a cascade's rungs below the answer (token columns)
    prior_cost: int = 0               # ... and what they cost
    stop_reason: Any = None
    data: bytes = b""
    events: bool = False
    live: "Outcome | None" = None
    cascaded: bool = False
    ttft: float | None = None
    disconnected: bool = False
