"""Ledger writes off the request's critical path: rows are appended to an in-memory buffer and a
background thread inserts them in batches.

``record(row)`` is a ``deque.append`` (no lock, no I/O, no thread wake-up on the event loop). The
writer thread wakes every ``flush_interval`` seconds (or when asked to flush) and inserts batches of
up to ``batch_size`` rows. ``close()`` drains everything, so a graceful stop loses nothing; a SIGKILL
loses at most the rows of calls that finished in the last ``flush_interval`` and the calls in flight.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa

from .schema import calls

__all__ = ["LedgerWriter"]

log = logging.getLogger("tierwise.ledger")


class LedgerWriter:
    def __init__(self, engine: sa.Engine, *, batch_size: int = 500, flush_interval: float = 0.25,
                 table: sa.Table = calls) -> None:
        self.engine = engine
        self.table = table
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._buf: collections.deque[dict[str, Any]] = collections.deque()
        self._recorded = itertools.count(1)
        self._n_recorded = 0
        self._done = 0  # rows written or given up on
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tierwise-ledger", daemon=True)
                self._thread.start()

    def record(self, row: dict[str, Any]) -> None:
        if self._thread is None:
            self.start()
        self._buf.append(row)
        self._n_recorded = next(self._recorded)  # itertools.count is atomic under the GIL

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            if self._stop and not self._buf:
                return

    def _drain(self) -> None:
        buf = self._buf
        while buf:
            batch = []
            while buf and len(batch) < self.batch_size:
                batch.append(buf.popleft())
            self._write(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        ok = False
        for attempt in range(6):
            try:
                with self.engine.begin() as conn:
                    conn.execute(self.table.insert(), batch)
                ok = True
                break
            except Exception:  # noqa: BLE001 - a ledger failure must not kill the writer
                self.failed_batches += 1
                log.exception("ledger write failed (attempt %d, %d rows)", attempt + 1, len(batch))
                time.sleep(min(0.1 * 2**attempt, 2.0))
        with self._cond:
            if ok:
                self.written += len(batch)
            else:
                self.dropped += len(batch)
                log.error("ledger: gave up on %d rows after repeated failures", len(batch))
            self._done += len(batch)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        return self._n_recorded - self._done

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything recorded so far; True when it is all on disk (or given up on)."""
        target = self._n_recorded
        if self._thread is None or self._done >= target:
            return True
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 30.0) -> None:
        if self._stop:
            return
        self._stop = True
        if self._thread is not None:
            self._wake.set()
            self._thread.join(timeout)
