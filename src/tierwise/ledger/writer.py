"""Ledger writes off the request's critical path: a queue drained in batches by one thread.

``record(row)`` only appends to a queue (no I/O on the event loop). A background thread inserts
batches of up to ``batch_size`` rows, at least every ``flush_interval`` seconds. ``close()``
drains everything, so a graceful stop loses nothing; a SIGKILL loses at most the rows still
queued (calls finished in the last ``flush_interval``) and in-flight calls.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import sqlalchemy as sa

from .schema import calls

__all__ = ["LedgerWriter"]

log = logging.getLogger("tierwise.ledger")
_STOP = object()


class LedgerWriter:
    def __init__(self, engine: sa.Engine, *, batch_size: int = 500, flush_interval: float = 0.25) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self.written = 0
        self.failed_batches = 0
        self._closed = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tierwise-ledger", daemon=True)
                self._thread.start()

    def record(self, row: dict[str, Any]) -> None:
        if self._thread is None:
            self.start()
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._q.put(row)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[dict[str, Any]] = []
            try:
                item = self._q.get(timeout=self.flush_interval)
            except queue.Empty:
                continue
            deadline = time.monotonic() + self.flush_interval
            while True:
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
                if stop or len(batch) >= self.batch_size:
                    break
                try:
                    item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    conn.execute(calls.insert(), batch)
                self.written += len(batch)
                break
            except Exception:  # noqa: BLE001 - a ledger failure must not kill the writer
                self.failed_batches += 1
                log.exception("ledger write failed (attempt %d, %d rows)", attempt + 1, len(batch))
                time.sleep(min(0.1 * 2**attempt, 2.0))
        with self._lock:
            self._pending -= len(batch)
            if self._pending <= 0:
                self._idle.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every recorded row is written (or failed for good)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._q.put(_STOP)
            self._thread.join(timeout)
