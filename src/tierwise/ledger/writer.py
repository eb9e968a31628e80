"""Ledger writes off the request's critical path: rows are appended to an in-memory buffer and a
background thread inserts them in batches.

``record(row)`` is a ``deque.append`` plus, when a journal is set, one ``write(2)`` of the row as a
JSON line to an append-only file (about a microsecond; no fsync, no thread wake-up on the event loop).
The writer thread wakes every ``flush_interval`` seconds (or when asked to flush), inserts batches of
up to ``batch_size`` rows, and empties the journal once everything in it is in the database.

What a stop can lose: a graceful stop (SIGINT/SIGTERM) drains everything. A SIGKILL of the process
loses only the calls still in flight: every finished call's row is already in the journal (the
operating system keeps written data when a process dies) and ``recover_journal`` inserts the rows the
database does not have when the ledger is opened again. Only a power loss or kernel crash can lose
the last few journal lines, since the journal is not fsynced per row.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from operator import itemgetter
from typing import Any

import orjson
import sqlalchemy as sa

from .schema import calls

__all__ = ["LedgerWriter", "recover_journal"]

log = logging.getLogger("tierwise.ledger")


class LedgerWriter:
    def __init__(self, engine: sa.Engine, *, batch_size: int = 500, flush_interval: float = 0.25,
                 table: sa.Table = calls, journal: str | None = None) -> None:
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
        self.journal = journal
        self._jfd: int | None = None
        self._jlock = threading.Lock()
        if journal:
            self._jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tierwise-ledger", daemon=True)
                self._thread.start()

    def record(self, row: dict[str, Any]) -> None:
        if self._thread is None:
            self.start()
        if self._jfd is not None:
            line = orjson.dumps(row) + b"\n"
            with self._jlock:
                os.write(self._jfd, line)
                self._buf.append(row)
                self._n_recorded = next(self._recorded)
            return
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
        wrote = False
        dropped_before = self.dropped
        while buf:
            batch = []
            while buf and len(batch) < self.batch_size:
                batch.append(buf.popleft())
            self._write(batch)
            wrote = True
        if wrote and self._jfd is not None and self.dropped == dropped_before:
            # (after a batch the database could not take, the journal keeps everything: recovery retries it)
            with self._jlock:  # record() appends under the same lock: nothing slips in between
                if not self._buf and self._done >= self._n_recorded:
                    os.ftruncate(self._jfd, 0)
        if wrote:
            with self._cond:
                self._cond.notify_all()

    def _insert_plan(self) -> tuple[str, list[str], dict[str, Any], itemgetter] | None:
        """A plain ``INSERT`` for the driver's ``executemany`` (several times less CPU per row than
        SQLAlchemy's per-row parameter processing), or None to use SQLAlchemy's insert."""
        plan = getattr(self, "_plan", False)
        if plan is not False:
            return plan
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(self.engine.dialect.paramstyle)
        plan = None
        if mark is not None:
            cols = [c.name for c in self.table.columns if not (c.primary_key and c.autoincrement)]
            defaults = {c.name: (c.default.arg if c.default is not None and c.default.is_scalar else None)
                        for c in self.table.columns}
            quote = self.engine.dialect.identifier_preparer.quote
            sql = (f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(c) for c in cols)}) "
                   f"VALUES ({', '.join([mark] * len(cols))})")
            plan = (sql, cols, defaults, itemgetter(*cols))
        self._plan = plan
        return plan

    def _insert(self, conn: sa.Connection, batch: list[dict[str, Any]]) -> None:
        plan = self._insert_plan()
        if plan is None:
            conn.execute(self.table.insert(), batch)
            return
        sql, cols, defaults, values = plan
        try:  # a row the proxy built has every column: one C-level call per row
            params = [values(row) for row in batch]
        except KeyError:  # rows from elsewhere may leave columns to their defaults
            params = [tuple(row.get(c, defaults[c]) for c in cols) for row in batch]
        conn.exec_driver_sql(sql, params)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        written, dropped = 0, 0
        for attempt in range(6):
            try:
                with self.engine.begin() as conn:
                    self._insert(conn, batch)
                written = len(batch)
                break
            except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
                # Something in one row the database refuses: write the rows one by one, so only that row is lost.
                log.error("ledger: a batch of %d rows was refused (%s); writing them one by one", len(batch),
                          type(exc.orig if getattr(exc, "orig", None) is not None else exc).__name__)
                written, dropped = self._write_one_by_one(batch)
                break
            except Exception:  # noqa: BLE001 - the database is down or busy: wait and try again
                self.failed_batches += 1
                log.exception("ledger write failed (attempt %d, %d rows)", attempt + 1, len(batch))
                time.sleep(min(0.1 * 2**attempt, 2.0))
        else:
            dropped = len(batch)
            log.error("ledger: gave up on %d rows after repeated failures; they stay in the journal (if any) and are "
                      "written when the ledger next opens", len(batch))
        with self._cond:
            self.written += written
            self.dropped += dropped
            self._done += len(batch)

    def _write_one_by_one(self, batch: list[dict[str, Any]]) -> tuple[int, int]:
        ok = bad = 0
        for row in batch:
            try:
                with self.engine.begin() as conn:
                    self._insert(conn, [row])
                ok += 1
            except Exception:  # noqa: BLE001
                bad += 1
                log.error("ledger: dropped the row of request %s: the database refused it", row.get("request_id"))
        return ok, bad

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
        if self._jfd is not None and not self._buf and self._done >= self._n_recorded:
            os.close(self._jfd)
            self._jfd = None
            try:
                os.unlink(self.journal)  # type: ignore[arg-type]
            except OSError:
                pass


def recover_journal(engine: sa.Engine, journal: str, table: sa.Table = calls) -> int:
    """Insert the journal's rows that the database does not have (after a crash); returns how many."""
    try:
        with open(journal, "rb") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return 0
    rows = []
    for line in lines:
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            log.warning("ledger journal %s: skipping a torn line", journal)
    if rows:
        ids = [r.get("request_id") for r in rows]
        have: set[str] = set()
        with engine.connect() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                have.update(r[0] for r in conn.execute(sa.select(table.c.request_id).where(table.c.request_id.in_(chunk))))
        missing = [r for r in rows if r.get("request_id") not in have]
        if missing:
            cols = set(table.c.keys())
            with engine.begin() as conn:
                conn.execute(table.insert(), [{k: v for k, v in r.items() if k in cols} for r in missing])
            log.warning("ledger: recovered %d rows from the journal %s", len(missing), journal)
        rows = missing
    os.truncate(journal, 0)
    return len(rows)
