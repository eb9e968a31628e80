"""Ledger writes off the request's critical path: rows are appended to an in-memory buffer and a
background thread inserts them in batches.

``record(row)`` is a ``deque.append`` plus, when a journal is set, one ``write(2)`` of the row as a
JSON line to this process's journal segment (see ``journal``; no fsync, no thread wake-up on the
event loop). It never raises: a full disk is counted, logged and reported by ``status()``.

The writer thread wakes every ``flush_interval`` seconds (or when asked to flush) and inserts batches
of up to ``batch_size`` rows. A batch the database does not take (down, unreachable, disk full) stays
at the head of the buffer and in the journal and is tried again with a backoff (up to
``retry_max`` seconds) for as long as the outage lasts; after a failure the next attempt first asks
the database which of the batch's ``request_id`` it already has (a commit whose answer was lost is
not written twice). A journal segment is emptied only for rows the database confirmed. Only a row
the database refuses for its content (a value too long for its column) is dropped, alone, and logged.

Rows held in memory only (the journal and its spool both unwritable: a full disk) are capped at
``max_unjournaled`` (``ledger.max_unjournaled_rows``, 100,000, some 200 MB). At the cap the log says
``LEDGER MEMORY CAP REACHED`` (at most every 30 s), ``accepting`` turns False and the proxy refuses
new requests with 529 ``overloaded_error`` before calling the upstream (nothing paid is refused);
the rows of calls already in flight are still kept, so the cap is passed by at most those. The row
of a refused call (it cost nothing) is counted (``refused_unrecorded``), not kept, while at the cap.
``accepting`` is True again as soon as the journal takes the rows.

What a stop can lose: a graceful stop drains everything the database takes within the close
timeout; what it does not take stays in the journal and is written by the next process (or another
replica sharing the journal's directory) that opens the ledger. A SIGKILL loses only the calls still
in flight: every finished call's row is in the journal (the operating system keeps written data when
a process dies). Only a power loss or kernel crash can lose the last journal lines (no fsync per row),
and only a crash while the journal is unwritable loses the rows held in memory meanwhile.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from operator import itemgetter
from typing import Any, Callable

import orjson
import sqlalchemy as sa

from .journal import Journal, read_rows
from .schema import calls

__all__ = ["LedgerWriter", "recover_journal"]

log = logging.getLogger("tierwise.ledger")

_REFUSED = (sa.exc.DataError, sa.exc.IntegrityError)  # the row's content, not the database's health


def _dumps(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, default=str) + b"\n"


class LedgerWriter:
    def __init__(self, engine: sa.Engine, *, batch_size: int = 500, flush_interval: float = 0.25,
                 table: sa.Table = calls, journal: str | None = None, prepare: Callable[[], Any] | None = None,
                 retry_max: float = 5.0, adopt_interval: float = 30.0, spool: str | None = None,
                 max_unjournaled: int = 100_000) -> None:
        self.engine = engine
        self.table = table
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_max = retry_max
        self.adopt_interval = adopt_interval
        self._prepare = prepare          # run (and retried) before the first write: migrations deferred at start
        self._buf: collections.deque[list[Any]] = collections.deque()  # [row, segment or None]
        self._recorded = itertools.count(1)
        self._n_recorded = 0
        self._done = 0  # rows the database confirmed (written, or refused for their content)
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._halt = threading.Event()   # close() gave up waiting: leave the rest to the journal
        self._stop = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self.recovered = 0               # rows adopted from other (dead) processes' journal segments
        self.journal = journal
        self._j: Journal | None = Journal(journal, spool=spool) if journal else None
        self.max_unjournaled = max_unjournaled
        self.refused_unrecorded = 0      # rows of refused (unpaid) calls not kept while at the cap
        self._capped_at = -1e9
        self._jlock = threading.Lock()
        self._unjournaled = 0
        self._uncertain = False          # a write failed: the next one checks which rows already landed
        self._backoff = 0.0
        self.db_ok = True
        self.db_error: str | None = None
        self._down_since: float | None = None
        self._logged_at = 0.0
        self._adopted_at = -1e9

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tierwise-ledger", daemon=True)
                self._thread.start()

    def record(self, row: dict[str, Any]) -> None:
        if self._thread is None:
            self.start()
        if self._j is not None:
            try:
                line = _dumps(row)
            except Exception:  # noqa: BLE001 - unserialisable value: keep the row in memory only
                line = None
            with self._jlock:
                seg = self._j.append(line) if line is not None else None
                if seg is None:
                    if self._unjournaled >= self.max_unjournaled:
                        self._at_cap()
                        if not row.get("cost_nanos") and int(row.get("status") or 0) >= 400 and not row.get("input_tokens"):
                            self.refused_unrecorded += 1  # a refusal cost nothing: counted, not kept
                            with self._cond:
                                self._n_recorded = next(self._recorded)
                                self._done += 1
                            return
                    self._unjournaled += 1
                self._buf.append([row, seg])
                self._n_recorded = next(self._recorded)
            return
        self._buf.append([row, None])
        self._n_recorded = next(self._recorded)  # itertools.count is atomic under the GIL

    @property
    def accepting(self) -> bool:
        """False while the rows held in memory only are at ``max_unjournaled``: refuse new work."""
        return self._unjournaled < self.max_unjournaled

    def _at_cap(self) -> None:
        now = time.monotonic()
        if now - self._capped_at >= 30.0:
            self._capped_at = now
            log.critical("LEDGER MEMORY CAP REACHED: %d rows are held in memory only (the journal %s and its spool "
                         "cannot be written: disk full?); new requests are refused with 529 until the journal takes "
                         "rows again (ledger.max_unjournaled_rows = %d)", self._unjournaled, self.journal,
                         self.max_unjournaled)

    # -- the writer thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval if self._backoff == 0 else self._backoff)
            self._wake.clear()
            try:
                self._cycle()
            except Exception:
                log.exception("ledger writer: unexpected error (rows stay queued and journaled)")
                self._backoff = max(self._backoff, 1.0)
            if self._halt.is_set() or (self._stop and not self._buf):
                return

    def _cycle(self) -> None:
        if self._prepare is not None:
            try:
                self._prepare()
            except Exception as exc:  # noqa: BLE001
                self._db_failed(exc)
                return
            self._prepare = None
        if self._unjournaled and self._j is not None:
            self._rejournal()
        if not self.db_ok and not self._buf:  # nothing queued to find out with: ask the database itself
            try:
                with self.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except Exception as exc:  # noqa: BLE001
                self._db_failed(exc)
                return
            self._db_back()
        now = time.monotonic()
        if self._j is not None and self.db_ok and now - self._adopted_at >= self.adopt_interval:
            self._adopted_at = now
            self.adopt()
        self._drain()

    def _drain(self) -> None:
        buf = self._buf
        while buf and not self._halt.is_set():
            batch = []
            while buf and len(batch) < self.batch_size:
                batch.append(buf.popleft())
            try:
                written, refused = self._write([e[0] for e in batch])
            except Exception as exc:  # noqa: BLE001 - the database is down or busy: keep the batch, retry later
                buf.extendleft(reversed(batch))
                self._db_failed(exc)
                return
            self._db_back()
            if self._j is not None:
                with self._jlock:
                    for e in batch:
                        if e[1] is not None:
                            self._j.confirmed(e[1])
                    if not buf:
                        self._j.compact()
            with self._cond:
                self.written += written
                self.dropped += refused
                self._done += len(batch)
                self._cond.notify_all()

    def _db_failed(self, exc: BaseException) -> None:
        self.failed_batches += 1
        self._uncertain = True
        self._backoff = min(max(0.1, self._backoff * 2), self.retry_max)
        now = time.monotonic()
        name = type(getattr(exc, "orig", None) or exc).__name__
        if self.db_ok:
            self.db_ok = False
            self._down_since = now
            self._logged_at = now
            log.error("LEDGER DATABASE UNAVAILABLE (%s: %s): rows are kept in the journal and memory and written when "
                      "it is back (%d pending)", name, str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
                      if str(exc) else "", self.pending)
        elif now - self._logged_at >= 30.0:
            self._logged_at = now
            log.error("ledger database still unavailable after %.0fs (%s); %d rows pending", now - (self._down_since or now),
                      name, self.pending)
        self.db_error = name

    def _db_back(self) -> None:
        self._backoff = 0.0
        self._uncertain = False
        if not self.db_ok:
            self.db_ok = True
            log.warning("ledger database available again after %.1fs; writing the %d rows kept meanwhile",
                        time.monotonic() - (self._down_since or time.monotonic()), self.pending)
            self._down_since = None
            self.db_error = None

    def _rejournal(self) -> None:
        assert self._j is not None
        with self._jlock:
            for e in self._buf:
                if e[1] is None:
                    try:
                        line = _dumps(e[0])
                    except Exception:  # noqa: BLE001
                        continue
                    seg = self._j.append(line)
                    if seg is None:
                        return
                    e[1] = seg
                    self._unjournaled -= 1

    # -- inserting --------------------------------------------------------------------
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
        except KeyError:  # rows from elsewhere (an older journal) may leave columns to their defaults
            params = [tuple(row.get(c, defaults[c]) for c in cols) for row in batch]
        conn.exec_driver_sql(sql, params)

    def _missing(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows whose request id the table does not hold yet (rows without one are kept)."""
        if "request_id" not in self.table.c:
            return rows
        ids = [r.get("request_id") for r in rows if r.get("request_id")]
        have: set[str] = set()
        col = self.table.c.request_id
        for i in range(0, len(ids), 500):
            have.update(r[0] for r in conn.execute(sa.select(col).where(col.in_(ids[i:i + 500]))))
        return [r for r in rows if not r.get("request_id") or r.get("request_id") not in have]

    def _write(self, batch: list[dict[str, Any]], *, check: bool | None = None) -> tuple[int, int]:
        """Insert ``batch``: (rows written, rows refused for their content). Raises when the database
        cannot take it (the caller keeps the batch)."""
        check = self._uncertain if check is None else check
        try:
            with self.engine.begin() as conn:
                rows = self._missing(conn, batch) if check else batch
                if rows:
                    self._insert(conn, rows)
            return len(rows), 0
        except _REFUSED as exc:
            # Something in one row the database refuses: write the rows one by one, so only that row is lost.
            log.error("ledger: a batch of %d rows was refused (%s); writing them one by one", len(batch),
                      type(getattr(exc, "orig", None) or exc).__name__)
        ok = bad = 0
        for row in batch:
            try:
                with self.engine.begin() as conn:
                    if check and not self._missing(conn, [row]):
                        continue
                    self._insert(conn, [row])
                ok += 1
            except _REFUSED:
                bad += 1
                log.error("ledger: dropped the row of request %s: the database refused it", row.get("request_id"))
        return ok, bad

    # -- other processes' journal segments ------------------------------------------------
    def adopt(self) -> int:
        """Insert the rows of journal segments no live process holds (a crash, or a stop while the
        database was down) that the database does not have yet; returns how many."""
        if self._j is None:
            return 0
        n = 0
        for path, fd in self._j.orphans():
            try:
                rows = read_rows(path)
                cols = set(self.table.c.keys())
                rows = [{k: v for k, v in r.items() if k in cols} for r in rows]
                got = 0
                for i in range(0, len(rows), self.batch_size):
                    got += self._write(rows[i:i + self.batch_size], check=True)[0]
                os.unlink(path)
                if got:
                    log.warning("ledger: recovered %d rows from the journal %s", got, path)
                n += got
            except Exception as exc:  # noqa: BLE001 - the database went away: the segment stays for later
                self._db_failed(exc)
                self._adopted_at = -1e9
                break
            finally:
                os.close(fd)
        self.recovered += n
        return n

    # -- state ------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._n_recorded - self._done

    def status(self) -> dict[str, Any]:
        """For /healthz and /metrics: is every answered call's row safe, and where."""
        j = self._j
        return {"database": "ok" if self.db_ok else "unavailable", "database_error": self.db_error,
                "down_for_s": round(time.monotonic() - self._down_since, 1) if self._down_since else 0.0,
                "journal": None if j is None else ("ok" if j.healthy else "unwritable"),
                "journal_error": None if j is None else j.last_error,
                "journal_errors": 0 if j is None else j.errors, "not_journaled": self._unjournaled,
                "spooled": 0 if j is None else j.spooled, "accepting": self.accepting,
                "max_unjournaled": self.max_unjournaled, "refused_unrecorded": self.refused_unrecorded,
                "pending": self.pending, "written": self.written, "dropped": self.dropped,
                "failed_batches": self.failed_batches, "recovered": self.recovered}

    @property
    def degraded(self) -> bool:
        return not self.db_ok or (self._j is not None and (not self._j.healthy or self._unjournaled > 0))

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything recorded so far; True when the database has confirmed all of it."""
        target = self._n_recorded
        if self._done >= target:
            return True
        if self._thread is None:
            self.start()
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
            if self._thread.is_alive():
                self._halt.set()
                self._wake.set()
                self._thread.join(5.0)
        if self._j is not None:
            with self._jlock:
                clean = not self._buf and self._done >= self._n_recorded
                if not clean:
                    log.error("ledger: closing with %d rows the database has not confirmed; %d of them stay in the journal "
                              "%s.*.seg and are written by the next process that opens this ledger%s", self.pending,
                              self.pending - self._unjournaled, self.journal,
                              f"; {self._unjournaled} could not be journaled (disk full?) and are LOST"
                              if self._unjournaled else "")
                self._j.close(clean=clean)


def recover_journal(engine: sa.Engine, journal: str, table: sa.Table = calls) -> int:
    """Insert the rows of ``journal`` (and of its orphaned segments) the database does not have; returns how many."""
    w = LedgerWriter(engine, table=table, journal=journal)
    try:
        return w.adopt()
    finally:
        w._j.close(clean=True)  # type: ignore[union-attr]
