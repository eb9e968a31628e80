"""Prometheus metrics for the proxy (``GET /metrics``): requests, tokens, cost, latency, by tier/task/status.

``prometheus_client`` is imported when a proxy is created, never at ``import tierwise``. Each
proxy has its own registry (several apps can live in one process, as in tests). ``observe(row)``
is called once per call with the ledger row and only appends it to a queue (a ``deque.append``);
a background thread brings the counters and histograms up to date every second, and ``/metrics``
drains the queue before answering, so the hot path pays nothing for label look-ups and increments.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

__all__ = ["Metrics", "LATENCY_BUCKETS"]

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MAX_TASK_LABELS = 200


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter("tierwise_requests", "Calls through the proxy.", ["tier", "task", "status"], registry=r)
        self.tokens = Counter("tierwise_tokens", "Tokens billed, by kind.", ["tier", "task", "kind"], registry=r)
        self.cost = Counter("tierwise_cost_usd", "Exact cost in USD.", ["tier", "task"], registry=r)
        self.saved = Counter("tierwise_saved_vs_default_usd", "Cost avoided against the default tier.", ["tier", "task"],
                             registry=r)
        self.latency = Histogram("tierwise_request_latency_seconds", "Time from request to the last byte.", ["tier", "task"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("tierwise_time_to_first_token_seconds", "Streaming: time to the first token.", ["tier"],
                              buckets=LATENCY_BUCKETS, registry=r)
        self.escalations = Counter("tierwise_escalations", "Calls escalated to a higher tier.", ["tier", "task"], registry=r)
        self.fallbacks = Counter("tierwise_fallbacks", "Calls answered by a fallback.", ["tier", "task"], registry=r)
        self.feedback = Counter("tierwise_feedback", "Feedback records received.", ["result"], registry=r)
        self.alerts = Counter("tierwise_monitor_alerts", "Monitor alerts raised.", ["task"], registry=r)
        self.reverts = Counter("tierwise_registry_reverts", "Registry entries reverted by the monitor.", ["task"], registry=r)
        self._children: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        self._tasks: set[str] = set()
        self._lock = threading.Lock()
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _task_label(self, task: str | None) -> str:
        if not task:
            return "-"
        if task in self._tasks:
            return task
        if len(self._tasks) >= MAX_TASK_LABELS:
            return "other"
        self._tasks.add(task)
        return task

    def _kids(self, tier: str, task: str, status: int) -> tuple[Any, ...]:
        key = (tier, task, status)
        kids = self._children.get(key)
        if kids is None:
            with self._lock:
                kids = (self.requests.labels(tier, task, str(status)),
                        self.tokens.labels(tier, task, "input"), self.tokens.labels(tier, task, "output"),
                        self.tokens.labels(tier, task, "cache_read"), self.tokens.labels(tier, task, "cache_write"),
                        self.cost.labels(tier, task), self.latency.labels(tier, task), self.ttft.labels(tier),
                        self.saved.labels(tier, task))
                self._children[key] = kids
        return kids

    def observe(self, row: dict[str, Any]) -> None:
        """Queue one ledger row for accounting. Never raises (metrics must not break a request).

        A daemon thread accounts the queue every second, off the request path (and ``/metrics``
        drains it before answering, so a scrape is always up to date)."""
        self._pending.append(row)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tierwise-metrics", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.drain()

    def drain(self) -> None:
        """Account every queued row: counters summed per label set first, then one increment each."""
        pending = self._pending
        rows = []
        while pending:
            try:
                rows.append(pending.popleft())
            except IndexError:
                break
        if not rows:
            return
        sums: dict[tuple[str, str, int], list[float]] = {}
        for row in rows:
            try:
                key = (row.get("tier") or "-", self._task_label(row.get("task")), int(row.get("status") or 0))
                acc = sums.get(key)
                if acc is None:
                    acc = sums[key] = [0, 0, 0, 0, 0, 0, 0, 0, 0]
                acc[0] += 1
                acc[1] += row.get("input_tokens") or 0
                acc[2] += row.get("output_tokens") or 0
                acc[3] += row.get("cache_read_tokens") or 0
                acc[4] += (row.get("cache_write_5m_tokens") or 0) + (row.get("cache_write_1h_tokens") or 0)
                c = row.get("cost_nanos") or 0
                acc[5] += c
                d = row.get("default_cost_nanos") or 0
                if c and d > c:
                    acc[6] += d - c
                acc[7] += row.get("escalations") or 0
                acc[8] += row.get("fallbacks") or 0
                kids = self._kids(*key)
                if row.get("latency_ms") is not None:
                    kids[6].observe(row["latency_ms"] / 1000.0)
                if row.get("ttft_ms") is not None:
                    kids[7].observe(row["ttft_ms"] / 1000.0)
            except Exception:  # noqa: BLE001 - a malformed row must not stop the rest
                continue
        for (tier, task, status), (n, tin, tout, tcr, tcw, cost, saved, esc, fb) in sums.items():
            req, k_in, k_out, k_cr, k_cw, k_cost, _lat, _ttft, k_saved = self._kids(tier, task, status)
            req.inc(n)
            for kid, v in ((k_in, tin), (k_out, tout), (k_cr, tcr), (k_cw, tcw)):
                if v:
                    kid.inc(v)
            if cost:
                k_cost.inc(cost / 1e9)
            if saved:
                k_saved.inc(saved / 1e9)
            if esc:
                self.escalations.labels(tier, task).inc(esc)
            if fb:
                self.fallbacks.labels(tier, task).inc(fb)

    def alert(self, task: str, *, reverted: bool = False) -> None:
        self.alerts.labels(self._task_label(task)).inc()
        if reverted:
            self.reverts.labels(self._task_label(task)).inc()

    def feedback_received(self, error: bool) -> None:
        self.feedback.labels("bad" if error else "ok").inc()

    def watch_health(self, provider: Any) -> None:
        """Export the ledger's and the shared stores' state (``provider()`` -> the /healthz details) at each scrape."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        class _Health:
            def collect(self) -> Any:
                h = provider()
                led = h.get("ledger") or {}
                if led:
                    yield GaugeMetricFamily("tierwise_ledger_database_available", "1 when the ledger database takes writes.",
                                            value=1.0 if led.get("database") == "ok" else 0.0)
                    yield GaugeMetricFamily("tierwise_ledger_pending_rows", "Rows recorded, not yet confirmed by the database.",
                                            value=float(led.get("pending", 0)))
                    yield GaugeMetricFamily("tierwise_ledger_not_journaled_rows", "Rows held only in memory (journal unwritable).",
                                            value=float(led.get("not_journaled", 0)))
                    yield CounterMetricFamily("tierwise_ledger_journal_errors", "Rows the journal could not write (disk full...).",
                                              value=float(led.get("journal_errors", 0)))
                    yield CounterMetricFamily("tierwise_ledger_failed_batches", "Batch writes the database did not take.",
                                              value=float(led.get("failed_batches", 0)))
                avail = GaugeMetricFamily("tierwise_store_available", "1 when the shared store answers.", labels=["store"])
                fails = CounterMetricFamily("tierwise_store_failures", "Calls to the store that failed.", labels=["store"])
                falls = CounterMetricFamily("tierwise_store_fallbacks", "Uses served by the fallback while the store was down.",
                                            labels=["store", "use"])
                for name, st in (h.get("stores") or {}).items():
                    if "available" not in st:
                        continue
                    avail.add_metric([name], 1.0 if st["available"] else 0.0)
                    fails.add_metric([name], float(st["failures"]))
                    for use, n in st["fallbacks"].items():
                        falls.add_metric([name, use], float(n))
                yield avail
                yield fails
                yield falls
                yield GaugeMetricFamily("tierwise_degraded", "1 when /healthz says degraded.", value=1.0 if h.get("degraded") else 0.0)

        self.registry.register(_Health())  # type: ignore[arg-type]

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.drain()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
