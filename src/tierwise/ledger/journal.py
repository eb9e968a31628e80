"""The ledger journal: every finished call's row as a JSON line in a per-process segment file, kept
until the database has confirmed the row.

A writer owns its segments (``<base>.<pid>-<random>.<n>.seg``) and holds an exclusive ``flock`` on
each while it lives. A segment is emptied or removed only once every row in it is confirmed by the
database (written, or refused for its content). A segment whose lock is free belongs to a process
that is gone (SIGKILL, a crash, a stop while the database was down): any writer sharing the base
path adopts it and inserts the rows the database does not have yet (by ``request_id``: a replay
never makes a duplicate), then removes it.

Writing never raises: a full disk or an unwritable journal is counted (``errors``), logged loudly
(at most every 10 seconds) and reported as ``healthy = False``; the row stays in memory and the
writer thread journals it again once the disk takes writes.

``spool``: a second directory (best on another filesystem, ``ledger.spool_dir``). When a line cannot
be written to the journal's own directory, a segment is opened there and the row written to it (it
is then as safe as a journaled row: confirmed, emptied and adopted the same way); the next segment
is tried in the journal's own directory again. Only when both fail is a row held in memory alone.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import logging
import os
import time
from typing import Any, Iterator

import orjson

__all__ = ["Journal", "Segment", "read_rows"]

log = logging.getLogger("tierwise.ledger")

SEGMENT_BYTES = 8 * 1024 * 1024  # rotate the current segment past this size
SPOOL_RETRY = 5.0                # seconds on the spool before the journal's own directory is tried again


class Segment:
    __slots__ = ("path", "fd", "pending", "size", "sealed", "torn")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.pending = 0      # rows in this segment the database has not confirmed
        self.size = 0
        self.sealed = False   # no more appends: removed once pending reaches 0
        self.torn = False     # the last write failed part-way: start the next line on a fresh line


def read_rows(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as fh:
        data = fh.read()
    rows = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("ledger journal %s: skipping a torn line", path)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class Journal:
    def __init__(self, base: str, *, segment_bytes: int = SEGMENT_BYTES, spool: str | None = None) -> None:
        self.base = base
        self.spool = os.path.join(spool, os.path.basename(base)) if spool else None  # the same names, elsewhere
        self.spooled = 0         # rows written to the spool directory
        self._spooled_at = 0.0
        self._spool_logged = -1e9
        self.segment_bytes = segment_bytes
        self._tag = f"{os.getpid()}-{os.urandom(3).hex()}"
        self._n = 0
        self.current: Segment | None = None
        self.sealed: list[Segment] = []
        self.errors = 0          # rows that could not be journaled (disk full, I/O error)
        self.healthy = True
        self.last_error: str | None = None
        self._logged_at = 0.0

    # -- appending (the caller holds the writer's journal lock) ------------------------
    def _open(self, base: str | None = None) -> Segment:
        self._n += 1
        path = f"{base or self.base}.{self._tag}.{self._n}.seg"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        return Segment(path, fd)

    def append(self, line: bytes) -> Segment | None:
        """Write one line; the segment now holding it, or None when it could not be written."""
        cur = self.current
        if (cur is not None and self.spool is not None and cur.path.startswith(self.spool)
                and time.monotonic() - self._spooled_at >= SPOOL_RETRY):
            self._leave(cur)  # on the spool for a while: try the journal's own directory again
        seg: Segment | None
        try:
            seg = self._write(line)
        except OSError as exc:
            seg = self._to_spool(line, exc) if self.spool is not None else None
            if seg is None:
                self._failed(exc)
                return None
        seg.pending += 1
        if self.spool is not None and seg.path.startswith(self.spool):
            self.spooled += 1
        if not self.healthy:
            self.healthy = True
            log.warning("ledger journal %s is writable again", self.base)
        return seg

    def _write(self, line: bytes, base: str | None = None) -> Segment:
        seg = self.current
        if seg is None:
            seg = self.current = self._open(base)
        elif seg.size >= self.segment_bytes and seg.pending > 0:
            self._seal(seg)
            seg = self.current = self._open(base)
        data = (b"\n" + line) if seg.torn else line
        view = memoryview(data)
        while view:
            try:
                n = os.write(seg.fd, view)
            except OSError:
                seg.torn = True  # part of the line may be on disk: the next one starts on a fresh line
                raise
            seg.size += n
            view = view[n:]
        seg.torn = False
        return seg

    def _seal(self, seg: Segment) -> None:
        seg.sealed = True
        self.sealed.append(seg)
        self.current = None

    def _leave(self, seg: Segment) -> None:
        """Stop appending to ``seg``: sealed while it holds pending rows, else removed."""
        if seg.pending > 0:
            self._seal(seg)
        else:
            self._remove(seg)
            self.current = None

    def _to_spool(self, line: bytes, exc: OSError) -> Segment | None:
        """The journal's directory refused the line: write it to a segment in the spool directory."""
        assert self.spool is not None
        cur = self.current
        if cur is not None and not cur.path.startswith(self.spool):
            self._leave(cur)  # its rows stay pending there; new ones go to the spool
        self._spooled_at = time.monotonic()
        try:
            seg = self._write(line, self.spool)
        except OSError as exc2:
            log.error("ledger spool %s is not writable either (%s)", self.spool, exc2.strerror or exc2)
            return None
        now = time.monotonic()
        if now - self._spool_logged >= 30.0:
            self._spool_logged = now
            log.error("LEDGER JOURNAL UNWRITABLE (%s: %s): rows go to the spool %s.*.seg meanwhile (%d so far)", self.base,
                      exc.strerror or exc, self.spool, self.spooled)
        if seg.size >= self.segment_bytes:  # full: the next segment tries the journal's own directory again
            self._seal(seg)
        return seg

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        self.healthy = False
        self.last_error = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        now = time.monotonic()
        if now - self._logged_at >= 10.0:
            self._logged_at = now
            log.error("LEDGER JOURNAL UNWRITABLE (%s: %s): rows are held in memory until the journal or the "
                      "database takes them; a crash now would lose them (%d failed journal writes so far)",
                      self.base, exc.strerror or exc, self.errors)

    def confirmed(self, seg: Segment) -> None:
        """One row of ``seg`` is in the database (the caller holds the journal lock)."""
        seg.pending -= 1
        if seg.pending == 0 and seg.sealed:
            self._remove(seg)
            self.sealed.remove(seg)

    def compact(self) -> None:
        """Empty the current segment when all of its rows are confirmed (the caller holds the lock)."""
        seg = self.current
        if seg is not None and seg.pending == 0 and seg.size > 0 and seg.fd >= 0:
            try:
                os.ftruncate(seg.fd, 0)
                seg.size = 0
                seg.torn = False
            except OSError:
                pass

    def _remove(self, seg: Segment) -> None:
        try:
            os.unlink(seg.path)
        except OSError:
            pass
        self._close_fd(seg)

    @staticmethod
    def _close_fd(seg: Segment) -> None:
        if seg.fd >= 0:
            try:
                os.close(seg.fd)
            except OSError:
                pass
            seg.fd = -1

    def close(self, *, clean: bool) -> None:
        """Release the segments: removed when ``clean`` (everything confirmed), else left for adoption."""
        segs = self.sealed + ([self.current] if self.current is not None else [])
        for seg in segs:
            if clean and seg.pending == 0:
                self._remove(seg)
            else:
                self._close_fd(seg)  # the lock goes with it: the next writer adopts the rows
        self.sealed, self.current = [], None

    # -- adoption of other processes' segments ---------------------------------------
    def own_paths(self) -> set[str]:
        return {s.path for s in self.sealed} | ({self.current.path} if self.current is not None else set())

    def orphans(self) -> Iterator[tuple[str, int]]:
        """(path, locked fd) of each segment no live writer holds, and of a journal file from before segments."""
        mine = self.own_paths()
        paths = sorted(glob.glob(glob.escape(self.base) + ".*.seg"))
        if self.spool is not None:
            paths += sorted(glob.glob(glob.escape(self.spool) + ".*.seg"))
        if os.path.exists(self.base):
            paths.insert(0, self.base)
        for path in paths:
            if path in mine:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_nlink == 0:  # adopted and removed by someone else meanwhile
                    raise OSError("gone")
            except OSError:
                os.close(fd)
                continue
            yield path, fd
